"""Answers in the call-out's read model as soon as they are stored (`mark_answered`), and answers nobody waits for
any more: recorded as late, never dropped.

An answer the API has matched is on the board at once: a row of its own (`CalloutAnswer`) for each of the person's
targets, added as the API matches it (an SMS reply in the transaction that stores and matches it, any other answer
beside the signal to its workflow), before the workflow's turn comes to record the acknowledgement (which, in a
district-wide call-out, waits behind the worker's sends and escalations: issue 25).

An answer to a message we sent can arrive after the workflow that asked for it has ended
(the call-out's shard finished, the call-out was cancelled, a reporting chain, activation,
review or duty-day procedure closed). The API then records it here, through the store: an
audit event under the procedure's subject (`<kind>.ack.late`: who, channel, when, how late,
what had already happened) and, for a call-out, the target's late mark. The event id comes
from the workflow, the target and the answer's own id, so an answer recorded twice (a retried
request, two API processes, the workflow itself in its last moments) is one event.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, func, select

from store.audit import AuditEvent, NewEvent, append
from store.bulk import by_pairs
from store.callouts import Callout, CalloutAnswer, CalloutRelay, CalloutTarget
from store.duty import SpotCheck, SpotCheckAnswer
from store.messages import OutboxMessage
from store.types import now_utc
from workflows.escalation import late_step
from workflows.kit import events as kinds  # the registry of event kinds (its Callout is not the table)
from workflows.spotcheck import AnswerIn, PersonView, answer_refusal, late_answer_payload

SETTLED = ("acknowledged", "unreachable", "canceled")


@dataclass
class LateAnswer:
    subject: str
    person_id: str
    channel: str
    at: datetime
    actor: str
    ref: str
    note: str | None = None
    households: int | None = None  # 到户: a relay confirmation (workflows/relay.py)
    reported_by: str | None = None


def _procedure_kind(s: Session, subject: str, workflow_id: str) -> str:
    """The audit kind prefix of the procedure that sent (`callout`, `reporting`, `activation`, …): the kind of
    its last `*.sent` event."""
    sent = "." + kinds.Escalation.SENT
    kind = s.exec(select(AuditEvent.kind).where(AuditEvent.subject == subject, AuditEvent.workflow_id == workflow_id,
                                                col(AuditEvent.kind).like("%" + sent))
                  .order_by(col(AuditEvent.seq).desc()).limit(1)).first()
    prefix = kind.removesuffix(sent) if kind else kinds.Answer.EPISODE
    # (a send written under a prefix no longer registered: its late answer is the unknown procedure's)
    return prefix if f"{prefix}.{kinds.Escalation.ACK_LATE}" in kinds.KINDS else kinds.Answer.EPISODE


def _late_s(at: datetime, since: datetime | None) -> float | None:
    # (never negative: a workflow's own clock may run ahead of the API's, e.g. on a time-skipping test server)
    return max(round((at - since).total_seconds(), 3), 0.0) if since else None


def record_late(s: Session, a: LateAnswer, workflow_ids: set[str], running: set[str] | frozenset = frozenset()
                ) -> list[dict[str, Any]]:
    """Record `a` as a late answer in each of `workflow_ids` (the ended workflows that sent to the person; or,
    in `running`, workflows that run but had nothing waiting for that answer any more: "not_waited_for").
    Returns what was recorded, one dict per event."""
    return record_late_many(s, [(a, workflow_ids, running)])[0]


def record_late_many(s: Session, items: list[tuple[LateAnswer, set[str], set[str] | frozenset]]
                     ) -> list[list[dict[str, Any]]]:
    """`record_late` for answers that came together (a burst of repeated replies after a shard ended): what each
    call-out target needs is read in two queries per call-out for all of them, the events appended in one go."""
    events: list[NewEvent] = []
    callouts = {a.subject: s.get(Callout, a.subject) for a, _, _ in items}
    meta = _meta_of(s, {(a.subject, a.person_id) for a, _, _ in items if callouts[a.subject] is not None})
    keys = {(a.subject, wid, a.person_id): {m.get("target_key") for m in meta.get((a.subject, a.person_id, wid), [])
                                            if m.get("target_key") and m.get("purpose", "notify") in ("notify", "escalate")}
            for a, wids, _ in items if callouts[a.subject] is not None for wid in wids}
    targets = _targets(s, {(subject, k) for (subject, _, _), ks in keys.items() for k in ks})
    out = []
    touched: list[CalloutTarget | CalloutRelay] = []
    for a, workflow_ids, running in items:
        out.append(_late_one(s, a, workflow_ids, running, callouts[a.subject], keys, targets, events, touched))
    if events:
        append(s, events)
    stamp = now_utc()  # after the append, just before the commit: a live board re-reads only 2 s before its newest
    for row in touched:
        row.updated_at = stamp
    return out


def mark_answered(s: Session, answers: list[tuple[str, str, datetime]]) -> list[tuple[str, int]]:
    """Each answer (subject, person, received at) shown on its call-out's board: a `CalloutAnswer` row for each of the
    person's own targets (found by person, no message read: most answers), or, for a person with none in that
    call-out (a deputy or superior answering), for the targets the outbox's messages to them were sent for; only
    targets neither acknowledged nor shown answered yet. The acknowledgement itself (state, acknowledged_at, the
    trail's event) is the workflow's to record. Subjects that are not call-outs match no row. Returns each row added as
    (call-out, target id): the caller tells its process's live boards once committed (api/services/answers/shown.py).

    No target row is locked or updated: the answers' rows are inserted, so a shard's flush that holds a target's row
    until its commit holds up no answer (docs/performance.md, "Answers in rows of their own"). Two API processes showing
    the same answer at the same moment may both add a row; a target's answer is its earliest (`answered_at`)."""
    first: dict[tuple[str, str], datetime] = {}
    for subject, person, at in answers:
        if subject and person:
            first[(subject, person)] = min(first.get((subject, person), at), at)
    if not first:
        return []
    table = CalloutTarget.__table__
    mark: dict[int, tuple[datetime, str, str]] = {}  # an open target → (received at, subject, person) of its answer
    found: set[tuple[str, str]] = set()
    for row_id, subject, person, acked in by_pairs(s, select(table.c.id, table.c.callout_id, table.c.person_id,
                                                            table.c.acknowledged_at),
                                                   table.c.callout_id, table.c.person_id, first):
        found.add((subject, person))
        if acked is None:
            mark[row_id] = (first[(subject, person)], subject, person)
    keys: dict[tuple[str, str], tuple[datetime, str]] = {}
    for (subject, person, _), metas in _meta_of(s, set(first) - found).items():
        for m in metas:
            if m.get("target_key") and m.get("purpose", "notify") in ("notify", "escalate"):
                key, at = (subject, m["target_key"]), first[(subject, person)]
                keys[key] = min(keys.get(key, (at, person)), (at, person))
    if keys:
        for row_id, subject, key, acked in by_pairs(s, select(table.c.id, table.c.callout_id, table.c.target_key,
                                                             table.c.acknowledged_at),
                                                    table.c.callout_id, table.c.target_key, keys):
            if acked is None:
                at, person = keys[(subject, key)]
                mark[row_id] = min(mark.get(row_id, (at, subject, person)), (at, subject, person))
    for shown in answered_at(s, list(mark)):
        del mark[shown]
    if not mark:
        return []
    stamp = now_utc()  # just before the commit: a live board re-reads only 2 s before its newest
    s.execute(insert(CalloutAnswer.__table__), [
        {"callout_id": subject, "target_id": i, "person_id": person, "received_at": at, "stored_at": stamp}
        for i, (at, subject, person) in sorted(mark.items())])
    return [(subject, i) for i, (_, subject, _) in sorted(mark.items())]


def answered_at(s: Session, target_ids: list[int]) -> dict[int, datetime]:
    """When each of these targets' first answer was received, for those the API has shown answered."""
    out: dict[int, datetime] = {}
    column = CalloutAnswer.__table__.c.target_id
    for part in range(0, len(target_ids), _IDS_PER_STATEMENT):
        out.update(_first_answers(s, column.in_(target_ids[part:part + _IDS_PER_STATEMENT])))
    return out


def answered_in(s: Session, callout_id: str) -> dict[int, datetime]:
    """`answered_at` for every target of a call-out the API has shown answered (an export of all its targets)."""
    return _first_answers(s, CalloutAnswer.__table__.c.callout_id == callout_id)


def answered_keys(s: Session, callout_id: str, shard: int, target_keys: list[str]) -> list[str]:
    """Which of a shard's targets (`target_keys`, by key) the API has shown answered: answers stored that the shard's
    workflow may not have heard yet (workflows/escalation/host.py `hold_for_stored`, before their wait runs out).
    Read as the shard's targets (index ix_callout_target_shard) that have an answer: 3 ms for a shard of 1,493 with
    784 answered on PostgreSQL, where asking for the keys themselves took 26-40 ms (a plan per list of keys)."""
    target, answer = CalloutTarget.__table__, CalloutAnswer.__table__
    wanted = set(target_keys)
    rows = s.execute(select(target.c.target_key).where(
        target.c.callout_id == callout_id, target.c.shard == shard,
        select(answer.c.id).where(answer.c.target_id == target.c.id).exists())).scalars()
    return sorted(key for key in rows if key in wanted)


def _first_answers(s: Session, where: Any) -> dict[int, datetime]:
    table = CalloutAnswer.__table__
    return dict(s.execute(select(table.c.target_id, func.min(table.c.received_at)).where(where)
                          .group_by(table.c.target_id)).all())


_IDS_PER_STATEMENT = 5_000
"""The most target ids `answered_at` asks for in one statement (each is a parameter; SQLite takes 32,766)."""


def _meta_of(s: Session, pairs: set[tuple[str, str]]) -> dict[tuple[str, str, str], list[dict]]:
    found: dict[tuple[str, str, str], list[dict]] = {}
    if pairs:
        for subject, person, wid, m in by_pairs(s, select(OutboxMessage.subject, OutboxMessage.person_id,
                                                          OutboxMessage.workflow_id, OutboxMessage.meta),
                                                OutboxMessage.subject, OutboxMessage.person_id, pairs):
            found.setdefault((subject, person, wid), []).append(m)
    return found


def _targets(s: Session, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], CalloutTarget]:
    if not pairs:
        return {}
    return {(t.callout_id, t.target_key): t for (t,) in by_pairs(s, select(CalloutTarget), CalloutTarget.callout_id,
                                                                 CalloutTarget.target_key, pairs)}


def _late_one(s: Session, a: LateAnswer, workflow_ids: set[str], running: set[str] | frozenset,
              callout: Callout | None, keys: dict, targets: dict, events: list[NewEvent],
              touched: list[CalloutTarget | CalloutRelay]) -> list[dict[str, Any]]:
    """`a`'s events added to `events`, the rows it changes to `touched` (their updated_at is the caller's)."""
    out: list[dict[str, Any]] = []
    for wid in sorted(workflow_ids):
        if callout is not None and a.households is not None:
            out += _relay_late(s, a, wid, callout, events, touched)
        if callout is not None:
            rows = sorted((targets[(a.subject, k)] for k in keys[(a.subject, wid, a.person_id)]
                           if (a.subject, k) in targets), key=lambda t: t.target_key)
            for row in rows:
                if row.ack_by == a.person_id:  # this person answered already: a repeat is no news
                    continue
                since = row.updated_at if row.state in SETTLED else callout.ended_at
                state = row.state if row.state in SETTLED else (
                    "canceled" if callout.status == "canceled" else "ended")
                payload = {"target": row.target_key, "person_id": a.person_id, "state": row.state, "late": True,
                           "state_at_answer": state, "callout_status": callout.status, "ref": a.ref, "note": a.note,
                           "by_deputy": a.person_id != row.person_id, "acknowledged_by": row.ack_by,
                           "late_from": since.isoformat() if since else None, "late_by_s": _late_s(a.at, since),
                           "recorded_by": "store", "drill": callout.drill}
                events.append(NewEvent(subject=a.subject, kind=kinds.Callout.ACK_LATE,
                                       step_id=late_step(row.target_key, a.person_id, a.ref), workflow_id=wid,
                                       actor=a.actor, channel=a.channel, at=a.at, payload=payload))
                if row.acknowledged_at is None:
                    row.acknowledged_at, row.ack_channel, row.ack_by, row.ack_late = a.at, a.channel, a.person_id, True
                    touched.append(row)  # a live board polls the rows changed since its last poll (updated_at)
                    s.add(row)
                out.append(payload)
            continue
        since = s.exec(select(func.max(AuditEvent.at)).where(AuditEvent.subject == a.subject,
                                                              AuditEvent.workflow_id == wid)).first()
        payload = {"person_id": a.person_id, "late": True, "workflow_id": wid,
                   "state_at_answer": "not_waited_for" if wid in running else "ended",
                   "ref": a.ref, "note": a.note, "late_from": since.isoformat() if since else None,
                   "late_by_s": _late_s(a.at, since), "recorded_by": "store"}
        events.append(NewEvent(subject=a.subject, kind=f"{_procedure_kind(s, a.subject, wid)}.{kinds.Escalation.ACK_LATE}",
                               step_id=late_step("-", a.person_id, a.ref), workflow_id=wid, actor=a.actor,
                               channel=a.channel, at=a.at, payload=payload))
        out.append(payload)
    return out


def _relay_late(s: Session, a: LateAnswer, wid: str, callout: Callout, events: list[NewEvent],
                touched: list[CalloutTarget | CalloutRelay]) -> list[dict[str, Any]]:
    """A relay confirmation (到户) after the shard that asked it ended: `relay.late` with the households, and the
    relay's row (first confirmation), for the relays the person was asked or escalated to."""
    rows = [r for r in s.exec(select(CalloutRelay).where(CalloutRelay.callout_id == a.subject))
            if a.person_id == r.person_id or a.person_id in r.escalated_to]
    out = []
    for row in rows:
        payload = {"target": row.target_key, "person_id": a.person_id, "state": row.state, "households": a.households,
                   "by": a.actor, "for": row.person_id, "on_behalf": a.actor != row.person_id, "late": True,
                   "reported_by": a.reported_by, "state_at_answer": "ended", "callout_status": callout.status,
                   "due_at": row.due_at.isoformat() if row.due_at else None,
                   "late_by_s": _late_s(a.at, row.due_at), "ref": a.ref, "note": a.note, "recorded_by": "store"}
        events.append(NewEvent(subject=a.subject, kind=kinds.Relay.LATE,
                               step_id=f"relay/{late_step(row.target_key, a.person_id, a.ref)}", workflow_id=wid,
                               actor=a.actor, channel=a.channel, at=a.at, payload=payload))
        row.answers += 1
        touched.append(row)
        if row.confirmed_at is None:
            row.confirmed_at, row.households, row.confirmed_by, row.late = a.at, a.households, a.actor, True
            row.on_behalf, row.state = a.actor != row.person_id, "confirmed"
        s.add(row)
        out.append(payload)
    return out


def record_late_spot_answer(s: Session, check_id: str, req: AnswerIn, at: datetime) -> tuple[str, str] | dict[str, Any]:
    """The six answers of a sampled person given after their spot check closed (the form opened in time, sent
    later; a duty officer reaching them by phone the next day): `spotcheck.answered.late` in the check's chain
    and the person's row, with the checks the workflow makes (workflows/spotcheck/).
    Returns the refusal (kind, why), or the event's payload."""
    check = s.get(SpotCheck, check_id)
    row = s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == check_id,
                                               SpotCheckAnswer.person_id == req.person_id).with_for_update()).first()
    ids = [q["id"] for q in check.questions] if check else []
    p = PersonView(person_id=row.person_id, name=row.name, label=row.label, answers=row.answers, channel=row.channel,
                   answered_at=row.answered_at) if row else None
    why = answer_refusal(ids, p, req)
    if why is not None:
        return why
    assert row is not None and check is not None
    row.answers = p.answers = {i: req.answers[i] for i in ids}
    row.state, row.channel, row.answered_at, row.answered_by, row.updated_at = (
        "answered_late", req.channel, at, req.actor, at)
    s.add(row)
    payload = {**late_answer_payload(p, req, check.status), "late_from": check.closed_at.isoformat()
               if check.closed_at else None, "late_by_s": _late_s(at, check.closed_at), "recorded_by": "store"}
    append(s, [NewEvent(subject=check_id, kind=kinds.SpotCheck.ANSWERED_LATE, step_id=f"answer/{req.person_id}/late",
                        workflow_id=check_id, actor=req.actor, channel=req.channel, at=at, payload=payload)])
    return payload
