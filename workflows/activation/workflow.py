"""The plan activation's workflow: one per activation (the procedure: workflows/activation/__init__.py).

The steps live with their concept — levels.py (the HQ convened, level changes, termination), items.py
(tasks and directives 督办), dispatch.py (力量调度), reinforcement.py, experts.py (会商研判) — on the kit's Procedure
(workflows/kit/): this class puts them together and runs the procedure."""
from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # the kit, the steps and the messages: one copy, inside and outside the sandbox
    from workflows.kit.events import Activation as Kinds  # the audit event kinds, defined once
    from workflows.activation.dispatch import DispatchSteps
    from workflows.activation.experts import ExpertSteps
    from workflows.activation.levels import LevelSteps
    from workflows.activation.messages import ActivationInput, ActivationView
    from workflows.activation.reinforcement import ReinforcementSteps
    from workflows.activation.state import ActivationState, LevelChange
    from workflows.activation.view import opening
    from workflows.common import Event


@workflow.defn
class PlanActivationWorkflow(LevelSteps, DispatchSteps, ReinforcementSteps, ExpertSteps):
    @workflow.init
    def __init__(self, inp: ActivationInput) -> None:
        self.inp, self.plan, self.info = inp, inp.plan, inp.info
        now = workflow.now()
        self.s = inp.state or ActivationState(
            activated_at=now, level=inp.info.level,
            levels=[LevelChange(n=0, level=inp.info.level, at=now, by=inp.info.activated_by, role=inp.info.activated_role,
                                reason=inp.info.reason)])
        self._init_procedure()

    @workflow.run
    async def run(self, inp: ActivationInput) -> ActivationView:
        if inp.state is None:
            await self._resolve()
            await self.record(Event(kind=Kinds.STARTED, step_id="started", actor=self.info.activated_by,
                                    at=self.s.activated_at, payload=opening(self.plan, inp.plan_version, self.info, self.s)))
            if self.s.gaps:
                await self.record(Event(kind=Kinds.GAP, step_id="gaps/0", at=workflow.now(),
                                        payload={"gaps": self.s.gaps}))
            await self._open_level(0)
        else:
            await self.record(Event(kind=Kinds.CONTINUED, step_id=f"continued/{self.s.runs}", at=workflow.now(),
                                    payload={"run": self.s.runs}))
        self.resume_episodes()
        while self.s.terminated_at is None:
            await self.apply_late_acks()
            await self._items_due()
            await self._reinforcements_due()
            if self.history_is_long():
                await self.continue_as_new()
            await self.sleep_until_next(self.s.next_times(), until=lambda: bool(self.late) or self.s.terminated_at is not None)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self.episodes_finished()
        await self.episodes_finished()  # late answers that came while it closed
        return self.view()

    async def _resolve(self) -> None:
        """Who holds the plan's posts, who is on duty, the district's name: read once, at the start."""
        found = await self._lookup()
        self.s.holders, self.s.duty, self.s.gaps, self.s.district = found.holders, found.duty, found.gaps, found.district
