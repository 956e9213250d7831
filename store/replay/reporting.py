"""The replay of an incident reporting chain (IncidentReportingWorkflow, under the incident's subject)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from store.replay.common import EventLike, last_event, limit_state, parse_time, require_zone, zh_number
from store.replay.episodes import replay_episodes
from workflows.kit.events import (
    ChainSettled, DeadlineStep, IncidentReceived, Reporting, Trigger, VerbalMade, WrittenReportStep)
from workflows.reporting.models import limit_label

LABELS = {"verbal": "口头报告", "written": "书面报告"}
DEADLINE_VERBS = frozenset(Reporting.DEADLINE_VERBS)


class _Chain:
    """The chain as its events say, applied one by one."""

    def __init__(self, rules: Any | None) -> None:
        self.rules = rules
        self.status, self.info, self.severity, self.closed_at, self.verbal = "not started", {}, None, None, None
        self.settled_by: str | None = None
        self.limits: dict[str, dict[str, Any]] = {}
        self.reports: dict[int, dict[str, Any]] = {}
        self.triggers: list[dict[str, Any]] = []
        self.refusals = 0

    def limit(self, key: str, label: str, due: Any = None) -> dict[str, Any]:
        d = self.limits.setdefault(key, {"key": key, "label": label, "due_at": None, "met_at": None, "met_by": None,
                                         "reminded_at": None, "late_by_s": None, "omitted": False,
                                         "lapsed": False})
        if due is not None and d["due_at"] is None:
            d["due_at"] = parse_time(due)
        return d

    def apply(self, ev: EventLike) -> None:
        k, p = ev.kind, ev.payload
        parts = k.split(".")
        if k == Reporting.RECEIVED:
            self.received(ev, IncidentReceived.read(p))
        elif k == Reporting.VERBAL_MADE:
            v = VerbalMade.read(p)
            self.verbal = {"at": ev.at, "to_whom": v.to_whom, "by_whom": v.by_whom, "recorded_by": ev.actor}
            d = self.limit("verbal", LABELS["verbal"])
            d["met_at"], d["met_by"] = ev.at, LABELS["verbal"]
        elif len(parts) == 3 and parts[0] == "report" and parts[1] in Reporting.REPORTS:
            self.report_step(ev, parts[1], parts[2])
        elif len(parts) == 3 and parts[0] == "report" and parts[1] == "verbal" and parts[2] in DEADLINE_VERBS:
            d = DeadlineStep.read(p)
            self.deadline_step(ev, parts[2], self.limit("verbal", LABELS["verbal"], d.due_at), d)
        elif k == Reporting.TRIGGER:
            t = Trigger.read(p)
            self.triggers.append({"at": ev.at, "trigger": t.trigger, "name": t.name})
        elif k == Reporting.REFUSED:
            self.refusals += 1
        elif k == Reporting.SETTLED and ChainSettled.read(p).ended:  # the review (or the response) ended the chain
            self.status, self.closed_at, self.settled_by = "closed", ev.at, ChainSettled.read(p).by
        elif k == Reporting.CLOSED:
            self.status, self.closed_at = "closed", ev.at

    def received(self, ev: EventLike, r: Any) -> None:
        self.status, self.severity = "open", r.severity
        self.info = {x: getattr(r, x) for x in ("incident_id", "title", "source", "category", "subtype", "place",
                                                 "town_id", "rules", "rules_version")}
        self.info["received_at"] = ev.at
        for key, due in (r.deadlines or {}).items():
            self.limit(key, LABELS.get(key, key), due)

    def report_step(self, ev: EventLike, what: str, verb: str) -> None:
        """`report.<written|followup|final>.<verb>`: a written report's drafts and decisions, or its time limit."""
        w = WrittenReportStep.read(ev.payload)
        seq = int(w.seq or 0)
        r = self.reports.setdefault(seq, {"seq": seq, "kind": what, "label": w.label, "state": None,
                                          "version": 0, "approved_by": None, "submitted_at": None})
        if verb == "drafted":
            r["state"], r["version"] = "in_review", w.version or r["version"] + 1
        elif verb == "approved":
            r["state"], r["approved_by"] = "approved", ev.actor
            self.severity = w.severity or self.severity
        elif verb == "returned":
            r["state"] = "returned"
        elif verb == "submitted":
            self.submitted(ev, r, seq, what)
        elif verb in DEADLINE_VERBS:
            d = DeadlineStep.read(ev.payload)
            self.deadline_step(ev, verb, self.limit(d.deadline or "?", d.label or "", d.due_at), d)

    def submitted(self, ev: EventLike, r: dict[str, Any], seq: int, what: str) -> None:
        r["state"], r["submitted_at"] = "submitted", ev.at
        d = self.limit("written" if seq == 0 else f"followup_{seq}", r["label"] or "")
        d["met_at"], d["met_by"] = ev.at, r["label"]
        if what == "final":
            d["label"] = limit_label(d["label"], r["label"])  # the final report's limit, not 续报N
            return
        nxt = self.limit(f"followup_{seq + 1}", f"续报{seq + 1}")  # the next follow-up 续报 is due after this one
        every = getattr(self.rules, "followup_every", None) if self.rules is not None else None
        if every and nxt["due_at"] is None and self.severity:
            interval = next((v for s_, v in every.items() if getattr(s_, "value", s_) == self.severity), None)
            if interval is not None:
                nxt["due_at"] = ev.at + interval

    @staticmethod
    def deadline_step(ev: EventLike, verb: str, d: dict[str, Any], step: Any) -> None:
        if verb == "late":
            d["late_by_s"] = step.late_by_s
        elif verb in ("omitted", "lapsed"):
            d[verb] = True
        elif verb == "reminder":
            d["reminded_at"] = ev.at

    def policies(self) -> dict[str, Any] | None:
        rules = self.rules
        if rules is None:
            return None
        policies = {"overdue/" + key: rules.policies[rules.overdue_policy] for key in self.limits}
        policies.update({f"receipts/{seq}": rules.policies[rules.receipt_policy] for seq in self.reports})
        policies.update({f"trigger/{t.id}": rules.policies[t.policy] for t in rules.triggers})
        return policies


def replay_reporting(events: Iterable[EventLike], at: datetime, rules: Any | None = None) -> dict[str, Any]:
    """The state of an incident reporting chain at `at`: its time limits (verbal, written, each 续报) open, met
    on time or late; the reports and their drafts; the verbal report; triggers; who was called and answered.

    `rules` (the `ReportingRules` the chain ran with) gives each follow-up's due time before it is overdue,
    and the escalation waits."""
    require_zone(at)
    events = [e for e in events if e.at <= at]
    chain = _Chain(rules)
    for ev in events:
        chain.apply(ev)
    for d in chain.limits.values():
        closed = ("omitted" if d["omitted"] else "lapsed" if d["lapsed"] else None) if d["met_at"] is None else None
        d["state"] = closed or limit_state(d["due_at"], d["met_at"], at)
        if d["label"].startswith("续报") and d["label"][2:].isdigit():  # as the workflow labels them: 续报一 …
            d["label"] = f"续报{zh_number(int(d['label'][2:]))}"
    calls = replay_episodes(events, at, chain.policies())
    rows = sorted(chain.limits.values(), key=lambda d: (d["due_at"] or datetime.max.replace(tzinfo=UTC), d["key"]))
    return {"kind": "reporting", "at": at, "status": chain.status, "level": chain.severity, "incident": chain.info,
            "verbal": chain.verbal, "time_limits": rows,
            "open_limits": [d["key"] for d in rows if d["state"] in ("open", "overdue")],
            "reports": [chain.reports[s] for s in sorted(chain.reports)], "triggers": chain.triggers,
            "refusals": chain.refusals, "closed_at": chain.closed_at, "settled_by": chain.settled_by, **calls, "events_applied": len(events),
            "last_event": last_event(events[-1] if events else None)}
