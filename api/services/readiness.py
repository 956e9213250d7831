"""The monthly readiness check 每月调度 (workflows/readiness.py): its runs and each team's answer, and a run started
by hand (the duty chief; the schedule `readiness-monthly` starts one a month)."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.services.duty.common import DutyError, duty_settings
from config import Settings
from definitions.loader import Library
from store.resources import ReadinessAnswer, ReadinessRun
from workflows.readiness import ReadinessCheckWorkflow, ReadinessInput

STATE_ZH = {"pending": "待呼叫", "called": "呼叫中", "ready": "在岗满员", "not_ready": "不能满员在岗",
            "no_answer": "无人应答"}
BY_ZH = {"duty_phone": "值班电话", "leader": "队长"}


async def start(client: Client, lib: Library, settings: Settings, actor: str) -> str:
    duty = duty_settings(lib)
    rid = f"readiness-{datetime.now(UTC):%Y%m%dT%H%M}"
    try:
        await client.start_workflow(ReadinessCheckWorkflow.run, ReadinessInput(
            settings=duty.readiness, version=duty.versions.get("readiness", ""), started_by=actor),
            id=rid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError as exc:
        raise DutyError(409, f"一个每月调度在本分钟内已启动并在进行中({rid}) / a readiness check was started this minute "
                             "and is running; see GET /api/readiness") from exc
    return rid


def _run(r: ReadinessRun) -> dict:
    return {**r.model_dump(mode="json"), "status_zh": "进行中" if r.status == "running" else "已结束"}


def runs(s: Session, limit: int = 100) -> list[dict]:
    return [_run(r) for r in s.exec(select(ReadinessRun).order_by(col(ReadinessRun.started_at).desc()).limit(limit))]


def run(s: Session, run_id: str) -> dict:
    r = s.get(ReadinessRun, run_id)
    if r is None:
        raise DutyError(404, f"没有编号为 {run_id!r} 的每月调度 / no readiness check {run_id!r}")
    answers = s.exec(select(ReadinessAnswer).where(ReadinessAnswer.run_id == run_id).order_by(col(ReadinessAnswer.team_id)))
    return {**_run(r), "teams": [{**a.model_dump(mode="json", exclude={"id", "run_id"}),
                                  "state_zh": STATE_ZH.get(a.state, a.state),
                                  "answered_by_zh": BY_ZH.get(a.answered_by or "", a.answered_by or "")}
                                 for a in answers]}
