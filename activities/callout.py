"""Call-out activities: open, resolve targets into shards, send and record, summarise."""
from __future__ import annotations

import asyncio
import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, insert
from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import contact, english_readers, sms_each
from activities.common import now as _now
from activities.delivery import Delivery, deliver
from activities.escalation import flush_result
from activities.precedence import in_background, urgently
from config import get_settings
from store.answers import answered_keys
from store.audit import ANSWERS, NewEvent, append, seal_shards
from store.bulk import one_of, update_rows
from store.callouts import Callout, CalloutRelay, CalloutTarget, relay_counts
from store.db import session_scope
from store.group import GroupCommit
from store.directory import Person, mask_mobile
from store.targets import resolve_targets
from store.links import make_ack_token, reply_code, shorten
from store.roster import on_duty
from workflows.callout import (
    CalloutEnd,
    CalloutInput,
    CalloutSummary,
    FlushBody,
    FlushRequest,
    FlushResult,
    ResolveRequest,
    ResolveResult,
    ShardInfo,
    WarningInfo,
)
from workflows.callout_models import shard_size_for
from workflows.drill import DRILL_MARK, unmarked
from workflows.kit import names
from workflows.escalation import TARGET, Contact, Record, Send, Target, state_after

PURPOSE_PREFIX = {"escalate": "【升级】{name}未应答,请代落实:", "inform": "", "cancel": "", "update": "", "summary": ""}
INFORM = "【告知】{about}经多次叫应未应答({event}{level}预警),请跟进落实。"
UPDATE = "【调整】{event}预警已调整为{level},本次叫应结束。"


def _ev(subject: str, kind: str, step: str, workflow_id: str | None = None, **kw: Any) -> NewEvent:
    return NewEvent(subject=subject, kind=kind, step_id=step, workflow_id=workflow_id, **kw)


# ------------------------------------------------------------------ open


@activity.defn(name=names.Callout.OPEN)
async def open_callout(inp: CalloutInput) -> None:
    info = activity.info()

    def write() -> None:
        with session_scope() as s:
            if s.get(Callout, inp.callout_id) is None:
                s.add(Callout(id=inp.callout_id, warning_id=inp.warning.warning_id, plan_id=inp.plan.id,
                              plan_version=inp.plan_version, level=inp.warning.level.value, category=inp.plan.category,
                              title=inp.warning.headline or inp.warning.event, drill=inp.drill))
            append(s, [_ev(inp.callout_id, "callout.started", "started", info.workflow_id, run_id=info.workflow_run_id,
                           payload={"warning_id": inp.warning.warning_id, "identifier": inp.warning.identifier,
                                    "level": inp.warning.level.value, "towns": inp.warning.town_ids, "drill": inp.drill}),
                       _ev(inp.callout_id, "callout.plan_chosen", "plan", info.workflow_id, run_id=info.workflow_run_id,
                           payload={"plan": inp.plan.id, "version": inp.plan_version, "category": inp.plan.category,
                                    "tiers": [t.id for t in inp.plan.tiers_for(inp.warning.level)]})])

    await asyncio.to_thread(write)


# ------------------------------------------------------------------ resolve


@activity.defn(name=names.Callout.RESOLVE)
async def resolve(req: ResolveRequest) -> ResolveResult:
    info = activity.info()

    def work() -> ResolveResult:
        with session_scope() as s:
            found, gaps = resolve_targets(s, req.plan, req.warning.town_ids, req.tiers, _now())
            targets = [TARGET.validate_python(t) for t in found]
            have = set(s.exec(select(CalloutTarget.target_key).where(CalloutTarget.callout_id == req.callout_id)))
            fresh = sorted((t for t in targets if t.key not in have), key=lambda t: (t.priority, t.key))
            shards: list[ShardInfo] = []
            rows = []
            at = _now()
            size = shard_size_for(len(fresh), req.shard_size)
            for n, start in enumerate(range(0, len(fresh), size)):
                chunk = fresh[start:start + size]
                index = req.first_shard + n
                shards.append(ShardInfo(index=index, count=len(chunk)))
                rows += [dict(callout_id=req.callout_id, target_key=t.key, shard=index, tier=t.tier,
                              position_code=t.position, org_unit_id=t.org_unit, person_id=t.person.person_id,
                              name=t.label, state="pending", attempts=[], acknowledged_at=None, ack_channel=None,
                              ack_by=None, ack_late=False, escalated_to=[], spec=TARGET.dump_python(t, mode="json"),
                              updated_at=at) for t in chunk]
            if rows:  # one multi-row INSERT (an ORM object per target was a tenth of the worker's CPU at a send)
                s.execute(insert(CalloutTarget.__table__), rows)
            per_tier: dict[str, int] = defaultdict(int)
            for t in fresh:
                per_tier[t.tier] += 1
            append(s, [_ev(req.callout_id, "callout.targets_resolved", f"resolve/{req.first_shard}", info.workflow_id,
                           run_id=info.workflow_run_id,
                           payload={"tiers": req.tiers, "towns": req.warning.town_ids, "total": len(fresh),
                                    "per_tier": dict(per_tier), "shards": [sh.model_dump() for sh in shards],
                                    "gaps": gaps})])
            return ResolveResult(shards=shards, total=len(fresh))

    return await asyncio.to_thread(work)


@activity.defn(name=names.Callout.LOAD_SHARD)
async def load_shard(callout_id: str, shard: int) -> list[Target]:
    def read() -> list[Target]:
        with session_scope(write=False) as s:
            return [TARGET.validate_json(spec) for spec in s.execute(shard_specs(callout_id, shard)).scalars()]

    return await asyncio.to_thread(read)


@activity.defn(name=names.Callout.STORED)
async def stored_answers(callout_id: str, shard: int, target_keys: list[str]) -> list[str]:
    """The targets among `target_keys` that the API has stored an answer for (on the board, 已收到回复), read before
    their wait runs out: the shard waits for those answers' signals rather than escalating (`hold_for_stored`)."""
    def read() -> list[str]:
        with session_scope(write=False) as s:
            return answered_keys(s, callout_id, shard, target_keys)

    return await asyncio.to_thread(read)


def shard_specs(callout_id: str, shard: int):
    """A shard's targets' specs in order, read by the index (callout_id, shard, id): the shard's own rows only."""
    return select(spec_text()).where(CalloutTarget.callout_id == callout_id,
                                     CalloutTarget.shard == shard).order_by(CalloutTarget.id)


def spec_text():
    """A target's stored spec as its JSON text: pydantic reads it straight into a `Target` (json.loads, then an ORM
    row, then validating the dict took most of a shard's load and of every flush's expansion)."""
    return cast(CalloutTarget.spec, Text)


# ------------------------------------------------------------------ send and record


def render(send: Send, req: FlushRequest, link: str | None, code: str | None,
           english: bool = False) -> tuple[str, str | None]:
    """The SMS/IM body and the voice text of one send: Chinese only, or the plan's English wording
    (`message_en`) of a call-out to a person who reads English (an escalation's wording and voice are Chinese)."""
    w, plan = req.warning, req.plan
    event = w.event or plan.name_zh
    fill = {"level": w.level.zh, "event": event, "headline": w.headline or f"{event}{w.level.zh}预警",
            "area": "、".join(w.area_descs) or "全区", "code": code or "", "link": link or ""}
    drill = DRILL_MARK if req.drill else ""
    if send.purpose in ("notify", "escalate"):
        prefix = PURPOSE_PREFIX.get(send.purpose, "").format(name=send.about)
        if english and plan.message_en and send.purpose == "notify":
            body = plan.message_en.format(**{**fill, "level": w.level.value, "headline": w.headline or w.event})
        else:
            body = plan.message_zh.format(**fill)
            if prefix:  # one bracketed heading is enough
                body = body.removeprefix("【叫应】")
        voice = prefix + (plan.voice_zh or plan.message_zh).format(**fill)
        return drill + prefix + body, drill + voice
    if send.purpose == "inform":
        return drill + INFORM.format(about=send.about, event=event, level=fill["level"]), None
    if send.purpose == "cancel":
        return drill + plan.cancel_message_zh.format(**fill), None
    if send.purpose == "update":
        return drill + UPDATE.format(**fill), None
    return drill + send.about, None


def template_values(send: Send, req: FlushRequest) -> dict[str, str]:
    """The message's values for a provider's approved template (definitions/gateways/: `callout.<purpose>`); the
    text, code and link are the gateway's to add (the link is a secret: it is kept out of the outbox's meta)."""
    w = req.warning
    event = w.event or req.plan.name_zh
    return {"event": event, "level": w.level.zh, "headline": w.headline or f"{event}{w.level.zh}预警",
            "area": "、".join(w.area_descs) or "全区", "name": send.about or ""}


def _attempt(send: Send, outcome_status: str, at: datetime) -> dict:
    return {"key": send.key, "channel": send.channel, "person_id": send.person_id, "purpose": send.purpose,
            "at": at.isoformat(), "status": outcome_status}


def unpack(req: FlushRequest) -> FlushRequest:
    """The request with its packed body opened and its sends given by reference completed."""
    if req.packed:
        body = FlushBody.unpack(req.packed)
        req = req.model_copy(update={"refs": [*req.refs, *body.refs], "records": [*req.records, *body.records],
                                     "packed": ""})
    return req.model_copy(update={"sends": expand(req), "refs": []})


def expand(req: FlushRequest) -> list[Send]:
    """The batch's sends, those given by reference completed from the shard's stored targets.

    The stored specs are streamed: each is decoded, its sends made, and let go before the next (an escalation
    round at 100,000 runs dozens of flushes at once; each holding every target's decoded spec until its last send
    was made was 130 MB of the worker's peak)."""
    if not req.refs:
        return list(req.sends)
    refs_of: dict[str, list] = defaultdict(list)
    for ref in req.refs:
        refs_of[ref.target].append(ref)
    made: dict[str, Send] = {}
    with session_scope(write=False) as s:
        # the stored specs are `Target` dumps (validated when resolved): read as plain JSON, with Target's and
        # Contact's defaults, and not validated again for each send of every flush
        rows = s.execute(select(CalloutTarget.target_key, spec_text()).where(
            CalloutTarget.callout_id == req.callout_id, one_of(s, col(CalloutTarget.target_key), refs_of))
            .execution_options(yield_per=100))
        for key, spec in rows:
            t = json.loads(spec)
            contacts = [c for c in (t["person"], t.get("deputy"), t.get("superior"), *(t.get("others") or {}).values())
                        if c]
            for ref in refs_of[key]:
                c = next(c for c in contacts if c["person_id"] == ref.person)
                to = c.get("im_id") if ref.channel == "im" else c.get("mobile")  # Contact.address
                made[ref.key] = Send(key=ref.key, target_key=ref.target, person_id=ref.person, name=c.get("name", ""),
                                     to=to or "", channel=ref.channel, purpose=ref.purpose,  # type: ignore[arg-type]
                                     priority=t.get("priority", 100), about=t.get("label", ""))
    return [*req.sends, *(made[ref.key] for ref in req.refs)]


def _deliveries(req: FlushRequest) -> list[Delivery]:
    settings = get_settings()
    key = settings.signing_key()
    deliveries = []
    english = english_readers(s.person_id for s in req.sends)
    links = {send.key: f"{settings.base_url}/ack/{make_ack_token(key, req.callout_id, send.person_id)}"
             for send in req.sends if send.purpose in ("notify", "escalate") and send.channel in ("sms", "im")}
    with session_scope() as s:  # the texts carry short aliases; the outbox keeps the signed link (ack_url)
        short = shorten(s, key, settings.base_url, links)
    for send in req.sends:
        wants_answer = send.purpose in ("notify", "escalate")
        code = reply_code(req.callout_id, send.person_id) if wants_answer else None
        link = links.get(send.key)
        body, voice = render(send, req, short.get(send.key), code, send.person_id in english)
        deliveries.append(Delivery(key=send.key, channel=send.channel, to=send.to, body=body, voice_text=voice,
                                   person_id=send.person_id, subject=req.callout_id, workflow_id=req.workflow_id,
                                   ack_url=link, reply_code=code, priority=send.priority, drill=req.drill,
                                   meta={"target_key": send.target_key, "purpose": send.purpose,
                                         "kind": f"callout.{send.purpose}", "vars": template_values(send, req)}))
    return deliveries


@activity.defn(name=names.Callout.FLUSH)
async def flush(req: FlushRequest) -> FlushResult:
    if activity.in_activity() and activity.info().is_local:  # a shard's answers (host.py drive): with the others'
        now = _now()
        failed = await _answers.submit((req, now))
        if failed is not None:
            raise failed
        return FlushResult.model_validate(flush_result({}, now))
    # reading the targets and rendering 500 messages run on a thread: the event loop stays free to heartbeat
    # each step in the background: it gives way to the answers being written (`in_background`)
    req = await in_background(unpack, req)
    deliveries = await in_background(_deliveries, req) if req.sends else []
    outcomes = {o.key: o for o in await deliver(deliveries)}
    now = _now()
    await in_background(_write, req, outcomes, now)
    return FlushResult.model_validate(flush_result(outcomes, now))


def _write_answers(batches: list[tuple[FlushRequest, datetime]]) -> list[Exception | None]:
    """The answers (records only) of every shard that came at once, in one transaction (each shard's alone was one
    commit each, and at a 50,000-reply burst the 200 shards' commits queued one behind another for seconds). If it
    fails, each shard's is written alone, so that one shard's failure is its own (its local activity is retried).

    Each shard's answers go into its answers lane (store/audit.py `LANES`), not under the chain head that a batch of
    its sends holds while it writes; the lanes are locked in key order, the targets' rows in id order
    (`_update_targets`), so that two transactions lock what they share in one order."""
    batches = sorted(batches, key=lambda b: b[0].workflow_id)
    try:
        with session_scope() as s:
            _record_answers(s, [(unpack(req), now) for req, now in batches])
        return [None] * len(batches)
    except Exception:
        if len(batches) == 1:
            raise
    out: list[Exception | None] = []
    for req, now in batches:
        try:
            _write(unpack(req), {}, now, lane=ANSWERS)
            out.append(None)
        except Exception as exc:  # noqa: BLE001 - raised by that shard's activity
            out.append(exc)
    return out


_answers = GroupCommit(_write_answers, thread=urgently)


def _write(req: FlushRequest, outcomes: dict, now: datetime, lane: str | None = None) -> None:
    """A flush's audit events (one per send, one per record) and its targets' rows, in one transaction."""
    with session_scope() as s:
        _record(s, req, outcomes, now, lane)


def _record(s: Session, req: FlushRequest, outcomes: dict, now: datetime, lane: str | None = None) -> None:
    """A flush's audit events (one per send, one per record), in the shard's chain or its `lane`, and its targets'
    rows."""
    append(s, _events(req, outcomes, now, lane))
    _update_targets(s, req.callout_id, req.sends, outcomes, req.records, now)


def _record_answers(s: Session, batches: list[tuple[FlushRequest, datetime]]) -> None:
    """Many shards' answers (records only) as `_record` writes each, but set-wise: all their events in one `append`
    (their lanes locked in one statement), each call-out's targets read and written once. Statement by statement, a
    group of 71 shards took 14 s on a machine whose batches kept Python's lock busy (issue 25): each of its
    ~400 round trips waited its turn to take the lock back."""
    for part in _parts(batches, ANSWERS_PER_STATEMENT):
        append(s, [ev for req, now in part for ev in _events(req, {}, now, ANSWERS)])
        records: dict[str, list[Record]] = defaultdict(list)  # by call-out
        for req, _ in part:
            records[req.callout_id] += req.records
        latest = max(now for _, now in part)
        for callout_id, answered in records.items():
            _update_targets(s, callout_id, [], {}, answered, latest)


ANSWERS_PER_STATEMENT = 5_000
"""The most answers `_record_answers` reads and writes in one statement: each is a parameter of its `IN` lists, and
SQLite takes 32,766 parameters a statement, psycopg 65,535; a burst's group can hold more answers than that."""


def _parts(batches: list[tuple[FlushRequest, datetime]], most: int) -> Iterator[list[tuple[FlushRequest, datetime]]]:
    """`batches` in order, cut where their records would pass `most` (a shard's records never cut)."""
    part: list[tuple[FlushRequest, datetime]] = []
    count = 0
    for batch in batches:
        if part and count + len(batch[0].records) > most:
            yield part
            part, count = [], 0
        part.append(batch)
        count += len(batch[0].records)
    if part:
        yield part


def _events(req: FlushRequest, outcomes: dict, now: datetime, lane: str | None) -> list[NewEvent]:
    """A flush's audit events: one per send, one per record."""
    events = []
    for send in req.sends:
        o = outcomes[send.key]  # at: when the gateway took it (an answer to it comes after, never before)
        events.append(_ev(req.callout_id, "callout.sent", f"send/{send.key.removeprefix(req.workflow_id + '/')}",
                          req.workflow_id, run_id=req.run_id, actor="system", channel=send.channel,
                          at=o.accepted_at or now,
                          payload={"target": send.target_key, "person_id": send.person_id, "purpose": send.purpose,
                                   "to": mask_mobile(send.to) if send.channel != "im" else send.to,
                                   "status": o.status, "error": o.error, "outbox_id": o.outbox_id,
                                   "drill": req.drill}, lane=lane))
    for r in req.records:
        events.append(_ev(req.callout_id, f"callout.{r.kind}", r.step_id, req.workflow_id, run_id=req.run_id,
                          actor=r.actor, channel=r.channel, at=r.at,
                          payload={"target": r.target_key, "person_id": r.person_id, "state": r.state, **r.payload},
                          lane=lane))
    return events


_TARGET_STATE = ("attempts", "state", "escalated_to", "acknowledged_at", "ack_channel", "ack_by", "ack_late")
"""The columns of a call-out target that a flush changes."""


class _Row(dict):
    """A target's row as read for a flush, its columns as attributes (written back by `_write_targets`)."""

    __getattr__ = dict.__getitem__
    __setattr__ = dict.__setitem__


def _update_targets(s: Session, callout_id: str, sends: list[Send], outcomes: dict, records: list[Record],
                    now: datetime) -> None:
    keys = {x.target_key for x in sends} | {r.target_key for r in records if r.target_key}
    if not keys:
        return
    table = CalloutTarget.__table__
    # locked as read, in id order (PostgreSQL; SQLite's write transactions are one at a time): a batch and its
    # shard's answers write different chains (the answers lane), so no chain head orders them any more. Locked, a
    # row a batch read cannot be answered before the batch writes it back (the answer would be lost), and the two
    # lock the rows they share in one order (no deadlock)
    found = s.execute(select(table.c.id, table.c.target_key, *(table.c[c] for c in _TARGET_STATE)).where(
        table.c.callout_id == callout_id, one_of(s, table.c.target_key, keys))
        .order_by(table.c.id).with_for_update()).mappings()
    rows = {r["target_key"]: _Row(r) for r in found}
    before = {k: dict(r) for k, r in rows.items()}
    for send in sends:
        row = rows.get(send.target_key)
        if row is None:
            continue
        row.attempts = [*row.attempts, _attempt(send, outcomes[send.key].status, now)]
        if row.state == "pending" and send.purpose in ("notify", "escalate"):
            row.state = "notified"
        row.touched = True
    for r in records:
        row = rows.get(r.target_key or "")
        if row is None:
            continue
        if r.kind == "delivery":
            status, send_key = r.payload.get("status"), r.payload.get("send")
            row.attempts = [{**a, "status": status, "reported_at": r.at.isoformat()} if a.get("key") == send_key else a
                            for a in row.attempts]
        if r.kind == "escalated" and r.person_id not in row.escalated_to:
            row.escalated_to = [*row.escalated_to, r.person_id]
        if r.kind == "ack":
            row.acknowledged_at, row.ack_channel, row.ack_by = r.at, r.channel, r.person_id
            row.ack_late = bool(r.payload.get("late"))  # after the target had been given up (unreachable)
        if r.kind == "ack.late" and row.acknowledged_at is None:  # the first answer of a canceled target
            row.acknowledged_at, row.ack_channel, row.ack_by, row.ack_late = r.at, r.channel, r.person_id, True
        row.state = state_after(row.state, r.state)  # (an answer recorded ahead of this batch stays)
        row.touched = True
    _write_targets(s, rows, before)


def _write_targets(s: Session, rows: dict[str, _Row], before: dict[str, dict]) -> None:
    """Write what changed on each row touched (as the ORM would: only the columns whose value changed, and
    updated_at), as one statement per set of changed columns (store/bulk.py `update_rows`) rather than an ORM object
    per row.

    updated_at is the time of this write, not the flush's `now`: a live board polls the rows changed since its last
    poll, less an overlap (api/console/board.py) for rows stamped before their transaction committed; stamped when
    the flush began, the answers of a group that waited for the one before it committed up to 1.96 s after their
    stamp at 100,000 persons (bench/callout.py, "row stamped → seen"), at the edge of the board's 2 s."""
    table = CalloutTarget.__table__
    groups: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    stamp = _now()
    for key, row in rows.items():
        if not row.get("touched"):
            continue
        changed = tuple(c for c in _TARGET_STATE if row[c] != before[key][c]) + ("updated_at",)
        groups[changed].append({"id": row["id"], **{c: row[c] for c in changed[:-1]}, "updated_at": stamp})
    for params in groups.values():
        update_rows(s, table, table.c.id, params)  # SET: the params' columns


# ------------------------------------------------------------------ update, finish


@activity.defn(name=names.Callout.RECORD_UPDATE)
async def record_update(callout_id: str, old: WarningInfo, new: WarningInfo) -> None:
    info = activity.info()

    def write() -> None:
        with session_scope() as s:
            row = s.get(Callout, callout_id)
            if row is not None:
                row.level = new.level.value
            append(s, [_ev(callout_id, "callout.updated", f"update/{new.identifier}", info.workflow_id,
                           run_id=info.workflow_run_id,
                           payload={"identifier": new.identifier, "from_level": old.level.value, "to_level": new.level.value,
                                    "towns": new.town_ids, "headline": new.headline})])

    await asyncio.to_thread(write)


_SUMMARY_COLUMNS = ("tier", "escalated_to", "acknowledged_at", "ack_late", "person_id", "name", "state", "ack_by",
                    "ack_channel", "attempts")
"""What `summarize` reads of a target: not its stored spec (the contacts), the larger part of a row."""


def summary_rows(s: Session, callout_id: str) -> Iterable[Any]:
    """The call-out's targets as `summarize` reads them: plain rows, streamed (100,000 targets read as ORM objects
    at once were a quarter of a GB at the end of a city-wide call-out)."""
    table = CalloutTarget.__table__
    return s.execute(select(*(table.c[name] for name in _SUMMARY_COLUMNS)).where(table.c.callout_id == callout_id)
                     .execution_options(yield_per=1000))


def summarize(targets: Iterable[Any], started: datetime) -> dict[str, Any]:
    """Acknowledgement rate per tier, median and max time to acknowledge, who answered late (after they were
    given up, the call-out was canceled or it ended), who never answered. One pass: `targets` may be streamed
    (`summary_rows`) or `CalloutTarget`s."""
    per_tier: dict[str, dict[str, Any]] = {}
    delays: list[float] = []
    never, late = [], []
    escalations = total = acked = 0
    by_channel: dict[str, int] = defaultdict(int)
    for t in targets:
        tier = per_tier.setdefault(t.tier, {"total": 0, "acknowledged": 0, "answered_late": 0})
        tier["total"] += 1
        total += 1
        escalations += len(t.escalated_to)
        if t.acknowledged_at and t.ack_late:
            tier["answered_late"] += 1
            late.append({"person_id": t.person_id, "name": t.name, "tier": t.tier, "state": t.state,
                         "ack_by": t.ack_by, "ack_channel": t.ack_channel, "acknowledged_at": t.acknowledged_at.isoformat()})
        elif t.acknowledged_at:
            tier["acknowledged"] += 1
            acked += 1
            first = min((datetime.fromisoformat(a["at"]) for a in t.attempts if a.get("purpose") == "notify"), default=started)
            delays.append(max((t.acknowledged_at - first).total_seconds(), 0.0))
            by_channel[t.ack_channel or "?"] += 1
        else:
            never.append({"person_id": t.person_id, "name": t.name, "tier": t.tier, "state": t.state,
                          "escalated_to": t.escalated_to})
    for tier in per_tier.values():
        tier["rate"] = round(tier["acknowledged"] / tier["total"], 4) if tier["total"] else 0.0
    return {"total": total, "acknowledged": acked, "rate": round(acked / total, 4) if total else 0.0,
            "answered_late": len(late), "late": late,
            "per_tier": per_tier, "median_ack_s": statistics.median(delays) if delays else None,
            "max_ack_s": max(delays) if delays else None, "never_answered": never, "escalations": escalations,
            "ack_by_channel": dict(by_channel)}


def summary_text(c: Callout, summary: dict[str, Any], status: str) -> str:
    """The summary those on duty receive (Chinese only); `status` is in the audit trail, not the text."""
    title = f"{DRILL_MARK}【叫应小结】{unmarked(c.title)}" if c.drill else f"【叫应小结】{c.title}"
    parts = [f"{title}:共{summary['total']}人,已应答{summary['acknowledged']}人"
             f"({summary['rate']:.0%})"]
    if summary["median_ack_s"] is not None:
        parts.append(f"用时中位{summary['median_ack_s'] / 60:.0f}分钟,最长{summary['max_ack_s'] / 60:.0f}分钟")
    if summary.get("answered_late"):
        names = "、".join(n["name"] for n in summary["late"][:5])
        more = f"等{summary['answered_late']}人" if summary["answered_late"] > 5 else ""
        parts.append(f"逾时应答:{names}{more}")
    if summary["never_answered"]:
        names = "、".join(n["name"] for n in summary["never_answered"][:5])
        more = f"等{len(summary['never_answered'])}人" if len(summary["never_answered"]) > 5 else ""
        parts.append(f"未应答:{names}{more}")
    if relay := summary.get("relay"):
        parts.append(f"到户:{relay['confirmed'] + relay['late']}/{relay['requested']}村已确认(逾时{relay['late']}),"
                     f"共{relay['households']}户")
    return ";".join(parts) + "。"


RESULT_NAMES = 20
"""How many of those who never answered, and of those who answered late, the call-out's result names (its row and
its `callout.summary` event keep them all, with the counts). Temporal refuses a payload over 2 MB: at 100,000 persons
the lists were 15 MB, the activity's completion was refused at every retry and the call-out could never end."""


def result_of(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as the call-out's workflow returns it: the counts, the first `RESULT_NAMES` names of each list."""
    return {**summary, "never_answered": summary["never_answered"][:RESULT_NAMES],
            "never_answered_count": len(summary["never_answered"]), "late": summary["late"][:RESULT_NAMES]}


@activity.defn(name=names.Callout.FINISH)
async def finish(end: CalloutEnd) -> CalloutSummary:
    """Summarise, send the summary to those on duty, then close the call-out. Its result names a bounded number of
    persons (`result_of`); the row and the audit trail have them all.

    The call-out's end (status, summary) and its `callout.summary` / `callout.ended` events
    commit in one transaction: whoever sees the call-out ended also finds its end in the
    audit trail, and a retry after a kill recomputes from the same final state."""
    info = activity.info()

    def compute() -> tuple[Callout, dict, list[Contact]]:
        with session_scope(write=False) as s:
            c = s.get(Callout, end.callout_id)
            summary = summarize(summary_rows(s, end.callout_id), c.started_at)
            relays = relay_counts(list(s.exec(select(CalloutRelay).where(CalloutRelay.callout_id == end.callout_id))),
                                  _now())
            if relays is not None:  # 到户到人 (workflows/relay.py)
                summary["relay"] = relays
            recipients: list[Contact] = []
            for shift in on_duty(s, _now()):
                if shift.role in end.summary_to and (who := contact(s.get(Person, shift.person_id))):
                    recipients.append(who)
            return c, summary, recipients

    c, summary, recipients = await asyncio.to_thread(compute)
    text = summary_text(c, summary, end.status)
    outcomes = await deliver(sms_each(recipients, lambda r: f"{end.workflow_id}/summary/{r.person_id}", text,
                                      subject=end.callout_id, drill=end.drill, meta={"purpose": "summary"}))

    def close() -> None:
        with session_scope() as s:
            row = s.get(Callout, end.callout_id)
            row.status, row.summary = end.status, summary
            row.ended_at = row.ended_at or _now()
            # the call-out's own chain vouches for each shard's chain (store/audit.py: one chain per shard)
            append(s, [*seal_shards(s, end.callout_id, end.workflow_id, info.workflow_run_id),
                       _ev(end.callout_id, "callout.summary", "summary", end.workflow_id, run_id=info.workflow_run_id,
                           payload={**summary, "drill": end.drill,
                                    "sent_to": [o.key.rsplit("/", 1)[1] for o in outcomes]}),
                       _ev(end.callout_id, "callout.ended", "ended", end.workflow_id, run_id=info.workflow_run_id,
                           payload={"status": end.status, "reason": end.reason, "drill": end.drill})])

    await asyncio.to_thread(close)
    return CalloutSummary(status=end.status, total=summary["total"], acknowledged=summary["acknowledged"],
                          summary=result_of(summary))
