"""Post-event review 复盘: the read model, and the statistics computed from the audit trail.

`PostEventReviewWorkflow` is the source of truth while it runs; these rows let the API
answer without asking Temporal, also after the review has closed:

- `Review`: one per incident: who started it, its template, status, the sealed archive's hash.
- `ReviewUnit`: each participating unit's written summary: asked, due, submitted, late by how much.
- `ReviewReport`: every compiled version of the event report (JSON, HTML, PDF); the last is signed.
- `CaseFile`: the sealed archive 一事一档 (zip bytes and its hash).

`statistics(events_by_subject)` reads nothing but audit events (the chain is what lasts):
call-out acknowledgement rates and times per tier and channel, unreachable persons, channel
failure rates, reporting compliance, tasks and directives against their deadlines,
escalations, response levels and their changes. Activation events are used when there
are any; without them the activation section is simply empty.
"""
from __future__ import annotations

import statistics as pystats
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.replay import FAILED, EventLike, fold_activation, zh_number
from store.types import json_column, now_utc, utc_column
from workflows import subjects  # pure: how each kind of audit subject is named

# ------------------------------------------------------------------ tables


class Review(SQLModel, table=True):
    __tablename__ = "review"
    incident_id: str = Field(primary_key=True)
    workflow_id: str = Field(index=True)
    subject: str = Field(description="the review's audit subject: review/<incident_id>")
    activation_id: str | None = Field(default=None, index=True)
    title: str = ""
    status: str = Field(default="collecting", index=True,
                        description="collecting | compiled | returned | signed | sealed")
    started_by: str = "system"
    started_at: datetime = Field(sa_column=utc_column(nullable=False, index=True))
    template_id: str = ""
    template_version: str = ""
    subjects: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    gaps: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    report_version: int = 0
    signed_by: str | None = None
    signed_at: datetime | None = Field(default=None, sa_column=utc_column())
    archive_sha256: str | None = None
    sealed_at: datetime | None = Field(default=None, sa_column=utc_column())
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


class ReviewUnit(SQLModel, table=True):
    __tablename__ = "review_unit"
    __table_args__ = (UniqueConstraint("incident_id", "unit_id", name="uq_review_unit"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="review.incident_id", index=True)
    unit_id: str
    name: str = ""
    contact: str = ""
    state: str = Field(default="requested", description="requested | overdue | submitted | late")
    requested_at: datetime = Field(sa_column=utc_column(nullable=False))
    due_at: datetime = Field(sa_column=utc_column(nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=utc_column())
    submitted_by: str | None = None
    late_by_s: int | None = None
    version: int = 0
    summary: dict[str, Any] | None = Field(default=None, sa_column=json_column(),
                                           description="what worked, shortcomings, suggestions, author")
    escalation: str | None = None


class ReviewReport(SQLModel, table=True):
    __tablename__ = "review_report"
    __table_args__ = (UniqueConstraint("incident_id", "version", name="uq_review_report"),)
    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="review.incident_id", index=True)
    version: int
    final: bool = False
    compiled_at: datetime = Field(sa_column=utc_column(nullable=False))
    compiled_by: str = "system"
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    json_text: str = Field(sa_column=Column(Text, nullable=False))
    html: str = Field(sa_column=Column(Text, nullable=False))
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sha256_json: str
    sha256_pdf: str | None = None


class CaseFile(SQLModel, table=True):
    __tablename__ = "case_file"
    incident_id: str = Field(primary_key=True, foreign_key="review.incident_id")
    filename: str
    sha256: str = Field(index=True)
    size: int
    manifest_sha256: str
    manifest: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sealed_at: datetime = Field(sa_column=utc_column(nullable=False))
    sealed_by: str = "system"


# ------------------------------------------------------------------ statistics from the audit trail

ANSWERS = ("notify", "escalate")
ITEM_STATES = ("on_time", "late", "overdue", "reported", "closed", "open")  # a task's or directive's, at the end


def _t(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


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


class _Sends:
    """Every send of a subject (any `*.sent` event with a status), and the gateway's later word on it."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}

    def sent(self, ev: EventLike) -> None:
        status = ev.payload.get("status")
        self.by_key[send_key(ev)] = {"channel": ev.channel or "?", "purpose": ev.payload.get("purpose"),
                                     "failed": status in FAILED or status == "failed", "statuses": [status]}

    def delivery(self, ev: EventLike) -> None:
        s = self.by_key.get(ev.payload.get("send") or "")
        status = ev.payload.get("status")
        if s is not None:
            s["statuses"].append(status)
            if status in FAILED:
                s["failed"] = True

    def per_channel(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for s in self.by_key.values():
            c = out.setdefault(s["channel"], {"sends": 0, "failed": 0})
            c["sends"] += 1
            c["failed"] += int(s["failed"])
        for c in out.values():
            c["failure_rate"] = rate(c["failed"], c["sends"])
        return dict(sorted(out.items()))


def callout_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {}
    per_tier_total: dict[str, int] = {}
    sends = _Sends()
    out: dict[str, Any] = {"subject": subject, "warning": None, "level": None, "plan": None, "started_at": None,
                           "ended_at": None, "status": "running", "level_changes": []}
    for ev in events:
        k, p = ev.kind, ev.payload
        if k == "warning.received":
            out["warning"] = {k2: p.get(k2) for k2 in ("warning_id", "identifier", "headline", "event", "level")}
        elif k == "callout.started":
            out["level"], out["started_at"] = p.get("level"), _iso(ev.at)
        elif k == "callout.plan_chosen":
            out["plan"] = {"id": p.get("plan"), "version": p.get("version"), "category": p.get("category")}
        elif k == "callout.targets_resolved":
            for tier, n in (p.get("per_tier") or {}).items():
                per_tier_total[tier] = per_tier_total.get(tier, 0) + int(n)
        elif k == "callout.updated":
            out["level_changes"].append({"at": _iso(ev.at), "from": p.get("from_level"), "to": p.get("to_level")})
            out["level"] = p.get("to_level", out["level"])
        elif k == "callout.ended":
            out["ended_at"], out["status"] = _iso(ev.at), p.get("status") or "ended"
        tkey = p.get("target") if k.startswith("callout.") else None
        if k == "callout.delivery":
            sends.delivery(ev)
        if not tkey:
            continue
        t = targets.setdefault(tkey, {"key": tkey, "tier": tkey.partition("/")[0], "person_id": None, "first_sent": None,
                                      "acked_at": None, "ack_channel": None, "ack_by": None, "state": "pending",
                                      "escalations": 0, "late_at": None, "late_by": None})
        if k == "callout.sent":
            sends.sent(ev)
            if p.get("purpose") in ANSWERS:
                if t["state"] == "pending":
                    t["state"] = "notified"
                if t["first_sent"] is None:
                    t["first_sent"] = ev.at
                    t["person_id"] = t["person_id"] or p.get("person_id")
            continue
        if k in ("callout.ack", "callout.ack.late") and (k == "callout.ack.late" or p.get("late")):
            # answered after the target was given up, the call-out canceled or ended: answered late, not silence
            if t["acked_at"] is None and t["late_at"] is None:
                t["late_at"], t["late_by"] = ev.at, p.get("person_id")
            if k == "callout.ack.late":
                continue  # what had happened stays the target's state
        elif k == "callout.ack" and t["acked_at"] is None:
            t["acked_at"], t["ack_channel"], t["ack_by"] = ev.at, ev.channel, p.get("person_id")
        elif k == "callout.escalated":
            t["escalations"] += 1
        if p.get("state"):
            t["state"] = p["state"]

    tiers: dict[str, dict[str, Any]] = {}
    channels: dict[str, list[float]] = {}
    all_times: list[float] = []
    unreachable, late = [], []
    for t in targets.values():
        tier = tiers.setdefault(t["tier"], {"targets": 0, "acknowledged": 0, "unreachable": 0, "escalated": 0,
                                            "answered_late": 0, "_times": []})
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
        tier = tiers.setdefault(name, {"targets": 0, "acknowledged": 0, "unreachable": 0, "escalated": 0,
                                       "answered_late": 0, "_times": []})
        tier["targets"] = max(tier["targets"], total)
    for tier in tiers.values():
        tier["ack_rate"] = rate(tier["acknowledged"], tier["targets"])
        tier["time_to_ack"] = durations(tier.pop("_times"))
    total = sum(t["targets"] for t in tiers.values())
    acked = sum(t["acknowledged"] for t in tiers.values())
    out.update({
        "targets": total, "acknowledged": acked, "ack_rate": rate(acked, total),
        "answered_late": len(late), "late": sorted(late, key=lambda u: u["target"]),
        "unreachable": sorted(unreachable, key=lambda u: u["target"]),
        "escalations": sum(t["escalations"] for t in targets.values()),
        "time_to_ack": durations(all_times),
        "per_tier": dict(sorted(tiers.items())),
        "per_ack_channel": {c: durations(v) for c, v in sorted(channels.items())},
        "channels": sends.per_channel(),
    })
    return out


def reporting_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    deadlines: dict[str, dict[str, Any]] = {}
    sends = _Sends()
    out: dict[str, Any] = {"subject": subject, "title": None, "received_at": None, "severity": None,
                           "closed_at": None, "reports": [], "triggers": [], "refusals": 0}
    receipts: dict[str, dict[str, Any]] = {}
    escalations = 0

    def dl(key: str, label: str | None = None, due: Any = None) -> dict[str, Any]:
        d = deadlines.setdefault(key, {"key": key, "label": label or key, "due_at": None, "met_at": None,
                                       "met_by": None, "late_by_s": None, "overdue": False, "omitted": False})
        if label:
            d["label"] = label
        if due and not d["due_at"]:
            d["due_at"] = _iso(_t(due))
        return d

    labels = {"verbal": "口头报告", "written": "书面报告"}
    for ev in events:
        k, p = ev.kind, ev.payload
        if k == "incident.received":
            out.update(title=p.get("title"), received_at=_iso(ev.at), severity=p.get("severity"),
                       category=p.get("category"), place=p.get("place"), rules=p.get("rules"),
                       rules_version=p.get("rules_version"))
            for key, due in (p.get("deadlines") or {}).items():
                dl(key, labels.get(key), due)
        elif k == "report.verbal.made":
            d = dl("verbal", "口头报告")
            d["met_at"], d["met_by"] = _iso(ev.at), "口头报告"
            d["late_by_s"] = d["late_by_s"] or 0
        elif k.startswith("report.") and k.endswith(".submitted") and k.count(".") == 2:
            seq = int(p.get("seq") or 0)
            key = "written" if seq == 0 else f"followup_{seq}"
            d = dl(key, "书面报告" if seq == 0 else f"续报{zh_number(seq)}")  # the time limit; met_by says by what
            d["met_at"], d["met_by"] = _iso(ev.at), p.get("label")
            d["late_by_s"] = d["late_by_s"] or 0
            out["reports"].append({"seq": seq, "label": p.get("label"), "kind": k.split(".")[1],
                                   "submitted_at": _iso(ev.at), "approved_by": p.get("approved_by"),
                                   "on_time": p.get("on_time")})
        elif k.startswith("report.") and k.endswith(".late"):
            d = dl(p.get("deadline") or "?", p.get("label"), p.get("due_at"))
            d["late_by_s"] = int(p.get("late_by_s") or 0)
            d["met_at"] = d["met_at"] or p.get("met_at")
        elif k.startswith("report.") and k.endswith(".overdue"):
            dl(p.get("deadline") or "?", p.get("label"), p.get("due_at"))["overdue"] = True
        elif k.startswith("report.") and k.endswith(".omitted"):
            dl(p.get("deadline") or "?", p.get("label"), p.get("due_at"))["omitted"] = True
        elif k == "incident.trigger":
            out["triggers"].append({"at": _iso(ev.at), "trigger": p.get("trigger"), "name": p.get("name")})
        elif k == "incident.closed":
            out["closed_at"] = _iso(ev.at)
        elif k == "report.refused":
            out["refusals"] += 1
        elif k.endswith(".escalated"):
            escalations += 1
        if k.endswith(".sent") and "status" in p:
            sends.sent(ev)
            if k == "report.receipt.sent" and p.get("purpose") == "notify":
                key = f"{p.get('episode')}|{p.get('target')}"
                receipts.setdefault(key, {"confirmed": False})
        elif k.endswith(".delivery"):
            sends.delivery(ev)
        elif k == "report.receipt.ack":
            receipts.setdefault(f"{p.get('episode')}|{p.get('target')}", {})["confirmed"] = True
    rows = []
    for d in sorted(deadlines.values(), key=lambda d: (d["due_at"] or d["met_at"] or "9", d["key"])):
        if d["late_by_s"]:
            state = "late"
        elif d["met_at"] is not None:
            state = "on_time"
        elif d["omitted"]:
            state = "omitted"
        else:
            state = "overdue" if d["overdue"] else "open"
        late = d["late_by_s"] or None
        rows.append({**{k: d[k] for k in ("key", "label", "due_at", "met_at", "met_by")}, "state": state,
                     "late_by_s": late, "late_by_min": -(-late // 60) if late else None})
    count = {s: sum(r["state"] == s for r in rows) for s in ("on_time", "late", "omitted", "overdue", "open")}
    out.update({"deadlines": rows, "compliance": {"deadlines": len(rows), **count,
                                                  "on_time_rate": rate(count["on_time"], len(rows) - count["open"])},
                "receipts": {"asked": len(receipts), "confirmed": sum(1 for r in receipts.values() if r.get("confirmed"))},
                "escalations": escalations, "channels": sends.per_channel()})
    return out


def _item_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Tasks or directives against their time limits: done on time, done late, overdue (not done past the limit,
    also when closed so), reported and awaiting acceptance, closed before the limit without being done, open."""
    out = []
    for it in sorted(rows, key=lambda r: (r["opened_at"], r["id"])):
        out.append({"id": it["id"], "label": it["label"], "unit": it["unit"] or it["group"], "assignee": it["assignee"],
                    "opened_at": _iso(it["opened_at"]), "due_at": _iso(it["due_at"]),
                    "first_due_at": _iso(it["first_due_at"]), "acknowledged_at": _iso(it["acknowledged_at"]),
                    "done_at": _iso(it["done_at"]), "closed_at": _iso(it["closed_at"]), "state": it["state"],
                    "late_by_s": it["late_by_s"], "late_by_min": -(-it["late_by_s"] // 60) if it["late_by_s"] else None,
                    "returns": it["returns"], "reminders": it["reminders"], "escalations": it["escalations"]})
    count = {s: sum(r["state"] == s for r in out) for s in ITEM_STATES}
    done = count["on_time"] + count["late"]
    return {"total": len(out), **count, "completed": done, "completion_rate": rate(done, len(out)),
            "on_time_rate": rate(count["on_time"], len(out)), "escalations": sum(r["escalations"] for r in out),
            "items": out}


def activation_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    """Levels and their changes with their times, tasks and directives against their time limits, escalations,
    dispatches and reinforcement requests, from the activation's events (see store/replay.py fold_activation)."""
    end = events[-1].at if events else datetime.max.replace(tzinfo=UTC)
    st = fold_activation(events, end)
    levels = [{"at": _iso(lv["at"]), "from": lv["from"], "to": lv["to"], "direction": lv["direction"], "by": lv["by"],
               "reason": lv["reason"], "until": _iso(lv["until"]), "duration_s": lv["duration_s"]} for lv in st["levels"]]
    rein = st["reinforcements"]
    sends = _Sends()
    for ev in events:
        if ev.kind.endswith(".sent") and "status" in ev.payload:
            sends.sent(ev)
        elif ev.kind.endswith(".delivery"):
            sends.delivery(ev)
    return {"subject": subject, "plan": st["plan_id"], "plan_name": st["plan_name"], "commander": st["commander"],
            "started_at": _iso(st["started_at"]), "terminated_at": _iso(st["terminated_at"]),
            "terminated_by": st["terminated_by"], "level": st["level"], "levels": levels,
            "level_changes": [lv for lv in levels if lv["from"] is not None],
            "tasks": _item_rows([i for i in st["items"] if i["kind"] == "task"]),
            "directives": _item_rows([i for i in st["items"] if i["kind"] == "directive"]),
            "dispatches": {"total": len(st["dispatches"]),
                           "approved": sum(d["state"] == "approved" for d in st["dispatches"])},
            "reinforcements": {"total": len(rein), **{s: sum(r["state"] == s for r in rein)
                                                     for s in ("on_time", "late", "overdue", "open", "closed")}},
            "escalations": st["escalations"], "channels": sends.per_channel()}


def review_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    units: dict[str, dict[str, Any]] = {}
    sends = _Sends()
    for ev in events:
        k, p = ev.kind, ev.payload
        if k.endswith(".sent") and "status" in p:
            sends.sent(ev)
        elif k.endswith(".delivery"):
            sends.delivery(ev)
        if k == "review.started":
            for u in p.get("units") or []:
                units.setdefault(u["id"], {"unit_id": u["id"], "name": u.get("name"), "due_at": p.get("due_at"),
                                           "submitted_at": None, "late_by_s": None, "overdue": False})
        elif k == "review.summary.submitted" and p.get("first", True):
            u = units.setdefault(p["unit_id"], {"unit_id": p["unit_id"], "name": p.get("unit"), "due_at": p.get("due_at"),
                                                "overdue": False})
            u["submitted_at"], u["late_by_s"] = _iso(ev.at), p.get("late_by_s") or None
        elif k == "review.summary.overdue" and p.get("unit_id") in units:
            units[p["unit_id"]]["overdue"] = True
    rows = list(units.values())
    return {"subject": subject, "units": len(rows), "submitted": sum(1 for u in rows if u["submitted_at"]),
            "on_time": sum(1 for u in rows if u["submitted_at"] and not u["late_by_s"]),
            "late": sum(1 for u in rows if u["late_by_s"]),
            "missing": [u["unit_id"] for u in rows if not u["submitted_at"]],
            "escalations": sum(1 for ev in events if ev.kind.endswith(".escalated")), "items": rows,
            "channels": sends.per_channel()}


def linked_callouts(session: Any, incident_id: str) -> list[str]:
    """The call-outs an incident follows from, as the system recorded them when it was received
    (`incident.received` → `related`, checked at intake: call-outs with an audit trail).

    Only these join the incident's case (its review, report and case file); a subject named by
    whoever starts the review, or by any other event's payload, never does (issue 16, finding 14)."""
    from store.audit import AuditChain
    from store.replay import load_events

    out: list[str] = []
    for ev in load_events(session, subjects.incident_subject(incident_id)):
        if ev.kind != "incident.received":
            continue
        for v in ev.payload.get("related") or []:
            if isinstance(v, str) and subjects.kind_of(v) == "callout" and v not in out \
                    and session.get(AuditChain, v) is not None:
                out.append(v)
    return out


def kind_of(subject: str, events: list[EventLike]) -> str:
    """callout | reporting | activation | review | other: from the subject's form (workflows/subjects.py),
    else from its events."""
    named = subjects.kind_of(subject)
    if named in ("callout", "activation", "review"):
        return named
    kinds = {ev.kind.split(".", 1)[0] for ev in events[:50]}
    if "activation" in kinds:
        return "activation"
    if "review" in kinds:
        return "review"
    if "callout" in kinds:
        return "callout"
    if "incident" in kinds or "report" in kinds:
        return "reporting"
    return "other"


def statistics(by_subject: dict[str, list[EventLike]]) -> dict[str, Any]:
    """Every figure of the event report, from the audit events of the case's subjects (each in chain order)."""
    out: dict[str, Any] = {"callouts": [], "reporting": [], "activations": [], "review": None}
    channels: dict[str, dict[str, Any]] = {}
    escalations: dict[str, int] = {}
    for subject, events in by_subject.items():
        kind = kind_of(subject, events)
        if kind == "callout":
            st = callout_stats(subject, events)
            out["callouts"].append(st)
        elif kind == "reporting":
            st = reporting_stats(subject, events)
            out["reporting"].append(st)
        elif kind == "activation":
            st = activation_stats(subject, events)
            out["activations"].append(st)
        elif kind == "review":
            st = review_stats(subject, events)
            out["review"] = st
        else:
            continue
        for ch, c in (st.get("channels") or {}).items():
            agg = channels.setdefault(ch, {"sends": 0, "failed": 0})
            agg["sends"] += c["sends"]
            agg["failed"] += c["failed"]
        escalations[subject] = st.get("escalations", 0)
    for c in channels.values():
        c["failure_rate"] = rate(c["failed"], c["sends"])
    out["channels"] = dict(sorted(channels.items()))
    out["escalations"] = {"total": sum(escalations.values()), "by_subject": escalations}
    out["events"] = {subject: len(events) for subject, events in by_subject.items()}
    return out


# ------------------------------------------------------------------ the timeline of significant events

LEVEL_ZH = {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色", "I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级",
            "IV": "Ⅳ级", "1": "Ⅰ级", "2": "Ⅱ级", "3": "Ⅲ级", "4": "Ⅳ级"}
STATUS_ZH = {"completed": "全部完成", "canceled": "已取消", "downgraded": "降级结束"}


def _lv(value: Any) -> str:
    return LEVEL_ZH.get(str(value), str(value or "")) if value not in (None, "") else "—"


def _hm(value: Any) -> str:
    """A time limit as HH:MM in the configured time zone (the timeline's own times are rendered by the template)."""
    t = _t(value)
    if t is None:
        return "—"
    from zoneinfo import ZoneInfo

    from config import get_settings

    return t.astimezone(ZoneInfo(get_settings().timezone)).strftime("%m-%d %H:%M")


def describe(ev: EventLike, labels: dict[str, str] | None = None) -> str | None:
    """A significant event in one Chinese line; None for the many small ones (sends, timeouts…).

    `labels` remembers the names of tasks and directives between events (a completion may not repeat it)."""
    k, p = ev.kind, ev.payload
    labels = labels if labels is not None else {}
    simple = {
        "warning.received": lambda: f"收到预警:{p.get('headline') or p.get('event') or ''}({_lv(p.get('level'))})",
        "warning.update": lambda: f"预警更新:{p.get('headline') or ''}({_lv(p.get('level'))})",
        "warning.cancel": lambda: "预警解除",
        "callout.started": lambda: f"启动叫应({_lv(p.get('level'))}预警)",
        "callout.updated": lambda: f"预警等级由{_lv(p.get('from_level'))}调整为{_lv(p.get('to_level'))},叫应随之调整",
        "callout.cancel_requested": lambda: f"叫应取消:{p.get('reason') or ''}",
        "callout.summary": lambda: f"叫应汇总:{p.get('acknowledged', '?')}/{p.get('total', '?')}人已应答",
        "callout.ended": lambda: f"叫应结束({STATUS_ZH.get(p.get('status'), p.get('status'))})",
        "incident.received": lambda: f"接报:{p.get('title') or ''}(来源{p.get('source') or '—'})",
        "report.verbal.made": lambda: f"口头报告{p.get('to_whom') or ''}" + ("" if p.get("on_time", True) else "(迟报)"),
        "incident.trigger": lambda: f"触发:{p.get('name') or p.get('trigger')}",
        "incident.closed": lambda: "信息报送以终报结束",
        "activation.started": lambda: f"启动{_lv(p.get('level'))}应急响应"
                                      + (f"({p.get('plan_name') or p.get('plan')})" if p.get("plan") else ""),
        "activation.level.changed": lambda: (f"响应{'提升' if p.get('direction') == 'up' else '调整'}:由"
                                             f"{_lv(p.get('from'))}调整为{_lv(p.get('to'))}"
                                             + (f"({p['reason']})" if p.get("reason") else "")),
        "activation.terminated": lambda: f"终止应急响应({p.get('reason') or ''})",
        "activation.review.started": lambda: "响应终止,启动复盘总结",
        "activation.dispatch.approved": lambda: f"批准力量调度方案{p.get('seq')},下达出动指令",
        "activation.dispatch.returned": lambda: f"退回力量调度方案{p.get('seq')}",
        "activation.reinforcement.requested": lambda: f"向{p.get('to') or '上级'}请求增援:{p.get('detail') or ''}",
        "activation.reinforcement.answered": lambda: f"增援请求{p.get('seq')}获答复:{p.get('detail') or p.get('decision')}",
        "activation.reinforcement.overdue": lambda: f"增援请求{p.get('seq')}超过答复时限,催办",
        "review.started": lambda: f"启动复盘总结,请{len(p.get('units') or [])}个参与单位报送书面总结",
        "review.summary.submitted": lambda: (f"{p.get('unit')}报送书面总结" if p.get("first", True)
                                             else f"{p.get('unit')}修改书面总结(第{p.get('version')}版)"),
        "review.summary.late": lambda: f"{p.get('unit')}书面总结{p.get('mark')}",
        "review.summary.overdue": lambda: f"{p.get('unit')}书面总结逾期未报",
        "review.report.compiled": lambda: f"汇编初步事件报告(第{p.get('version')}版)",
        "review.report.returned": lambda: f"带班领导退回事件报告:{p.get('comments') or ''}",
        "review.report.signed": lambda: f"带班领导签发事件报告(第{p.get('version')}版)",
    }
    if k in simple:
        return simple[k]()
    if k.startswith("report.") and k.count(".") == 2:
        _, what, verb = k.split(".")
        label = p.get("label") or {"verbal": "口头报告", "written": "书面报告"}.get(what, what)
        if verb == "submitted":
            return f"{label}报出(审核签发:{p.get('approved_by') or '—'})"
        if verb == "approved":
            return f"{label}第{p.get('version')}稿审核通过"
        if verb == "late":
            return f"{label}{p.get('mark') or '迟报'}"
        if verb == "overdue":
            return f"{label}超过时限未报,督促值班长"
        if verb == "omitted":
            return f"{label}漏报"
    parts = k.split(".")
    if len(parts) == 3 and parts[0] == "activation" and parts[1] in ("task", "directive") and p.get("item"):
        zh = "任务" if parts[1] == "task" else "指令"
        ident = str(p["item"])
        label = p.get("title") or labels.get(ident) or ident
        labels[ident] = label
        verb = parts[2]
        if verb in ("opened", "issued"):
            return f"{zh}{ident}下达:{label}(时限{_hm(p.get('due_at'))},{p.get('assignee') or '—'})"
        if verb == "feedback" and p.get("kind") == "done":
            return f"{zh}{ident}反馈完成:{label}" + ("(超过时限)" if p.get("after_due") else "")
        if verb == "accepted":
            return f"{zh}{ident}办结:{label}"
        if verb == "returned":
            return f"{zh}{ident}完成反馈被退回:{p.get('comments') or ''}"
        if verb == "overdue":
            return f"{zh}{ident}超过时限未完成,督办:{label}"
        if verb == "late":
            return f"{zh}{ident}{p.get('mark') or '逾期办结'}:{label}"
    if k == "activation.hq.convened":
        return f"{_lv(p.get('level'))}响应:召集指挥部{len(p.get('seats') or {})}个岗位、{len(p.get('groups') or [])}个工作组"
    return None


def timeline(by_subject: dict[str, list[EventLike]], limit: int = 400) -> list[dict[str, Any]]:
    rows = []
    for subject, events in by_subject.items():
        labels: dict[str, str] = {}
        for ev in events:
            text = describe(ev, labels)
            if text:
                rows.append({"at": ev.at, "subject": subject, "kind": ev.kind, "actor": ev.actor, "text": text})
    rows.sort(key=lambda r: (r["at"], r["subject"]))
    if len(rows) > limit:
        rows = rows[:limit // 2] + [{"at": rows[limit // 2]["at"], "subject": "", "kind": "…", "actor": "",
                                     "text": f"(其间{len(rows) - limit}条从略,见案卷审计记录)"}] + rows[-(limit // 2):]
    return [{**r, "at": _iso(r["at"])} for r in rows]
