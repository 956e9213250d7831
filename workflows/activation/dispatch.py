"""Force dispatch 力量调度 (seed 003 篇四): fire rescue drafts a plan, emergency management approves it — in
a special period (汛期, 森林防火期; dates are data) only once the sector department has agreed — then
orders go to the forces, each acknowledging, and the sector department is informed (报备)."""
from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.kit.events import Activation as Kinds  # the audit event kinds, defined once
    from definitions.schema.plans import Force
    from workflows.activation.base import ActivationSteps
    from workflows.activation.messages import (ActivationView, ConsultIn, DispatchDecisionIn, DispatchIn, ReserveRequest,
                                               ReserveResult, subject_of)
    from workflows.activation.state import Consultation, DispatchedTeam, DispatchPlan
    from workflows.common import Event
    from workflows.kit import names
    from workflows.kit.rules import refuse
    from workflows.escalation import Contact, Target


class DispatchSteps(ActivationSteps):
    def _force(self, fid: str) -> Force:
        return next(f for f in self.plan.dispatch.forces if f.id == fid)

    def _forces_zh(self, d: DispatchPlan) -> str:
        return "、".join([*(self._force(f).name_zh for f in d.forces), *(f"{t.name}({t.strength}人)" for t in d.teams)])

    async def _reserve(self, req: DispatchIn, seq: int, version: int) -> list[DispatchedTeam]:
        """Mark the register teams the plan names busy (one transaction, recorded), or refuse the draft: a team
        unknown (404) or not available, busy with another dispatch or not ready (409) marks nothing."""
        found: ReserveResult = await self.call(names.Resources.RESERVE, lambda: ReserveRequest(
            subject=subject_of(self.info.activation_id), workflow_id=workflow.info().workflow_id,
            run_id=workflow.info().run_id, holder=self._holder(seq, version), teams=req.teams, actor=req.actor,
            step_id=f"dispatch/{seq}/v{version}/teams"), result_type=ReserveResult)
        refuse(found.refusal)
        return found.teams

    @workflow.update
    async def draft_dispatch(self, req: DispatchIn) -> ActivationView:
        """Fire rescue drafts a dispatch plan; in a special period the sector department is asked to agree."""
        self.refuse_if("dispatch", req)
        found = await self._lookup(seasons=self.plan.seasons())
        self.refuse_if("dispatch", req)  # the state may have moved while the calendar was read
        now = workflow.now()
        last = self.s.dispatches[-1] if self.s.dispatches else None
        redraft = last is not None and last.state == "returned"
        seq, version = (last.seq, last.version + 1) if redraft and last else (len(self.s.dispatches) + 1, 1)
        teams = []
        if req.teams and workflow.patched("activation-register-dispatch"):  # teams of the resource register
            teams = await self._reserve(req, seq, version)
            why = self.RULES.refusal("dispatch", self._rules_context(), req, workflow.now())  # moved while marking?
            if why is not None:
                await self._release(self._holder(seq, version), "调度方案未拟定", f"dispatch/{seq}/v{version}/unmarked")
                refuse(why)
        d = DispatchPlan(seq=seq, version=version, forces=req.forces, teams=teams, task=req.task,
                         place=req.place, drafted_by=req.actor, drafted_at=now,
                         on_behalf=req.actor not in self._rules_context().holder_persons(self.plan.dispatch.drafter.key),
                         season=found.season, consult_required=found.season is not None,
                         state="consulting" if found.season is not None else "drafted")
        if redraft:
            self.s.dispatches[-1] = d
        else:
            self.s.dispatches.append(d)
        await self.record(Event(kind=Kinds.DISPATCH_DRAFTED, step_id=f"dispatch/{d.seq}/v{d.version}/drafted",
                                actor=req.actor, at=now, payload={
                                    "seq": d.seq, "version": d.version, "forces": d.forces, "task": d.task,
                                    **({"teams": [t.model_dump() for t in d.teams]} if d.teams else {}),
                                    "place": d.place, "season": d.season.model_dump() if d.season else None,
                                    "consult_required": d.consult_required, "on_behalf": d.on_behalf}))
        if d.consult_required and d.season is not None:
            await self._ask_sector(d)
        approver = self.s.holders.get(self.plan.dispatch.approver.key)
        if approver and approver.person:
            ask = self.says.render("approval_ask_consult" if d.consult_required else "approval_ask")
            text = self.says.render("approval", forces=self._forces_zh(d), task=d.task, ask=ask)
            await self._notify("activation.dispatch.approval_requested", f"dispatch/{d.seq}/v{d.version}/approval_requested",
                               self._notices(f"approve/{d.seq}/{d.version}", approver.person, text), payload={"seq": d.seq})
        return self.view()

    @draft_dispatch.validator
    def _dispatch_ok(self, req: DispatchIn) -> None:
        self.refuse_if("dispatch", req)

    async def _ask_sector(self, d: DispatchPlan) -> None:
        """A special period: the sector department is asked to agree."""
        assert d.season is not None
        sector = self.s.holders.get(self.plan.dispatch.sector.key)
        text = self.says.render("consult", season=d.season.label(), forces=self._forces_zh(d), task=d.task)
        notices = self._notices(f"consult/{d.seq}/{d.version}", sector.person, text) if sector and sector.person else []
        await self._notify("activation.dispatch.consult_requested", f"dispatch/{d.seq}/v{d.version}/consult_requested",
                           notices, payload={"seq": d.seq, "season": d.season.id,
                                             "sector": sector.label if sector else self.plan.dispatch.sector.key})

    @workflow.update
    async def consult_dispatch(self, req: ConsultIn) -> ActivationView:
        self.refuse_if("consult", req)
        d, now = self.s.dispatch(req.seq), workflow.now()
        sector = req.actor in self._rules_context().holder_persons(self.plan.dispatch.sector.key)
        d.consulted(Consultation(agree=req.agree, opinion=req.opinion, by=req.actor, at=now, on_behalf=not sector,
                                 note=req.note))
        await self.record(Event(kind=Kinds.DISPATCH_CONSULTED, step_id=f"dispatch/{d.seq}/v{d.version}/consulted",
                                actor=req.actor, at=now, payload={"seq": d.seq, "agree": req.agree, "opinion": req.opinion,
                                                                  "on_behalf": not sector, "note": req.note}))
        if d.state == "returned" and d.teams:  # the redraft names its teams again
            await self._release(self._holder(d.seq, d.version), "调度方案退回", f"dispatch/{d.seq}/v{d.version}/released")
        return self.view()

    @consult_dispatch.validator
    def _consult_ok(self, req: ConsultIn) -> None:
        self.refuse_if("consult", req)

    @workflow.update
    async def decide_dispatch(self, req: DispatchDecisionIn) -> ActivationView:
        """Emergency management approves (orders go out, the sector is informed) or returns the plan."""
        self.refuse_if("approve", req)
        d, now = self.s.dispatch(req.seq), workflow.now()
        d.decided(req.decision == "approve", req.actor, now, req.comments)
        await self.record(Event(kind=(Kinds.DISPATCH_APPROVED if d.state == "approved" else Kinds.DISPATCH_RETURNED),
                                step_id=f"dispatch/{d.seq}/v{d.version}/decided", actor=req.actor, at=now,
                                payload={"seq": d.seq, "comments": req.comments, "forces": d.forces}))
        if d.state == "approved":
            await self._order(d, now)
        elif d.teams:  # returned: the redraft names its teams again
            await self._release(self._holder(d.seq, d.version), "调度方案退回", f"dispatch/{d.seq}/v{d.version}/released")
        return self.view()

    @decide_dispatch.validator
    def _decide_ok(self, req: DispatchDecisionIn) -> None:
        self.refuse_if("approve", req)

    async def _order(self, d: DispatchPlan, now: datetime) -> None:
        """Orders to the forces (each acknowledges), then the sector department informed 报备."""
        targets, gaps = [], []
        for fid in d.forces:
            f = self._force(fid)
            if f.post is not None:
                h = self.s.holders.get(f.post.key)
                t = self._target(f"force/{fid}", h, self.plan.dispatch.order_policy, priority=0, label=f.name_zh)
                self.s.took_part(h)
            else:
                t = Target(key=f"force/{fid}", tier="force", label=f.name_zh, policy=self.plan.dispatch.order_policy,
                           person=Contact(person_id=f"force:{fid}", name=f.contact_zh or f.name_zh, mobile=f.mobile),
                           others=self.s.duty, priority=0)
            if t is None:
                gaps.append(f"{f.name_zh}: nobody holds {f.post.key if f.post else fid}")
            else:
                targets.append(t)
        for t in d.teams:  # register teams: their duty phone (or leader) takes the order
            if t.mobile:
                targets.append(Target(key=f"team/{t.id}", tier="force", label=t.name, policy=self.plan.dispatch.order_policy,
                                      person=Contact(person_id=f"team:{t.id}", name=t.contact or t.name, mobile=t.mobile),
                                      others=self.s.duty, priority=0))
            else:
                gaps.append(f"{t.name}: the register gives no duty phone or leader")
        if gaps:
            await self.record(Event(kind=Kinds.GAP, step_id=f"dispatch/{d.seq}/gap", at=now, payload={"gaps": gaps}))
        if targets:
            place = self.says.render("orders_place", place=d.place) if d.place else ""
            self._call("orders", str(d.seq), f"出动指令{d.seq}",
                       self.says.render("orders", title=self.info.incident_title, task=d.task, place=place), targets)
        sector = self.s.holders.get(self.plan.dispatch.sector.key)
        d.sector_informed_at = now
        text = self.says.render("sector_informed", forces=self._forces_zh(d), task=d.task)
        await self._notify("activation.dispatch.sector_informed", f"dispatch/{d.seq}/sector_informed",
                           self._notices(f"sector/{d.seq}", sector.person, text) if sector and sector.person else [],
                           payload={"seq": d.seq, "sector": sector.label if sector else self.plan.dispatch.sector.key})
