"""应急广播: play a warning on the IP broadcast terminals of some towns (gateways/broadcast.py).

One activity, callable by any procedure with a `BroadcastOrder` (workflows/kit/broadcast.py): a warning id,
towns, text, level, drill, subject. It records `broadcast.requested` before asking the platform and
`broadcast.accepted` once the platform took the request; the receipts (per terminal: played / failed) come
later to `POST /api/webhooks/broadcast` (the simulator gives them at once, recorded the same way).

One `request_id` plays once: a try after an earlier one (this attempt's retry, or the same order again) finds the
request's row; if the platform had accepted it, that is the answer; if it may have reached the platform, the
platform is asked for the task by request_id before anything is posted again.
"""
from __future__ import annotations

import asyncio

from temporalio import activity

from activities.gateways import broadcast_gateway
from activities.gateways.broadcast import BroadcastError, BroadcastRequest
from store import broadcasts as store
from store.db import session_scope
from workflows.kit import names
from workflows.kit.broadcast import ATTEMPTS, BroadcastOrder, BroadcastOutcome


@activity.defn(name=names.Broadcast.PLAY)
async def play(order: BroadcastOrder) -> BroadcastOutcome:
    info = activity.info()
    if not order.town_ids:
        return BroadcastOutcome(request_id=order.request_id, status="skipped")

    def open_() -> tuple[dict[str, str], str | None, bool]:
        with session_scope() as s:
            towns = store.areas_of(s, order.town_ids)
            row, existed = store.open_request(
                s, request_id=order.request_id, subject=order.subject, workflow_id=info.workflow_id,
                warning_id=order.warning_id, purpose=order.purpose, level=order.level, drill=order.drill,
                text=order.text, repeat=order.repeat, towns=towns)
            areas = {a.town_id: a.area for a in store.of_request(s, row.request_id)}
            return areas, row.task_id, existed

    areas, task_id, existed = await asyncio.to_thread(open_)
    if task_id is not None:  # an earlier try was accepted and recorded: nothing to play again
        return BroadcastOutcome(request_id=order.request_id, status="accepted", task_id=task_id, towns=list(areas))
    gateway = broadcast_gateway()
    req = BroadcastRequest(request_id=order.request_id, areas=list(dict.fromkeys(areas.values())), text=order.text,
                           repeat=order.repeat, level=order.level, drill=order.drill)
    try:
        accepted = await gateway.play(req, maybe_sent=existed or info.attempt > 1)
    except BroadcastError as exc:
        if exc.retry and info.attempt < ATTEMPTS:
            raise
        # the last try, or a refusal no retry can mend (a 4xx): recorded as failed, the procedure goes on
        await asyncio.to_thread(_failed, order.request_id, str(exc))
        return BroadcastOutcome(request_id=order.request_id, status="failed", towns=list(areas))

    def accept() -> None:
        with session_scope() as s:
            store.record_accepted(s, order.request_id, accepted.task_id, accepted.status, accepted.asked)
            if accepted.receipts:
                store.record_receipts(s, task_id=accepted.task_id, request_id=order.request_id,
                                      results=[{"area": r.area, "status": r.status, "terminal": r.terminal,
                                                "error": r.error} for r in accepted.receipts])

    await asyncio.to_thread(accept)
    return BroadcastOutcome(request_id=order.request_id, status="accepted", task_id=accepted.task_id,
                            towns=list(areas))


def _failed(request_id: str, error: str) -> None:
    with session_scope() as s:
        store.record_failed(s, request_id, error)
