"""What every part of the activation's workflow shares (workflows/activation/workflow.py puts the parts
together): its record request and view, whom it calls (escalation episodes of the kit), whom it tells
(notices without an answer), and the directory it reads."""
from __future__ import annotations

from datetime import datetime
from typing import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():  # the kit and the messages: one copy, inside and outside the sandbox
    from definitions.schema.activation_messages import ActivationMessages
    from definitions.schema.plans import ResponsePlan, Season
    from workflows.activation.messages import (
        ActivationInfo, ActivationInput, ActivationView, EpisodeKind, FlushRequest, Notice, NotifyRequest, RecordRequest,
        ReleaseRequest, ResolveRequest, ResolveResult, subject_of)
    from workflows.activation.rules import RULES, Activation
    from workflows.activation.state import ActivationState, Holder
    from workflows.activation.view import build_view
    from workflows.common import ACTIVITY, Event
    from workflows.escalation import Actions, Contact, FlushResult, Record, Target
    from workflows.kit import names
    from workflows.kit.episodes import Episode
    from workflows.kit.procedure import Procedure


class ActivationSteps(Procedure):
    RECORD = names.Activation.RECORD
    RULES = RULES
    unreachable_acks = True  # an answer after the escalation gave up on the person still acknowledges
    wake_on_every_write = True  # the main loop looks again after every activity (new timers, the end, a long history)

    inp: ActivationInput
    plan: ResponsePlan
    info: ActivationInfo
    s: ActivationState

    @property
    def says(self) -> ActivationMessages:
        """The plan's wording of what the activation sends (definitions/plans/)."""
        return self.plan.messages

    def _rules_context(self) -> Activation:
        return Activation(self.plan, self.s)

    def view(self) -> ActivationView:
        return build_view(self.plan, self.inp.plan_version, self.info, self.s, workflow.info().workflow_id)

    def _record_request(self, events: list[Event]) -> RecordRequest:
        return RecordRequest(workflow_id=workflow.info().workflow_id, run_id=workflow.info().run_id, info=self.info,
                             plan_id=self.plan.id, plan_version=self.inp.plan_version, events=events, view=self.view())

    # ------------------------------------------------------------- whom it calls: escalation episodes

    def _target(self, key: str, h: Holder | None, policy: str, priority: int, label: str) -> Target | None:
        if h is None or h.person is None:
            return None
        return Target(key=key, tier=key.split("/", 1)[0], position=h.position, org_unit=h.org_unit or "", label=label,
                      person=h.person, deputy=h.deputy, superior=h.superior, others=self.s.duty, policy=policy,
                      priority=priority)

    def _call(self, kind: EpisodeKind, ref: str, label: str, text: str, targets: list[Target],
              due: datetime | None = None, roles: dict[str, str] | None = None) -> None:
        policies = {t.policy: self.plan.policies[t.policy] for t in targets}
        self.start_escalation(kind, ref, policies, targets, label=label, text=text, due_at=due, roles=roles or {})

    async def _flush(self, ep: Episode, actions: Actions) -> FlushResult:
        for r in actions.records:  # the state first, so the read model written with this batch shows it
            self._on_record(ep, r)
        return await self.call(names.Activation.FLUSH, lambda: FlushRequest(
            record=self._record_request([]), episode=ep.name, kind=ep.kind, ref=ep.ref, label=ep.label, text=ep.text,
            due_at=ep.due_at, roles=ep.roles, sends=actions.sends, records=actions.records), result_type=FlushResult)

    def _on_record(self, ep: Episode, r: Record) -> None:
        if ep.kind == "notice":
            item = self.s.item(ep.ref)
            if r.kind == "ack" and item.acknowledged_at is None:
                item.acknowledged(r.at, r.actor, r.channel)
            elif r.kind == "unreachable":
                item.unreachable = True
        elif ep.kind == "experts" and r.kind == "ack":
            m = next(x for x in self.s.meetings if str(x.seq) == ep.ref)
            e = next((x for x in m.experts if x.person_id == r.person_id), None)
            if e is not None and e.confirmed_at is None:
                e.confirmed_at, e.confirmed_via = r.at, r.channel
        elif ep.kind == "request" and r.kind == "ack":
            rq = next(x for x in self.s.reinforcements if str(x.seq) == ep.ref)
            rq.received_at = rq.received_at or r.at

    def _stop(self, name: str, reason: str, prefix: bool = False, silent: bool = False) -> None:
        """Stop the episode `name` (or every one whose name starts with it) that runs and is not stopped yet."""
        self.stop_episodes(lambda ep: ep.name.startswith(name) if prefix else ep.name == name, reason, silent=silent)

    def _silence(self, match: Callable[[Episode], bool], reason: str) -> None:
        """Stop the episodes still running `match` accepts, silently, even those stopped already."""
        for ep in self.s.episodes:
            if match(ep) and not ep.done:
                ep.stop, ep.silent = reason, True

    # ------------------------------------------------------------- whom it tells: notices without an answer

    def _notices(self, key: str, c: Contact, text: str, due: datetime | None = None) -> list[Notice]:
        out = []
        for ch in self.plan.channels:
            to = c.address(ch.value)
            if to:
                out.append(Notice(key=f"{workflow.info().workflow_id}/{key}/{c.person_id}/{ch.value}", person_id=c.person_id,
                                  name=c.name, channel=ch.value, to=to, text=text, due_at=due))
        return out

    async def _notify(self, kind: str, step_id: str, notices: list[Notice], payload: dict) -> None:
        await self.call(names.Activation.NOTIFY, lambda: NotifyRequest(
            record=self._record_request([]), kind=kind, step_id=step_id, notices=notices, payload=payload))

    # ------------------------------------------------------------- the resource register

    def _holder(self, seq: int, version: int) -> str:
        """What a dispatch plan's register teams are busy with (activities/resources.py)."""
        return f"{workflow.info().workflow_id}/dispatch/{seq}/v{version}"

    async def _release(self, holder: str, reason: str, step_id: str) -> None:
        """Register teams busy with `holder` (a dispatch plan's, or with `<workflow id>/` the whole activation's)
        available again, recorded per team."""
        await self.call(names.Resources.RELEASE, lambda: ReleaseRequest(
            subject=subject_of(self.info.activation_id), workflow_id=workflow.info().workflow_id,
            run_id=workflow.info().run_id, holder=holder, reason=reason, step_id=step_id))

    # ------------------------------------------------------------- the directory

    async def _lookup(self, units: list[str] | None = None, seasons: list[Season] | None = None) -> ResolveResult:
        """Who holds the plan's posts (and heads `units`), who is on duty, which special period it is: a read, not
        a write, so not behind the write lock."""
        found: ResolveResult = await workflow.execute_activity(
            names.Activation.RESOLVE, ResolveRequest(plan=self.plan, town_id=self.info.town_id, units=units or [],
                                                     seasons=seasons or [], at=workflow.now()),
            result_type=ResolveResult, **ACTIVITY)
        if found.duty:
            self.s.duty = found.duty  # who is on duty now: escalations started from here on reach them
        return found

    # ------------------------------------------------------------- what it shows

    @workflow.update
    async def opened_view(self) -> ActivationView:
        """Returns once the activation is recorded: the API answers `POST /api/activations` with it."""
        await workflow.wait_condition(lambda: self.opened)
        return self.view()

    @workflow.query
    def state(self) -> ActivationView:
        return self.view()
