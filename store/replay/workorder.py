"""The replay of a hotline work order (WorkOrderWorkflow, under ``workorder-<source>-<ticket>``): its status, each
assignment's limits (签收, 反馈, 办结: open, on time, late, overdue), returns, 回访 and the incident it became, and
whom the signing call and 督办 had called, at any instant, from the audit trail alone."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from store.replay.common import EventLike, last_event, limit_state, parse_time, require_zone
from store.replay.episodes import replay_episodes
from workflows.kit.events import WorkOrder

LABELS = {"sign": "签收", "feedback": "反馈", "complete": "办结"}


class _Order:
    def __init__(self) -> None:
        self.status = "not started"
        self.info: dict[str, Any] = {}
        self.assignments: list[dict[str, Any]] = []
        self.visits: list[dict[str, Any]] = []
        self.incident_id: str | None = None

    def current(self) -> dict[str, Any] | None:
        return self.assignments[-1] if self.assignments else None

    def apply(self, ev: EventLike) -> None:
        k, p, a = ev.kind, ev.payload or {}, self.current()
        if k == WorkOrder.RECEIVED:
            self.status, self.info = "received", {x: p.get(x) for x in ("source", "ticket", "category", "urgency",
                                                                         "place", "town_id", "proposed_unit")}
        elif k == WorkOrder.ASSIGNED:
            self.status = "assigned"
            self.assignments.append({"seq": p.get("seq"), "unit_id": p.get("unit_id"), "unit": p.get("unit"),
                                     "assigned_at": ev.at, "signed_at": None, "returned_at": None, "reason": None,
                                     "limits": {key: {"due": parse_time(due), "met": None}
                                                for key, due in (p.get("deadlines") or {}).items()}})
        elif a is None:
            return
        elif k == WorkOrder.SIGNED:
            a["signed_at"], a["signed_by"] = ev.at, ev.actor
            self._meet(a, "sign", ev.at)
            if self.status == "assigned":
                self.status = "signed"
        elif k == WorkOrder.RETURNED:
            self.status, a["returned_at"], a["reason"] = "returned", ev.at, p.get("reason")
        elif k == WorkOrder.FEEDBACK:
            self._meet(a, "feedback", ev.at)
        elif k == WorkOrder.COMPLETED:
            self.status = "completed"
            self._meet(a, "feedback", ev.at)
            self._meet(a, "complete", ev.at)
        elif k == WorkOrder.SENT_BACK:
            self.status = "sent_back"
            a["limits"].get("complete", {})["met"] = None
        elif k == WorkOrder.CLOSED:
            self.status = "closed"
        elif k == WorkOrder.VISIT_POSTED:
            self.visits.append({"version": p.get("version"), "posted_at": ev.at, "satisfaction": None})
        elif k in (WorkOrder.VISIT_ANSWERED, WorkOrder.VISIT_UNANSWERED):
            self.status = "visited"
            if self.visits:
                self.visits[-1]["satisfaction"] = p.get("satisfaction") or "未回访"
        elif k == WorkOrder.INCIDENT_LINKED:
            self.incident_id = p.get("incident_id")

    @staticmethod
    def _meet(a: dict[str, Any], key: str, at: datetime) -> None:
        limit = a["limits"].get(key)
        if limit is not None and limit["met"] is None:
            limit["met"] = at


def replay_workorder(events: Iterable[EventLike], at: datetime, policies: dict[str, Any] | None = None) -> dict[str, Any]:
    """The state of a work order at `at`. `policies`: the rules' sign and 督办 policies by name (`sign`,
    `overdue`), for the calls' deadlines; None when the rules' version is no longer on disk."""
    require_zone(at)
    events = [e for e in events if e.at <= at]
    o = _Order()
    for ev in events:
        o.apply(ev)
    open_limits = []
    for a in o.assignments:
        for key, limit in a["limits"].items():
            limit["state"] = limit_state(limit["due"], limit["met"], at)
            live = a is o.current() and a["returned_at"] is None and o.status in ("assigned", "signed", "sent_back")
            if live and limit["state"] in ("open", "overdue"):
                open_limits.append({"key": f"{a['seq']}/{key}", "label": f"{a['unit']}·{LABELS.get(key, key)}",
                                    "due": limit["due"], "overdue": limit["state"] == "overdue"})
    by_episode = None
    if policies is not None:  # each episode's policy: the signing call's, or 督办's
        names = {(e.payload or {}).get("episode") for e in events if e.kind.startswith((WorkOrder.SIGN + ".",
                                                                                         WorkOrder.OVERDUE + "."))}
        by_episode = {n: policies.get("sign" if n.startswith("sign/") else "overdue") for n in names if n}
    calls = replay_episodes(events, at, by_episode)
    return {"kind": "workorder", "at": at, "status": o.status, "info": o.info, "assignments": o.assignments,
            "time_limits": open_limits, "visits": o.visits, "incident_id": o.incident_id, **calls,
            "events_applied": len(events), "last_event": last_event(events[-1] if events else None)}
