"""What the statistics of every procedure share: times, rates, durations and the sends of a subject."""
from __future__ import annotations

import statistics as pystats
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from store.replay import FAILED, EventLike
from store.replay.common import parse_time
from workflows.kit.events import Escalation, Sent, Step

ANSWERS = ("notify", "escalate")
SENT_SUFFIX, DELIVERY_SUFFIX = "." + Escalation.SENT, "." + Escalation.DELIVERY
ESCALATED_SUFFIX = "." + Escalation.ESCALATED

_t = parse_time


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def durations(values: Iterable[float]) -> dict[str, Any]:
    """count, median, 90th percentile (nearest rank), max, in seconds."""
    xs = sorted(values)
    if not xs:
        return {"n": 0, "median_s": None, "p90_s": None, "max_s": None}
    p90 = xs[max(0, -(-len(xs) * 9 // 10) - 1)]
    return {"n": len(xs), "median_s": round(pystats.median(xs), 1), "p90_s": round(p90, 1), "max_s": round(xs[-1], 1)}


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def send_key(ev: EventLike) -> str:
    """The send key of a `*.sent` event: workflow id + the step id after "send/"."""
    rest = ev.step_id[5:] if ev.step_id.startswith("send/") else ev.step_id
    return f"{ev.workflow_id}/{rest}" if ev.workflow_id else rest


def is_send(ev: EventLike) -> bool:
    """Any procedure's `<episode>.sent` with the gateway's status."""
    return ev.kind.endswith(SENT_SUFFIX) and Sent.k.status in ev.payload


class Sends:
    """Every send of a subject (any `*.sent` event with a status), and the gateway's later word on it."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}

    def sent(self, ev: EventLike) -> None:
        status = ev.payload.get(Sent.k.status)
        self.by_key[send_key(ev)] = {"channel": ev.channel or "?", "purpose": ev.payload.get(Sent.k.purpose),
                                     "failed": status in FAILED or status == "failed", "statuses": [status]}

    def delivery(self, ev: EventLike) -> None:
        s = self.by_key.get(ev.payload.get(Step.k.send) or "")
        status = ev.payload.get(Step.k.status)
        if s is not None:
            s["statuses"].append(status)
            if status in FAILED:
                s["failed"] = True

    def see(self, ev: EventLike) -> None:
        """A send or a delivery report of any procedure's episodes (anything else is none of its business)."""
        if is_send(ev):
            self.sent(ev)
        elif ev.kind.endswith(DELIVERY_SUFFIX):
            self.delivery(ev)

    def per_channel(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for s in self.by_key.values():
            c = out.setdefault(s["channel"], {"sends": 0, "failed": 0})
            c["sends"] += 1
            c["failed"] += int(s["failed"])
        for c in out.values():
            c["failure_rate"] = rate(c["failed"], c["sends"])
        return dict(sorted(out.items()))


_Sends = Sends  # (its name before the split)
