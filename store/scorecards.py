"""考核 scorecards per town (street) and per department over a period, from the audit trail (issue 22, item 1).

Plain functions over audit events, real events only (a drill's call-out, incident or check never counts):

- 叫应 (`callout_figures`): persons called, answered within the wait, answered late, never; median and p90 time to
  answer; targets that needed an escalation, per tier. The target's state is folded by the event report's own
  helpers (store/review/callout_stats.py); its unit comes from the call-out's targets (`callout_target`).
- 信息报送 (`reporting_figures`): the time limits of incidents whose reporting unit or town is the unit, on time,
  late (by how much), missing (omitted or overdue), as the event report counts them (store/review/reporting_stats.py).
- 六问 (`spotcheck_figures`): checks that sampled the unit's persons, questions answered "no", follow-ups overdue.
- 督办 (`activation_figures`): tasks and directives assigned to the unit, on time, late, overdue
  (store/review/activation_stats.py).
- 工单: `store.workorders.unit_statistics` (the work order read model).
- 演练 (`drill_figures`): drill runs whose sample drew the unit, persons called, answered within the drill's window.
- 通讯录 (`contact_figures`): persons holding the unit's posts at the period's end, confirmed within a year, stale,
  numbers failing (`store.duty.contact_status`).
- 信息报送 also counts the reporting unit's own report to the duty office (迟报 from 知悉, `unit_report`).

Every figure carries `refs`: the subjects (and chain positions, where one event says it) it was computed from, so a
supervisor can open the replay (`replay_link`). A village's figures count for its town.
"""
from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict
from functools import lru_cache
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog
from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from store.replay import EventLike
from store.review.activation_stats import activation_stats
from store.review.callout_stats import TARGET_PREFIX, _new_target, _target
from store.review.common import Sends, durations, rate
from store.review.reporting_stats import reporting_stats
from workflows import subjects
from workflows.kit.events import Reporting, SpotCheck, Step
from workflows.kit.shards import parent_of

log = structlog.get_logger("yingji.scorecards")

KINDS = ("town", "department")
SECTIONS = ("callouts", "drills", "reporting", "spotchecks", "tasks", "workorders", "contacts")

UnitOf = Callable[[str | None, str], str | None]  # (call-out workflow id, target key) -> unit id


@lru_cache(maxsize=4096)
def replay_link(subject: str) -> str:
    """Where the console replays a subject (api/console/replay.py)."""
    return f"/console/replay/{quote(subject, safe='/')}"


def _ref(subject: str, seq: int | None = None, what: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": subject, "link": replay_link(subject)}
    if seq is not None:
        out["seq"] = seq
    if what:
        out["what"] = what
    return out


def _figure() -> dict[str, Any]:
    return {"value": 0, "refs": []}


def _add(fig: dict[str, Any], ref: dict[str, Any] | None, n: int = 1) -> None:
    fig["value"] += n
    if ref is not None:  # (None: the figure is counted for a listing, its events not kept)
        fig["refs"].append(ref)


Refs = bool | str  # keep every figure's events (True), none (False: a listing), or only one unit's (its id)


def _keeps(refs: Refs) -> Callable[[str], bool]:
    if isinstance(refs, str):
        return lambda uid: uid == refs
    return (lambda uid: True) if refs else (lambda uid: False)


def _is_drill(events: Iterable[EventLike]) -> bool:
    """A drill's trail says so in its first events (call-out started, incident received, check opened)."""
    for i, ev in enumerate(events):
        if (ev.payload or {}).get("drill") is True:
            return True
        if i >= 5:
            break
    return False


# ------------------------------------------------------------------ 叫应


def callout_id(workflow_id: str | None) -> str | None:
    """The call-out a workflow belongs to (a shard's id is `<callout id>/shard-<n>`)."""
    return parent_of(workflow_id) if workflow_id else None


def _fold_targets(evs: Iterable[EventLike]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, int | None]]]:
    """One call-out's targets folded from its events (as the event report folds them), and for each the chain
    position where it was first sent, acknowledged, answered late, escalated."""
    targets: dict[str, dict[str, Any]] = {}
    seqs: dict[str, dict[str, int | None]] = {}
    sends = Sends()
    for ev in evs:
        tkey = ev.payload.get(Step.k.target) if ev.kind.startswith(TARGET_PREFIX) else None
        if not tkey:
            continue
        t = targets.setdefault(tkey, _new_target(tkey))
        before = (t["first_sent"], t["acked_at"], t["late_at"], t["escalations"])
        _target(t, ev, sends)
        s = seqs.setdefault(tkey, {})
        for name, was, now in zip(("sent", "ack", "late", "escalated"), before,
                                  (t["first_sent"], t["acked_at"], t["late_at"], t["escalations"])):
            if was != now and name not in s:
                s[name] = ev.seq
    return targets, seqs


def _new_callout_unit() -> dict[str, Any]:
    return {"called": _figure(), "answered": _figure(), "answered_late": _figure(), "never": _figure(),
            "escalated": _figure(), "per_tier": {}, "_times": []}


def fold_callout(events: Iterable[EventLike]) -> dict[str, dict[str, Any]]:
    """A call-out subject's targets, folded per call-out workflow (its shards with it), in the compact form that
    the scorecards keep per subject (`ScorecardFold`): whether it is a drill, and per target that was called
    [key, tier, seconds to answer or None, answered late, escalations, chain positions of the first send, the
    answer, the late answer, the first escalation]."""
    by_wf: dict[str | None, list[EventLike]] = defaultdict(list)
    for ev in events:  # one call-out: its own workflow and its shards (`<callout id>/shard-<n>`)
        by_wf[callout_id(ev.workflow_id)].append(ev)
    out: dict[str, dict[str, Any]] = {}
    for wid, evs in by_wf.items():
        targets, seqs = _fold_targets(evs)
        rows = []
        for tkey, t in targets.items():
            if t["first_sent"] is None:
                continue  # resolved, never called
            sq = seqs[tkey]
            answer_s = (t["acked_at"] - t["first_sent"]).total_seconds() if t["acked_at"] is not None else None
            rows.append([tkey, t["tier"], answer_s, t["late_at"] is not None and t["acked_at"] is None,
                         t["escalations"], sq.get("sent"), sq.get("ack"), sq.get("late"), sq.get("escalated")])
        out[wid or ""] = {"drill": _is_drill(evs), "targets": rows}
    return out


def callout_figures(by_subject: dict[str, list[EventLike]], unit_of: UnitOf) -> dict[str, dict[str, Any]]:
    """叫应 per unit over the call-out subjects given (each in chain order); drills are left out."""
    return callout_figures_of({subject: fold_callout(events) for subject, events in by_subject.items()}, unit_of)


def callout_figures_of(folds: dict[str, dict[str, dict[str, Any]]], unit_of: UnitOf,
                       refs: Refs = True) -> dict[str, dict[str, Any]]:
    """叫应 per unit from the call-outs' folds (`fold_callout`), drills left out."""
    units: dict[str, dict[str, Any]] = defaultdict(_new_callout_unit)
    keeps = _keeps(refs)
    for subject, fold in folds.items():
        for wid, f in fold.items():
            if f["drill"]:
                continue
            for tkey, tier_id, answer_s, late, escalations, sent_seq, ack_seq, late_seq, esc_seq in f["targets"]:
                uid = unit_of(wid or None, tkey)
                if uid is None:
                    continue
                u = units[uid]
                tier = u["per_tier"].setdefault(tier_id, {"called": 0, "answered": 0, "answered_late": 0,
                                                          "never": 0, "escalated": 0})
                keep, what = keeps(uid), f"{wid or subject} {tkey}"
                _add(u["called"], _ref(subject, sent_seq, what) if keep else None)
                tier["called"] += 1
                if answer_s is not None:
                    _add(u["answered"], _ref(subject, ack_seq, what) if keep else None)
                    tier["answered"] += 1
                    u["_times"].append(answer_s)
                elif late:
                    _add(u["answered_late"], _ref(subject, late_seq, what) if keep else None)
                    tier["answered_late"] += 1
                else:
                    _add(u["never"], _ref(subject, None, what) if keep else None)
                    tier["never"] += 1
                if escalations:
                    _add(u["escalated"], _ref(subject, esc_seq, what) if keep else None)
                    tier["escalated"] += 1
    out = {}
    for uid, u in units.items():
        times = durations(u.pop("_times"))
        u["time_to_answer"] = {"median_s": times["median_s"], "p90_s": times["p90_s"], "n": times["n"]}
        u["answer_rate"] = rate(u["answered"]["value"], u["called"]["value"])
        out[uid] = u
    return out


# ------------------------------------------------------------------ 演练


DRILL_WINDOW_S = 1800  # seed 000 任务17: the response rate within 30 minutes


def _new_drill_unit() -> dict[str, Any]:
    return {"drills": _figure(), "called": _figure(), "responded": _figure(), "_runs": set()}


def drill_windows(by_subject: dict[str, list[EventLike]]) -> dict[str, float]:
    """Each drill run's window (its `drill.reported` says it), by run subject."""
    return {subject: (ev.payload or {}).get("window_s") or DRILL_WINDOW_S
            for subject, events in by_subject.items() for ev in events if ev.kind == "drill.reported"}


def drill_figures(by_subject: dict[str, list[EventLike]], unit_of: UnitOf) -> dict[str, dict[str, Any]]:
    """Drills per unit: the drill runs whose sample drew its persons, persons called, and those who answered within
    the drill's window (its `drill.reported` says which, 30 minutes by default) counted from their first message.
    `by_subject` holds the drill runs (`drill-…`) and their call-outs (`drill-…/callout`)."""
    folds = {subject: fold_callout(events) for subject, events in by_subject.items() if subject.endswith("/callout")}
    return drill_figures_of(folds, drill_windows(by_subject), unit_of)


def drill_figures_of(folds: dict[str, dict[str, dict[str, Any]]], windows: dict[str, float],
                     unit_of: UnitOf, refs: Refs = True) -> dict[str, dict[str, Any]]:
    """Drills per unit from the drill call-outs' folds (`fold_callout`) and the runs' windows."""
    units: dict[str, dict[str, Any]] = defaultdict(_new_drill_unit)
    keeps = _keeps(refs)
    for subject, fold in folds.items():
        run = subject.removesuffix("/callout")
        window = windows.get(run, DRILL_WINDOW_S)
        for f in fold.values():
            for tkey, _tier, answer_s, _late, _esc, sent_seq, ack_seq, _ls, _es in f["targets"]:
                uid = unit_of(subject, tkey)
                if uid is None:
                    continue
                u, keep, what = units[uid], keeps(uid), f"{run} {tkey}"
                if run not in u["_runs"]:
                    u["_runs"].add(run)
                    _add(u["drills"], _ref(run))
                _add(u["called"], _ref(subject, sent_seq, what) if keep else None)
                if answer_s is not None and answer_s <= window:
                    _add(u["responded"], _ref(subject, ack_seq, what) if keep else None)
    out = {}
    for uid, u in units.items():
        u.pop("_runs")
        u["response_rate"] = rate(u["responded"]["value"], u["called"]["value"])
        out[uid] = u
    return out


# ------------------------------------------------------------------ 通讯录: contacts kept up to date


CONTACTS_LINK = "/console/contacts"


def contact_figures(status: dict[str, dict[str, Any]], unit_of_person: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per unit, at the end of the period: the persons holding its posts, those whose contact data was confirmed
    within the stale limit (a year), those stale, and those whose number is failing (`store.duty.contact_status`)."""
    units: dict[str, dict[str, Any]] = defaultdict(lambda: {"persons": _figure(), "confirmed": _figure(),
                                                            "stale": _figure(), "failing": _figure()})
    for pid, st in sorted(status.items()):
        uid = unit_of_person.get(pid)
        if uid is None:
            continue
        u, ref = units[uid], {"subject": pid, "link": CONTACTS_LINK, "what": st.get("name") or pid}
        _add(u["persons"], ref)
        _add(u["stale"] if st["stale"] else u["confirmed"], ref)
        if st["failing"]:
            _add(u["failing"], {**ref, "error": st.get("error")})
    for u in units.values():
        u["confirmed_rate"] = rate(u["confirmed"]["value"], u["persons"]["value"])
    return dict(units)


# ------------------------------------------------------------------ 信息报送


def _new_reporting_unit() -> dict[str, Any]:
    return {"owed": _figure(), "on_time": _figure(), "late": _figure(), "missing": _figure(), "late_by_s": [],
            "own_reports": _figure(), "own_late": _figure(), "own_late_by_s": []}


def reporting_figures(by_subject: dict[str, list[EventLike]], unit_of_incident: Callable[[dict[str, Any]],
                      list[str]]) -> dict[str, dict[str, Any]]:
    """Reports owed per unit (the incident's reporting unit or town, `unit_of_incident(received payload)`): on time,
    late (by how much), missing (omitted or overdue). Limits still open or lapsed are not owed yet / any more."""
    units: dict[str, dict[str, Any]] = defaultdict(_new_reporting_unit)
    for subject, events in by_subject.items():
        received = next((ev for ev in events if ev.kind == Reporting.RECEIVED), None)
        if received is None or _is_drill(events):
            continue
        own = (received.payload or {}).get("unit_report")
        if own:  # the reporting unit's own report to the duty office, measured from when it knew (知悉)
            mine = unit_of_incident({"reporting_unit_id": own.get("unit_id"), "reporting_unit": own.get("unit")})
            if mine:
                u, ref = units[mine[0]], _ref(subject, received.seq, f"{own.get('unit') or ''}报告")
                _add(u["own_reports"], ref)
                if own.get("late_by_s"):
                    _add(u["own_late"], {**ref, "late_by_s": own["late_by_s"]})
                    u["own_late_by_s"].append(own["late_by_s"])
        owners = unit_of_incident(received.payload or {})
        if not owners:
            continue
        for row in reporting_stats(subject, events)["deadlines"]:
            state = row["state"]
            if state not in ("on_time", "late", "omitted", "overdue"):
                continue
            ref = _ref(subject, received.seq, row["label"])
            for uid in owners:
                u = units[uid]
                _add(u["owed"], ref)
                if state == "on_time":
                    _add(u["on_time"], ref)
                elif state == "late":
                    _add(u["late"], {**ref, "late_by_s": row["late_by_s"]})
                    u["late_by_s"].append(row["late_by_s"])
                else:
                    _add(u["missing"], {**ref, "state": state})
    for u in units.values():
        xs, own = u.pop("late_by_s"), u.pop("own_late_by_s")
        u["late_by_max_s"] = max(xs) if xs else None
        u["own_late_by_max_s"] = max(own) if own else None
        u["on_time_rate"] = rate(u["on_time"]["value"], u["owed"]["value"])
    return dict(units)


# ------------------------------------------------------------------ 六问


def _new_spotcheck_unit() -> dict[str, Any]:
    return {"checks": _figure(), "answered_no": _figure(), "followups_overdue": _figure()}


def spotcheck_figures(by_subject: dict[str, list[EventLike]], town_by_name: dict[str, str],
                      unit_of_person: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """六问 per town: checks that sampled its persons, questions answered "no" by them, follow-ups gone overdue. The
    events name a sampled person's town as it was called then; a town renamed since is found by the person's post
    (`unit_of_person`)."""
    by_person = unit_of_person or {}
    units: dict[str, dict[str, Any]] = defaultdict(_new_spotcheck_unit)
    for subject, events in by_subject.items():
        if _is_drill(events):
            continue
        town_of: dict[str, str] = {}
        for ev in events:
            p = ev.payload or {}
            if ev.kind == SpotCheck.OPENED:
                for s in p.get("sample") or []:
                    uid = s.get("town_id") or town_by_name.get(s.get("town") or "") or by_person.get(s.get("person_id"))
                    if uid:
                        town_of[s.get("person_id")] = uid
                for uid in sorted(set(town_of.values())):
                    _add(units[uid]["checks"], _ref(subject, ev.seq))
            elif ev.kind in (SpotCheck.ANSWERED, SpotCheck.ANSWERED_LATE) and p.get("no"):
                uid = town_of.get(p.get("person_id"))
                if uid:
                    _add(units[uid]["answered_no"], _ref(subject, ev.seq, ",".join(p["no"])), len(p["no"]))
            elif ev.kind == SpotCheck.FOLLOWUP_OVERDUE:
                uid = p.get("town_id") or town_by_name.get(p.get("town") or "") or town_of.get(p.get("key"))
                if uid:
                    _add(units[uid]["followups_overdue"], _ref(subject, ev.seq, p.get("key")))
    return dict(units)


# ------------------------------------------------------------------ 督办


def _new_task_unit() -> dict[str, Any]:
    return {"assigned": _figure(), "on_time": _figure(), "late": _figure(), "overdue": _figure()}


def activation_figures(by_subject: dict[str, list[EventLike]], unit_of_item: Callable[[str | None], str | None]
                       ) -> dict[str, dict[str, Any]]:
    """Tasks and directives of plan activations assigned to the unit (the item's unit, `unit_of_item(name or id)`):
    done on time, done late, overdue."""
    units: dict[str, dict[str, Any]] = defaultdict(_new_task_unit)
    for subject, events in by_subject.items():
        if not events or _is_drill(events):
            continue
        st = activation_stats(subject, events)
        for item in st["tasks"]["items"] + st["directives"]["items"]:
            uid = unit_of_item(item["unit"])
            if uid is None:
                continue
            ref = _ref(subject, None, item["label"] or item["id"])
            u = units[uid]
            _add(u["assigned"], ref)
            if item["state"] in ("on_time", "late", "overdue"):
                _add(u[item["state"]], {**ref, "late_by_s": item["late_by_s"]} if item["state"] == "late" else ref)
    return dict(units)


# ------------------------------------------------------------------ from the database


class ScorecardFold(SQLModel, table=True):
    """A call-out's targets folded from its trail (`fold_callout`), kept per subject with the chain length it was
    folded at: a month of call-outs of 10,000 persons is half a million events to read and decode at every request;
    a fold is read again only when its chain has grown (a late answer, say), so every figure still comes from the
    trail as it is now."""

    __tablename__ = "scorecard_fold"
    subject: str = Field(primary_key=True)
    length: int = Field(description="the subject's audit chains' length (its own and its shards', summed) when it was "
                                    "folded")
    fold: str = Field(sa_column=Column(Text, nullable=False))


def callout_folds(s: Any, subjects: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The fold of each call-out subject (its own or its drill's), from `ScorecardFold` where its chain has not grown
    since, else folded from the trail now and kept."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from store.audit import AuditChain
    from store.replay import load_events

    lengths: dict[str, int] = {}  # over the subject's chains (its own and its shards'): grows with any of them
    cached: dict[str, ScorecardFold] = {}
    for i in range(0, len(subjects), 500):
        part = subjects[i:i + 500]
        lengths.update((subj, int(n)) for subj, n in s.exec(
            select(AuditChain.subject, func.sum(AuditChain.length)).where(col(AuditChain.subject).in_(part))
            .group_by(AuditChain.subject)))
        cached.update({r.subject: r for r in s.exec(select(ScorecardFold).where(col(ScorecardFold.subject).in_(part)))})
    out: dict[str, dict[str, dict[str, Any]]] = {}
    fresh: list[dict[str, Any]] = []
    for subject in subjects:
        row = cached.get(subject)
        if row is not None and row.length == lengths.get(subject):
            out[subject] = json.loads(row.fold)
            continue
        fold = out[subject] = fold_callout(load_events(s, subject))  # (read after its length: never older)
        fresh.append({"subject": subject, "length": lengths.get(subject, 0), "fold": json.dumps(fold)})
    if fresh:  # kept aside: the caller may hold the database's write lock (a bulletin compiling in an activity)
        threading.Thread(target=_keep, args=(fresh,), name="scorecard-folds", daemon=True).start()
    return out


def _keep(rows: list[dict[str, Any]]) -> None:
    """Keep folds; a failure only costs the next request the time to fold again."""
    from store.db import session_scope

    try:
        with session_scope() as s:
            for r in rows:
                found = s.get(ScorecardFold, r["subject"])
                if found is None:
                    s.add(ScorecardFold(**r))
                elif found.length < r["length"]:
                    found.length, found.fold = r["length"], r["fold"]
    except Exception as exc:  # noqa: BLE001 - a cache
        log.warning("scorecard folds not kept", error=str(exc)[:300], subjects=len(rows))


def _period_subjects(s: Any, since: datetime, until: datetime) -> list[str]:
    """Subjects whose trail began in [since, until)."""
    from sqlmodel import col, select

    from store.audit import AuditEvent

    stmt = select(AuditEvent.subject).where(AuditEvent.chain_seq == 1, col(AuditEvent.at) >= since,
                                             col(AuditEvent.at) < until,
                                             AuditEvent.chain == AuditEvent.subject)  # (not a shard's chain)
    return list(s.exec(stmt))


def unit_directory(s: Any) -> dict[str, Any]:
    """The towns and departments (a village counts for its town), by id and by name."""
    from sqlmodel import select

    from store.directory import OrgUnit

    rows = list(s.exec(select(OrgUnit.id, OrgUnit.name, OrgUnit.kind, OrgUnit.parent_id)))  # columns: 10,000s of rows
    parent = {uid: parent_id for uid, _, _, parent_id in rows}
    scored = {uid: {"unit_id": uid, "name": name, "kind": kind} for uid, name, kind, _ in rows if kind in KINDS}
    rolled: dict[str | None, str | None] = {}

    def roll_up(uid: str | None) -> str | None:
        if uid in rolled:
            return rolled[uid]
        start, seen = uid, 0
        while uid and uid in parent and uid not in scored and seen < 10:
            uid, seen = parent[uid], seen + 1
        rolled[start] = found = uid if uid in scored else None
        return found

    by_name = {name: uid for uid, name, _, _ in rows}
    return {"units": scored, "roll_up": roll_up, "by_name": by_name}


def contact_limits(duty: Any) -> tuple[timedelta, timedelta] | None:
    """(stale after, failing window) of contact data as the duty definitions set them (definitions/duty/
    freshness.yaml), for `scorecards(freshness=…)`; None without duty definitions (the defaults)."""
    return (duty.freshness.stale_after, duty.freshness.failing_window) if duty is not None else None


def scorecards(s: Any, since: datetime, until: datetime, kind: str | None = None, unit_id: str | None = None,
               freshness: tuple[timedelta, timedelta] | None = None, refs: bool = True) -> list[dict[str, Any]]:
    """Every town's and department's figures over [since, until) (or `kind`'s, or one unit's). `freshness`: (stale
    after, failing window) of contact data, as definitions/duty/freshness.yaml sets them (a year, 90 days). `refs`:
    each figure with the events it came from (one unit's page); without, the call-outs' and drills' counts come
    alone (a listing: a month of large call-outs names hundreds of thousands of events)."""
    keep: Refs = (unit_id or True) if refs else False
    from sqlmodel import col, select

    from store.callouts import CalloutTarget
    from store.directory import Post
    from store.duty import contact_status
    from store.replay import load_events
    from store.workorders import unit_statistics

    d = unit_directory(s)
    roll_up, by_name = d["roll_up"], d["by_name"]
    groups: dict[str, dict[str, list[EventLike]]] = {k: {} for k in ("callout", "incident", "spotcheck", "activation",
                                                                      "drill")}
    folded: list[str] = []  # call-outs, real and drills': folded (store.scorecards.ScorecardFold)
    for subject in _period_subjects(s, since, until):
        kind_of = subjects.kind_of(subject)
        if kind_of == "callout" or (kind_of == "drill" and subject.endswith("/callout")):
            folded.append(subject)
        elif kind_of in groups:
            groups[kind_of][subject] = load_events(s, subject)
    folds = callout_folds(s, folded)
    wids = {wid for fold in folds.values() for wid in fold if wid}
    target_unit: dict[tuple[str, str], str] = {}
    if wids:
        stmt = select(CalloutTarget.callout_id, CalloutTarget.target_key, CalloutTarget.org_unit_id)
        for cid, key, uid in s.exec(stmt.where(col(CalloutTarget.callout_id).in_(sorted(wids)))):
            target_unit[(cid, key)] = uid
    posts = sorted(s.exec(select(Post.id, Post.org_unit_id, Post.person_id)), key=lambda p: p[0] or 0)
    post_unit = {str(post_id): unit for post_id, unit, _ in posts}
    person_unit: dict[str, str] = {}
    for _, unit, person in posts:  # a person holding posts in two units counts for the first
        uid = roll_up(unit)
        if uid is not None:
            person_unit.setdefault(person, uid)

    def unit_of(wid: str | None, key: str) -> str | None:
        uid = target_unit.get((wid or "", key)) or post_unit.get(key.partition("/")[2])
        return roll_up(uid)

    def unit_of_incident(p: dict[str, Any]) -> list[str]:
        out = []
        named = by_name.get(p.get("reporting_unit") or "") if not p.get("reporting_unit_id") else None
        for v in (p.get("reporting_unit_id"), named, p.get("town_id")):  # the incident's as received (ReportingInfo)
            uid = roll_up(v) if isinstance(v, str) else None
            if uid and uid not in out:
                out.append(uid)
        return out

    def unit_of_item(v: str | None) -> str | None:
        return roll_up(v) or roll_up(by_name.get(v or "")) if v else None

    fresh = freshness or (timedelta(days=365), timedelta(days=90))
    if unit_id is not None:  # one unit's page: only its persons' contact data is read
        person_unit = {p: u for p, u in person_unit.items() if u == unit_id}
    status = contact_status(s, person_unit, until, fresh[0], fresh[1])
    sections = {
        "callouts": callout_figures_of({k: v for k, v in folds.items() if subjects.kind_of(k) == "callout"}, unit_of,
                                       keep),
        "drills": drill_figures_of({k: v for k, v in folds.items() if subjects.kind_of(k) == "drill"},
                                   drill_windows(groups["drill"]), unit_of, keep),
        "contacts": contact_figures(status, person_unit),
        "reporting": reporting_figures(groups["incident"], unit_of_incident),
        "spotchecks": spotcheck_figures(groups["spotcheck"], by_name, person_unit),
        "tasks": activation_figures(groups["activation"], unit_of_item),
        "workorders": {u: {**asdict(st), "refs": [_ref(m.split("/")[0], None, m) for m in st.late_marks]}
                       for u, st in unit_statistics(s, since, until).items()},
    }
    rows = []
    for uid, u in sorted(d["units"].items()):
        if (kind and u["kind"] != kind) or (unit_id and uid != unit_id):
            continue
        rows.append({**u, **{name: sections[name].get(uid) for name in SECTIONS}})
    if not refs:  # the call-outs' and drills' figures counted without their events: say so by leaving refs out
        for row in rows:
            for name in ("callouts", "drills"):
                for fig in (row[name] or {}).values():
                    if isinstance(fig, dict):
                        fig.pop("refs", None)
    return rows


def events_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event (or subject) a unit's figures were computed from, once, with the figures it counts in."""
    seen: dict[tuple[str, int | None], dict[str, Any]] = {}
    for section in SECTIONS:
        if section == "contacts":  # the directory's state at the period's end, not events
            continue
        for name, fig in (card.get(section) or {}).items():
            refs = fig.get("refs") if isinstance(fig, dict) else fig if name == "refs" else None
            for ref in refs or []:
                key = (ref["subject"], ref.get("seq"))
                e = seen.setdefault(key, {"subject": ref["subject"], "seq": ref.get("seq"), "link": ref["link"],
                                          "figures": []})
                label = section if name == "refs" else f"{section}.{name}"
                if label not in e["figures"]:
                    e["figures"].append(label)
    return sorted(seen.values(), key=lambda e: (e["subject"], e["seq"] or 0))
