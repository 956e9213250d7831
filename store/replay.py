"""Replay: the state of a call-out at any instant, reconstructed from its audit events alone.

`replay_callout(events, at)` reads nothing but the events (the audit chain is what
lasts after Temporal has deleted the histories and whatever the read model says).
Events are applied in chain order; those written after `at` are skipped.

What the events carry, and so what the replay knows:

- ``callout.started`` / ``callout.updated``: the level in force;
- ``callout.plan_chosen``: plan id and version, the tiers called;
- ``callout.targets_resolved``: how many targets per tier (those not yet sent to are *pending*);
- ``callout.sent``: one send to one person for one target (``target`` = ``{tier}/{post_id}``);
- the interpreter's records (``ack``, ``escalated``, ``delivery``, ``timeout``, ``unreachable``,
  ``canceled``, …): each with the target's ``state`` after it;
- ``callout.ended``: the final status.

Open deadlines need the waits of the plan's policies, which are not in the events:
pass the plan (the route does, when the stored definition has the version the call-out
ran with) and each waiting target gets the time its current wait runs out.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

STATES = ("pending", "notified", "acknowledged", "escalated", "unreachable", "canceled")
TERMINAL = frozenset({"acknowledged", "unreachable", "canceled"})
ANSWERED = frozenset({"notify", "escalate"})  # sends that ask for an answer
FAILED = frozenset({"failed", "undelivered", "busy", "no_answer", "no_keypress", "machine", "canceled", "opted_out",
                    "no_channel"})
NEUTRAL_KINDS = frozenset({"callout.delivery", "callout.timeout", "callout.unreachable", "callout.canceled",
                           "callout.repeat", "callout.wait_skipped", "callout.escalation_skipped"})


class EventLike(Protocol):
    """What the replay reads of an event (an `AuditEvent` or any row with these attributes)."""

    seq: int | None
    kind: str
    at: datetime
    actor: str
    channel: str | None
    step_id: str
    workflow_id: str | None
    payload: dict[str, Any]


class _Target:
    __slots__ = ("key", "tier", "post_id", "person_id", "state", "attempts", "by_send", "acknowledged_at",
                 "ack_channel", "ack_by", "ack_actor", "ack_note", "escalated_to", "round", "outstanding",
                 "waiting_since", "wait_step", "last_at")

    def __init__(self, key: str) -> None:
        self.key = key
        self.tier, _, self.post_id = key.partition("/")
        self.person_id: str | None = None
        self.state = "pending"
        self.attempts: list[dict[str, Any]] = []
        self.by_send: dict[str, dict[str, Any]] = {}
        self.acknowledged_at: datetime | None = None
        self.ack_channel: str | None = None
        self.ack_by: str | None = None
        self.ack_actor: str | None = None
        self.ack_note: str | None = None
        self.escalated_to: list[str] = []
        self.round: str | None = None  # "step.round" of the latest sends that ask for an answer
        self.outstanding: set[str] = set()
        self.waiting_since: datetime | None = None
        self.wait_step: int | None = None
        self.last_at: datetime | None = None


def _send_round(step_id: str, target: str) -> str:
    """"send/{tier}/{post}/{step}.{round}/{person}/{channel}" -> "{step}.{round}"."""
    rest = step_id[5:] if step_id.startswith("send/") else step_id
    return send_round(rest, target)


def send_round(send_key: str, target: str) -> str:
    """"…/{tier}/{post}/{step}.{round}/{person}/{channel}" -> "{step}.{round}" (a send key names its policy step)."""
    _, sep, rest = send_key.partition(target + "/")
    return (rest if sep else send_key).split("/", 1)[0]


def deadline_from_attempts(waits: dict[tuple[str, int], timedelta], tier: str, target: str,
                           attempts: list[dict[str, Any]]) -> datetime | None:
    """When the current wait of a target runs out, from the read model's attempts (the console's countdowns)."""
    asks = [a for a in attempts if a.get("purpose") in ANSWERED and a.get("key")]
    if not asks:
        return None
    rnd = send_round(asks[-1]["key"], target)
    current = [a for a in asks if send_round(a["key"], target) == rnd]
    if all(a.get("status") in FAILED for a in current):
        return None
    step = rnd.split(".", 1)[0]
    wait = waits.get((tier, int(step))) if step.isdigit() else None
    if wait is None:
        return None
    first = min(datetime.fromisoformat(a["at"]) for a in current)
    return first + wait


def replay_callout(events: Iterable[EventLike], at: datetime, plan: Any | None = None) -> dict[str, Any]:
    """The state of a call-out at `at`, from its audit events (in chain order).

    `plan` (optional, a `CalloutPlan`) lets the replay say when each open wait runs out.
    """
    if at.tzinfo is None:
        raise ValueError("at: give a time zone")
    targets: dict[str, _Target] = {}
    status, level, plan_info = "not started", None, None
    tiers: list[str] = []
    per_tier_total: dict[str, int] = {}
    applied, last, started_at, ended_at = 0, None, None, None
    cancel_requested: dict[str, Any] | None = None

    for ev in events:
        if ev.at > at:
            continue
        applied += 1
        last = ev
        kind, p = ev.kind, ev.payload
        tkey = p.get("target") if kind.startswith("callout.") else None
        if tkey:
            t = targets.get(tkey)
            if t is None:
                t = targets[tkey] = _Target(tkey)
            t.last_at = ev.at
            if kind == "callout.sent":
                purpose = p.get("purpose")
                key = f"{ev.workflow_id}/{ev.step_id[5:]}" if ev.workflow_id else ev.step_id[5:]
                attempt = {"channel": ev.channel, "at": ev.at, "status": p.get("status"), "purpose": purpose,
                           "person_id": p.get("person_id")}
                t.attempts.append(attempt)
                t.by_send[key] = attempt
                if t.person_id is None and purpose == "notify":
                    t.person_id = p.get("person_id")
                if purpose in ANSWERED:
                    if t.state == "pending":
                        t.state = "notified"
                    rnd = _send_round(ev.step_id, tkey)
                    if rnd != t.round:
                        t.round, t.outstanding = rnd, set()
                        t.waiting_since = ev.at
                        t.wait_step = int(rnd.split(".", 1)[0]) if rnd.split(".", 1)[0].isdigit() else None
                    if p.get("status") not in FAILED:
                        t.outstanding.add(key)
                continue
            if t.person_id is None and kind in NEUTRAL_KINDS:
                t.person_id = p.get("person_id")
            state = p.get("state")
            if kind == "callout.delivery":
                attempt = t.by_send.get(p.get("send") or "")
                status_ = p.get("status")
                if attempt is not None:
                    attempt["status"] = status_
                if status_ in FAILED:
                    t.outstanding.discard(p.get("send") or "")
            elif kind == "callout.ack":
                t.acknowledged_at, t.ack_channel, t.ack_by = ev.at, ev.channel, p.get("person_id")
                t.ack_actor, t.ack_note = ev.actor, p.get("note")
            elif kind == "callout.escalated":
                if p.get("person_id") and p["person_id"] not in t.escalated_to:
                    t.escalated_to.append(p["person_id"])
            elif kind == "callout.timeout":
                t.waiting_since = None
            if state:
                t.state = state
            continue
        if kind == "callout.started":
            status, level, started_at = "running", p.get("level"), ev.at
        elif kind == "callout.plan_chosen":
            plan_info = {"id": p.get("plan"), "version": p.get("version"), "category": p.get("category")}
            tiers = list(p.get("tiers") or [])
        elif kind == "callout.targets_resolved":
            for tier, n in (p.get("per_tier") or {}).items():
                per_tier_total[tier] = per_tier_total.get(tier, 0) + int(n)
            for tier in p.get("tiers") or []:
                if tier not in tiers:
                    tiers.append(tier)
        elif kind == "callout.updated":
            level = p.get("to_level", level)
        elif kind == "callout.cancel_requested":
            cancel_requested = {"at": ev.at, "by": ev.actor, "reason": p.get("reason")}
        elif kind == "callout.ended":
            status, ended_at = p.get("status") or "ended", ev.at

    waits = policy_waits(plan) if plan is not None else None
    counts = dict.fromkeys(STATES, 0)
    per_tier: dict[str, dict[str, int]] = {}
    out_targets, deadlines = [], []
    for t in targets.values():
        counts[t.state] = counts.get(t.state, 0) + 1
        tier = per_tier.setdefault(t.tier, dict.fromkeys(STATES, 0))
        tier[t.state] = tier.get(t.state, 0) + 1
        due = None
        if waits is not None and t.state not in TERMINAL and t.waiting_since and t.outstanding \
                and t.wait_step is not None:
            wait = waits.get((t.tier, t.wait_step))
            if wait is not None:
                due = t.waiting_since + wait
                deadlines.append({"target": t.key, "person_id": t.person_id, "due": due, "overdue": due <= at})
        out_targets.append({
            "key": t.key, "tier": t.tier, "post_id": t.post_id, "person_id": t.person_id, "state": t.state,
            "attempts": t.attempts, "acknowledged_at": t.acknowledged_at, "ack_channel": t.ack_channel,
            "ack_by": t.ack_by, "ack_actor": t.ack_actor, "ack_note": t.ack_note, "escalated_to": t.escalated_to,
            "deadline": due, "last_event_at": t.last_at})
    for tier_name, total in per_tier_total.items():  # resolved, not yet sent to
        tier = per_tier.setdefault(tier_name, dict.fromkeys(STATES, 0))
        missing = max(total - sum(tier.values()), 0)
        tier["pending"] += missing
        counts["pending"] += missing
    total = sum(counts.values())
    deadlines.sort(key=lambda d: d["due"])
    return {
        "at": at, "status": status, "level": level, "plan": plan_info, "tiers": tiers,
        "started_at": started_at, "ended_at": ended_at, "cancel_requested": cancel_requested,
        "total": total, "counts": counts, "per_tier": per_tier,
        "acknowledged": counts["acknowledged"], "open": total - sum(counts[s] for s in TERMINAL),
        "deadlines": deadlines, "deadlines_known": waits is not None, "targets": out_targets,
        "events_applied": applied,
        "last_event": {"seq": last.seq, "kind": last.kind, "at": last.at} if last is not None else None,
    }


def policy_waits(plan: Any) -> dict[tuple[str, int], timedelta]:
    """(tier id, index of a step that sends) -> the wait that follows it in that tier's policy."""
    out: dict[tuple[str, int], timedelta] = {}
    for tier in plan.tiers:
        policy = plan.policies.get(tier.policy)
        if policy is None:
            continue
        steps = policy.steps
        for i, step in enumerate(steps):
            if step.kind not in ("notify", "escalate"):
                continue
            nxt = next((s for s in steps[i + 1:] if s.kind in ("wait_ack", "notify", "escalate")), None)
            if nxt is not None and nxt.kind == "wait_ack" and nxt.wait_ack is not None:
                out[(tier.id, i)] = nxt.wait_ack
    return out


def jsonable(state: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO strings (for JSON responses and templates)."""

    def conv(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return conv(state)


class Row(NamedTuple):
    seq: int
    kind: str
    at: datetime
    actor: str
    channel: str | None
    step_id: str
    workflow_id: str | None
    payload: dict[str, Any]


def load_events(session: Any, subject: str, until: datetime | None = None, after: int = 0) -> list[Row]:
    """A subject's events in chain order, as plain tuples.

    The columns are read without the ORM's per-row type processing (the replay of a
    50,000-event call-out would spend most of its time there): times and JSON payloads
    are decoded here, for SQLite (text) and PostgreSQL (native types) alike.
    """
    from sqlalchemy import column, table
    from sqlalchemy import select as core_select

    from store.types import UtcDateTime

    audit = table("audit_event", *(column(c) for c in ("seq", "kind", "at", "actor", "channel", "step_id",
                                                      "workflow_id", "payload", "subject", "chain_seq")))
    stmt = core_select(audit.c.seq, audit.c.kind, audit.c.at, audit.c.actor, audit.c.channel, audit.c.step_id,
                       audit.c.workflow_id, audit.c.payload).where(audit.c.subject == subject)
    if after:  # chain positions past `after`
        stmt = stmt.where(audit.c.chain_seq > after)
    if until is not None:  # bound as the column type would bind it (naive UTC on SQLite)
        dialect = session.get_bind().dialect
        stmt = stmt.where(audit.c.at <= UtcDateTime().process_bind_param(until, dialect))
    rows = session.connection().execute(stmt.order_by(audit.c.chain_seq)).all()
    loads, parse_time = json.loads, datetime.fromisoformat
    out = []
    for seq, kind, at, actor, channel, step_id, wid, payload in rows:
        if isinstance(at, str):
            at = parse_time(at)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        out.append(Row(seq, kind, at, actor, channel, step_id, wid, loads(payload) if isinstance(payload, str) else payload))
    return out


class EventCache:
    """A subject's events, kept between replays: the console's slider asks for many instants of one call-out.

    The chain is append-only, so a cached list is extended with the events past its end; the
    chain head (length and hash, from `audit_chain`) says whether anything changed. Whether an
    event was altered in place is the chain verification's question, not the replay's.
    """

    def __init__(self, max_subjects: int = 4) -> None:
        self.max_subjects = max_subjects
        self._data: dict[str, tuple[int, str, list[Row]]] = {}

    def events(self, session: Any, subject: str) -> list[Row]:
        from store.audit import AuditChain

        chain = session.get(AuditChain, subject)
        if chain is None:
            return []
        length, head = chain.length, chain.head_hash
        key = f"{session.get_bind().url}|{subject}"
        cached = self._data.pop(key, None)
        if cached is not None and cached[0] == length and cached[1] == head:
            rows = cached[2]
        elif cached is not None and len(cached[2]) == cached[0] < length:
            rows = cached[2] + load_events(session, subject, after=cached[0])
        else:
            rows = load_events(session, subject)
        self._data[key] = (length, head, rows)  # most recently used last
        while len(self._data) > self.max_subjects:
            self._data.pop(next(iter(self._data)))
        return rows

    def clear(self) -> None:
        self._data.clear()
