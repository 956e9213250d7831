"""Rows the duty desk reads, written straight into the store (the desk's tests: what the procedures' activities
would have written): an incident with a time limit, a draft waiting for approval, a call-out with a person it
could not reach, a response with a commander's seat and work."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from store.activations import Activation, ActivationItem
from store.callouts import Callout, CalloutTarget
from store.incidents import Incident, IncidentDeadline, IncidentReport, ReportVersion


def incident(s: Session, title: str, due_in: timedelta, key: str = "verbal", label: str = "口头报告",
             severity: str = "IV", category: str = "accident") -> str:
    iid = f"INC-T-{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    s.add(Incident(id=iid, workflow_id=f"incident-{iid}", title=title, received_at=now, source="12345",
                   category=category, severity=severity, rules_id="default", rules_version="v"))
    s.flush()
    s.add(IncidentDeadline(incident_id=iid, key=key, label=label, due_at=now + due_in))
    s.flush()
    return iid


def draft(s: Session, incident_id: str, drafted_by: str = "duty_cadre") -> None:
    now = datetime.now(UTC)
    s.add(IncidentReport(incident_id=incident_id, seq=0, kind="written", label="书面报告", deadline_key="written",
                         state="in_review", version=1))
    s.add(ReportVersion(incident_id=incident_id, seq=0, version=1, content={"place": "青溪路"}, drafted_by=drafted_by,
                        drafted_at=now))
    s.flush()


def unreachable(s: Session, person_id: str, name: str, title: str = "暴雨橙色预警叫应") -> str:
    cid = f"callout-T{uuid.uuid4().hex[:8]}"
    s.add(Callout(id=cid, plan_id="heavy_rain", plan_version="v", level="orange", category="heavy_rain", title=title))
    s.flush()
    s.add(CalloutTarget(callout_id=cid, target_key=f"towns/{person_id}", tier="towns", position_code="town_head",
                        org_unit_id="330110001", person_id=person_id, name=name, state="unreachable"))
    s.flush()
    return cid


def response(s: Session, incident_id: str, commander: str, other: str) -> str:
    """An active response: `commander` holds the commander's seat (not answered yet), is assigned one open
    directive, and a task of `other` waits for the commander's review."""
    aid = f"{incident_id}-work_safety"
    now = datetime.now(UTC)
    seats = [{"post": "p1", "roles": ["指挥长"], "label": "指挥长", "person_id": commander, "name": "指挥长", "state": "notified"}]
    s.add(Activation(id=aid, workflow_id=f"activation-{aid}", incident_id=incident_id, plan_id="work_safety",
                     plan_version="v", plan_name="青溪区生产安全事故应急预案", level="IV", activated_by="t",
                     activated_at=now, view={"seats": seats, "commanders": seats}))
    s.flush()
    s.add(ActivationItem(activation_id=aid, item_id="D1", kind="directive", title="组织现场救援", assignee="指挥长",
                         assignee_person_id=commander, due_at=now + timedelta(hours=1), state="open"))
    s.add(ActivationItem(activation_id=aid, item_id="T-check", kind="task", title="现场核查", assignee="组长",
                         assignee_person_id=other, due_at=now + timedelta(hours=1), state="reported", reported_at=now))
    s.flush()
    return aid
