"""待我处理: what waits for the signed-in user on the duty desk, by role, from the existing state, each with
the page where it is done.

- the leading leader (带班领导): response proposals 响应建议 to accept or decline (their own), drafts of written reports waiting for approval, review reports waiting
  for sign-off;
- the duty office (专业值班员, 值班干部, 值班长): verbal and written reports (and 续报) due, drafts returned
  to be written again, approved reports to submit, persons a call-out could not reach, to phone;
- a commander (指挥长 and the persons a response convened): their seat to answer, the tasks and
  directives assigned to them, the feedback on their response's work waiting for their decision.

The admin sees the leader's and the duty office's lists. Each entry: kind, title, detail, due (or None),
href, and for a person to phone their mobile."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from store.activations import Activation, ActivationItem
from store.callouts import Callout, CalloutTarget
from store.directory import Person
from store.incidents import Incident, IncidentDeadline, IncidentReport, ReportVersion
from store.proposals import OPEN as PROPOSAL_OPEN, Proposal
from store.review.tables import Review
from workflows.activation.state import OPEN

LEADERS = ("leading_leader",)
DUTY_OFFICE = ("duty_staff", "duty_cadre", "duty_chief")
COMMANDERS = ("commander",)
LIMIT = 50
RECENT = timedelta(days=2)
COMMAND_SEATS = {"指挥长", "副指挥长"}
LEVEL_NAMES = {"I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级", "IV": "Ⅳ级"}


def _entry(kind: str, title: str, href: str, detail: str = "", due: datetime | None = None,
           tel: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "title": title, "detail": detail, "due": due, "href": href, "tel": tel}


def for_leader(s: Session) -> list[dict[str, Any]]:
    out = []
    reports = s.exec(select(IncidentReport, Incident).join(Incident, Incident.id == IncidentReport.incident_id)
                     .where(IncidentReport.state == "in_review", Incident.status == "open")
                     .order_by(col(IncidentReport.id)).limit(LIMIT))
    for r, inc in reports:
        v = s.exec(select(ReportVersion).where(ReportVersion.incident_id == inc.id, ReportVersion.seq == r.seq,
                                               ReportVersion.version == r.version)).first()
        if v is None or v.decision is not None:
            continue
        due = s.exec(select(IncidentDeadline.due_at).where(IncidentDeadline.incident_id == inc.id,
                                                           IncidentDeadline.key == r.deadline_key)).first()
        out.append(_entry("approve_report", inc.title or inc.id, f"/console/incidents/{inc.id}#h-reports",
                          f"{r.label} v{r.version}", due))
    for rv in s.exec(select(Review).where(Review.status == "compiled").order_by(col(Review.started_at)).limit(LIMIT)):
        out.append(_entry("sign_review", rv.title or rv.incident_id, f"/console/reviews/{rv.incident_id}",
                          f"v{rv.report_version}"))
    return out


def for_proposals(s: Session, person_id: str | None) -> list[dict[str, Any]]:
    """Response proposals 响应建议 waiting for the leading leader's decision (theirs; every one for the admin)."""
    stmt = select(Proposal).where(col(Proposal.status).in_(PROPOSAL_OPEN))
    if person_id is not None:
        stmt = stmt.where(Proposal.leader_id == person_id)
    out = []
    for p in s.exec(stmt.order_by(col(Proposal.created_at)).limit(LIMIT)):
        w = (p.view or {}).get("warning") or {}
        due = p.view.get("expires_at") if p.view else None
        out.append(_entry("decide_proposal", w.get("headline") or p.warning_id, f"/console/proposals/{p.id}",
                          f"{p.plan_name} · {LEVEL_NAMES.get(p.level, p.level)}", datetime.fromisoformat(due) if due else None))
    return out


def for_duty_office(s: Session, at: datetime) -> list[dict[str, Any]]:
    out = []
    for d, inc in s.exec(select(IncidentDeadline, Incident).join(Incident, Incident.id == IncidentDeadline.incident_id)
                         .where(Incident.status == "open", col(IncidentDeadline.met_at).is_(None))
                         .order_by(col(IncidentDeadline.due_at)).limit(LIMIT)):
        out.append(_entry("report_due", inc.title or inc.id, f"/console/incidents/{inc.id}", d.label, d.due_at))
    for r, inc in s.exec(select(IncidentReport, Incident).join(Incident, Incident.id == IncidentReport.incident_id)
                         .where(Incident.status == "open", col(IncidentReport.state).in_(["returned", "approved"]))
                         .order_by(col(IncidentReport.id)).limit(LIMIT)):
        kind = "redraft" if r.state == "returned" else "submit_report"  # returned: write it again; approved: send it
        out.append(_entry(kind, inc.title or inc.id, f"/console/incidents/{inc.id}#h-reports", f"{r.label} v{r.version}"))
    rows = list(s.exec(select(CalloutTarget, Callout).join(Callout, Callout.id == CalloutTarget.callout_id)
                       .where(CalloutTarget.state == "unreachable", col(Callout.drill).is_(False),
                              Callout.started_at > at - RECENT)
                       .order_by(col(CalloutTarget.updated_at).desc()).limit(LIMIT)))
    seats = [(a, seat) for a in s.exec(select(Activation).where(Activation.status == "active"))
             for seat in a.view.get("seats", []) if seat.get("state") == "unreachable"]
    ids = [t.person_id for t, _ in rows] + [seat.get("person_id") for _, seat in seats if seat.get("person_id")]
    mobiles = {p.id: p.mobile for p in s.exec(select(Person).where(col(Person.id).in_(ids)))} if ids else {}
    for t, c in rows:
        out.append(_entry("phone", t.name or t.person_id, f"/console/callouts/{c.id}?state=unreachable",
                          c.title or c.id, tel=mobiles.get(t.person_id)))
    for a, seat in seats:  # a response's seat nobody answered: the duty office phones them
        out.append(_entry("phone", seat.get("name") or seat.get("label") or "", f"/console/activations/{a.id}",
                          f"{a.plan_name} · {'、'.join(seat.get('roles', []))}", tel=mobiles.get(seat.get("person_id") or "")))
    return out


def for_commander(s: Session, person_id: str | None) -> list[dict[str, Any]]:
    if not person_id:
        return []
    out = []
    active = list(s.exec(select(Activation).where(Activation.status == "active").order_by(col(Activation.activated_at))))
    commanding = []
    for a in active:
        for seat in a.view.get("seats", []):
            if seat.get("person_id") != person_id:
                continue
            if COMMAND_SEATS & set(seat.get("roles", [])):
                commanding.append(a.id)
            if seat.get("state") not in ("acknowledged", "nobody"):
                out.append(_entry("answer_seat", a.plan_name, f"/console/activations/{a.id}",
                                  "、".join(seat.get("roles", []))))
    names = {a.id: a.plan_name for a in active}
    mine = s.exec(select(ActivationItem).where(ActivationItem.assignee_person_id == person_id,
                                               col(ActivationItem.activation_id).in_(list(names)),
                                               col(ActivationItem.state).in_(list(OPEN)))
                  .order_by(col(ActivationItem.due_at)).limit(LIMIT)) if names else []
    for it in mine:
        out.append(_entry("do_item", it.title or it.item_id, f"/console/activations/{it.activation_id}#item-{it.item_id}",
                          names[it.activation_id], it.due_at))
    reported = s.exec(select(ActivationItem).where(col(ActivationItem.activation_id).in_(commanding),
                                                   ActivationItem.state == "reported")
                      .order_by(col(ActivationItem.reported_at)).limit(LIMIT)) if commanding else []
    for it in reported:
        out.append(_entry("review_item", it.title or it.item_id, f"/console/activations/{it.activation_id}#item-{it.item_id}",
                          names[it.activation_id], it.due_at))
    return out


def todo(s: Session, role: str, person_id: str | None, at: datetime) -> list[dict[str, Any]]:
    """待我处理 of a user with this role (and person), most pressing first within each part."""
    out: list[dict[str, Any]] = []
    if role in LEADERS or role == "admin":
        out += for_proposals(s, None if role == "admin" else person_id)
        out += for_leader(s)
    if role in DUTY_OFFICE or role == "admin":
        out += for_duty_office(s, at)
    if role in COMMANDERS:
        out += for_commander(s, person_id)
    return out
