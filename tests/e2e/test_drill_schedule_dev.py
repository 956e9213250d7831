"""A scheduled drill on the Temporal dev server (Schedules do not run on the time-skipping server),
through the API, with the simulator gateway and real time.

The shipped definitions with the district drill every 15 s and its 30-minute window shortened to
seconds: the schedules are installed from the definitions, the drill fires by itself, calls a sample
of department heads with the 【演练】 marker, two of three answer, and the drill reports its response
rate within the window; the schedule is paused and triggered by hand through the API, every step is
audited, and no real statistic counts the drill.
"""
from __future__ import annotations

import re
import uuid
from pathlib import Path

from datetime import UTC, datetime

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.callouts import Callout
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import poll, use_definitions
from tests.workflows.duty_helpers import terminate
from worker import build_worker

DRILL = "drill-district_connectivity"


@pytest.fixture
def fast_drills(tmp_path: Path, monkeypatch) -> Path:
    def edit(path: Path, text: str) -> str:
        if path.as_posix() != "duty/drills.yaml":
            return text
        text = text.replace("weekly_minimum: {district: 2, towns: 3}", "weekly_minimum: {district: 1, towns: 0}")
        text = text.replace('schedule: {days: [tue, fri], at: ["09:30"]}', "schedule: {every: 15s}")
        text = text.replace('schedule: {days: [mon, wed, thu], at: ["15:00"]}',
                            'schedule: {days: [mon, wed, thu], at: ["15:00"]}\n      paused: true')
        text = text.replace("window: 30m", "window: 6s", 1)
        text = re.sub(r"wait_ack: 10m", "wait_ack: 3s", text, count=1)
        return re.sub(r"wait_ack: 20m", "wait_ack: 3s", text, count=1)

    return use_definitions(tmp_path, monkeypatch, edit)


@pytest.mark.budget(60)  # real time: a drill every 15 s (estimated)
async def test_a_scheduled_drill_fires_and_reports_its_response_rate(dev_env, db_url, fast_drills):
    with session_scope() as s:
        people = small_district(s)
        tokens = {role: create_token(s, role, person_id=people.get(role), label=role)
                  for role in ("duty_chief", "duty_cadre", "admin")}
    settings = get_settings()
    tq = settings.task_queue = f"e2e-drill-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)
    client = dev_env.client

    def h(role: str) -> dict:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with build_worker(client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        async def get(path: str, **params):
            r = await api.get(path, headers=h("duty_chief"), params=params)
            return r.json() if r.status_code == 200 else None

        runs: list[str] = []
        try:
            r = await api.post("/api/schedules/sync", headers=h("duty_cadre"))
            assert r.status_code == 403, "only an administrator installs schedules"
            r = await api.post("/api/schedules/sync", headers=h("admin"))
            assert r.status_code == 200, r.text
            assert {DRILL, "drill-town_spot_check", "handover", "spotcheck-sweep", "freshness-round"} <= set(
                r.json()["created"] + r.json()["updated"])
            listed = {x["id"]: x for x in await get("/api/schedules")}
            assert listed[DRILL]["installed"] and not listed[DRILL]["paused"] and listed[DRILL]["up_to_date"]
            assert listed[DRILL]["next_runs"] and listed[DRILL]["when_zh"] == "每15秒"
            assert listed["drill-town_spot_check"]["paused"], "a drill marked paused is installed paused"

            # the schedule fires by itself
            found = await poll(lambda: get("/api/drills"), lambda d: d and d["runs"], timeout=40, what="a drill run")
            run = found["runs"][-1]
            runs.append(run["id"])
            assert run["id"].startswith(DRILL) and run["trigger"] == "schedule"
            r = await api.post(f"/api/schedules/{DRILL}/pause", headers=h("duty_chief"),
                               json={"note": "演练暂停,测试", "reason": "测试暂停"})
            assert r.status_code == 200 and r.json()["paused"], r.text

            # three department heads are called, every message marked; two answer by SMS
            callout_id = run["callout_id"]
            sent = await poll(lambda: get("/api/outbox", subject=callout_id),
                              lambda m: m and len([x for x in m if x["provider_id"]]) >= 3, what="the sample called")
            sms = [m for m in sent if m["channel"] == "sms"]
            assert len({m["person_id"] for m in sms}) == 3
            assert all(m["body"].startswith("【演练】") and m["drill"] for m in sent)
            for m in sms[:2]:
                r = await api.post(f"/api/simulator/messages/{m['id']}", json={"outcome": "reply", "body": "收到"},
                                   headers=h("duty_cadre"))
                assert r.status_code == 200 and r.json()["handled"] == "ack", r.text

            detail = await poll(lambda: get(f"/api/drills/{run['id']}"), lambda d: d and d["status"] == "reported",
                                timeout=60, what="the drill reported")
            assert detail["total"] == 3 and detail["responded"] == 2 and detail["rate"] == pytest.approx(2 / 3, abs=1e-3)
            assert detail["callout"]["drill"] is True and detail["window_s"] == 6
            assert sorted(t["in_window"] for t in detail["targets"]) == [False, True, True]
            report = await poll(lambda: get("/api/outbox", subject=run["id"]), bool, what="the drill's report sent")
            assert {m["person_id"] for m in report} == {people["leading_leader"], people["duty_chief"]}
            assert all(m["body"].startswith("【演练】【演练小结】") and "应答率67%" in m["body"] and m["drill"] for m in report)
            audit = await get("/api/audit", subject=run["id"])
            assert [e["kind"] for e in audit] == ["drill.started", "drill.reported"]
            assert audit[1]["payload"]["responded"] == 2 and audit[1]["payload"]["drill_marker"]

            # no real statistic counts it
            stats = await get("/api/statistics/callouts")
            assert stats["callouts"]["callouts"] == 0 and stats["callouts"]["targets"] == 0
            assert stats["callouts"]["drills_left_out"] >= 1 and stats["drills"]["runs"] >= 1

            # paused: it does not fire again by itself; triggered by hand it does
            listed = {x["id"]: x for x in await get("/api/schedules")}
            assert listed[DRILL]["paused"] and "演练暂停" in listed[DRILL]["note"]
            before = len((await get("/api/drills"))["runs"])
            r = await api.post(f"/api/schedules/{DRILL}/trigger", headers=h("duty_chief"))
            assert r.status_code == 200, r.text
            found = await poll(lambda: get("/api/drills"), lambda d: d and len(d["runs"]) == before + 1,
                               timeout=30, what="the triggered run")
            runs.extend(x["id"] for x in found["runs"])
            r = await api.post(f"/api/schedules/{DRILL}/pause", headers=h("duty_cadre"), json={"note": "x"})
            assert r.status_code == 403
            r = await api.post("/api/schedules/nope/pause", headers=h("duty_chief"), json={"note": "x"})
            assert r.status_code == 404
            kinds = [e["kind"] for e in await get("/api/audit", subject="schedules")]
            # the pause left the district drills below their weekly minimum (1 here): the duty chief is told, by a
            # workflow of its own (store/drillweeks.py, api/services/duty/schedules.py)
            assert [k for k in kinds if k != "schedule.below_minimum.notified"] == [
                "schedule.synced", "schedule.paused", "schedule.triggered"]

            # the spot-check sweep, triggered: a real orange call-out that ended gets its 六问 check (the drills none)
            with session_scope() as s:
                s.add(Callout(id="C-sweep", plan_id="heavy_rain", plan_version="x", level="orange", category="heavy_rain",
                              title="暴雨橙色预警叫应", status="completed", ended_at=datetime.now(UTC)))
            r = await api.post("/api/schedules/spotcheck-sweep/trigger", headers=h("duty_chief"))
            assert r.status_code == 200, r.text
            runs.append("spotcheck-C-sweep")

            async def check_started():
                try:
                    return (await client.get_workflow_handle("spotcheck-C-sweep").describe()).status
                except RPCError:
                    return None

            assert await poll(check_started, lambda st: st == WorkflowExecutionStatus.RUNNING, what="the check started")
            for drill_run in runs[:-1]:
                with pytest.raises(RPCError):
                    await client.get_workflow_handle(f"spotcheck-{drill_run}/callout").describe()
        finally:
            for sid in (DRILL, "drill-town_spot_check", "handover", "spotcheck-sweep", "freshness-round", "bulletin-monthly"):
                try:
                    await client.get_schedule_handle(sid).delete()
                except Exception:  # noqa: BLE001 - not installed
                    pass
            await terminate(client, [w for r in runs for w in (r, f"{r}/callout", f"{r}/callout/shard-0")])
