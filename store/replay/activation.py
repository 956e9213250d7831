"""The replay of a plan activation (PlanActivationWorkflow, under ``activation/<id>``), and the fold that the
report's statistics share.

What the workflow writes, and so what the replay and the statistics read (the payload models of
workflows/kit/events.py name the keys):

- ``activation.started`` (level, plan, plan_version, commander: the level's commander label, reason …);
- ``activation.hq.convened`` (level, seats: post key -> roles, groups) each time a level calls its HQ;
- ``activation.level.changed`` (from, to, direction up|down, reason; the actor decided it);
- a task or directive: ``activation.task.opened`` / ``activation.directive.issued`` (item, title, group, unit,
  assignee, due_at, feedback_required); its notice's escalation episode ``notice/<item>`` records
  ``activation.notice.ack`` (target = the item; or, when nobody could be called, payload item);
  ``activation.item.reminder`` (item); ``activation.<kind>.feedback`` (item, kind progress|blocked|done);
  ``.accepted`` / ``.returned`` (item, due_at as it stands after the decision, late_by_s);
  ``.overdue`` (item, due_at; episode ``overdue/<item>/<round>`` calls the assignee, then the superior);
  ``.late`` (item, late_by_s, mark); ``.closed`` (item, reason: level changed or response terminated);
- ``activation.dispatch.drafted|consulted|approved|returned`` (seq …), orders in episode ``orders/<seq>``;
- ``activation.reinforcement.requested|answered|overdue`` (seq, due_at, late_by_s);
- ``activation.terminated`` (reason, level, closed_items) and ``activation.review.started`` (workflow_id).

A task or directive is done when its "done" feedback is accepted (or, for one that needs no feedback,
when it is acknowledged or reported done); it is late when that report came after the time limit in
force (a return with more time sets a new one), as the workflow measures it.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from store.replay.common import EventLike, last_event, parse_time, require_zone
from store.replay.episodes import replay_episodes
from workflows.kit.events import (
    Activation,
    ActivationStarted,
    DispatchStep,
    Escalation,
    HqConvened,
    ItemStep,
    LevelChanged,
    NoticeAck,
    ReinforcementStep,
    ReviewStartedByActivation,
    Step,
    Terminated,
)

ITEM_KINDS = Activation.ITEMS
ITEM_OPENED = Activation.OPENED
DUE_KEYS = (ItemStep.k.due_at,)  # a task's, directive's or reinforcement request's time limit in the payload
_ESCALATED = "." + Escalation.ESCALATED
_FEEDBACK_STATUS = {"progress": "in_progress", "blocked": "blocked", "done": "reported"}


def _new_item(ident: str, kind: str) -> dict[str, Any]:
    return {"id": ident, "kind": kind, "label": None, "group": None, "unit": None, "assignee": None,
            "issued_by": None, "opened_at": None, "first_due_at": None, "due_at": None, "feedback_required": True,
            "status": "open", "acknowledged_at": None, "acknowledged_by": None, "acknowledged_via": None,
            "reported_at": None, "accepted_at": None, "done_at": None, "closed_at": None, "closed_reason": None,
            "overdue_at": None, "returns": 0, "reminders": 0, "escalations": 0, "late_mark": None}


def _item_episode(name: str | None) -> str | None:
    """The item an escalation episode follows up: ``notice/<item>`` or ``overdue/<item>/<round>``."""
    if not name:
        return None
    head, _, rest = name.partition("/")
    if head == "notice":
        return rest or None
    if head == "overdue":
        return rest.rsplit("/", 1)[0] if "/" in rest else rest or None
    return None


def _item_state(it: dict[str, Any], at: datetime) -> tuple[str, int | None]:
    """(on_time | late | reported | overdue | closed | open, seconds late) of a task or directive at `at`."""
    due = it["due_at"]
    if it["done_at"] is not None:
        late = max(0, math.ceil((it["done_at"] - due).total_seconds())) if due is not None else 0
        return ("late" if late else "on_time"), (late or None)
    if it["closed_at"] is not None:
        overdue = it["overdue_at"] is not None or (due is not None and it["closed_at"] >= due)
        return ("overdue" if overdue else "closed"), None
    if it["reported_at"] is not None:
        return "reported", None  # reported done, awaiting acceptance: the time limit no longer runs
    if it["overdue_at"] is not None or (due is not None and at >= due):
        return "overdue", None
    return "open", None



class _Fold:
    """An activation's events applied one by one."""

    def __init__(self) -> None:
        self.out: dict[str, Any] = {
            "status": "not started", "plan_id": None, "plan_name": None, "plan_version": None, "level": None,
            "level_name": None, "commander": None, "commander_post": None, "started_at": None, "started_by": None,
            "terminated_at": None, "terminated_by": None, "termination_reason": None, "review_workflow_id": None}
        self.levels: list[dict[str, Any]] = []
        self.items: dict[str, dict[str, Any]] = {}
        self.dispatches: dict[int, dict[str, Any]] = {}
        self.reinforcements: dict[int, dict[str, Any]] = {}
        self.escalations = 0
        self.by_kind = {Activation.STARTED: self.started, Activation.HQ_CONVENED: self.convened,
                        Activation.LEVEL_CHANGED: self.level_changed, Activation.TERMINATED: self.terminated,
                        Activation.REVIEW_STARTED: self.review, Activation.REVIEW_ALREADY_STARTED: self.review,
                        Activation.NOTICE_ACK: self.notice_ack, Activation.ITEM_REMINDER: self.reminder}

    def apply(self, ev: EventLike) -> None:
        k = ev.kind
        if k.endswith(_ESCALATED):
            self.escalations += 1
            ident = _item_episode(ev.payload.get(Step.k.episode))
            if ident in self.items:
                self.items[ident]["escalations"] += 1
        handler = self.by_kind.get(k)
        if handler is not None:
            handler(ev)
            return
        parts = k.split(".")
        if len(parts) != 3 or parts[0] != "activation":
            return
        if parts[1] in ITEM_KINDS:
            self.item(ev, parts[1], parts[2])
        elif parts[1] == "dispatch" and ev.payload.get(DispatchStep.k.seq) is not None:
            self.dispatch(ev, parts[2])
        elif parts[1] == "reinforcement" and ev.payload.get(ReinforcementStep.k.seq) is not None:
            self.reinforcement(ev, parts[2])

    # the response as a whole

    def started(self, ev: EventLike) -> None:
        s = ActivationStarted.read(ev.payload)
        self.out.update(status="active", plan_id=s.plan, plan_name=s.plan_name, plan_version=s.plan_version,
                        level=s.level, level_name=s.level_name, commander=s.commander, started_at=ev.at,
                        started_by=ev.actor)
        self.levels.append({"n": 0, "at": ev.at, "from": None, "to": s.level, "direction": None, "by": ev.actor,
                            "reason": s.reason})

    def convened(self, ev: EventLike) -> None:
        seats = HqConvened.read(ev.payload).seats or {}
        self.out["commander_post"] = next((key for key, roles in seats.items() if "指挥长" in (roles or [])), None)

    def level_changed(self, ev: EventLike) -> None:
        c = LevelChanged.read(ev.payload)
        self.levels.append({"n": len(self.levels), "at": ev.at, "from": c.from_ or self.out["level"], "to": c.to,
                            "direction": c.direction, "by": ev.actor, "reason": c.reason})
        self.out["level"], self.out["level_name"] = c.to, None

    def terminated(self, ev: EventLike) -> None:
        self.out.update(status="terminated", terminated_at=ev.at, terminated_by=ev.actor,
                        termination_reason=Terminated.read(ev.payload).reason)

    def review(self, ev: EventLike) -> None:
        self.out["review_workflow_id"] = ReviewStartedByActivation.read(ev.payload).workflow_id

    # tasks and directives

    def item(self, ev: EventLike, kind: str, verb: str) -> None:
        p = ItemStep.read(ev.payload)
        ident = str(p.item or "")
        if not ident:
            return
        if verb == ITEM_OPENED[kind]:
            it = self.items[ident] = _new_item(ident, kind)
            it.update(label=p.title, group=p.group, unit=p.unit, assignee=p.assignee, issued_by=ev.actor,
                      opened_at=ev.at, feedback_required=p.feedback_required is not False)
            it["first_due_at"] = it["due_at"] = parse_time(p.due_at)
            return
        it = self.items.get(ident)
        if it is not None:
            _item_step(it, ev, verb, p)

    def notice_ack(self, ev: EventLike) -> None:
        a = NoticeAck.read(ev.payload)
        it = self.items.get(str(a.target or a.item or ""))
        if it is None or it["acknowledged_at"] is not None:
            return
        it["acknowledged_at"], it["acknowledged_by"], it["acknowledged_via"] = ev.at, ev.actor, ev.channel
        if it["status"] == "open":
            it["status"] = "acknowledged" if it["feedback_required"] else "completed"
        if not it["feedback_required"] and it["done_at"] is None:
            it["done_at"] = ev.at

    def reminder(self, ev: EventLike) -> None:
        ident = str(ItemStep.read(ev.payload).item)
        if ident in self.items:
            self.items[ident]["reminders"] += 1

    # dispatches and reinforcement requests

    def dispatch(self, ev: EventLike, verb: str) -> None:
        p = DispatchStep.read(ev.payload)
        d = self.dispatches.setdefault(int(p.seq), {"seq": int(p.seq), "state": None, "forces": [], "task": None,
                                                    "drafted_at": None, "approved_at": None})
        if verb == "drafted":
            d.update(state="consulting" if p.consult_required else "drafted", forces=p.forces or [], task=p.task,
                     drafted_at=ev.at, version=p.version)
        elif verb == "consulted":
            d["state"] = "drafted" if p.agree else "returned"
        elif verb == "approved":
            d.update(state="approved", approved_at=ev.at)
        elif verb == "returned":
            d["state"] = "returned"

    def reinforcement(self, ev: EventLike, verb: str) -> None:
        p = ReinforcementStep.read(ev.payload)
        r = self.reinforcements.setdefault(int(p.seq), {
            "seq": int(p.seq), "kind": None, "detail": None, "requested_at": None, "due_at": None,
            "answered_at": None, "decision": None, "late_by_s": None, "overdue_at": None})
        if verb == "requested":
            r.update(kind=p.kind, detail=p.detail, requested_at=ev.at, due_at=parse_time(p.due_at))
        elif verb == "answered":
            r.update(answered_at=ev.at, decision=p.decision, late_by_s=p.late_by_s or None)
        elif verb == "overdue":
            r["overdue_at"] = ev.at


def _item_step(it: dict[str, Any], ev: EventLike, verb: str, p: Any) -> None:
    """A task's or directive's feedback, acceptance, return, overdue, late mark or closing."""
    due = parse_time(p.due_at)
    if verb == "feedback":
        fb = p.kind
        it["status"] = _FEEDBACK_STATUS.get(fb, it["status"])
        if fb == "done":
            it["reported_at"] = ev.at
            if not it["feedback_required"]:
                it["status"] = "completed"
                it["done_at"] = it["done_at"] or ev.at
    elif verb == "accepted":
        it["status"], it["accepted_at"] = "accepted", ev.at
        it["due_at"] = due or it["due_at"]
        it["done_at"] = it["reported_at"] or ev.at
    elif verb == "returned":
        it["status"], it["returns"], it["reported_at"] = "returned", it["returns"] + 1, None
        if due is not None and due != it["due_at"]:  # returned with more time: a new limit, not overdue yet
            it["due_at"], it["overdue_at"] = due, None
    elif verb == "overdue":
        it["overdue_at"] = it["overdue_at"] or ev.at
    elif verb == "late":
        it["late_mark"] = p.mark
    elif verb == "closed":
        it["status"], it["closed_at"], it["closed_reason"] = "closed", ev.at, p.reason


def _finish(f: _Fold, at: datetime) -> None:
    """What the events imply at `at`: the termination closes whatever still owes work (the workflow writes each
    ".closed" a moment after "activation.terminated", which carries the time), each item's and request's state,
    how long each level was in force."""
    ended = f.out["terminated_at"]
    if ended is not None:
        for it in f.items.values():
            if it["status"] not in ("accepted", "completed", "closed"):
                it["status"], it["closed_at"], it["closed_reason"] = "closed", ended, "响应终止"
    for it in f.items.values():
        it["state"], it["late_by_s"] = _item_state(it, at)
    for r in f.reinforcements.values():
        if r["answered_at"] is not None:
            r["state"] = "late" if r["late_by_s"] else "on_time"
        elif ended is not None:
            r["state"] = "closed"
        else:
            r["state"] = "overdue" if r["overdue_at"] or (r["due_at"] and at >= r["due_at"]) else "open"
    for d in f.dispatches.values():
        if ended is not None and d["state"] in ("consulting", "drafted", "returned"):
            d["state"] = "closed"
    for i, lv in enumerate(f.levels):
        until = f.levels[i + 1]["at"] if i + 1 < len(f.levels) else (ended or None)
        lv["until"] = until
        lv["duration_s"] = round((until - lv["at"]).total_seconds()) if until is not None else None


def fold_activation(events: Iterable[EventLike], at: datetime) -> dict[str, Any]:
    """Apply an activation's events written up to `at` (in chain order): its level, levels, tasks and directives,
    dispatches, reinforcement requests, termination. Shared by the replay and the report's statistics."""
    f = _Fold()
    applied, last = 0, None
    for ev in events:
        if ev.at > at:
            continue
        applied, last = applied + 1, ev
        f.apply(ev)
    _finish(f, at)
    f.out.update(levels=f.levels, items=list(f.items.values()), dispatches=list(f.dispatches.values()),
                 reinforcements=list(f.reinforcements.values()), escalations=f.escalations, events_applied=applied,
                 last_event=last_event(last))
    return f.out


def replay_activation(events: Iterable[EventLike], at: datetime) -> dict[str, Any]:
    """The state of a plan activation at `at`: the response level in force (and the levels before it), the
    tasks and directives given — acknowledged, reported, accepted on time or late, overdue, closed —, the time
    limits still open (tasks, directives, reinforcement requests), and whom its call-outs had called and who
    had answered (each escalation episode replayed as a call-out)."""
    require_zone(at)
    events = [e for e in events if e.at <= at]
    st = fold_activation(events, at)
    rows = st.pop("items")
    tasks = [r for r in rows if r["kind"] == "task"]
    directives = [r for r in rows if r["kind"] == "directive"]
    open_ = [{"key": r["id"], "kind": r["kind"], "label": r["label"], "due": r["due_at"], "overdue": r["state"] == "overdue",
              "assignee": r["assignee"]}
             for r in rows if r["state"] in ("open", "overdue") and r["closed_at"] is None and r["due_at"] is not None]
    open_ += [{"key": f"reinforcement/{r['seq']}", "kind": "reinforcement", "label": r["detail"], "due": r["due_at"],
               "overdue": r["state"] == "overdue", "assignee": None}
              for r in st["reinforcements"] if r["state"] in ("open", "overdue") and r["due_at"] is not None]
    calls = replay_episodes(events, at, None)
    return {"kind": "activation", "at": at, **st, "tasks": tasks, "directives": directives,
            "time_limits": sorted(open_, key=lambda d: (d["due"], d["key"])), **calls}
