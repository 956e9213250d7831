"""Response levels: a level convenes its HQ (the commander 指挥长 and deputies, the HQ members, the lead
of every working group it starts, each called to acknowledge) and opens its standing tasks; a level
change calls out the new level, tells those stood down and closes the tasks no longer needed; an
authorised termination closes everything still open and starts the post-event review."""
from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from workflows.kit.events import Activation as Kinds  # the audit event kinds, defined once
    from definitions.schema.reporting import Severity
    from workflows.activation.items import ItemSteps
    from workflows.activation.messages import REVIEW_WORKFLOW, ActivationView, LevelIn, Notice, TerminateIn, subject_of
    from workflows.activation.state import OPEN, Holder, Item, LevelChange, level_zh
    from workflows.activation.view import seats_of
    from workflows.common import Event
    from workflows.escalation import Contact, Target
    from workflows.kit import names
    from workflows.reporting.models import SettleRequest, SettleResult


class LevelSteps(ItemSteps):
    # ------------------------------------------------------------- a level opens: the HQ convened, its tasks opened

    async def _open_level(self, n: int) -> None:
        """Call out the level's commanders, HQ and group leads; open its tasks not open yet."""
        now = workflow.now()  # the tasks open at the moment the HQ is called, after it is recorded
        await self._convene(n, now)
        await self._open_tasks(n, now)

    async def _convene(self, n: int, now: datetime) -> None:
        level = self.s.level
        lv, seats = self.plan.level(level), seats_of(self.plan, level)
        targets: list[Target] = []
        gaps: list[str] = []
        for key, roles in seats.items():
            h = self.s.holders.get(key)
            commander = "指挥长" in roles
            t = self._target(key, h, self.plan.commander_policy if commander else self.plan.member_policy,
                             priority=0 if commander else (5 if "副指挥长" in roles else (10 if "指挥部成员" in roles else 20)),
                             label=f"{'、'.join(roles)} {h.label if h else key}")
            if t is None:
                gaps.append(f"{'、'.join(roles)}: nobody holds {key}")
            else:
                targets.append(t)
        for gid in lv.groups:
            g = self.plan.group(gid)
            for p in (g.lead, *g.members):
                self.s.took_part(self.s.holders.get(p.key))
        text = self.says.render("convene", title=self.info.incident_title, plan=self.plan.name_zh,
                                level=lv.name_zh or level_zh(level))
        await self.record(Event(kind=Kinds.HQ_CONVENED, step_id=f"level/{n}/convened", at=now, payload={
            "level": level.value, "seats": dict(seats), "groups": lv.groups, "gaps": gaps}))
        self._call("convene", str(n), f"{level_zh(level)}响应 指挥部", text, targets,
                   roles={k: "、".join(v) for k, v in seats.items()})

    async def _open_tasks(self, n: int, now: datetime) -> None:
        for lt in self.plan.level(self.s.level).tasks:
            if any(i.task_id == lt.id and i.state != "closed" for i in self.s.items):
                continue
            task = self.plan.task(lt.id)
            group = self.plan.group(task.group)
            h = self.s.holders.get(group.lead.key) or Holder(key=group.lead.key, position=group.lead.position, label=group.lead.key)
            reopened = sum(1 for i in self.s.items if i.task_id == lt.id)
            due = self.s.levels[-1].at + (lt.due or task.due)  # from the activation or the level change
            item = Item(id=f"T-{task.id}" + (f"-{reopened + 1}" if reopened else ""), kind="task", title=task.name_zh,
                        text=task.text_zh, task_id=task.id, group=group.id, assignee=h, issued_by=self.info.activated_by
                        if n == 0 else self.s.levels[-1].by, issued_at=now, due_at=due, first_due_at=due,
                        remind_at=self._remind_at(now, due), feedback_required=task.feedback)
            await self._open_item(item, f"{group.name_zh}:")

    # ------------------------------------------------------------- the level changes

    @workflow.update
    async def change_level(self, req: LevelIn) -> ActivationView:
        self.refuse_if("level", req)
        now, old = workflow.now(), self.s.level
        n = len(self.s.levels)
        self.s.levels.append(LevelChange(n=n, level=req.level, previous=old, at=now, by=req.actor, role=req.role,
                                         reason=req.reason))
        self.s.level = req.level
        up = req.level.rank > old.rank
        await self.record(Event(kind=Kinds.LEVEL_CHANGED, step_id=f"level/{n}", actor=req.actor, at=now, payload={
            "from": old.value, "to": req.level.value, "direction": "up" if up else "down", "reason": req.reason}))
        # the old level's call-out stops; the new level calls its own
        self._silence(lambda ep: ep.kind == "convene", f"响应级别调整为{level_zh(req.level)}")
        await self._stand_down(n, old)
        keep = {t.id for t in self.plan.level(req.level).tasks}
        for item in self.s.items:
            if item.kind == "task" and item.state in (*OPEN, "reported") and item.task_id not in keep:
                await self._close(item, f"响应级别调整为{level_zh(req.level)},该任务不再需要")
        await self._open_level(n)
        return self.view()

    @change_level.validator
    def _level_ok(self, req: LevelIn) -> None:
        self.refuse_if("level", req)

    async def _stand_down(self, n: int, old: Severity) -> None:
        """Those whose seat the new level does not have are told so."""
        new_seats, old_seats = seats_of(self.plan, self.s.level), seats_of(self.plan, old)
        stood_down = [k for k in old_seats if k not in new_seats]
        notices: list[Notice] = []
        for key in stood_down:
            h = self.s.holders.get(key)
            if h and h.person:
                notices += self._notices(f"standdown/{n}/{key}", h.person, self.says.render(
                    "stood_down", title=self.info.incident_title, plan=self.plan.name_zh, old=level_zh(old),
                    new=level_zh(self.s.level), posts="、".join(old_seats[key])))
        if stood_down:
            await self._notify("activation.level.stood_down", f"level/{n}/stood_down", notices,
                               payload={"posts": stood_down})

    # ------------------------------------------------------------- the end

    @workflow.update
    async def terminate(self, req: TerminateIn) -> ActivationView:
        """An authorised termination: everything still open closes; the post-event review starts."""
        self.refuse_if("terminate", req)
        now = workflow.now()
        self.s.terminated_at, self.s.terminated_by, self.s.termination_reason = now, req.actor, req.reason
        closed = []
        for item in self.s.items:
            if item.state in (*OPEN, "reported"):
                closed.append(item.id)
                await self._close(item, "响应终止", tell=False)
        for d in self.s.dispatches:
            if d.state in ("consulting", "drafted", "returned"):
                d.state = "closed"
        for r in self.s.reinforcements:
            if r.state == "requested":
                r.state = "closed"
        people = self._everyone_called()
        self._silence(lambda ep: True, "响应终止")
        await self.record(Event(kind=Kinds.TERMINATED, step_id="terminated", actor=req.actor, at=now, payload={
            "reason": req.reason, "level": self.s.level.value, "closed_items": closed,
            "duration_s": int((now - self.s.activated_at).total_seconds())}))
        text = self.says.render("terminated", title=self.info.incident_title, plan=self.plan.name_zh,
                                level=level_zh(self.s.level), reason=req.reason)
        notices = [x for pid in sorted(people) for x in self._notices(f"terminated/{pid}", people[pid], text)]
        await self._notify("activation.terminated.notice", "terminated/notice", notices, payload={"people": sorted(people)})
        if any(d.teams for d in self.s.dispatches) and workflow.patched("activation-register-dispatch"):
            await self._release(f"{workflow.info().workflow_id}/", "应急响应终止", "teams/released")  # 队伍归建
        if workflow.patched("settle-reporting"):  # the incident's reporting chain settles what is past (漏报)
            await self.call(names.Reporting.SETTLE, lambda: SettleRequest(
                incident_ids=[self.info.incident_id], by=subject_of(self.info.activation_id), actor=req.actor,
                reason=f"应急响应终止:{req.reason}", end=False), result_type=SettleResult)  # the 终报 is still owed
        await self._start_review(req.actor)
        return self.view()

    @terminate.validator
    def _terminate_ok(self, req: TerminateIn) -> None:
        self.refuse_if("terminate", req)

    def _everyone_called(self) -> dict[str, Contact]:
        """The level's seats, and whoever was sent an order or a task or directive: person id -> contact."""
        people: dict[str, Contact] = {}
        for key in seats_of(self.plan, self.s.level):
            h = self.s.holders.get(key)
            if h and h.person:
                people.setdefault(h.person.person_id, h.person)
        for ep in self.s.episodes:
            if ep.kind in ("orders", "notice") and ep.ref:
                for ts in ep.esc.targets.values():
                    if ts.sends_total:
                        people.setdefault(ts.target.person.person_id, ts.target.person)
        return people

    async def _start_review(self, actor: str) -> None:
        review_id = f"review-{self.info.incident_id}"
        arg = {"incident_id": self.info.incident_id, "activation_id": workflow.info().workflow_id, "started_by": actor,
               "units": sorted(self.s.units)}
        try:
            await workflow.start_child_workflow(REVIEW_WORKFLOW, arg, id=review_id, task_queue=workflow.info().task_queue,
                                                parent_close_policy=ParentClosePolicy.ABANDON)
            kind = "activation.review.started"
        except WorkflowAlreadyStartedError:
            kind = "activation.review.already_started"  # another plan of the same incident started it
        self.s.review_workflow_id = review_id
        await self.record(Event(kind=kind, step_id="review", actor=actor, at=workflow.now(),
                                payload={"workflow_id": review_id, "workflow_type": REVIEW_WORKFLOW, **arg}))
