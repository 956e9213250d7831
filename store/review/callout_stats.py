"""A call-out's figures for the event report: acknowledgement rates and times per tier and channel,
who answered late, who was unreachable, escalations, level changes, channel failures."""
from __future__ import annotations

from typing import Any

from store.replay import EventLike
from store.review.common import ANSWERS, Sends, _iso, durations, rate
from workflows.kit.events import (
    Callout,
    CalloutEnded,
    CalloutStarted,
    CalloutUpdated,
    PlanChosen,
    Sent,
    Step,
    TargetsResolved,
    WarningReceived,
    Warnings,
)

TARGET_PREFIX = Callout.EPISODE + "."
WARNING_KEYS = ("warning_id", "identifier", "headline", "event", "level")


def _new_target(tkey: str) -> dict[str, Any]:
    return {"key": tkey, "tier": tkey.partition("/")[0], "person_id": None, "first_sent": None, "acked_at": None,
            "ack_channel": None, "ack_by": None, "state": "pending", "escalations": 0, "late_at": None,
            "late_by": None}


def _whole(out: dict[str, Any], per_tier_total: dict[str, int], ev: EventLike) -> None:
    """What the call-out's own events (and its warning's) say of it as a whole."""
    k, p = ev.kind, ev.payload
    if k == Warnings.RECEIVED:
        w = WarningReceived.read(p)
        out["warning"] = {key: getattr(w, key) for key in WARNING_KEYS}
    elif k == Callout.STARTED:
        out["level"], out["started_at"] = CalloutStarted.read(p).level, _iso(ev.at)
    elif k == Callout.PLAN_CHOSEN:
        c = PlanChosen.read(p)
        out["plan"] = {"id": c.plan, "version": c.version, "category": c.category}
    elif k == Callout.TARGETS_RESOLVED:
        for tier, n in (TargetsResolved.read(p).per_tier or {}).items():
            per_tier_total[tier] = per_tier_total.get(tier, 0) + int(n)
    elif k == Callout.UPDATED:
        u = CalloutUpdated.read(p)
        out["level_changes"].append({"at": _iso(ev.at), "from": u.from_level, "to": u.to_level})
        out["level"] = p.get(CalloutUpdated.k.to_level, out["level"])
    elif k == Callout.ENDED:
        out["ended_at"], out["status"] = _iso(ev.at), CalloutEnded.read(p).status or "ended"


def _target(t: dict[str, Any], ev: EventLike, sends: Sends) -> None:
    """One event of a target: a send, an answer (on time or late), an escalation, the state after it."""
    k, p = ev.kind, ev.payload
    if k == Callout.SENT:
        sends.sent(ev)
        if p.get(Sent.k.purpose) in ANSWERS:
            if t["state"] == "pending":
                t["state"] = "notified"
            if t["first_sent"] is None:
                t["first_sent"] = ev.at
                t["person_id"] = t["person_id"] or p.get(Sent.k.person_id)
        return
    if k in (Callout.ACK, Callout.ACK_LATE) and (k == Callout.ACK_LATE or p.get(Step.k.late)):
        # answered after the target was given up, the call-out canceled or ended: answered late, not silence
        if t["acked_at"] is None and t["late_at"] is None:
            t["late_at"], t["late_by"] = ev.at, p.get(Step.k.person_id)
        if k == Callout.ACK_LATE:
            return  # what had happened stays the target's state
    elif k == Callout.ACK and t["acked_at"] is None:
        t["acked_at"], t["ack_channel"], t["ack_by"] = ev.at, ev.channel, p.get(Step.k.person_id)
    elif k == Callout.ESCALATED:
        t["escalations"] += 1
    if p.get(Step.k.state):
        t["state"] = p[Step.k.state]


def _new_tier() -> dict[str, Any]:
    return {"targets": 0, "acknowledged": 0, "unreachable": 0, "escalated": 0, "answered_late": 0, "_times": []}


def _figures(targets: dict[str, dict[str, Any]], per_tier_total: dict[str, int]) -> dict[str, Any]:
    tiers: dict[str, dict[str, Any]] = {}
    channels: dict[str, list[float]] = {}
    all_times: list[float] = []
    unreachable, late = [], []
    for t in targets.values():
        tier = tiers.setdefault(t["tier"], _new_tier())
        tier["targets"] += 1
        tier["escalated"] += int(t["escalations"] > 0)
        if t["acked_at"] is not None:
            tier["acknowledged"] += 1
            if t["first_sent"] is not None:
                secs = (t["acked_at"] - t["first_sent"]).total_seconds()
                tier["_times"].append(secs)
                channels.setdefault(t["ack_channel"] or "?", []).append(secs)
                all_times.append(secs)
        elif t["late_at"] is not None:
            tier["answered_late"] += 1
            late.append({"target": t["key"], "tier": t["tier"], "person_id": t["person_id"], "by": t["late_by"],
                         "at": _iso(t["late_at"])})
        elif t["state"] == "unreachable":
            tier["unreachable"] += 1
            unreachable.append({"target": t["key"], "tier": t["tier"], "person_id": t["person_id"]})
    for name, total in per_tier_total.items():  # resolved but never sent to
        tier = tiers.setdefault(name, _new_tier())
        tier["targets"] = max(tier["targets"], total)
    for tier in tiers.values():
        tier["ack_rate"] = rate(tier["acknowledged"], tier["targets"])
        tier["time_to_ack"] = durations(tier.pop("_times"))
    total = sum(t["targets"] for t in tiers.values())
    acked = sum(t["acknowledged"] for t in tiers.values())
    return {
        "targets": total, "acknowledged": acked, "ack_rate": rate(acked, total),
        "answered_late": len(late), "late": sorted(late, key=lambda u: u["target"]),
        "unreachable": sorted(unreachable, key=lambda u: u["target"]),
        "escalations": sum(t["escalations"] for t in targets.values()),
        "time_to_ack": durations(all_times),
        "per_tier": dict(sorted(tiers.items())),
        "per_ack_channel": {c: durations(v) for c, v in sorted(channels.items())},
    }


def callout_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {}
    per_tier_total: dict[str, int] = {}
    sends = Sends()
    out: dict[str, Any] = {"subject": subject, "warning": None, "level": None, "plan": None, "started_at": None,
                           "ended_at": None, "status": "running", "level_changes": []}
    for ev in events:
        k, p = ev.kind, ev.payload
        _whole(out, per_tier_total, ev)
        tkey = p.get(Step.k.target) if k.startswith(TARGET_PREFIX) else None
        if k == Callout.DELIVERY:
            sends.delivery(ev)
        if tkey:
            _target(targets.setdefault(tkey, _new_target(tkey)), ev, sends)
    out.update(_figures(targets, per_tier_total))
    out["channels"] = sends.per_channel()
    return out
