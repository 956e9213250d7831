"""What makes the live duty desk sound its alarm, read from the store in one pass: warnings received and
call-outs started recently, time limits that are overdue (信息报送 deadlines, a response's tasks and
directives) and persons a call-out could not reach (every attempt failed or nobody answered).

Each alarm has a stable key: the desk's page keeps the keys it was rendered with, and its live stream
(api/console/desk.py) sends the current keys; a key the page has not seen is a new alarm. `changes` is a
small fingerprint of everything else the desk shows, so that a watcher refreshes it when it moves."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from store.activations import Activation, ActivationItem
from store.callouts import Callout, CalloutTarget
from store.incidents import Incident, IncidentDeadline
from store.warnings import Warning
from workflows.activation.state import OPEN

RECENT = timedelta(days=2)  # as the desk's list of warnings
LIMIT = 200  # alarms of one kind at most: a call-out of hundreds that reached nobody is one banner, not a flood


def _warnings(s: Session, at: datetime) -> list[dict[str, Any]]:
    rows = s.exec(select(Warning).where(Warning.received_at > at - RECENT)
                  .order_by(col(Warning.received_at).desc()).limit(LIMIT))
    return [{"key": f"warning:{w.id}", "kind": "warning", "name": w.headline or w.event or w.identifier,
             "level": w.level, "href": f"/console/callouts/{w.callout_id}" if w.callout_id else "/console/desk"}
            for w in rows]


def _callouts(s: Session, at: datetime) -> list[dict[str, Any]]:
    rows = s.exec(select(Callout).where(Callout.status == "running", col(Callout.drill).is_(False),
                                        Callout.started_at > at - RECENT)
                  .order_by(col(Callout.started_at).desc()).limit(LIMIT))
    return [{"key": f"callout:{c.id}", "kind": "callout", "name": c.title or c.id, "level": c.level,
             "href": f"/console/callouts/{c.id}"} for c in rows]


def _overdue(s: Session, at: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d, inc in s.exec(select(IncidentDeadline, Incident).join(Incident, Incident.id == IncidentDeadline.incident_id)
                         .where(Incident.status == "open", col(IncidentDeadline.met_at).is_(None),
                                IncidentDeadline.due_at <= at)
                         .order_by(col(IncidentDeadline.due_at)).limit(LIMIT)):
        out.append({"key": f"overdue:{inc.id}:{d.key}", "kind": "overdue", "name": f"{inc.title or inc.id} · {d.label}",
                    "href": f"/console/incidents/{inc.id}"})
    for it, act in s.exec(select(ActivationItem, Activation).join(Activation, Activation.id == ActivationItem.activation_id)
                          .where(Activation.status == "active", col(ActivationItem.state).in_(list(OPEN)),
                                 ActivationItem.due_at <= at)
                          .order_by(col(ActivationItem.due_at)).limit(LIMIT)):
        out.append({"key": f"overdue:{act.id}:{it.item_id}", "kind": "overdue",
                    "name": f"{act.plan_name} · {it.title or it.item_id}", "href": f"/console/activations/{act.id}"})
    return out


def _unreachable(s: Session, at: datetime) -> list[dict[str, Any]]:
    rows = s.exec(select(CalloutTarget, Callout).join(Callout, Callout.id == CalloutTarget.callout_id)
                  .where(CalloutTarget.state == "unreachable", col(Callout.drill).is_(False),
                         Callout.started_at > at - RECENT)
                  .order_by(col(CalloutTarget.updated_at).desc()).limit(LIMIT))
    out = [{"key": f"unreachable:{c.id}:{t.id}", "kind": "unreachable", "name": t.name or t.person_id,
            "detail": c.title or c.id, "href": f"/console/callouts/{c.id}?state=unreachable"} for t, c in rows]
    for a in s.exec(select(Activation).where(Activation.status == "active")):  # a response's seats nobody answered
        for seat in a.view.get("seats", []):
            if seat.get("state") == "unreachable":
                out.append({"key": f"unreachable:{a.id}:{seat.get('post')}", "kind": "unreachable",
                            "name": seat.get("name") or seat.get("label") or seat.get("post"),
                            "detail": f"{a.plan_name} · {'、'.join(seat.get('roles', []))}", "href": f"/console/activations/{a.id}"})
    return out[:LIMIT * 2]


def alarms(s: Session, at: datetime) -> list[dict[str, Any]]:
    """Every alarm the desk knows of now (new warnings, started call-outs, overdue limits, unreachable persons)."""
    return [*_warnings(s, at), *_callouts(s, at), *_overdue(s, at), *_unreachable(s, at)]


def changes(s: Session) -> list[str]:
    """A fingerprint of what else the desk shows: it changes when a call-out, an incident or a response does."""
    running = list(s.exec(select(Callout.id).where(Callout.status == "running")))
    moved = s.exec(select(func.max(CalloutTarget.updated_at)).where(col(CalloutTarget.callout_id).in_(running))).one() \
        if running else None
    marks = [sorted(running), moved, s.exec(select(func.max(Callout.started_at))).one(),
             s.exec(select(func.max(Incident.updated_at))).one(), s.exec(select(func.max(Activation.updated_at))).one()]
    return [str(m) for m in marks]
