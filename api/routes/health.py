"""`GET /healthz`: database, Temporal and worker; 503 naming what is down."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from store.db import get_engine

router = APIRouter(tags=["health"])


def _database() -> str:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))
    return "ok"


@router.get("/healthz", summary="Health of database, Temporal and worker")
async def healthz(request: Request) -> JSONResponse:
    state: dict[str, str] = {}
    try:
        state["database"] = await asyncio.to_thread(_database)
    except Exception as exc:
        state["database"] = f"down: {type(exc).__name__}"
    client = await request.app.state.temporal()
    if client is None:
        state["temporal"] = "down: not reachable"
        state["worker"] = "unknown: Temporal is down"
    else:
        settings = request.app.state.settings
        try:
            resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace, task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW), timeout=timedelta(seconds=3))
            state["temporal"] = "ok"
            recent = [p for p in resp.pollers
                      if datetime.now(UTC) - p.last_access_time.ToDatetime(tzinfo=UTC) < timedelta(minutes=2)]
            state["worker"] = "ok" if recent else "down: no worker polls the task queue"
        except Exception as exc:
            state["temporal"] = f"down: {type(exc).__name__}"
            state["worker"] = "unknown: Temporal is down"
    down = [k for k, v in state.items() if v != "ok"]
    body = {"status": "ok" if not down else "down", "down": down, **state}
    return JSONResponse(status_code=200 if not down else 503, content=body)
