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
import math
import threading
from collections import OrderedDict
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
    """Subjects' events, kept between replays: the console's slider asks for many instants of one call-out.

    The chain is append-only, so a cached list is extended with the events past its end; the
    chain head (length and hash, from `audit_chain`) says whether anything changed. Whether an
    event was altered in place is the chain verification's question, not the replay's.

    Bounded by size, least recently used first out: at most `max_events` events in all (a
    10,000-person call-out has ~48,000, some 50 MB as rows) and `max_subjects` subjects. A
    subject longer than `max_events` alone is replayed from the database and not kept. Until
    the issue-16 review the cache kept 4 subjects whatever their size: a supervisor switching
    between five call-outs read every one again each time, and four large ones held ~200 MB.
    Safe to share between threads (the routes run in a thread pool); the lock is never held
    while the database is read.
    """

    def __init__(self, max_events: int = 250_000, max_subjects: int = 64) -> None:
        self.max_events, self.max_subjects = max_events, max_subjects
        self._data: OrderedDict[str, tuple[int, str, list[Row]]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        """Events held."""
        return self._size

    def events(self, session: Any, subject: str) -> list[Row]:
        from store.audit import AuditChain

        chain = session.get(AuditChain, subject)
        if chain is None:
            return []
        length, head = chain.length, chain.head_hash
        key = f"{session.get_bind().url}|{subject}"
        with self._lock:
            cached = self._data.get(key)
        if cached is not None and cached[0] == length and cached[1] == head:
            rows = cached[2]
        elif cached is not None and len(cached[2]) == cached[0] < length:
            rows = cached[2] + load_events(session, subject, after=cached[0])
        else:
            rows = load_events(session, subject)
        self._keep(key, (length, head, rows))
        return rows

    def _keep(self, key: str, entry: tuple[int, str, list[Row]]) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= len(old[2])
            if len(entry[2]) > self.max_events:
                return  # too large to keep: replayed from the database each time
            self._data[key] = entry  # most recently used last
            self._size += len(entry[2])
            while self._data and (self._size > self.max_events or len(self._data) > self.max_subjects):
                _, dropped = self._data.popitem(last=False)
                self._size -= len(dropped[2])

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0


# ------------------------------------------------------------------ the other procedures: reporting chain, activation, review
#
# The reporting chain and the review run the same escalation interpreter as a call-out, in
# episodes (an overdue deadline, a report's receipts, a trigger's call, an overdue summary), and
# record its steps under their own prefixes (`report.escalation.ack`, `review.escalation.sent`, …).
# Each episode is replayed by `replay_callout` itself, so "who had been called, who had answered
# and whose wait was open" means the same thing for every procedure.

EPISODE_PREFIXES = ("report.escalation.", "report.receipt.", "incident.call.", "review.escalation.")


def _as_callout(ev: EventLike, prefix: str, episode: str) -> Row:
    """An episode's event as a call-out shard's: its run key (workflow id + episode) is the shard's workflow id,
    so a send's step id names its target, policy step and round as a call-out's does."""
    step = ev.step_id
    if step.startswith("send/"):
        step = "send/" + step[5:].removeprefix(episode + "/")
    wid = f"{ev.workflow_id}/{episode}" if ev.workflow_id else episode
    return Row(ev.seq or 0, "callout." + ev.kind[len(prefix):], ev.at, ev.actor, ev.channel, step, wid, ev.payload)


def _episodes(events: list[EventLike], at: datetime, policies: dict[str, Any] | None) -> dict[str, Any]:
    """Replay every escalation episode of a subject; targets of all episodes together, tier = the episode."""
    by_episode: dict[str, list[Row]] = {}
    for ev in events:
        prefix = next((p for p in EPISODE_PREFIXES if ev.kind.startswith(p)), None)
        if prefix is None and "episode" in ev.payload and "target" in ev.payload and ev.kind.count(".") >= 2:
            prefix = ev.kind.rsplit(".", 1)[0] + "."  # another procedure's episodes (e.g. a directive's follow-up)
        if prefix is None or ev.kind.endswith(".gap"):
            continue
        name = ev.payload.get("episode") or prefix.rstrip(".")
        by_episode.setdefault(name, []).append(_as_callout(ev, prefix, name))
    counts = dict.fromkeys(STATES, 0)
    per_tier: dict[str, dict[str, int]] = {}
    targets: list[dict[str, Any]] = []
    deadlines: list[dict[str, Any]] = []
    known = policies is not None
    for name, rows in by_episode.items():
        plan = None
        policy = (policies or {}).get(name)
        if policy is not None:
            from types import SimpleNamespace

            plan = SimpleNamespace(tiers=[SimpleNamespace(id=t, policy="p") for t in ("rcpt", "overdue", "call", "unit")],
                                   policies={"p": policy})
        elif known:
            known = False  # an episode whose policy is not known: its deadlines are not either
        st = replay_callout(rows, at, plan)
        if not st["events_applied"]:
            continue
        per_tier[name] = st["counts"]
        for s_, n in st["counts"].items():
            counts[s_] += n
        for t in st["targets"]:
            targets.append({**t, "tier": name, "episode": name})
        deadlines += [{**d, "episode": name} for d in st["deadlines"]]
    total = sum(counts.values())
    deadlines.sort(key=lambda d: d["due"])
    return {"counts": counts, "per_tier": per_tier, "targets": targets, "deadlines": deadlines,
            "deadlines_known": known, "total": total, "acknowledged": counts["acknowledged"],
            "open": total - sum(counts[s] for s in TERMINAL)}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def zh_number(n: int) -> str:
    digits = "零一二三四五六七八九"
    if n < 10:
        return digits[n]
    tens, ones = divmod(n, 10)
    return (digits[tens] if tens > 1 else "") + "十" + (digits[ones] if ones else "")


def _limit_state(due: datetime | None, met: datetime | None, at: datetime) -> str:
    if met is not None:
        return "late" if due is not None and met > due else "on_time"
    return "overdue" if due is not None and at >= due else "open"


def replay_reporting(events: Iterable[EventLike], at: datetime, rules: Any | None = None) -> dict[str, Any]:
    """The state of an incident reporting chain at `at`: its time limits (verbal, written, each 续报) open, met
    on time or late; the reports and their drafts; the verbal report; triggers; who was called and answered.

    `rules` (the `ReportingRules` the chain ran with) gives each follow-up's due time before it is overdue,
    and the escalation waits."""
    if at.tzinfo is None:
        raise ValueError("at: give a time zone")
    events = [e for e in events if e.at <= at]
    status, info, severity, closed_at, verbal = "not started", {}, None, None, None
    limits: dict[str, dict[str, Any]] = {}
    reports: dict[int, dict[str, Any]] = {}
    triggers, refusals = [], 0

    def limit(key: str, label: str, due: Any = None) -> dict[str, Any]:
        d = limits.setdefault(key, {"key": key, "label": label, "due_at": None, "met_at": None, "met_by": None,
                                    "reminded_at": None, "late_by_s": None, "omitted": False})
        if due is not None and d["due_at"] is None:
            d["due_at"] = _time(due)
        return d

    for ev in events:
        k, p = ev.kind, ev.payload
        parts = k.split(".")
        if k == "incident.received":
            status, severity = "open", p.get("severity")
            info = {x: p.get(x) for x in ("incident_id", "title", "source", "category", "subtype", "place", "town_id",
                                          "rules", "rules_version")}
            info["received_at"] = ev.at
            for key, due in (p.get("deadlines") or {}).items():
                limit(key, {"verbal": "口头报告", "written": "书面报告"}.get(key, key), due)
        elif k == "report.verbal.made":
            verbal = {"at": ev.at, "to_whom": p.get("to_whom"), "by_whom": p.get("by_whom"), "recorded_by": ev.actor}
            d = limit("verbal", "口头报告")
            d["met_at"], d["met_by"] = ev.at, "口头报告"
        elif len(parts) == 3 and parts[0] == "report" and parts[1] in ("written", "followup", "final"):
            seq = int(p.get("seq") or 0)
            r = reports.setdefault(seq, {"seq": seq, "kind": parts[1], "label": p.get("label"), "state": None,
                                         "version": 0, "approved_by": None, "submitted_at": None})
            if parts[2] == "drafted":
                r["state"], r["version"] = "in_review", p.get("version") or r["version"] + 1
            elif parts[2] == "approved":
                r["state"], r["approved_by"] = "approved", ev.actor
                severity = p.get("severity") or severity
            elif parts[2] == "returned":
                r["state"] = "returned"
            elif parts[2] == "submitted":
                r["state"], r["submitted_at"] = "submitted", ev.at
                d = limit("written" if seq == 0 else f"followup_{seq}", r["label"] or "")
                d["met_at"], d["met_by"] = ev.at, r["label"]
                if parts[1] != "final":  # the next follow-up 续报 is due after this one
                    nxt = limit(f"followup_{seq + 1}", f"续报{seq + 1}")
                    every = getattr(rules, "followup_every", None) if rules is not None else None
                    if every and nxt["due_at"] is None and severity:
                        interval = next((v for s_, v in every.items() if getattr(s_, "value", s_) == severity), None)
                        if interval is not None:
                            nxt["due_at"] = ev.at + interval
            elif parts[2] in ("late", "overdue", "omitted", "reminder"):
                d = limit(p.get("deadline") or "?", p.get("label") or "", p.get("due_at"))
                if parts[2] == "late":
                    d["late_by_s"] = p.get("late_by_s")
                elif parts[2] == "omitted":
                    d["omitted"] = True
                elif parts[2] == "reminder":
                    d["reminded_at"] = ev.at
        elif len(parts) == 3 and parts[0] == "report" and parts[1] == "verbal" and parts[2] in (
                "late", "overdue", "omitted", "reminder"):
            d = limit("verbal", "口头报告", p.get("due_at"))
            if parts[2] == "late":
                d["late_by_s"] = p.get("late_by_s")
            elif parts[2] == "omitted":
                d["omitted"] = True
            elif parts[2] == "reminder":
                d["reminded_at"] = ev.at
        elif k == "incident.trigger":
            triggers.append({"at": ev.at, "trigger": p.get("trigger"), "name": p.get("name")})
        elif k == "report.refused":
            refusals += 1
        elif k == "incident.closed":
            status, closed_at = "closed", ev.at
    for d in limits.values():
        d["state"] = "omitted" if d["omitted"] and d["met_at"] is None else _limit_state(d["due_at"], d["met_at"], at)
        if d["label"].startswith("续报") and d["label"][2:].isdigit():  # as the workflow labels them: 续报一 …
            d["label"] = f"续报{zh_number(int(d['label'][2:]))}"
    policies = None
    if rules is not None:
        policies = {"overdue/" + key: rules.policies[rules.overdue_policy] for key in limits}
        policies.update({f"receipts/{seq}": rules.policies[rules.receipt_policy] for seq in reports})
        policies.update({f"trigger/{t.id}": rules.policies[t.policy] for t in rules.triggers})
    calls = _episodes(events, at, policies)
    rows = sorted(limits.values(), key=lambda d: (d["due_at"] or datetime.max.replace(tzinfo=UTC), d["key"]))
    return {"kind": "reporting", "at": at, "status": status, "level": severity, "incident": info, "verbal": verbal,
            "time_limits": rows, "open_limits": [d["key"] for d in rows if d["state"] in ("open", "overdue")],
            "reports": [reports[s] for s in sorted(reports)], "triggers": triggers, "refusals": refusals,
            "closed_at": closed_at, **calls, "events_applied": len(events),
            "last_event": {"seq": events[-1].seq, "kind": events[-1].kind, "at": events[-1].at} if events else None}


# What PlanActivationWorkflow (workflows/activation.py) writes under ``activation/<id>``, and so what the
# replay and the report's statistics read:
#
# - ``activation.started`` (level, plan, plan_version, commander: the level's commander label, reason …);
# - ``activation.hq.convened`` (level, seats: post key -> roles, groups) each time a level calls its HQ;
# - ``activation.level.changed`` (from, to, direction up|down, reason; the actor decided it);
# - a task or directive: ``activation.task.opened`` / ``activation.directive.issued`` (item, title, group, unit,
#   assignee, due_at, feedback_required); its notice's escalation episode ``notice/<item>`` records
#   ``activation.notice.ack`` (target = the item; or, when nobody could be called, payload item);
#   ``activation.item.reminder`` (item); ``activation.<kind>.feedback`` (item, kind progress|blocked|done);
#   ``.accepted`` / ``.returned`` (item, due_at as it stands after the decision, late_by_s);
#   ``.overdue`` (item, due_at; episode ``overdue/<item>/<round>`` calls the assignee, then the superior);
#   ``.late`` (item, late_by_s, mark); ``.closed`` (item, reason: level changed or response terminated);
# - ``activation.dispatch.drafted|consulted|approved|returned`` (seq …), orders in episode ``orders/<seq>``;
# - ``activation.reinforcement.requested|answered|overdue`` (seq, due_at, late_by_s);
# - ``activation.terminated`` (reason, level, closed_items) and ``activation.review.started`` (workflow_id).
#
# A task or directive is done when its "done" feedback is accepted (or, for one that needs no feedback,
# when it is acknowledged or reported done); it is late when that report came after the time limit in
# force (a return with more time sets a new one), as the workflow measures it.

ITEM_KINDS = ("task", "directive")
ITEM_OPENED = {"task": "opened", "directive": "issued"}
DUE_KEYS = ("due_at",)  # a task's, directive's or reinforcement request's time limit in the payload


def _new_item(ident: str, kind: str) -> dict[str, Any]:
    return {"id": ident, "kind": kind, "label": None, "group": None, "unit": None, "assignee": None,
            "issued_by": None, "opened_at": None, "first_due_at": None, "due_at": None, "feedback_required": True,
            "status": "open", "acknowledged_at": None, "acknowledged_by": None, "acknowledged_via": None,
            "reported_at": None, "accepted_at": None, "done_at": None, "closed_at": None, "closed_reason": None,
            "overdue_at": None, "returns": 0, "reminders": 0, "escalations": 0, "late_mark": None}


def _item_episode(name: str | None) -> str | None:
    """The item an escalation episode follows up: ``notice/<item>`` or ``overdue/<item>/<round>``."""
    if not name:
        return None
    head, _, rest = name.partition("/")
    if head == "notice":
        return rest or None
    if head == "overdue":
        return rest.rsplit("/", 1)[0] if "/" in rest else rest or None
    return None


def _item_state(it: dict[str, Any], at: datetime) -> tuple[str, int | None]:
    """(on_time | late | reported | overdue | closed | open, seconds late) of a task or directive at `at`."""
    due = it["due_at"]
    if it["done_at"] is not None:
        late = max(0, math.ceil((it["done_at"] - due).total_seconds())) if due is not None else 0
        return ("late" if late else "on_time"), (late or None)
    if it["closed_at"] is not None:
        overdue = it["overdue_at"] is not None or (due is not None and it["closed_at"] >= due)
        return ("overdue" if overdue else "closed"), None
    if it["reported_at"] is not None:
        return "reported", None  # reported done, awaiting acceptance: the time limit no longer runs
    if it["overdue_at"] is not None or (due is not None and at >= due):
        return "overdue", None
    return "open", None


def fold_activation(events: Iterable[EventLike], at: datetime) -> dict[str, Any]:
    """Apply an activation's events written up to `at` (in chain order): its level, levels, tasks and directives,
    dispatches, reinforcement requests, termination. Shared by the replay and the report's statistics."""
    out: dict[str, Any] = {"status": "not started", "plan_id": None, "plan_name": None, "plan_version": None,
                           "level": None, "level_name": None, "commander": None, "commander_post": None,
                           "started_at": None, "started_by": None, "terminated_at": None, "terminated_by": None,
                           "termination_reason": None, "review_workflow_id": None}
    levels: list[dict[str, Any]] = []
    items: dict[str, dict[str, Any]] = {}
    dispatches: dict[int, dict[str, Any]] = {}
    reinforcements: dict[int, dict[str, Any]] = {}
    escalations = 0
    applied, last = 0, None
    for ev in events:
        if ev.at > at:
            continue
        applied, last = applied + 1, ev
        k, p = ev.kind, ev.payload
        parts = k.split(".")
        if k.endswith(".escalated"):
            escalations += 1
            ident = _item_episode(p.get("episode"))
            if ident in items:
                items[ident]["escalations"] += 1
        if k == "activation.started":
            out.update(status="active", plan_id=p.get("plan"), plan_name=p.get("plan_name"),
                       plan_version=p.get("plan_version"), level=p.get("level"), level_name=p.get("level_name"),
                       commander=p.get("commander"), started_at=ev.at, started_by=ev.actor)
            levels.append({"n": 0, "at": ev.at, "from": None, "to": p.get("level"), "direction": None, "by": ev.actor,
                           "reason": p.get("reason")})
        elif k == "activation.hq.convened":
            seats = p.get("seats") or {}
            out["commander_post"] = next((key for key, roles in seats.items() if "指挥长" in (roles or [])), None)
        elif k == "activation.level.changed":
            levels.append({"n": len(levels), "at": ev.at, "from": p.get("from") or out["level"], "to": p.get("to"),
                           "direction": p.get("direction"), "by": ev.actor, "reason": p.get("reason")})
            out["level"], out["level_name"] = p.get("to"), None
        elif k == "activation.terminated":
            out.update(status="terminated", terminated_at=ev.at, terminated_by=ev.actor,
                       termination_reason=p.get("reason"))
        elif k in ("activation.review.started", "activation.review.already_started"):
            out["review_workflow_id"] = p.get("workflow_id")
        elif len(parts) == 3 and parts[0] == "activation" and parts[1] in ITEM_KINDS:
            kind, verb, ident = parts[1], parts[2], str(p.get("item") or "")
            if not ident:
                continue
            if verb == ITEM_OPENED[kind]:
                it = items[ident] = _new_item(ident, kind)
                it.update(label=p.get("title"), group=p.get("group"), unit=p.get("unit"), assignee=p.get("assignee"),
                          issued_by=ev.actor, opened_at=ev.at, feedback_required=p.get("feedback_required", True) is not False)
                it["first_due_at"] = it["due_at"] = _time(p.get("due_at"))
                continue
            it = items.get(ident)
            if it is None:
                continue
            due = _time(p.get("due_at"))
            if verb == "feedback":
                fb = p.get("kind")
                it["status"] = {"progress": "in_progress", "blocked": "blocked", "done": "reported"}.get(fb, it["status"])
                if fb == "done":
                    it["reported_at"] = ev.at
                    if not it["feedback_required"]:
                        it["status"] = "completed"
                        it["done_at"] = it["done_at"] or ev.at
            elif verb == "accepted":
                it["status"], it["accepted_at"] = "accepted", ev.at
                it["due_at"] = due or it["due_at"]
                it["done_at"] = it["reported_at"] or ev.at
            elif verb == "returned":
                it["status"], it["returns"], it["reported_at"] = "returned", it["returns"] + 1, None
                if due is not None and due != it["due_at"]:  # returned with more time: a new limit, not overdue yet
                    it["due_at"], it["overdue_at"] = due, None
            elif verb == "overdue":
                it["overdue_at"] = it["overdue_at"] or ev.at
            elif verb == "late":
                it["late_mark"] = p.get("mark")
            elif verb == "closed":
                it["status"], it["closed_at"], it["closed_reason"] = "closed", ev.at, p.get("reason")
        elif k == "activation.notice.ack":
            it = items.get(str(p.get("target") or p.get("item") or ""))
            if it is not None and it["acknowledged_at"] is None:
                it["acknowledged_at"], it["acknowledged_by"], it["acknowledged_via"] = ev.at, ev.actor, ev.channel
                if it["status"] == "open":
                    it["status"] = "acknowledged" if it["feedback_required"] else "completed"
                if not it["feedback_required"] and it["done_at"] is None:
                    it["done_at"] = ev.at
        elif k == "activation.item.reminder" and str(p.get("item")) in items:
            items[str(p["item"])]["reminders"] += 1
        elif len(parts) == 3 and parts[:2] == ["activation", "dispatch"] and p.get("seq") is not None:
            d = dispatches.setdefault(int(p["seq"]), {"seq": int(p["seq"]), "state": None, "forces": [], "task": None,
                                                      "drafted_at": None, "approved_at": None})
            if parts[2] == "drafted":
                d.update(state="consulting" if p.get("consult_required") else "drafted", forces=p.get("forces") or [],
                         task=p.get("task"), drafted_at=ev.at, version=p.get("version"))
            elif parts[2] == "consulted":
                d["state"] = "drafted" if p.get("agree") else "returned"
            elif parts[2] == "approved":
                d.update(state="approved", approved_at=ev.at)
            elif parts[2] == "returned":
                d["state"] = "returned"
        elif len(parts) == 3 and parts[:2] == ["activation", "reinforcement"] and p.get("seq") is not None:
            r = reinforcements.setdefault(int(p["seq"]), {"seq": int(p["seq"]), "kind": None, "detail": None,
                                                          "requested_at": None, "due_at": None, "answered_at": None,
                                                          "decision": None, "late_by_s": None, "overdue_at": None})
            if parts[2] == "requested":
                r.update(kind=p.get("kind"), detail=p.get("detail"), requested_at=ev.at, due_at=_time(p.get("due_at")))
            elif parts[2] == "answered":
                r.update(answered_at=ev.at, decision=p.get("decision"), late_by_s=p.get("late_by_s") or None)
            elif parts[2] == "overdue":
                r["overdue_at"] = ev.at
    if out["terminated_at"] is not None:  # the termination closes whatever still owes work (the workflow writes each
        for it in items.values():         # ".closed" a moment after "activation.terminated", which carries the time)
            if it["status"] not in ("accepted", "completed", "closed"):
                it["status"], it["closed_at"], it["closed_reason"] = "closed", out["terminated_at"], "响应终止"
    for it in items.values():
        it["state"], it["late_by_s"] = _item_state(it, at)
    for r in reinforcements.values():
        if r["answered_at"] is not None:
            r["state"] = "late" if r["late_by_s"] else "on_time"
        elif out["terminated_at"] is not None:
            r["state"] = "closed"
        else:
            r["state"] = "overdue" if r["overdue_at"] or (r["due_at"] and at >= r["due_at"]) else "open"
    for d in dispatches.values():
        if out["terminated_at"] is not None and d["state"] in ("consulting", "drafted", "returned"):
            d["state"] = "closed"
    for i, lv in enumerate(levels):  # how long each level was in force
        until = levels[i + 1]["at"] if i + 1 < len(levels) else (out["terminated_at"] or None)
        lv["until"] = until
        lv["duration_s"] = round((until - lv["at"]).total_seconds()) if until is not None else None
    out.update(levels=levels, items=list(items.values()), dispatches=list(dispatches.values()),
               reinforcements=list(reinforcements.values()), escalations=escalations, events_applied=applied,
               last_event={"seq": last.seq, "kind": last.kind, "at": last.at} if last is not None else None)
    return out


def replay_activation(events: Iterable[EventLike], at: datetime) -> dict[str, Any]:
    """The state of a plan activation at `at`: the response level in force (and the levels before it), the
    tasks and directives given — acknowledged, reported, accepted on time or late, overdue, closed —, the time
    limits still open (tasks, directives, reinforcement requests), and whom its call-outs had called and who
    had answered (each escalation episode replayed as a call-out)."""
    if at.tzinfo is None:
        raise ValueError("at: give a time zone")
    events = [e for e in events if e.at <= at]
    st = fold_activation(events, at)
    rows = st.pop("items")
    tasks = [r for r in rows if r["kind"] == "task"]
    directives = [r for r in rows if r["kind"] == "directive"]
    open_ = [{"key": r["id"], "kind": r["kind"], "label": r["label"], "due": r["due_at"], "overdue": r["state"] == "overdue",
              "assignee": r["assignee"]}
             for r in rows if r["state"] in ("open", "overdue") and r["closed_at"] is None and r["due_at"] is not None]
    open_ += [{"key": f"reinforcement/{r['seq']}", "kind": "reinforcement", "label": r["detail"], "due": r["due_at"],
               "overdue": r["state"] == "overdue", "assignee": None}
              for r in st["reinforcements"] if r["state"] in ("open", "overdue") and r["due_at"] is not None]
    calls = _episodes(events, at, None)
    return {"kind": "activation", "at": at, **st, "tasks": tasks, "directives": directives,
            "time_limits": sorted(open_, key=lambda d: (d["due"], d["key"])), **calls}


def replay_review(events: Iterable[EventLike], at: datetime, policy: Any | None = None) -> dict[str, Any]:
    """The state of a post-event review at `at`: each unit's summary (asked, due, in, late), the report versions,
    sign-off and seal, and whom an overdue summary had called."""
    if at.tzinfo is None:
        raise ValueError("at: give a time zone")
    events = [e for e in events if e.at <= at]
    status, units, reports, sealed, signed = "not started", {}, [], None, None
    for ev in events:
        k, p = ev.kind, ev.payload
        if k == "review.started":
            status = "collecting"
            for u in p.get("units") or []:
                units[u["id"]] = {"unit_id": u["id"], "name": u.get("name"), "due_at": _time(p.get("due_at")),
                                  "asked_at": None, "reminders": 0, "submitted_at": None, "version": 0}
        elif k in ("review.summary.requested", "review.summary.reminder") and p.get("unit_id") in units:
            u = units[p["unit_id"]]
            if k.endswith("requested"):
                u["asked_at"] = ev.at
            else:
                u["reminders"] += 1
        elif k == "review.summary.submitted" and p.get("unit_id") in units:
            u = units[p["unit_id"]]
            u["submitted_at"] = u["submitted_at"] or ev.at
            u["version"] = p.get("version") or u["version"] + 1
            if status == "compiled":
                status = "collecting"
        elif k in ("review.report.compiled", "review.report.final"):
            reports.append({"version": p.get("version"), "final": k.endswith("final"), "at": ev.at,
                            "sha256_json": p.get("sha256_json")})
            if k.endswith("compiled"):
                status = "compiled"
        elif k == "review.report.returned":
            status = "returned"
        elif k == "review.report.signed":
            status, signed = "signed", {"at": ev.at, "by": ev.actor, "version": p.get("version")}
        elif k == "review.sealed":
            status, sealed = "sealed", {"at": ev.at, "sha256": p.get("sha256"), "filename": p.get("filename")}
    for u in units.values():
        u["state"] = _limit_state(u["due_at"], u["submitted_at"], at)
    policies = None
    if policy is not None:
        policies = {f"overdue/{uid}": policy for uid in units}
    calls = _episodes(events, at, policies)
    return {"kind": "review", "at": at, "status": status, "units": list(units.values()),
            "time_limits": [{"key": u["unit_id"], "label": u["name"], "due": u["due_at"], "overdue": u["state"] == "overdue"}
                            for u in units.values() if u["state"] in ("open", "overdue")],
            "reports": reports, "signed": signed, "sealed": sealed, **calls, "events_applied": len(events),
            "last_event": {"seq": events[-1].seq, "kind": events[-1].kind, "at": events[-1].at} if events else None}


def kind_of_subject(subject: str, events: list[EventLike]) -> str:
    """callout | reporting | activation | review, from the subject's name (workflows/subjects.py) and its first
    events."""
    from workflows.subjects import kind_of

    named = kind_of(subject)
    if named in ("callout", "activation", "review"):
        return named
    kinds = {e.kind.split(".", 1)[0] for e in events[:50]}
    if "callout" in kinds:
        return "callout"
    if "incident" in kinds or "report" in kinds:
        return "reporting"
    if "activation" in kinds:
        return "activation"
    if "review" in kinds:
        return "review"
    return "callout"
