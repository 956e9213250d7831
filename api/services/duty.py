"""The duty day in the API: schedules (drills, handovers, the spot-check sweep, the confirmation round),
handover steps, spot-check answers and follow-ups, contact confirmations, and the read models.

Recurring procedures are Temporal Schedules built from definitions/duty/*.yaml: `sync_schedules`
creates or updates them (each scheduled run gets the section as a snapshot, with its version),
keeping a paused schedule paused. Steps are workflow updates; their validators' refusals become
HTTP answers (403 role, 409 order, 422 input) and are recorded in the audit trail. No database
transaction is held while Temporal is called.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.services.answers import AnswerError, acknowledge
from api.services.steps import Refused, run_step
from config import Settings
from definitions.loader import Library
from definitions.schema.common import Level
from definitions.schema.duty import DAYS, DutySettings, Timing
from store.audit import AuditEvent, NewEvent, append
from store.callouts import Callout, CalloutTarget
from store.answers import record_late_spot_answer
from store.db import session_scope
from store.directory import Person, mask_mobile
from store.links import LinkError, consume, is_used
from store.messages import OutboxMessage
from store.duty import (
    ContactCheck,
    DrillRun,
    FreshnessRound,
    Handover,
    SpotCheck,
    SpotCheckAnswer,
    SpotCheckFollowup,
    callout_statistics,
    contact_status,
    drill_statistics,
)
from store.targets import resolve_targets
from workflows.drill import DrillInput, DrillWorkflow
from workflows.common import CONFLICT, FORBIDDEN, INVALID
from workflows.freshness import FreshnessInput, FreshnessRoundWorkflow
from workflows.handover import HandoverInput, HandoverView, HandoverWorkflow, handover_id_for
from workflows.spotcheck import AnswerIn, SpotCheckInput, SpotCheckSweepWorkflow, SpotCheckView, SpotCheckWorkflow, SweepInput, check_id_for

STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422}
SCHEDULES_SUBJECT = "schedules"


class DutyError(ValueError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def _no_schedules(exc: RPCError) -> None:
    """A Temporal server without schedules (the time-skipping test server): a 409 that says so, not a 500."""
    if exc.status == RPCStatusCode.UNIMPLEMENTED:
        raise DutyError(409, "this Temporal server does not support schedules (e.g. the time-skipping test server); "
                             "use the dev server or a cluster / 当前 Temporal 服务不支持定时任务") from exc


def duty_settings(lib: Library) -> DutySettings:
    settings = lib.duty()
    if settings is None:
        errors = "; ".join(str(e) for e in lib.errors[:5]) or "definitions/duty/*.yaml is missing a section"
        raise DutyError(503, f"the duty definitions are not usable: {errors}")
    return settings


def _audit(subject: str, kind: str, step: str, actor: str, payload: dict, workflow_id: str | None = None) -> None:
    with session_scope() as s:
        append(s, [NewEvent(subject=subject, kind=kind, step_id=f"{step}/{datetime.now(UTC).timestamp()}", actor=actor,
                            workflow_id=workflow_id, payload=payload)])


# ================================================================== schedules


@dataclass
class ScheduleDef:
    id: str
    kind: str
    name_zh: str
    name_en: str
    when_zh: str
    spec: ScheduleSpec
    action: ScheduleActionStartWorkflow
    version: str
    paused: bool = False
    catchup: timedelta = timedelta(minutes=30)


_DOW = {d: (i + 1) % 7 for i, d in enumerate(DAYS)}  # Temporal: 0 = Sunday


def _spec(timing: Timing, tz: str) -> ScheduleSpec:
    if timing.every is not None:
        return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timing.every)], time_zone_name=tz)
    days = [ScheduleRange(_DOW[d]) for d in DAYS if d in timing.days]
    calendars = []
    for at in sorted(set(timing.at)):
        h, m = (int(x) for x in at.split(":"))
        calendars.append(ScheduleCalendarSpec(hour=[ScheduleRange(h)], minute=[ScheduleRange(m)], day_of_week=days,
                                              comment=at))
    return ScheduleSpec(calendars=calendars, time_zone_name=tz)


def schedule_defs(duty: DutySettings, settings: Settings) -> list[ScheduleDef]:
    tz, tq, out = settings.timezone, settings.task_queue, []
    v = duty.versions
    for d in duty.drills.programme:
        out.append(ScheduleDef(
            id=f"drill-{d.id}", kind="drill", name_zh=d.name_zh, name_en=d.name_en, when_zh=d.schedule.describe_zh(),
            spec=_spec(d.schedule, tz), version=v.get("drills", ""), paused=d.paused,
            action=ScheduleActionStartWorkflow(DrillWorkflow.run, DrillInput(drill=d, version=v.get("drills", "")),
                                               id=f"drill-{d.id}", task_queue=tq, memo={"version": v.get("drills", "")})))
    h = duty.handover
    out.append(ScheduleDef(
        id="handover", kind="handover", name_zh="交接班", name_en="Shift handover",
        when_zh="每天 " + "、".join(h.shift_changes), spec=_spec(Timing(at=h.shift_changes), tz),
        version=v.get("handover", ""), catchup=timedelta(hours=1),
        action=ScheduleActionStartWorkflow(HandoverWorkflow.run, HandoverInput(settings=h, version=v.get("handover", "")),
                                           id="handover", task_queue=tq, memo={"version": v.get("handover", "")})))
    sc = duty.spotcheck
    out.append(ScheduleDef(
        id="spotcheck-sweep", kind="spotcheck", name_zh="六问抽查(叫应结束后)", name_en="六问 spot-check sweep",
        when_zh=sc.sweep.describe_zh(), spec=_spec(sc.sweep, tz), version=v.get("spotcheck", ""),
        action=ScheduleActionStartWorkflow(SpotCheckSweepWorkflow.run, SweepInput(settings=sc, version=v.get("spotcheck", "")),
                                           id="spotcheck-sweep", task_queue=tq, memo={"version": v.get("spotcheck", "")})))
    f = duty.freshness
    month, day = (int(x) for x in f.round_starts.split("-"))
    hh, mm = (int(x) for x in f.start_at.split(":"))
    out.append(ScheduleDef(
        id="freshness-round", kind="freshness", name_zh="联系方式年度核实", name_en="Yearly contact confirmation",
        when_zh=f"每年{month}月{day}日 {f.start_at}(须于{f.round_by}前确认)",
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(month=[ScheduleRange(month)], day_of_month=[ScheduleRange(day)],
                                                          hour=[ScheduleRange(hh)], minute=[ScheduleRange(mm)])],
                          time_zone_name=tz),
        version=v.get("freshness", ""), catchup=timedelta(days=7),
        action=ScheduleActionStartWorkflow(FreshnessRoundWorkflow.run,
                                           FreshnessInput(settings=f, version=v.get("freshness", "")),
                                           id="freshness-round", task_queue=tq, memo={"version": v.get("freshness", "")})))
    return out


def _schedule(d: ScheduleDef, state: ScheduleState) -> Schedule:
    return Schedule(action=d.action, spec=d.spec, state=state,
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=d.catchup))


async def sync_schedules(client: Client, lib: Library, settings: Settings, actor: str) -> dict[str, list[str]]:
    """Create the schedules the definitions name, update the others (paused ones stay paused)."""
    defs = schedule_defs(duty_settings(lib), settings)
    out: dict[str, list[str]] = {"created": [], "updated": []}
    for d in defs:
        try:
            await client.create_schedule(d.id, _schedule(d, ScheduleState(
                paused=d.paused, note="installed paused (definitions)" if d.paused else "installed from definitions")),
                memo={"kind": d.kind})
            out["created"].append(d.id)
        except RPCError as exc:
            _no_schedules(exc)
            raise
        except ScheduleAlreadyRunningError:
            def update(inp: ScheduleUpdateInput, d: ScheduleDef = d) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=_schedule(d, inp.description.schedule.state))

            await client.get_schedule_handle(d.id).update(update)
            out["updated"].append(d.id)
    await asyncio.to_thread(_audit, SCHEDULES_SUBJECT, "schedule.synced", "synced", actor,
                            {**out, "versions": duty_settings(lib).versions})
    return out


async def _version_of(client: Client, action: Any) -> str | None:
    memo = getattr(action, "memo", None) or {}
    raw = memo.get("version")
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw
    try:
        return (await client.data_converter.decode([raw], [str]))[0]
    except Exception:  # noqa: BLE001 - a memo written by something else
        return None


async def list_schedules(client: Client, lib: Library, settings: Settings) -> list[dict]:
    """Every schedule the definitions name, described by Temporal (installed or not)."""
    out = []
    for d in schedule_defs(duty_settings(lib), settings):
        item: dict[str, Any] = {"id": d.id, "kind": d.kind, "name_zh": d.name_zh, "name_en": d.name_en,
                                "when_zh": d.when_zh, "version": d.version, "installed": False}
        try:
            desc = await client.get_schedule_handle(d.id).describe()
        except RPCError as exc:
            _no_schedules(exc)
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            out.append(item)
            continue
        installed_version = await _version_of(client, desc.schedule.action)
        item.update(installed=True, paused=desc.schedule.state.paused, note=desc.schedule.state.note,
                    installed_version=installed_version, up_to_date=installed_version == d.version,
                    next_runs=[t.isoformat() for t in desc.info.next_action_times[:5]],
                    recent_runs=[{"scheduled_at": a.scheduled_at.isoformat(), "started_at": a.started_at.isoformat(),
                                  "workflow_id": getattr(a.action, "workflow_id", None)}
                                 for a in desc.info.recent_actions[-5:]],
                    running=[getattr(a, "workflow_id", None) for a in desc.info.running_actions],
                    runs=desc.info.num_actions)
        out.append(item)
    return out


def _known(lib: Library, settings: Settings, schedule_id: str) -> ScheduleDef:
    defs = {d.id: d for d in schedule_defs(duty_settings(lib), settings)}
    if schedule_id not in defs:
        raise DutyError(404, f"no schedule {schedule_id!r} (known: {', '.join(defs)})")
    return defs[schedule_id]


async def control_schedule(client: Client, lib: Library, settings: Settings, schedule_id: str, action: str,
                           note: str, actor: str) -> dict:
    """pause | unpause | trigger one schedule; audited under 'schedules'."""
    _known(lib, settings, schedule_id)
    handle = client.get_schedule_handle(schedule_id)
    text = f"{note} ({actor})" if note else f"{action} by {actor}"
    try:
        if action == "pause":
            await handle.pause(note=text)
        elif action == "unpause":
            await handle.unpause(note=text)
        else:
            await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    except RPCError as exc:
        _no_schedules(exc)
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise DutyError(409, f"schedule {schedule_id!r} is not installed: sync the schedules first "
                                 "(POST /api/schedules/sync or `yingji duty schedules sync`)") from exc
        raise
    await asyncio.to_thread(_audit, SCHEDULES_SUBJECT, f"schedule.{action}d" if action != "trigger" else "schedule.triggered",
                            f"{schedule_id}/{action}", actor, {"schedule": schedule_id, "note": note})
    desc = await handle.describe()
    return {"id": schedule_id, "paused": desc.schedule.state.paused, "note": desc.schedule.state.note,
            "next_runs": [t.isoformat() for t in desc.info.next_action_times[:5]]}


# ================================================================== updates, with refusals explained


async def _update(client: Client, subject: str, workflow_id: str, update, req, result_type, what: str):
    """The step through api/services/steps.py:run_step, its refusal as a DutyError."""
    try:
        return await run_step(client, workflow_id=workflow_id, subject=subject, refused_kind=f"{what}.refused",
                              action=update.__name__, update=update, req=req, result_type=result_type,
                              statuses=STATUS, ended=f"the {what} {subject!r} has ended; nothing more can be recorded")
    except Refused as r:
        raise DutyError(r.status, r.why) from r


# ================================================================== handovers


async def start_handover(client: Client, lib: Library, settings: Settings, shift_at: datetime | None,
                         actor: str) -> tuple[HandoverView, bool]:
    duty = duty_settings(lib)
    at = (shift_at or datetime.now(UTC)).astimezone(UTC).replace(second=0, microsecond=0)
    found = await asyncio.to_thread(_handover_at, at)  # the schedule's, if it opened this change's already
    hid, existed = found or handover_id_for(at), found is not None
    if not existed:
        try:
            await client.start_workflow(HandoverWorkflow.run, HandoverInput(settings=duty.handover,
                                                                            version=duty.versions.get("handover", ""),
                                                                            shift_at=at, started_by=actor),
                                        id=hid, task_queue=settings.task_queue,
                                        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            existed = True
    try:
        view = await client.get_workflow_handle(hid).execute_update(HandoverWorkflow.opened_view, result_type=HandoverView)
    except RPCError as exc:
        raise DutyError(409, f"the handover {hid!r} exists and has ended") from exc
    return view, existed


def _handover_at(at: datetime) -> str | None:
    with session_scope(write=False) as s:
        row = s.exec(select(Handover).where(Handover.shift_at >= at, Handover.shift_at < at + timedelta(minutes=1))
                     .order_by(col(Handover.opened_at))).first()
        return row.id if row else None


async def handover_step(client: Client, handover_id: str, action: str, req) -> HandoverView:
    row = await asyncio.to_thread(_get, Handover, handover_id)
    if row is None:
        raise DutyError(404, f"no handover {handover_id!r}")
    update = {"note": HandoverWorkflow.edit_note, "hand_over": HandoverWorkflow.hand_over,
              "take_over": HandoverWorkflow.take_over}[action]
    return await _update(client, handover_id, handover_id, update, req, HandoverView, "handover")


def _get(model, key):
    with session_scope(write=False) as s:
        return s.get(model, key)


def _events(subject: str, prefix: str = "", limit: int = 500) -> list[dict]:
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).where(AuditEvent.subject == subject, col(AuditEvent.kind).startswith(prefix))
                      .order_by(AuditEvent.chain_seq).limit(limit))
        return [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, "channel": e.channel, "payload": e.payload}
                for e in rows]


def handover_list(limit: int = 50) -> list[dict]:
    with session_scope(write=False) as s:
        rows = s.exec(select(Handover).order_by(col(Handover.shift_at).desc()).limit(limit))
        return [r.model_dump(mode="json", exclude={"note"}) | {"items": len(r.note.get("items", []))} for r in rows]


def handover_detail(handover_id: str) -> dict | None:
    row = _get(Handover, handover_id)
    if row is None:
        return None
    out = row.model_dump(mode="json")
    late = None
    if row.taken_over_at and row.due_at:
        late = max(0, int((row.taken_over_at - row.due_at).total_seconds()))
    out["late_by_s"] = late
    out["timeline"] = _events(handover_id)
    return out


# ================================================================== drills


async def run_drill(client: Client, lib: Library, settings: Settings, drill_id: str, actor: str) -> str:
    duty = duty_settings(lib)
    d = duty.drills.get(drill_id)
    if d is None:
        raise DutyError(404, f"no drill {drill_id!r} (known: {', '.join(x.id for x in duty.drills.programme)})")
    wid = f"drill-{d.id}-manual-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    try:
        await client.start_workflow(DrillWorkflow.run, DrillInput(drill=d, version=duty.versions.get("drills", ""),
                                                                  trigger=f"manual:{actor}"),
                                    id=wid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError as exc:
        raise DutyError(409, f"drill {drill_id!r} was started this second already ({wid})") from exc
    return wid


def drill_list(limit: int = 100, drill_id: str | None = None) -> list[dict]:
    with session_scope(write=False) as s:
        stmt = select(DrillRun).order_by(col(DrillRun.started_at).desc()).limit(limit)
        if drill_id:
            stmt = stmt.where(DrillRun.drill_id == drill_id)
        return [r.model_dump(mode="json", exclude={"report"}) for r in s.exec(stmt)]


def drill_detail(run_id: str) -> dict | None:
    with session_scope(write=False) as s:
        row = s.get(DrillRun, run_id)
        if row is None:
            return None
        targets = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == row.callout_id)
                              .order_by(CalloutTarget.id)))
        c = s.get(Callout, row.callout_id)
    out = row.model_dump(mode="json")
    out["callout"] = {"id": c.id, "status": c.status, "drill": c.drill, "title": c.title} if c else None
    window = row.window_s
    out["targets"] = []
    for t in targets:
        first = min((datetime.fromisoformat(a["at"]) for a in t.attempts if a.get("purpose") == "notify"), default=None)
        after = (t.acknowledged_at - first).total_seconds() if t.acknowledged_at and first else None
        out["targets"].append({"person_id": t.person_id, "name": t.name, "org_unit": t.org_unit_id, "state": t.state,
                               "acknowledged_at": t.acknowledged_at.isoformat() if t.acknowledged_at else None,
                               "ack_channel": t.ack_channel, "after_s": round(after) if after is not None else None,
                               "in_window": after is not None and after <= window})
    return out


# ================================================================== 六问 spot checks


async def start_spotcheck(client: Client, lib: Library, settings: Settings, callout_id: str, actor: str) -> str:
    duty = duty_settings(lib)
    c = await asyncio.to_thread(_get, Callout, callout_id)
    if c is None:
        raise DutyError(404, f"no call-out {callout_id!r}")
    if c.drill:
        raise DutyError(409, "a drill is not spot-checked: 六问 spot checks follow real call-outs")
    cid = check_id_for(callout_id)
    try:
        await client.start_workflow(SpotCheckWorkflow.run, SpotCheckInput(
            callout_id=callout_id, settings=duty.spotcheck, version=duty.versions.get("spotcheck", ""), started_by=actor),
            id=cid, task_queue=settings.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError as exc:
        raise DutyError(409, f"the call-out {callout_id!r} has been spot-checked already ({cid})") from exc
    return cid


async def spotcheck_answer(client: Client, check_id: str, req) -> dict:
    """The person's six answers, taken by the running check (`recorded`: taken, or late while it closes), or
    recorded late by the store once it has closed. Returns the check with `recorded`."""
    row = await asyncio.to_thread(_get, SpotCheck, check_id)
    if row is None:
        raise DutyError(404, f"no spot check {check_id!r}")
    if row.status not in ("closed", "skipped"):
        try:
            view = await _update(client, check_id, check_id, SpotCheckWorkflow.answer, req, SpotCheckView, "spotcheck")
            p = next(x for x in view.persons if x.person_id == req.person_id)
            return {**view.model_dump(mode="json"), "recorded": "late" if p.state == "answered_late" else "taken"}
        except DutyError as exc:  # closed meanwhile: the store records it below
            if exc.status != 409 or (await asyncio.to_thread(_get, SpotCheck, check_id)).status != "closed":
                raise

    def record() -> tuple[str, str] | dict:
        with session_scope() as s:
            return record_late_spot_answer(s, check_id, req, datetime.now(UTC))

    got = await asyncio.to_thread(record)
    if isinstance(got, tuple):
        raise DutyError(STATUS.get(got[0], 409), got[1])
    return {**(await asyncio.to_thread(spotcheck_detail, check_id)), "recorded": "late"}


async def spotcheck_resolve(client: Client, check_id: str, req) -> SpotCheckView:
    if await asyncio.to_thread(_get, SpotCheck, check_id) is None:
        raise DutyError(404, f"no spot check {check_id!r}")
    return await _update(client, check_id, check_id, SpotCheckWorkflow.resolve, req, SpotCheckView, "spotcheck")


def spotcheck_list(limit: int = 100) -> list[dict]:
    with session_scope(write=False) as s:
        rows = list(s.exec(select(SpotCheck).order_by(col(SpotCheck.opened_at).desc()).limit(limit)))
        out = []
        for r in rows:
            answers = list(s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == r.id)))
            fus = list(s.exec(select(SpotCheckFollowup).where(SpotCheckFollowup.check_id == r.id)))
            out.append({**r.model_dump(mode="json", exclude={"questions"}), "sampled": len(answers),
                        "answered": sum(1 for a in answers if a.answers is not None),
                        "followups_open": sum(1 for f in fus if f.status in ("open", "acknowledged"))})
        return out


def spotcheck_detail(check_id: str) -> dict | None:
    with session_scope(write=False) as s:
        r = s.get(SpotCheck, check_id)
        if r is None:
            return None
        answers = list(s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == check_id)
                              .order_by(col(SpotCheckAnswer.id))))
        fus = list(s.exec(select(SpotCheckFollowup).where(SpotCheckFollowup.check_id == check_id)
                          .order_by(col(SpotCheckFollowup.id))))
    return {**r.model_dump(mode="json"),
            "persons": [a.model_dump(mode="json", exclude={"id", "check_id", "attempts"}) for a in answers],
            "followups": [f.model_dump(mode="json", exclude={"id", "check_id"}) for f in fus]}


def form_context(check_id: str, person_id: str) -> dict | None:
    """What the SMS form page shows: the questions and whether this person answered already."""
    with session_scope(write=False) as s:
        r = s.get(SpotCheck, check_id)
        a = s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == check_id,
                                                 SpotCheckAnswer.person_id == person_id)).first()
        if r is None or a is None:
            return None
        return {"title": r.title, "questions": r.questions, "name": a.name, "answered": a.answers is not None,
                "check_status": r.status}


# ================================================================== contact freshness


async def start_round(client: Client, lib: Library, settings: Settings, deadline: datetime | None, actor: str) -> str:
    duty = duty_settings(lib)
    rid = f"freshness-{datetime.now(UTC):%Y%m%dT%H%M}"
    try:
        await client.start_workflow(FreshnessRoundWorkflow.run, FreshnessInput(
            settings=duty.freshness, version=duty.versions.get("freshness", ""), deadline=deadline, started_by=actor),
            id=rid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError as exc:
        raise DutyError(409, f"a confirmation round was started this minute and is running ({rid}); "
                             "see GET /api/freshness/rounds") from exc
    return rid


def rounds() -> list[dict]:
    with session_scope(write=False) as s:
        return [r.model_dump(mode="json") for r in s.exec(select(FreshnessRound).order_by(col(FreshnessRound.started_at).desc()))]


def round_detail(round_id: str, state: str | None = None, limit: int = 5000) -> dict | None:
    with session_scope(write=False) as s:
        r = s.get(FreshnessRound, round_id)
        if r is None:
            return None
        stmt = select(ContactCheck).where(ContactCheck.round_id == round_id).order_by(col(ContactCheck.person_id))
        if state == "bounced":
            stmt = stmt.where(col(ContactCheck.bounced).is_(True))
        elif state:
            stmt = stmt.where(ContactCheck.state == state)
        checks = list(s.exec(stmt.limit(limit)))
        people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([c.person_id for c in checks])))}
        counts: dict[str, int] = {}
        for st, bounced in s.exec(select(ContactCheck.state, ContactCheck.bounced).where(ContactCheck.round_id == round_id)):
            counts[st] = counts.get(st, 0) + 1
            counts["bounced"] = counts.get("bounced", 0) + (1 if bounced else 0)
    return {**r.model_dump(mode="json"), "counts": counts, "persons": [
        {"person_id": c.person_id, "name": c.name, "state": c.state, "sends": c.sends, "bounced": c.bounced,
         "last_error": c.last_error, "confirmed_at": c.confirmed_at.isoformat() if c.confirmed_at else None,
         "confirmed_via": c.confirmed_via,
         "mobile": mask_mobile(people[c.person_id].mobile) if c.person_id in people else ""} for c in checks]}


def contact_list(lib: Library, which: str, limit: int = 5000) -> list[dict]:
    """Persons whose contact data is stale (not confirmed within the settings' time) or failing."""
    f = duty_settings(lib).freshness
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        people = {p.id: p for p in s.exec(select(Person).order_by(col(Person.id)))}
        status = contact_status(s, list(people), now, f.stale_after, f.failing_window)
    out = []
    for pid, st in status.items():
        if (which == "stale" and st["stale"]) or (which == "failing" and st["failing"]) or which == "all":
            p = people[pid]
            out.append({**st, "confirmed_at": st["confirmed_at"].isoformat() if st["confirmed_at"] else None,
                        "mobile": mask_mobile(p.mobile), "org_unit_id": p.org_unit_id})
    return out[:limit]


def target_warnings(s, lib: Library, targets: list[dict], now: datetime | None = None) -> list[dict]:
    """For a call-out preview: the targets whose contact data is stale or whose number is failing."""
    duty = lib.duty()
    if duty is None or not targets:
        return []
    now = now or datetime.now(UTC)
    f = duty.freshness
    ids = {t["person"]["person_id"]: t for t in targets}
    status = contact_status(s, list(ids), now, f.stale_after, f.failing_window)
    out = []
    for pid, st in status.items():
        if st["stale"] or st["failing"]:
            t = ids[pid]
            out.append({"person_id": pid, "name": st["name"], "label": t.get("label", ""), "tier": t.get("tier", ""),
                        "stale": st["stale"], "failing": st["failing"], "error": st["error"],
                        "confirmed_at": st["confirmed_at"].isoformat() if st["confirmed_at"] else None})
    return sorted(out, key=lambda w: (not w["failing"], w["tier"], w["label"]))


# ================================================================== moved from the routes (api/routes/duty/)


def ivr_call(outbox_id: str | None, call_sid: str | None) -> dict | None:
    """The spot-check call a voice-menu callback is about (its outbox id from the signed URL, bound to the
    call's sid on first use): its id, its spoken introduction and the questions; None if it is not one."""
    with session_scope() as s:
        msg = s.get(OutboxMessage, int(outbox_id)) if outbox_id and outbox_id.isdigit() else None
        if msg is None or (msg.provider_id not in (None, call_sid)):
            return None
        if msg.provider_id is None:
            msg.provider_id = call_sid
        check = s.get(SpotCheck, msg.subject or "")
        if check is None:
            return None
        return {"id": msg.id, "intro": (msg.meta or {}).get("voice_text") or msg.body, "questions": check.questions}


async def record_keys(client: Client, outbox_id: int, keys: str, ref: str) -> dict:
    """Keys pressed on a spot-check call, one per question (1 yes, 2 no): the person's answers.
    Raises DutyError 404 (not a spot-check call), 422 (not one key 1 or 2 per question)."""
    def read():
        with session_scope(write=False) as s:
            msg = s.get(OutboxMessage, outbox_id)
            check = s.get(SpotCheck, msg.subject) if msg and msg.subject else None
            return msg, check

    msg, check = await asyncio.to_thread(read)
    if msg is None or check is None or (msg.meta or {}).get("procedure") != "spotcheck" or msg.channel != "voice":
        raise DutyError(404, f"message {outbox_id} is not a spot-check call")
    ids = [q["id"] for q in check.questions]
    if len(keys) != len(ids) or set(keys) - {"1", "2"}:
        raise DutyError(422, f"keys: one key per question ({len(ids)}), 1 yes or 2 no; got {keys!r}")
    req = AnswerIn(actor=msg.person_id or "", role="person", person_id=msg.person_id or "", channel="voice", ref=ref,
                   answers={i: k == "1" for i, k in zip(ids, keys)})
    view = await spotcheck_answer(client, check.id, req)
    return {"handled": "answers", "check_id": check.id, "person_id": msg.person_id, "recorded": view["recorded"],
            "answers": next(p["answers"] for p in view["persons"] if p["person_id"] == msg.person_id)}


def link_used(data: dict) -> bool:
    """Whether this signed link (its token's data) has been used already."""
    with session_scope(write=False) as s:
        return is_used(s, data)


def use_link(data: dict) -> None:
    """Mark the signed link used (LinkError "used" if it was, e.g. answered twice at once)."""
    with session_scope() as s:
        consume(s, data)


async def answer_by_link(client: Client, data: dict, answers: dict[str, bool]) -> bool:
    """The person's answers from the SMS form (its signed link's data), then the link is used.
    True if recorded late. Raises DutyError as spotcheck_answer does."""
    req = AnswerIn(actor=data["p"], role="person", person_id=data["p"], answers=answers, channel="link",
                   ref=f"link:{data['j']}")
    late = (await spotcheck_answer(client, data["s"], req))["recorded"] == "late"
    try:
        await asyncio.to_thread(use_link, data)
    except LinkError:
        pass  # answered twice at once: the answer stands
    return late


def person(person_id: str) -> Person | None:
    return _get(Person, person_id)


def _confirm_directly(data: dict) -> None:
    """The round has closed (or never sent this link's message): the confirmation still counts."""
    from activities.duty import confirm_contact  # the round's own write (lazy: the API loads no activities)

    now = datetime.now(UTC)
    with session_scope() as s:
        confirm_contact(s, data["s"], data["p"], now, "link")
        append(s, [NewEvent(subject=data["s"], kind="freshness.confirmed_late", step_id=f"late/{data['p']}/{data['j']}",
                            actor=data["p"], channel="link", at=now, payload={"person_id": data["p"]})])


async def confirm_by_link(client: Client | None, data: dict) -> None:
    """A person confirms their contact data through the round's signed link: the running round is told (as an
    answer); if none waits (or Temporal is away), the confirmation is recorded directly. Then the link is used."""
    told = 0
    if client is not None:
        try:
            told = (await acknowledge(client, data["s"], data["p"], "link", ref=f"link:{data['j']}")).told
        except AnswerError:
            told = 0
    if not told:
        await asyncio.to_thread(_confirm_directly, data)
    try:
        await asyncio.to_thread(use_link, data)
    except LinkError:
        pass


def freshness_preview(s: Session, lib: Library, event: str, level: str, towns: list[str]) -> dict:
    """Who a call-out of this event and level would reach whose contact data is stale or failing.
    Raises DutyError 422 (no plan matches and there is no default plan)."""
    loaded = lib.callout_plan_for(event, Level(level))
    if loaded is None:
        raise DutyError(422, "event: no call-out plan matches and there is no default plan")
    plan = loaded.model
    found, _gaps = resolve_targets(s, plan, towns, [t.id for t in plan.tiers_for(Level(level))], datetime.now(UTC))
    warnings = target_warnings(s, lib, found)
    return {"plan": plan.id, "total": len(found), "warnings": warnings,
            "stale": sum(1 for w in warnings if w["stale"]), "failing": sum(1 for w in warnings if w["failing"])}


def drill_figures() -> dict:
    """Every drill's response rates (store.duty.drill_statistics)."""
    with session_scope(write=False) as s:
        return drill_statistics(s)


def callout_figures(since: datetime | None = None, until: datetime | None = None) -> dict:
    """Real call-outs in a period (drills are never counted) and drills apart."""
    with session_scope(write=False) as s:
        return {"callouts": callout_statistics(s, since, until), "drills": drill_statistics(s, since)}
