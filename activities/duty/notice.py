"""A notice to those on duty (workflows/notice.py): whoever holds the roles now gets one SMS through the outbox,
and the audit trail records whom it reached, in one activity (a retry finds the outbox rows by their keys)."""
from __future__ import annotations

import asyncio

from temporalio import activity

from activities.common import on_duty_as, sms_each
from activities.delivery import deliver
from store.audit import NewEvent, append
from store.db import session_scope
from workflows.kit import names
from workflows.notice import NoticeRequest, NoticeResult


@activity.defn(name=names.Duty.NOTICE)
async def notice(req: NoticeRequest) -> NoticeResult:
    n = req.notice

    def who():
        with session_scope(write=False) as s:
            return on_duty_as(s, req.at, n.roles)

    people = await asyncio.to_thread(who)
    outcomes = await deliver(sms_each(people.values(), lambda c: f"{req.workflow_id}/{c.person_id}", n.body,
                                      subject=n.subject, meta={"purpose": "notice", "procedure": "duty"}))
    sent_to = [{"role": r, "person_id": c.person_id} for r, c in people.items()]
    missing = [r for r in n.roles if r not in people]

    def record() -> None:
        with session_scope() as s:
            append(s, [NewEvent(subject=n.subject, kind=n.kind, step_id="notice", workflow_id=req.workflow_id,
                                run_id=req.run_id, actor=n.actor, at=req.at,
                                payload={**n.payload, "body": n.body, "sent_to": sent_to, "nobody_on_duty": missing,
                                         "statuses": [o.status for o in outcomes]})])

    await asyncio.to_thread(record)
    return NoticeResult(sent_to=sent_to, statuses=[o.status for o in outcomes])
