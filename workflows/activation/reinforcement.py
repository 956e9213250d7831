"""Reinforcement from the city (experts, teams, supplies): the request is called through to the city, which
confirms receipt, and tracked to its answer; no answer in time and the duty chief is called to chase it."""
from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.kit.events import Activation as Kinds  # the audit event kinds, defined once
    from workflows.activation.base import ActivationSteps
    from workflows.activation.messages import ActivationView, ReinforceAnswerIn, ReinforceIn
    from workflows.activation.state import KIND_ZH, Answer, ReinforcementRequest, level_zh
    from workflows.common import Event
    from workflows.escalation import Contact, Target


class ReinforcementSteps(ActivationSteps):
    @workflow.update
    async def request_reinforcement(self, req: ReinforceIn) -> ActivationView:
        self.refuse_if("reinforce", req)
        now, rf = workflow.now(), self.plan.reinforcement
        r = ReinforcementRequest(seq=len(self.s.reinforcements) + 1, kind=req.kind, detail=req.detail,
                                 quantity=req.quantity, requested_by=req.actor, requested_at=now,
                                 due_at=now + rf.answer_within)
        self.s.reinforcements.append(r)
        await self.record(Event(kind=Kinds.REINFORCEMENT_REQUESTED, step_id=f"reinforcement/{r.seq}/requested",
                                actor=req.actor, at=now, payload={"seq": r.seq, "kind": r.kind, "detail": r.detail,
                                                                  "quantity": r.quantity, "to": rf.to_zh,
                                                                  "due_at": r.due_at.isoformat()}))
        t = Target(key=f"city/{r.seq}", tier="city", label=rf.to_zh, policy=rf.request_policy, priority=0,
                   person=Contact(person_id="city:reinforcement", name=rf.to_zh, mobile=rf.mobile), others=self.s.duty)
        quantity = self.says.render("request_quantity", quantity=r.quantity) if r.quantity else ""
        # the plan as the city knows it: its name, led by the directory's district unless it already is
        name, home = self.plan.name_zh, self.s.district
        plan = name if name.startswith(home) else home + name
        text = self.says.render("request", district=self.s.district, plan=plan, level=level_zh(self.s.level),
                                title=self.info.incident_title, kind=KIND_ZH[r.kind], detail=r.detail, quantity=quantity)
        self._call("request", str(r.seq), f"增援请求{r.seq}", text, [t], due=r.due_at)
        return self.view()

    @request_reinforcement.validator
    def _reinforce_ok(self, req: ReinforceIn) -> None:
        self.refuse_if("reinforce", req)

    @workflow.update
    async def answer_reinforcement(self, req: ReinforceAnswerIn) -> ActivationView:
        self.refuse_if("answer", req)
        r, now = self.s.reinforcement(req.seq), workflow.now()
        r.answered(Answer(decision=req.decision, detail=req.detail, by_whom=req.by_whom, recorded_by=req.actor, at=now))
        await self.record(Event(kind=Kinds.REINFORCEMENT_ANSWERED, step_id=f"reinforcement/{r.seq}/answered",
                                actor=req.actor, at=now, payload={"seq": r.seq, "decision": req.decision,
                                                                  "detail": req.detail, "by_whom": req.by_whom,
                                                                  "late_by_s": r.late_by_s}))
        self._stop(f"request/{r.seq}", "已答复", silent=True)
        self._stop(f"chase/{r.seq}", "市里已答复增援请求")
        return self.view()

    @answer_reinforcement.validator
    def _answer_ok(self, req: ReinforceAnswerIn) -> None:
        self.refuse_if("answer", req)

    async def _reinforcements_due(self) -> None:
        """No answer in time: the duty chief (or the leading leader) is called to chase the city."""
        for r in self.s.reinforcements:
            now = workflow.now()
            if r.state == "requested" and r.overdue_at is None and now >= r.due_at:
                r.overdue_at = now
                await self._chase(r, now)

    async def _chase(self, r: ReinforcementRequest, now: datetime) -> None:
        rf = self.plan.reinforcement
        await self.record(Event(kind=Kinds.REINFORCEMENT_OVERDUE, step_id=f"reinforcement/{r.seq}/overdue",
                                at=now, payload={"seq": r.seq, "due_at": r.due_at.isoformat(), "to": rf.to_zh}))
        chief = self.s.duty.get("duty_chief") or self.s.duty.get("leading_leader")
        if chief is None:
            await self.record(Event(kind=Kinds.GAP, step_id=f"reinforcement/{r.seq}/gap", at=now,
                                    payload={"gaps": ["no duty chief or leading leader on duty to chase the city"]}))
            return
        t = Target(key=f"chase/{r.seq}", tier="chase", position="duty_chief", label=f"值班长{chief.name}",
                   person=chief, others=self.s.duty, policy=rf.chase_policy, priority=0)
        self._call("chase", str(r.seq), f"催办增援请求{r.seq}",
                   self.says.render("chase", to=rf.to_zh, kind=KIND_ZH[r.kind], detail=r.detail), [t], due=r.due_at)
