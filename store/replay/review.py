"""The replay of a post-event review (PostEventReviewWorkflow, under ``review/<incident>``)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from store.replay.common import EventLike, last_event, limit_state, parse_time, require_zone
from store.replay.episodes import replay_episodes
from workflows.kit.events import Review, ReviewReport, ReviewStarted, Sealed, SummaryStep


class _Review:
    def __init__(self) -> None:
        self.status = "not started"
        self.units: dict[str, dict[str, Any]] = {}
        self.reports: list[dict[str, Any]] = []
        self.sealed: dict[str, Any] | None = None
        self.signed: dict[str, Any] | None = None

    def apply(self, ev: EventLike) -> None:
        k = ev.kind
        if k == Review.STARTED:
            self.started(ReviewStarted.read(ev.payload))
        elif k in (Review.SUMMARY_REQUESTED, Review.SUMMARY_REMINDER, Review.SUMMARY_SUBMITTED):
            self.summary(ev, k, SummaryStep.read(ev.payload))
        elif k in (Review.REPORT_COMPILED, Review.REPORT_FINAL):
            r = ReviewReport.read(ev.payload)
            self.reports.append({"version": r.version, "final": k == Review.REPORT_FINAL, "at": ev.at,
                                 "sha256_json": r.sha256_json})
            if k == Review.REPORT_COMPILED:
                self.status = "compiled"
        elif k == Review.REPORT_RETURNED:
            self.status = "returned"
        elif k == Review.REPORT_SIGNED:
            self.status, self.signed = "signed", {"at": ev.at, "by": ev.actor,
                                                  "version": ReviewReport.read(ev.payload).version}
        elif k == Review.SEALED:
            s = Sealed.read(ev.payload)
            self.status, self.sealed = "sealed", {"at": ev.at, "sha256": s.sha256, "filename": s.filename}

    def started(self, p: Any) -> None:
        self.status = "collecting"
        for u in p.units or []:
            self.units[u["id"]] = {"unit_id": u["id"], "name": u.get("name"), "due_at": parse_time(p.due_at),
                                   "asked_at": None, "reminders": 0, "submitted_at": None, "version": 0}

    def summary(self, ev: EventLike, k: str, p: Any) -> None:
        if p.unit_id not in self.units:
            return
        u = self.units[p.unit_id]
        if k == Review.SUMMARY_REQUESTED:
            u["asked_at"] = ev.at
        elif k == Review.SUMMARY_REMINDER:
            u["reminders"] += 1
        else:
            u["submitted_at"] = u["submitted_at"] or ev.at
            u["version"] = p.version or u["version"] + 1
            if self.status == "compiled":
                self.status = "collecting"


def replay_review(events: Iterable[EventLike], at: datetime, policy: Any | None = None) -> dict[str, Any]:
    """The state of a post-event review at `at`: each unit's summary (asked, due, in, late), the report versions,
    sign-off and seal, and whom an overdue summary had called."""
    require_zone(at)
    events = [e for e in events if e.at <= at]
    r = _Review()
    for ev in events:
        r.apply(ev)
    for u in r.units.values():
        u["state"] = limit_state(u["due_at"], u["submitted_at"], at)
    policies = {f"overdue/{uid}": policy for uid in r.units} if policy is not None else None
    calls = replay_episodes(events, at, policies)
    return {"kind": "review", "at": at, "status": r.status, "units": list(r.units.values()),
            "time_limits": [{"key": u["unit_id"], "label": u["name"], "due": u["due_at"], "overdue": u["state"] == "overdue"}
                            for u in r.units.values() if u["state"] in ("open", "overdue")],
            "reports": r.reports, "signed": r.signed, "sealed": r.sealed, **calls, "events_applied": len(events),
            "last_event": last_event(events[-1] if events else None)}
