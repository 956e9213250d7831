"""`statistics(events_by_subject)`: every figure of the event report, reading nothing but audit events (the
chain is what lasts): call-out acknowledgement rates and times per tier and channel, unreachable persons,
channel failure rates, reporting compliance, tasks and directives against their deadlines, escalations,
response levels and their changes. Activation events are used when there are any; without them the
activation section is simply empty. One module per procedure's figures; the review's own are here."""
from __future__ import annotations

from typing import Any

from store.replay import EventLike
from store.review.activation_stats import activation_stats
from store.review.callout_stats import callout_stats
from store.review.common import ESCALATED_SUFFIX, Sends, _iso, rate
from store.review.reporting_stats import reporting_stats
from workflows import subjects  # pure: how each kind of audit subject is named
from workflows.kit.events import Activation, IncidentReceived, Reporting, Review, ReviewStarted, SummaryStep


def _review_units(events: list[EventLike]) -> dict[str, dict[str, Any]]:
    units: dict[str, dict[str, Any]] = {}
    for ev in events:
        k = ev.kind
        if k == Review.STARTED:
            r = ReviewStarted.read(ev.payload)
            for u in r.units or []:
                units.setdefault(u["id"], {"unit_id": u["id"], "name": u.get("name"), "due_at": r.due_at,
                                           "submitted_at": None, "late_by_s": None, "overdue": False})
        elif k == Review.SUMMARY_SUBMITTED and SummaryStep.read(ev.payload).first:
            s = SummaryStep.read(ev.payload)
            u = units.setdefault(ev.payload[SummaryStep.k.unit_id], {
                "unit_id": ev.payload[SummaryStep.k.unit_id], "name": s.unit, "due_at": s.due_at, "overdue": False})
            u["submitted_at"], u["late_by_s"] = _iso(ev.at), s.late_by_s or None
        elif k == Review.SUMMARY_OVERDUE and SummaryStep.read(ev.payload).unit_id in units:
            units[ev.payload[SummaryStep.k.unit_id]]["overdue"] = True
    return units


def review_stats(subject: str, events: list[EventLike]) -> dict[str, Any]:
    sends = Sends()
    for ev in events:
        sends.see(ev)
    rows = list(_review_units(events).values())
    return {"subject": subject, "units": len(rows), "submitted": sum(1 for u in rows if u["submitted_at"]),
            "on_time": sum(1 for u in rows if u["submitted_at"] and not u["late_by_s"]),
            "late": sum(1 for u in rows if u["late_by_s"]),
            "missing": [u["unit_id"] for u in rows if not u["submitted_at"]],
            "escalations": sum(1 for ev in events if ev.kind.endswith(ESCALATED_SUFFIX)), "items": rows,
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
        if ev.kind != Reporting.RECEIVED:
            continue
        for v in IncidentReceived.read(ev.payload).related or []:
            if isinstance(v, str) and subjects.kind_of(v) == "callout" and v not in out \
                    and session.get(AuditChain, v) is not None:
                out.append(v)
    return out


def linked_workorders(session: Any, incident_id: str) -> list[str]:
    """The hotline work orders the incident came from (`incident.from_workorder` in the incident's own trail,
    written when the order was turned into it): they join the incident's case (its case file) like its call-outs."""
    from store.audit import AuditChain
    from store.replay import load_events

    out: list[str] = []
    for ev in load_events(session, subjects.incident_subject(incident_id)):
        v = (ev.payload or {}).get("workorder") if ev.kind == "incident.from_workorder" else None
        if isinstance(v, str) and subjects.kind_of(v) == "workorder" and v not in out \
                and session.get(AuditChain, v) is not None:
            out.append(v)
    return out


def linked_proposals(session: Any, activation_id: str) -> list[str]:
    """The response proposal an activation was started from (`activation.started` → `proposal_id`, written by the
    system when the leader accepted it, workflows/proposal.py): its subject joins the case, so the proposal and the
    decision are in the review's timeline and case file."""
    from store.audit import AuditChain
    from store.replay import load_events

    out: list[str] = []
    for ev in load_events(session, subjects.activation_subject(activation_id)):
        if ev.kind != Activation.STARTED:
            continue
        pid = (ev.payload or {}).get("proposal_id")
        if isinstance(pid, str) and pid:
            subj = subjects.proposal_subject(pid)
            if subj not in out and session.get(AuditChain, subj) is not None:
                out.append(subj)
        break
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


FIGURES = {"callout": ("callouts", callout_stats), "reporting": ("reporting", reporting_stats),
           "activation": ("activations", activation_stats), "review": ("review", review_stats)}


def statistics(by_subject: dict[str, list[EventLike]]) -> dict[str, Any]:
    """Every figure of the event report, from the audit events of the case's subjects (each in chain order)."""
    out: dict[str, Any] = {"callouts": [], "reporting": [], "activations": [], "review": None}
    channels: dict[str, dict[str, Any]] = {}
    escalations: dict[str, int] = {}
    for subject, events in by_subject.items():
        kind = kind_of(subject, events)
        if kind not in FIGURES:
            continue
        section, figures = FIGURES[kind]
        st = figures(subject, events)
        if section == "review":
            out["review"] = st
        else:
            out[section].append(st)
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
