"""The board of one call-out: its targets per tier and state, the rows the live board sends when they
change, a target's messages; run with a database session (the console runs them on a thread)."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import case
from sqlmodel import Session, col, func, select

from api.services.directory import mobiles
from api.services.callouts import relay_view
from api.services.directory import names as _names
from definitions.loader import Library
from store.broadcasts import of_subject
from store.answers import answered_at
from store.callouts import Callout, CalloutAnswer, CalloutTarget
from store.directory import OrgUnit
from store.messages import OutboxMessage
from store.replay import STATES, TERMINAL, deadline_from_attempts, policy_waits
from store.replay.callout import send_round
from store.replay.common import ANSWERED, FAILED
from store.warnings import Warning
from workflows.kit.events import Escalation, step

RECALLED = step("callout", Escalation.RECALL)  # callout.recall

BOARD_LIMIT = 500
RANK = {"unreachable": 0, "escalated": 0, "pending": 1, "notified": 1, "acknowledged": 2, "canceled": 3}
"""The board's order: those nobody could reach or who were escalated first, then those being called, then the
acknowledged, then the canceled (a row whose every attempt failed ranks 0 too: `row`; the browser moves a row
to 0 when its wait runs out)."""


def plan_of(lib: Library, callout: Callout) -> Any | None:
    """The stored plan if it has the version the call-out runs with (its waits give the deadlines)."""
    loaded = lib.of("callout").get(callout.plan_id)
    return loaded.model if loaded is not None and loaded.version == callout.plan_version else None


def tries(t: CalloutTarget) -> list[list[str]]:
    """The latest round of calls (sends that ask for an answer, with a recall since) as [channel, status] pairs,
    each channel's latest: a voicemail or an unanswered call shows even when an SMS of the round went last."""
    asks = [a for a in t.attempts if a.get("purpose") in ANSWERED]
    if not asks:
        return []
    rnd = send_round(asks[-1].get("key") or "", t.target_key)
    latest: dict[str, str] = {}
    for a in asks:
        if send_round(a.get("key") or "", t.target_key) == rnd:
            latest[a.get("channel") or ""] = a.get("status") or ""
    return [[c, st] for c, st in latest.items()]


def flag(t: CalloutTarget, calls: list[list[str]]) -> str:
    """Why a row needs the duty office: "unreachable" (every step done, no answer), "escalated" (the person did
    not answer: a deputy or superior is called), "failed" (every call of the current round failed), or ""."""
    if t.state in ("unreachable", "escalated"):
        return t.state
    if t.state not in TERMINAL and calls and all(st in FAILED for _, st in calls):
        return "failed"
    return ""


def row(t: CalloutTarget, names: dict[str, str], waits: dict | None, answered: datetime | None = None
        ) -> dict[str, Any]:
    """One target as the board shows it (and as the live updates send it); `answered`: when the API received the
    answer it has shown ahead of the workflow's record (store/answers.py `answered_at`). `t`: the model, or a row of
    its `_ROW_COLUMNS` (a live board's reads)."""
    asks = sum(1 for a in t.attempts if a.get("purpose") in ANSWERED)
    due = (deadline_from_attempts(waits, t.tier, t.target_key, t.attempts)
           if waits is not None and t.state not in TERMINAL else None)
    calls = tries(t)
    why = flag(t, calls)
    return {"id": t.id, "key": t.target_key, "tier": t.tier, "label": t.name, "person_id": t.person_id,
            "state": t.state, "attempts": asks, "sends": len(t.attempts), "tries": calls, "flag": why,
            "rank": 0 if why else RANK.get(t.state, 1),
            "ack_at": t.acknowledged_at.isoformat() if t.acknowledged_at else None, "ack_channel": t.ack_channel,
            "ack_late": t.ack_late,
            "answered_at": answered.isoformat() if answered else None,  # stored by the API, perhaps not yet recorded
            "ack_by": names.get(t.ack_by or "", "") if t.ack_by and t.ack_by != t.person_id else "",
            "escalated": [names.get(p, p) for p in t.escalated_to], "due": due.isoformat() if due else None}


def rows_view(s: Session, targets: list[CalloutTarget], waits: dict | None) -> list[dict[str, Any]]:
    ids = {p for t in targets for p in (t.ack_by or "", *t.escalated_to)}
    names = _names(s, ids)
    answered = answered_at(s, [t.id for t in targets if t.id is not None])
    return [row(t, names, waits, answered.get(t.id)) for t in targets]


def tier_counts(s: Session, callout_id: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for tier, state, n in s.exec(select(CalloutTarget.tier, CalloutTarget.state, func.count())
                                 .where(CalloutTarget.callout_id == callout_id)
                                 .group_by(CalloutTarget.tier, CalloutTarget.state)):
        out.setdefault(tier, dict.fromkeys(STATES, 0))[state] = n
    return out


def progress(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per tier and "" (all): acknowledged, notified (called at least once) and total: the progress bars."""
    out: dict[str, dict[str, int]] = {}
    for tier, by in [("", {st: sum(b.get(st, 0) for b in counts.values()) for st in STATES}), *counts.items()]:
        total = sum(by.values())
        out[tier] = {"acknowledged": by.get("acknowledged", 0), "notified": total - by.get("pending", 0),
                     "total": total}
    return out


def board(s: Session, lib: Library, callout_id: str, tier: str | None, state: str | None,
          offset: int = 0, limit: int = BOARD_LIMIT) -> dict[str, Any] | None:
    c = s.get(Callout, callout_id)
    if c is None:
        return None
    plan = plan_of(lib, c)
    loaded = lib.of("callout").get(c.plan_id)
    tier_names = {t.id: (t.name_zh, t.name_en) for t in loaded.model.tiers} if loaded else {}
    stmt = select(CalloutTarget).where(CalloutTarget.callout_id == callout_id)
    if tier:
        stmt = stmt.where(CalloutTarget.tier == tier)
    if state:
        stmt = stmt.where(CalloutTarget.state == state)
    rank = case(*((CalloutTarget.state == st, n) for st, n in RANK.items()), else_=1)
    shown = list(s.exec(stmt.order_by(rank, CalloutTarget.shard, CalloutTarget.id).offset(offset).limit(limit)))
    counts = tier_counts(s, callout_id)
    relay = relay_view(s, callout_id)  # 到户到人 per village, None without a relay
    matching = sum(n for tr, by_state in counts.items() if not tier or tr == tier
                   for st, n in by_state.items() if not state or st == state)
    return {"c": c, "plan": plan, "tier_names": tier_names, "counts": counts,
            "totals": {st: sum(by.get(st, 0) for by in counts.values()) for st in STATES},
            "total": sum(sum(by.values()) for by in counts.values()), "matching": matching,
            "progress": progress(counts),
            # (stable: a row whose calls all failed joins the first rows of the page, in the database's order)
            "rows": sorted(rows_view(s, shown, policy_waits(plan) if plan else None), key=lambda r: r["rank"]),
            "tier_f": tier, "state": state,
            "relay": relay, "relay_names": _names(s, {
                p for v in (relay or {}).get("villages", []) for p in (v["person_id"], v["confirmed_by"] or "",
                                                                        *v["escalated_to"]) if p}),
            "offset": offset, "limit": limit, "broadcasts": broadcasts_view(s, callout_id)}


def broadcasts_view(s: Session, callout_id: str) -> list[dict[str, Any]]:
    """应急广播 of the call-out, oldest first: each request with its towns' states (store/broadcasts.py)."""
    found = of_subject(s, callout_id)
    towns = list({a.town_id for b in found for a in b["areas"]})
    names = {u.id: u.name for u in s.exec(select(OrgUnit).where(col(OrgUnit.id).in_(towns)))} if towns else {}
    return [{"purpose": b["b"].purpose, "level": b["b"].level, "status": b["b"].status, "text": b["b"].text,
             "requested_at": b["b"].requested_at, "error": b["b"].error, "repeat": b["b"].repeat,
             "areas": [{"town_id": a.town_id, "name": names.get(a.town_id, a.town_id), "area": a.area,
                        "status": a.status, "updated_at": a.updated_at} for a in b["areas"]]} for b in found]


def starting(s: Session, callout_id: str) -> bool:
    """A warning names this call-out, but its workflow has not opened it yet (a moment after the start)."""
    return s.exec(select(Warning.id).where(Warning.callout_id == callout_id)).first() is not None


def changed_since(callout_id: str, since: datetime) -> tuple:
    """A live board's poll: the call-out's targets updated at or after `since` (index ix_callout_target_changes)."""
    return CalloutTarget.callout_id == callout_id, col(CalloutTarget.updated_at) >= since


def answered_since(callout_id: str, since: datetime) -> tuple:
    """A live board's poll: the call-out's answers the API stored at or after `since`, ahead of their targets' record
    (index ix_callout_answer_changes)."""
    return CalloutAnswer.callout_id == callout_id, col(CalloutAnswer.stored_at) >= since


Stamps = tuple[datetime | None, datetime | None]
"""A target's row as a live board last read it: its `updated_at`, and its newest answer's `stored_at` (None: none
read)."""


def changed_rows(s: Session, lib: Library, callout_id: str, since: datetime,
                 sent: dict[int, Stamps] | None = None, wanted: frozenset | None = None) -> tuple[list[dict], datetime]:
    """Targets updated or answered (store/answers.py `mark_answered`) at or after `since` (the caller keeps what it
    sent and drops repeats). With `sent` (a live board's shared poll: api/console/streams.py), the stamps are read
    first and only the targets changed since they were last sent are read whole and made rows: a poll reads 2 s again
    (`OVERLAP` in api/console/board.py), and under a burst of 1,000 answers a second making the same rows again
    was a sixth of the API's time (docs/performance.md, "What the board cost the API"). `sent` is updated, and
    keeps only what the window still holds. `wanted`: the only rows to make (those the boards watching show: a full
    page of 500 of a 100,000-person call-out, whose browser drops every other row; docs/performance.md, "A board sent
    what it shows"); None: every row."""
    target = CalloutTarget.__table__
    updated = dict(s.execute(select(target.c.id, target.c.updated_at).where(*changed_since(callout_id, since))).all())
    stamps: dict[int, Stamps] = {i: (at, None) for i, at in updated.items()}
    for i, at in s.exec(select(CalloutAnswer.target_id, CalloutAnswer.stored_at).where(
            *answered_since(callout_id, since))):
        row_at, answer_at = stamps.get(i, (None, None))
        stamps[i] = (row_at, _later(answer_at, at))
    newest = max([since, *(at for pair in stamps.values() for at in pair if at is not None)])
    made = sorted(i for i, now in stamps.items()
                  if (wanted is None or i in wanted) and (sent is None or _changed(now, sent.get(i))))
    rows = _rows(s, lib, callout_id, _targets(s, callout_id, made), sent, {i: stamps[i][1] for i in made})
    if sent is not None:
        for i in [i for i, pair in list(sent.items()) if all(at is None or at < since for at in pair)]:
            sent.pop(i, None)  # out of the window: a change to come has a newer stamp
    return rows, newest


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _changed(now: Stamps, before: Stamps | None) -> bool:
    if before is None:
        return True
    return ((now[0] is not None and now[0] != before[0])
            or (now[1] is not None and (before[1] is None or now[1] > before[1])))


def rows_of(s: Session, lib: Library, callout_id: str, target_ids: list[int],
            sent: dict[int, Stamps] | None = None) -> list[dict]:
    """These targets of the call-out as a live board sends them: those an answer's writer has just shown answered
    (api/services/answers/shown.py), sent at once, beside the poll (and noted in `sent`, which the poll then
    skips)."""
    answers: dict[int, datetime] = {}
    for part in range(0, len(target_ids), BOARD_LIMIT):
        answers.update(s.exec(select(CalloutAnswer.target_id, func.max(CalloutAnswer.stored_at)).where(
            col(CalloutAnswer.target_id).in_(target_ids[part:part + BOARD_LIMIT])).group_by(CalloutAnswer.target_id)
        ).all())
    return _rows(s, lib, callout_id, _targets(s, callout_id, target_ids), sent, answers)


_ROW_COLUMNS = ("id", "target_key", "tier", "name", "person_id", "state", "attempts", "acknowledged_at", "ack_channel",
                "ack_late", "ack_by", "escalated_to", "updated_at")
"""What `row` reads of a target (not its `spec`, the contacts of everyone it may call)."""


def _targets(s: Session, callout_id: str, target_ids: list[int]) -> list[Any]:
    """These targets of the call-out, the columns a board's row is made of, as plain rows rather than models: a third
    less of the time a live board spends on a row (`row` reads them alike)."""
    table = CalloutTarget.__table__
    columns = [table.c[name] for name in _ROW_COLUMNS]
    found: list[Any] = []
    for part in range(0, len(target_ids), BOARD_LIMIT):
        found += s.execute(select(*columns).where(table.c.callout_id == callout_id,
                                                  table.c.id.in_(target_ids[part:part + BOARD_LIMIT]))).all()
    return found


def _rows(s: Session, lib: Library, callout_id: str, targets: list[Any], sent: dict[int, Stamps] | None,
          answers: dict[int, datetime | None]) -> list[dict]:
    """The targets made rows, each with the stamps it was read at as `v` ([its row's `updated_at`, its newest
    answer's `stored_at` or 0], epoch seconds: a stream sends no row older than one it sent, `fresh_rows`) and noted
    in `sent`."""
    stamps: dict[int, Stamps] = {}
    for t in targets:
        before = sent.get(t.id, (None, None))[1] if sent is not None else None
        stamps[t.id] = (t.updated_at, _later(before, answers.get(t.id)))
    if sent is not None:
        sent.update(stamps)
    c = s.get(Callout, callout_id)
    plan = plan_of(lib, c) if c else None
    rows = rows_view(s, targets, policy_waits(plan) if plan else None)
    for r in rows:
        row_at, answer_at = stamps[r["id"]]
        r["v"] = [row_at.timestamp(), answer_at.timestamp() if answer_at else 0]
    return rows


def fresh_rows(rows: list[dict], sent: dict[int, tuple[list, str]]) -> list[str]:
    """What a live board's stream sends of these rows: each as JSON, unless it sent the same or a newer one of that
    target before (`sent`: per target, the version `v` and the JSON sent last, updated here). The poll's rows and
    the rows an answer's writer told of are read apart and may arrive out of order; a row without `v` is sent unless
    it repeats the last."""
    out = []
    for r in rows:
        version = r.get("v")
        last = sent.get(r["id"])
        if last is not None and version is not None and last[0] is not None and version < last[0]:
            continue  # read before the one sent
        text = json.dumps(r, sort_keys=True, default=str, ensure_ascii=False)
        if last is not None and last[1] == text:
            continue
        sent[r["id"]] = (version, text)
        out.append(text)
    return out


def known(s: Session, callout_id: str) -> bool:
    """A call-out that exists, or is starting."""
    return s.get(Callout, callout_id) is not None or starting(s, callout_id)


def tick(s: Session, lib: Library, callout_id: str, since: datetime, sent: dict | None = None,
         wanted: frozenset | None = None) -> tuple[list[dict], datetime, dict, str | None]:
    """One poll of a live board: (the rows changed since `since`, of those `wanted`, and not `sent` as they are, the
    newest change, the counts per tier, the status)."""
    rows, newest = changed_rows(s, lib, callout_id, since, sent, wanted)
    c = s.get(Callout, callout_id)
    return rows, newest, tier_counts(s, callout_id), c.status if c else None


def target_messages(s: Session, callout_id: str, target_id: int) -> dict[str, Any] | None:
    t = s.get(CalloutTarget, target_id)
    if t is None or t.callout_id != callout_id:
        return None
    people = [t.person_id, *t.escalated_to]
    msgs = [m for m in s.exec(select(OutboxMessage).where(OutboxMessage.subject == callout_id,
                                                          col(OutboxMessage.person_id).in_(people))
                              .order_by(OutboxMessage.id))
            if (m.meta or {}).get("target_key") in (None, t.target_key)]
    names = _names(s, set(people))
    return {"target": t, "messages": msgs, "names": names, "phones": mobiles(s, set(people)),
            "last_recall": last_recall(s, callout_id, t.target_key)}


def last_recall(s: Session, callout_id: str, target_key: str) -> dict[str, Any] | None:
    """The latest 重新呼叫 of a target as the trail recorded it (when, by whom, on which channels, how many sends),
    so that the pane says it after any refresh, not only in the answer to the request."""
    from store.audit import AuditEvent

    rows = s.exec(select(AuditEvent).where(AuditEvent.subject == callout_id, AuditEvent.kind == RECALLED)
                  .order_by(col(AuditEvent.seq).desc()))
    for ev in rows:
        if (ev.payload or {}).get("target") == target_key or f"{target_key}/recall/" in ev.step_id:
            return {"at": ev.at, "actor": ev.actor, "channels": ev.payload.get("channels") or [],
                    "sends": len(ev.payload.get("sends") or [])}
    return None
