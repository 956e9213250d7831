"""The duty day's recurring procedures as Temporal Schedules built from definitions/duty/*.yaml: drills, the
handover, the spot-check sweep and the yearly confirmation round; and the monthly bulletin 通报 (first working day). `sync_schedules` creates or updates
them (each scheduled run gets the section as a snapshot, with its version), keeping a paused schedule
paused; pause, unpause and trigger are audited under 'schedules'."""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

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
from pydantic import Field
from sqlmodel import Session, col, func, select
from temporalio.service import RPCError, RPCStatusCode

from api.services.duty.common import DutyError, audit, duty_settings
from api.services.shapes import Out, Timestamp
from config import Settings
from definitions.loader import Library
from definitions.schema.calendar import WEEKDAYS_ONLY, WorkCalendar
from definitions.schema.duty import DAYS, DutySettings, Timing
from store.db import session_scope
from store.directory import Person
from store.drillweeks import KIND_ZH
from workflows.kit.events import Schedule as ScheduleEvents
from workflows.notice import DutyNoticeWorkflow, NoticeInput, notice_workflow_id
from workflows.bulletin import BulletinInput, BulletinWorkflow
from workflows.drill import DrillInput, DrillWorkflow
from workflows.freshness import FreshnessInput, FreshnessRoundWorkflow
from workflows.handover import HandoverInput, HandoverWorkflow
from workflows.readiness import ReadinessCheckWorkflow, ReadinessInput
from workflows.spotcheck import SpotCheckSweepWorkflow, SweepInput

SCHEDULES_SUBJECT = "schedules"


def _no_schedules(exc: RPCError, schedule_id: str = "") -> None:
    """A Temporal server without schedules (the time-skipping test server): a 409 that says so, not a 500; a
    schedule Temporal refuses as it is (a spec the definitions made): a 422 naming it and Temporal's reason."""
    if exc.status == RPCStatusCode.UNIMPLEMENTED:
        raise DutyError(409, "this Temporal server does not support schedules (e.g. the time-skipping test server); "
                             "use the dev server or a cluster / 当前 Temporal 服务不支持定时任务") from exc
    if exc.status == RPCStatusCode.INVALID_ARGUMENT:
        raise DutyError(422, f"定时任务 {schedule_id} 被 Temporal 拒绝:{exc.message} / Temporal refused the schedule "
                             f"{schedule_id!r} as the definitions make it: {exc.message}") from exc


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


READINESS_SCHEDULE = "readiness-monthly"  # 每月调度: the rescue teams' duty phones called once a month
BULLETIN_AT = (9, 0)  # the monthly bulletin 通报: the first working day of the month, 09:00 local
BULLETIN_VERSION = "1"  # the schedule's shape; the bulletin reads definitions/assessment/ when it runs


def first_working_day_spec(tz: str, hour: int, minute: int, calendar: WorkCalendar = WEEKDAYS_ONLY) -> ScheduleSpec:
    """The first working day of every month at hour:minute local. For the years the working calendar knows
    (national holidays and moved working days, definitions/schema/calendar.py) the day itself: 1 October is no
    working day, the 8th may be. For later years, Monday to Friday: the 1st if it is a weekday, else the Monday
    after (the 2nd or the 3rd), until the calendar knows them (a sync after an update installs them)."""
    def at(**kw) -> ScheduleCalendarSpec:
        return ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)], **kw)

    known = sorted(set(calendar.years_known))
    calendars = [at(year=[ScheduleRange(y)], month=[ScheduleRange(m)],
                    day_of_month=[ScheduleRange(calendar.first_working_day(date(y, m, 1)).day)],
                    comment=f"{y}-{m:02d}: the first working day of the calendar")
                 for y in known for m in range(1, 13)]
    later = [ScheduleRange(known[-1] + 1, 2100)] if known else []  # (Temporal takes years 2000-2100)
    for day, first_dow, last_dow, comment in ((1, 1, 5, "the 1st, a weekday"), (2, 1, 1, "Monday the 2nd"),
                                              (3, 1, 1, "Monday the 3rd")):
        calendars.append(at(year=later, day_of_month=[ScheduleRange(day)],
                            day_of_week=[ScheduleRange(first_dow, last_dow)], comment=comment))
    return ScheduleSpec(calendars=calendars, time_zone_name=tz)


def bulletin_calendar(lib: Library) -> WorkCalendar:
    """The working calendar of this year and the next, for the bulletin's schedule."""
    year = datetime.now(UTC).year
    return lib.work_calendar([year, year + 1])


def schedule_defs(duty: DutySettings, settings: Settings, calendar: WorkCalendar = WEEKDAYS_ONLY) -> list[ScheduleDef]:
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
    r = duty.readiness
    rh, rm = (int(x) for x in r.start_at.split(":"))
    out.append(ScheduleDef(
        id=READINESS_SCHEDULE, kind="readiness", name_zh="救援力量每月调度", name_en="Monthly readiness check",
        when_zh=f"每月{r.day_of_month}日 {r.start_at}",
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(day_of_month=[ScheduleRange(r.day_of_month)],
                                                          hour=[ScheduleRange(rh)], minute=[ScheduleRange(rm)],
                                                          comment="每月调度")], time_zone_name=tz),
        version=v.get("readiness", ""), catchup=timedelta(days=1),
        action=ScheduleActionStartWorkflow(ReadinessCheckWorkflow.run,
                                           ReadinessInput(settings=r, version=v.get("readiness", "")),
                                           id="readiness-monthly", task_queue=tq,
                                           memo={"version": v.get("readiness", "")})))
    days = ",".join(d.isoformat() for d in [*calendar.holidays, *calendar.workdays])
    bulletin_version = f"{BULLETIN_VERSION}-{hashlib.sha256(days.encode()).hexdigest()[:8]}"  # a new calendar: synced
    out.append(ScheduleDef(
        id="bulletin-monthly", kind="bulletin", name_zh="月度考核通报", name_en="Monthly bulletin",
        when_zh=f"每月第一个工作日 {BULLETIN_AT[0]:02d}:{BULLETIN_AT[1]:02d}",
        spec=first_working_day_spec(tz, *BULLETIN_AT, calendar), version=bulletin_version, catchup=timedelta(days=1),
        action=ScheduleActionStartWorkflow(BulletinWorkflow.run, BulletinInput(started_by="schedule"), id="bulletin",
                                           task_queue=tq, memo={"version": bulletin_version})))
    return out


def _schedule(d: ScheduleDef, state: ScheduleState) -> Schedule:
    return Schedule(action=d.action, spec=d.spec, state=state,
                    policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=d.catchup))


async def sync_schedules(client: Client, lib: Library, settings: Settings, actor: str) -> dict[str, list[str]]:
    """Create the schedules the definitions name, update the others (paused ones stay paused)."""
    defs = schedule_defs(duty_settings(lib), settings, bulletin_calendar(lib))
    out: dict[str, list[str]] = {"created": [], "updated": []}
    for d in defs:
        try:
            await client.create_schedule(d.id, _schedule(d, ScheduleState(
                paused=d.paused, note="installed paused (definitions)" if d.paused else "installed from definitions")),
                memo={"kind": d.kind})
            out["created"].append(d.id)
        except RPCError as exc:
            _no_schedules(exc, d.id)
            raise
        except ScheduleAlreadyRunningError:
            def update(inp: ScheduleUpdateInput, d: ScheduleDef = d) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=_schedule(d, inp.description.schedule.state))

            try:
                await client.get_schedule_handle(d.id).update(update)
            except RPCError as exc:
                _no_schedules(exc, d.id)
                raise
            out["updated"].append(d.id)
    await asyncio.to_thread(audit, SCHEDULES_SUBJECT, "schedule.synced", "synced", actor,
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


async def list_schedules(client: Client, lib: Library, settings: Settings, kind: str | None = None) -> list[dict]:
    """Every schedule the definitions name (of one kind: drill, handover, spotcheck, freshness), described by
    Temporal (installed or not)."""
    out = []
    for d in schedule_defs(duty_settings(lib), settings, bulletin_calendar(lib)):
        if kind is not None and d.kind != kind:
            continue
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
    defs = {d.id: d for d in schedule_defs(duty_settings(lib), settings, bulletin_calendar(lib))}
    if schedule_id not in defs:
        raise DutyError(404, f"no schedule {schedule_id!r} (known: {', '.join(defs)})")
    return defs[schedule_id]


async def _paused_drills(client: Client, defs: list[ScheduleDef]) -> dict[str, bool]:
    """Drill schedule id -> paused (a schedule not installed runs nothing: paused)."""
    out = {}
    for d in defs:
        if d.kind != "drill":
            continue
        try:
            out[d.id] = (await client.get_schedule_handle(d.id).describe()).schedule.state.paused
        except RPCError as exc:
            _no_schedules(exc)
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            out[d.id] = True
    return out


async def below_minimum_if_paused(client: Client, lib: Library, settings: Settings, schedule_id: str) -> dict:
    """What pausing drill schedule `schedule_id` leaves of the programme (issue 22, item 2): for the weekly minimum it
    counts towards, {kind, planned (runs a week of the drill schedules still running), minimum}; {} if the minimum is
    still met (or the schedule is no drill)."""
    duty = duty_settings(lib)
    drill = next((d for d in duty.drills.programme if f"drill-{d.id}" == schedule_id), None)
    if drill is None:
        return {}
    paused = await _paused_drills(client, schedule_defs(duty, settings, bulletin_calendar(lib)))
    kind, minimum = drill.counts_as, duty.drills.weekly_minimum.get(drill.counts_as, 0)
    planned = sum(d.schedule.per_week() for d in duty.drills.programme
                  if d.counts_as == kind and f"drill-{d.id}" != schedule_id and not paused.get(f"drill-{d.id}", True))
    if planned + 1e-9 >= minimum:
        return {}
    return {"kind": kind, "kind_zh": KIND_ZH.get(kind, kind), "planned": round(planned, 2), "minimum": minimum}


def _name_of(actor: str) -> str:
    """The person's name for a message (an actor that is no person: 值班人员)."""
    with session_scope(write=False) as s:
        p = s.get(Person, actor)
        return p.name if p is not None else "值班人员"


def below_minimum_notice(schedule_id: str, name_zh: str, below: dict, reason: str, actor_name: str) -> str:
    """The duty chief's SMS (Chinese only)."""
    return (f"【值班提醒】{actor_name}已暂停{name_zh},暂停后{below['kind_zh']}每周计划{below['planned']:g}次,"
            f"低于每周至少{below['minimum']}次的要求。暂停原因:{reason}。请关注本周演练计数。")


async def control_schedule(client: Client, lib: Library, settings: Settings, schedule_id: str, action: str,
                           note: str, actor: str, reason: str = "") -> dict:
    """pause | unpause | trigger one schedule; audited under 'schedules'.

    Pausing a drill schedule that takes the programme below its weekly minimum needs a `reason` (422 without one);
    done, it tells the duty chief (a `DutyNoticeWorkflow`: SMS through the outbox, `schedule.below_minimum.notified`
    in the audit trail)."""
    d = _known(lib, settings, schedule_id)
    reason = (reason or "").strip()
    below = await below_minimum_if_paused(client, lib, settings, schedule_id) if action == "pause" else {}
    if below and not reason:
        raise DutyError(422, f"暂停后{below['kind_zh']}每周仅计划{below['planned']:g}次,低于每周至少{below['minimum']}次"
                             f"的最低要求:须填写暂停原因(reason) / pausing {schedule_id!r} leaves the {below['kind']} drills "
                             f"at {below['planned']:g} a week, below the weekly minimum of {below['minimum']}: "
                             "a reason is required")
    note = note or reason
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
    payload: dict[str, Any] = {"schedule": schedule_id, "note": note}
    if reason:
        payload["reason"] = reason
    if below:
        payload["below_minimum"] = below
    await asyncio.to_thread(audit, SCHEDULES_SUBJECT, f"schedule.{action}d" if action != "trigger" else "schedule.triggered",
                            f"{schedule_id}/{action}", actor, payload)
    if below:
        key = f"{schedule_id}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        body = below_minimum_notice(schedule_id, d.name_zh, below, reason, await asyncio.to_thread(_name_of, actor))
        await client.start_workflow(
            DutyNoticeWorkflow.run, NoticeInput(subject=SCHEDULES_SUBJECT, kind=ScheduleEvents.BELOW_MINIMUM_NOTIFIED,
                                                roles=["duty_chief"], body=body, actor=actor,
                                                payload={"schedule": schedule_id, "reason": reason, **below}),
            id=notice_workflow_id(SCHEDULES_SUBJECT, key), task_queue=settings.task_queue)
    desc = await handle.describe()
    return {"id": schedule_id, "paused": desc.schedule.state.paused, "note": desc.schedule.state.note,
            "next_runs": [t.isoformat() for t in desc.info.next_action_times[:5]]}


class ScheduleOut(Out):
    """A schedule the definitions name; the keys after `installed` only once Temporal has it (answered with
    `response_model_exclude_unset`: a schedule not installed has none of them)."""

    id: str
    kind: str = Field(description="drill | handover | spotcheck | freshness | bulletin | readiness")
    name_zh: str
    name_en: str
    when_zh: str
    version: str
    installed: bool
    paused: bool | None = None
    note: str | None = None
    installed_version: str | None = None
    up_to_date: bool | None = None
    next_runs: list[Timestamp] | None = None
    recent_runs: list[dict[str, Any]] | None = None
    running: list[str | None] | None = None
    runs: int | None = None


class SyncOut(Out):
    created: list[str]
    updated: list[str]


class ScheduleControlOut(Out):
    id: str
    paused: bool
    note: str | None
    next_runs: list[Timestamp]


def reach(s: Session, lib: Library) -> dict[str, tuple[str, str]]:
    """What running each schedule now does, and to how many, in Chinese and English (the confirmation before
    立即执行 says it): the yearly round asks everyone in the directory with a mobile number."""
    duty = duty_settings(lib)
    people = s.exec(select(func.count()).select_from(Person).where(col(Person.mobile).is_not(None), Person.mobile != "")).one()
    out = {"freshness-round": (f"向通讯录中全部 {people} 人发送联系方式核实请求",
                               f"ask all {people} persons of the directory to confirm their contact data"),
           "handover": ("发起交接班", "start the shift handover"),
           "spotcheck-sweep": ("对已结束的叫应开展六问抽查", "start the 六问 spot checks of ended call-outs"),
           "bulletin-monthly": ("汇编上月考核通报并报带班领导审定", "compile last month's bulletin for the leading leader"),
           READINESS_SCHEDULE: ("语音呼叫各救援队伍24小时值班电话,调度值班值守情况",
                                "call every rescue team's 24-hour duty phone (readiness check)")}
    for d in duty.drills.programme:
        out[f"drill-{d.id}"] = (f"随机抽取 {d.sample.size} 个单位,向其 {len(d.sample.positions)} 类岗位发送演练消息",
                                f"draw {d.sample.size} units and send the drill to their {len(d.sample.positions)} kinds of posts")
    return out
