"""Drive a call-out on a Temporal test environment with the real activities and a real database."""
from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import select

from api.services import answers
from definitions.loader import load_or_raise
from definitions.schema.common import Level
from store.answers import answered_in
from store.audit import AuditEvent
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.messages import OutboxMessage
from store.warnings import Warning
from workflows.callout import CalloutInput, NightHours, WarningCalloutWorkflow, WarningInfo

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"


# The fixtures call-out tests share: import them into the test module (pytest finds them there).
@pytest.fixture
def people(db_url):
    """The small district of tests/factories.py; town 1's village head has no deputy."""
    from tests.factories import small_district

    with session_scope() as s:
        return small_district(s, missing_deputy=("330110001.deputy",))


@pytest.fixture
async def worker(env, db_url):
    """A worker with every workflow and activity on a task queue of the test's own; its task queue."""
    from worker import build_worker

    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, task_queue=tq):
        yield tq
        await terminate_callouts(env.client)  # a failed test's call-out must not hold the shared clock


@contextlib.asynccontextmanager
async def duty_api(env, monkeypatch, prefix: str, **district):
    """The real API on `env`'s Temporal, as a duty officer's token (duty_staff) uses it, over the small district of
    tests/factories.py (`district`: its options): an httpx client with `.people`, `.app`, `.token` and `.tq`, a task
    queue of the test's own (the settings'). No worker: the caller runs one on `.tq` (all along, or stopped and
    started again). The call-outs left running are terminated at the end."""
    import httpx

    from api.app import create_app
    from config import get_settings
    from store.auth import create_token
    from tests.factories import small_district

    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s, **district)
        token = create_token(s, "duty_staff", label="duty")
    app = create_app(temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        client.people, client.tq, client.app, client.token = people, settings.task_queue, app, token  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            await terminate_callouts(env.client)


def events(subject: str, kind: str | None = None) -> list[AuditEvent]:
    """The subject's audit events in order, of one kind if given."""
    with session_scope(write=False) as s:
        stmt = select(AuditEvent).where(AuditEvent.subject == subject)
        if kind:
            stmt = stmt.where(AuditEvent.kind == kind)
        return list(s.exec(stmt.order_by(AuditEvent.seq)))


def callout_input(plan_id: str = "heavy_rain", level: Level = Level.orange, towns: list[str] | None = None,
                  night: bool = False, callout_id: str | None = None) -> CalloutInput:
    lib = load_or_raise(DEFINITIONS)
    loaded = lib.of("callout")[plan_id]
    cid = callout_id or f"callout-test-{uuid.uuid4().hex[:8]}"
    # night hours that hold at every moment of the day / at none (equal start and end: no night hours), whatever
    # the hour the test runs at (a window of 23:59–00:00 held in the minute before midnight and broke CI there)
    hours = NightHours(start="00:00", end="23:59:59.999999") if night else NightHours(start="00:00", end="00:00")
    return CalloutInput(callout_id=cid, plan=loaded.model, plan_version=loaded.version, night=hours,
                        warning=WarningInfo(warning_id=f"W-{cid}", identifier=cid, level=level, event="暴雨",
                                            headline="青溪区气象台发布暴雨橙色预警", town_ids=towns or ["330110001"],
                                            area_descs=["第1街道"]))


async def start(client, task_queue: str, inp: CalloutInput):
    return await client.start_workflow(WarningCalloutWorkflow.run, inp, id=inp.callout_id, task_queue=task_queue)


def outbox(callout_id: str, **filters) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.subject == callout_id)
        for k, v in filters.items():
            stmt = stmt.where(getattr(OutboxMessage, k) == v)
        return list(s.exec(stmt.order_by(OutboxMessage.id)))


def targets(callout_id: str) -> dict[str, CalloutTarget]:
    with session_scope(write=False) as s:
        return {t.person_id: t for t in s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id))}


def answered(callout_id: str) -> dict[str, datetime]:
    """When the API received the answer it shows (ahead of the workflow's record) for each person's target
    (store/answers.py `answered_at`), by the target's person."""
    rows = targets(callout_id)
    with session_scope(write=False) as s:
        at = answered_in(s, callout_id)
    return {t.person_id: at[t.id] for t in rows.values() if t.id in at}


def callout(callout_id: str) -> Callout | None:
    with session_scope(write=False) as s:
        return s.get(Callout, callout_id)


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def ack(client, callout_id: str, person_id: str, channel: str = "link"):
    return await answers.acknowledge(client, callout_id, person_id, channel, ref=f"test:{person_id}:{channel}")


async def report(client, msg: OutboxMessage, status: str, **kw):
    return await answers.gateway_report(client, msg.provider_id, status, **kw)


async def terminate_callouts(client) -> None:
    """End every call-out (and publication below orange) this test's database knows of, shards included.

    A workflow left running after its test's worker is gone would hold the time-skipping
    server's clock still for every later test.
    """
    from temporalio.service import RPCError

    with session_scope(write=False) as s:
        ids = [c.id for c in s.exec(select(Callout))]
        ids += [w for w in s.exec(select(Warning.callout_id).where(Warning.callout_id.is_not(None))) if w not in ids]
        ids += [f"{cid}/shard-{n}" for cid, n in s.exec(select(CalloutTarget.callout_id, CalloutTarget.shard).distinct())]
        ids += [p for p in s.exec(select(Warning.publication_id).where(Warning.publication_id.is_not(None)))]  # 精准发布
    for wid in ids:
        try:
            await client.get_workflow_handle(wid).terminate("test over")
        except RPCError:
            pass  # already closed


async def idle(handle, timeout: float = 60.0, what: str = "the workflow to be idle") -> None:
    """A barrier: wait until the workflow has nothing in flight (no activity open, its last workflow task
    completed), i.e. it has applied everything that happened so far and waits for the next thing.
    Read from one fetch of the history, so that the two facts are about the same moment (a describe() then a
    history read could see no activity pending, then a workflow task that had just scheduled the next one).
    (Anti-hang bound: ~10x what a busy machine takes.)"""
    from temporalio.api.enums.v1 import EventType as E

    workflow_task = {E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                     E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                     E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT}
    activity_ended = {E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
                      E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
                      E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
                      E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes"}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        task, open_activities = None, set()  # the last workflow task event: any new input schedules one
        async for e in handle.fetch_history_events():
            if e.event_type in workflow_task:
                task = e.event_type
            elif e.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                open_activities.add(e.event_id)
            elif e.event_type in activity_ended:
                open_activities.discard(getattr(e, activity_ended[e.event_type]).scheduled_event_id)
        if task == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and not open_activities:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
