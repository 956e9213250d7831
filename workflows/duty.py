"""What the duty-day workflows share: activity options, audit events, and one way to run the
shared escalation interpreter (workflows/escalation/) with the `duty.flush` activity (`duty_flush`:
one request, built once, for every batch a duty procedure sends and records).

Every duty procedure that needs somebody to answer (the incoming duty chief, a sampled
village flood-control person, a town head with a follow-up, each person of a contact
confirmation round) runs an `Escalation` through `run_escalation`; messages are rendered
and audited by activities/duty/ per procedure.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, Field
from temporalio import workflow

from workflows.common import ACTIVITY
from workflows.kit.names import Duty

with workflow.unsafe.imports_passed_through():
    from workflows.escalation import Actions, Escalation, FlushResult, Inbox, Record, Send, drive

Procedure = Literal["handover", "spotcheck", "followup", "freshness", "readiness"]


class DutyFlush(BaseModel):
    """A batch of the interpreter's sends and records for one procedure."""

    procedure: Procedure
    subject: str
    workflow_id: str
    run_id: str
    episode: str = ""
    context: dict[str, Any] = Field(default_factory=dict, description="what the messages need (titles, deadlines…)")
    sends: list[Send] = Field(default_factory=list)
    records: list[Record] = Field(default_factory=list)
    after: dict[str, Any] | None = Field(
        default=None, description="what the batch's answers made of the procedure, written in the flush's transaction "
                                  "after its events (readiness: a RecordRequest's fields)")


async def duty_flush(procedure: Procedure, subject: str, episode: str, context: dict[str, Any], actions: Actions,
                     io: Any = None, after: dict[str, Any] | None = None) -> FlushResult:
    """Send and record one batch of a duty procedure's episode through `duty.flush` (under the host's lock `io`,
    if it has one, so that a flush and an update's audit write never interleave); `after`: see DutyFlush."""
    req = DutyFlush(procedure=procedure, subject=subject, workflow_id=workflow.info().workflow_id,
                    run_id=workflow.info().run_id, episode=episode, context=context, sends=actions.sends,
                    records=actions.records, after=after)
    if io is None:
        return await workflow.execute_activity(Duty.FLUSH, req, result_type=FlushResult, **ACTIVITY)
    async with io:
        return await workflow.execute_activity(Duty.FLUSH, req, result_type=FlushResult, **ACTIVITY)


async def run_escalation(esc: Escalation, inbox: Inbox, procedure: Procedure, subject: str, episode: str,
                         context: Callable[[], dict[str, Any]], until: Callable[[], bool] = lambda: False,
                         before: Callable[[Actions], Awaitable[None]] | None = None,
                         io: Any = None) -> None:
    """Drive `esc` to its end (or `until`), flushing through `duty.flush`.

    `before` sees each batch first (the host reacts to acknowledgements and escalations);
    `io` is the host's lock (`duty_flush`).
    """

    async def flush(actions: Actions) -> FlushResult:
        if before is not None:
            await before(actions)
        result = await duty_flush(procedure, subject, episode, context(), actions, io)
        inbox.put(result.reports)  # failures the gateway reported at once
        return result

    await drive(esc, inbox, flush, until=until)


def flusher(procedure: Procedure, subject: str, context: Callable[[Any], dict[str, Any]],
            io: Any = None) -> Callable[[Any, Actions], Awaitable[FlushResult]]:
    """A flush of one episode (anything with a `name`) through `duty.flush`: how a duty procedure records a late
    answer to an episode that has ended (`record_late_answers`)."""

    async def flush(ep: Any, actions: Actions) -> FlushResult:
        return await duty_flush(procedure, subject, ep.name, context(ep), actions, io)

    return flush


async def stop_escalation(esc: Escalation, procedure: Procedure, subject: str, episode: str, reason: str,
                          context: dict[str, Any]) -> None:
    """End an escalation early and tell everyone it reached (the interpreter's cancel)."""
    actions = esc.cancel(workflow.now(), reason)
    if actions:
        await duty_flush(procedure, subject, episode, context, actions)
