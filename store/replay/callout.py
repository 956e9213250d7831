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

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from store.replay.common import ANSWERED, FAILED, NEUTRAL_KINDS, STATES, TERMINAL, EventLike, last_event, require_zone
from workflows.kit.events import (
    CalloutEnded,
    CalloutStarted,
    CalloutUpdated,
    CancelRequested,
    PlanChosen,
    Sent,
    Step,
    TargetsResolved,
    state_after,
)
from workflows.kit.events import Callout as K

SENT, STEP = Sent.k, Step.k  # payload keys (the hot loop reads them straight from the dict)
TARGET_PREFIX = K.EPISODE + "."


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

    def sent(self, ev: EventLike, p: dict[str, Any]) -> None:
        """`callout.sent`: one more attempt; a send that asks for an answer opens (or joins) a round of waiting."""
        purpose = p.get(SENT.purpose)
        key = f"{ev.workflow_id}/{ev.step_id[5:]}" if ev.workflow_id else ev.step_id[5:]
        attempt = {"channel": ev.channel, "at": ev.at, "status": p.get(SENT.status), "purpose": purpose,
                   "person_id": p.get(SENT.person_id)}
        self.attempts.append(attempt)
        self.by_send[key] = attempt
        if self.person_id is None and purpose == "notify":
            self.person_id = p.get(SENT.person_id)
        if purpose not in ANSWERED:
            return
        if self.state == "pending":
            self.state = "notified"
        rnd = _send_round(ev.step_id, self.key)
        if rnd != self.round:
            self.round, self.outstanding = rnd, set()
            self.waiting_since = ev.at
            self.wait_step = int(rnd.split(".", 1)[0]) if rnd.split(".", 1)[0].isdigit() else None
        if p.get(SENT.status) not in FAILED:
            self.outstanding.add(key)

    def step(self, ev: EventLike, kind: str, p: dict[str, Any]) -> None:
        """One of the interpreter's records on this target, with the target's state after it."""
        if self.person_id is None and kind in NEUTRAL_KINDS:
            self.person_id = p.get(STEP.person_id)
        if kind == K.DELIVERY:
            attempt = self.by_send.get(p.get(STEP.send) or "")
            status_ = p.get(STEP.status)
            if attempt is not None:
                attempt["status"] = status_
            if status_ in FAILED:
                self.outstanding.discard(p.get(STEP.send) or "")
        elif kind == K.ACK:
            self.acknowledged_at, self.ack_channel, self.ack_by = ev.at, ev.channel, p.get(STEP.person_id)
            self.ack_actor, self.ack_note = ev.actor, p.get(STEP.note)
        elif kind == K.ESCALATED:
            person = p.get(STEP.person_id)
            if person and person not in self.escalated_to:
                self.escalated_to.append(person)
        elif kind == K.TIMEOUT:
            self.waiting_since = None
        self.state = state_after(self.state, p.get(STEP.state))  # (an answer recorded ahead of a batch stays)

    def row(self, due: datetime | None) -> dict[str, Any]:
        return {"key": self.key, "tier": self.tier, "post_id": self.post_id, "person_id": self.person_id,
                "state": self.state, "attempts": self.attempts, "acknowledged_at": self.acknowledged_at,
                "ack_channel": self.ack_channel, "ack_by": self.ack_by, "ack_actor": self.ack_actor,
                "ack_note": self.ack_note, "escalated_to": self.escalated_to, "deadline": due,
                "last_event_at": self.last_at}


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


class _Callout:
    """The call-out as a whole: what its own events (not its targets') say."""

    def __init__(self) -> None:
        self.status, self.level, self.plan = "not started", None, None
        self.tiers: list[str] = []
        self.per_tier_total: dict[str, int] = {}
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.cancel_requested: dict[str, Any] | None = None

    def apply(self, ev: EventLike, kind: str, p: dict[str, Any]) -> None:
        if kind == K.STARTED:
            self.status, self.level, self.started_at = "running", CalloutStarted.read(p).level, ev.at
        elif kind == K.PLAN_CHOSEN:
            c = PlanChosen.read(p)
            self.plan = {"id": c.plan, "version": c.version, "category": c.category}
            self.tiers = list(c.tiers or [])
        elif kind == K.TARGETS_RESOLVED:
            r = TargetsResolved.read(p)
            for tier, n in (r.per_tier or {}).items():
                self.per_tier_total[tier] = self.per_tier_total.get(tier, 0) + int(n)
            for tier in r.tiers or []:
                if tier not in self.tiers:
                    self.tiers.append(tier)
        elif kind == K.UPDATED:
            self.level = p.get(CalloutUpdated.k.to_level, self.level)
        elif kind == K.CANCEL_REQUESTED:
            self.cancel_requested = {"at": ev.at, "by": ev.actor, "reason": CancelRequested.read(p).reason}
        elif kind == K.ENDED:
            self.status, self.ended_at = CalloutEnded.read(p).status or "ended", ev.at


def replay_callout(events: Iterable[EventLike], at: datetime, plan: Any | None = None) -> dict[str, Any]:
    """The state of a call-out at `at`, from its audit events (in chain order).

    `plan` (optional, a `CalloutPlan`) lets the replay say when each open wait runs out.
    """
    require_zone(at)
    targets: dict[str, _Target] = {}
    whole = _Callout()
    applied, last = 0, None
    for ev in events:
        if ev.at > at:
            continue
        applied += 1
        last = ev
        kind, p = ev.kind, ev.payload
        tkey = p.get(STEP.target) if kind.startswith(TARGET_PREFIX) else None
        if not tkey:
            whole.apply(ev, kind, p)
            continue
        t = targets.get(tkey)
        if t is None:
            t = targets[tkey] = _Target(tkey)
        t.last_at = ev.at
        if kind == K.SENT:
            t.sent(ev, p)
        else:
            t.step(ev, kind, p)
    return _state(whole, targets, at, plan, applied, last)


def _state(whole: _Callout, targets: dict[str, _Target], at: datetime, plan: Any | None, applied: int,
           last: EventLike | None) -> dict[str, Any]:
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
        out_targets.append(t.row(due))
    for tier_name, total in whole.per_tier_total.items():  # resolved, not yet sent to
        tier = per_tier.setdefault(tier_name, dict.fromkeys(STATES, 0))
        missing = max(total - sum(tier.values()), 0)
        tier["pending"] += missing
        counts["pending"] += missing
    total = sum(counts.values())
    deadlines.sort(key=lambda d: d["due"])
    return {
        "at": at, "status": whole.status, "level": whole.level, "plan": whole.plan, "tiers": whole.tiers,
        "started_at": whole.started_at, "ended_at": whole.ended_at, "cancel_requested": whole.cancel_requested,
        "total": total, "counts": counts, "per_tier": per_tier,
        "acknowledged": counts["acknowledged"], "open": total - sum(counts[s] for s in TERMINAL),
        "deadlines": deadlines, "deadlines_known": waits is not None, "targets": out_targets,
        "events_applied": applied, "last_event": last_event(last),
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
