"""Drills 演练: a run started outside its schedule, the runs and one run with who answered within its window;
the statistics of real call-outs with the drills apart."""
from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.services.duty.common import DutyError, duty_settings
from api.services.shapes import Out
from config import Settings
from definitions.loader import Library
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.duty import DrillRun, callout_statistics, drill_statistics
from workflows.drill import DrillInput, DrillWorkflow


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


def drill_figures() -> dict:
    """Every drill's response rates (store.duty.drill_statistics)."""
    with session_scope(write=False) as s:
        return drill_statistics(s)


def callout_figures(since: datetime | None = None, until: datetime | None = None) -> dict:
    """Real call-outs in a period (drills are never counted) and drills apart."""
    with session_scope(write=False) as s:
        return {"callouts": callout_statistics(s, since, until), "drills": drill_statistics(s, since)}


class RunStarted(Out):
    run_id: str = Field(description="the drill run's workflow id")


MAX_WEEKS = 60


def drill_weeks(lib: Library, settings: Settings, date_from: str | None, date_to: str | None) -> dict:
    """The weekly drill count (store/drillweeks.py) over the weeks that overlap the local dates given (default: the
    last four weeks and this one), each with its runs per minimum and whether it fell below."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from api.services.dates import local_range, local_today
    from store.drillweeks import below_text, programme_of, weeks_from_db

    tz = ZoneInfo(settings.timezone)
    today = local_today(settings.timezone)
    r = local_range(date_from or (today - timedelta(days=28)).isoformat(), date_to or today.isoformat(),
                    settings.timezone)
    if (r.end - r.start).days > 7 * MAX_WEEKS:
        raise DutyError(422, f"至多统计{MAX_WEEKS}周 / at most {MAX_WEEKS} weeks")
    minimum, programme = programme_of(duty_settings(lib))
    with session_scope(write=False) as s:
        weeks = weeks_from_db(s, minimum, programme, r.start, r.end, tz, datetime.now(UTC))
    for w in weeks:
        w["short_zh"] = below_text(w)
    return {"weekly_minimum": minimum, "weeks": weeks}
