"""Pausing a drill schedule below the programme's weekly minimum (issue 22, item 2), through the API on the Temporal
dev server (the time-skipping server has no schedules): without a reason the pause is refused (422 naming the
reason, in Chinese and English) and the schedule keeps running; with one it is paused, the audit trail keeps the
reason, and the duty chief on duty is told by SMS (a DutyNoticeWorkflow through the outbox, recorded as
`schedule.below_minimum.notified`). Pausing a schedule that is no drill needs no reason. The shipped definitions:
no drill fires during the test (Tuesday and Friday 09:30, Monday, Wednesday and Thursday 15:00). The monthly
bulletin's schedule, installed with them, runs on the first working day of each month at 09:00."""
from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.app import create_app
from api.services.duty.schedules import bulletin_calendar
from config import get_settings
from definitions.loader import load_or_raise
from store.auth import create_token
from store.bulletins import first_working_day
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import console_login, console_post, poll
from worker import build_worker

DRILL = "drill-district_connectivity"
TZ = ZoneInfo("Asia/Shanghai")
IDS = (DRILL, "drill-town_spot_check", "handover", "spotcheck-sweep", "freshness-round", "bulletin-monthly",
       "readiness-monthly")


@pytest.mark.budget(40)  # real time on the dev server: a sync, a few pauses and one notice workflow (estimated)
async def test_a_pause_below_the_weekly_minimum_needs_a_reason_and_tells_the_duty_chief(dev_env, db_url):
    with session_scope() as s:
        people = small_district(s)
        tokens = {role: create_token(s, role, person_id=people.get(role), label=role)
                  for role in ("duty_chief", "admin")}
    settings = get_settings()
    settings.task_queue = tq = f"e2e-pause-{uuid.uuid4().hex[:6]}"
    client = dev_env.client
    app = create_app(temporal_client=client)

    def h(role: str) -> dict:
        return {"Authorization": f"Bearer {tokens[role]}"}

    async with build_worker(client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        async def audit() -> list[dict]:
            r = await api.get("/api/audit", headers=h("duty_chief"), params={"subject": "schedules"})
            return r.json() if r.status_code == 200 else []

        try:
            r = await api.post("/api/schedules/sync", headers=h("admin"))
            assert r.status_code == 200, r.text
            # the monthly bulletin's schedule (issue 22, item 3): the first working day of every month, 09:00 local
            listed = {x["id"]: x for x in (await api.get("/api/schedules", headers=h("duty_chief"))).json()}
            runs = [datetime.fromisoformat(x).astimezone(TZ) for x in listed["bulletin-monthly"]["next_runs"]]
            assert len(runs) == 5 and listed["bulletin-monthly"]["up_to_date"]
            calendar = bulletin_calendar(load_or_raise(Path(get_settings().definitions_dir)))
            assert all((at.hour, at.minute) == (9, 0) and at.date() == first_working_day(at.year, at.month, calendar)
                       for at in runs), runs
            assert len({(at.year, at.month) for at in runs}) == 5, "once a month"

            r = await api.post(f"/api/schedules/{DRILL}/pause", headers=h("duty_chief"), json={"note": "应急期间"})
            assert r.status_code == 422, r.text
            detail = r.json()["detail"]
            assert "暂停原因" in detail and "reason" in detail and "每周至少2次" in detail and "minimum of 2" in detail
            listed = {x["id"]: x for x in (await api.get("/api/schedules", headers=h("duty_chief"))).json()}
            assert not listed[DRILL]["paused"], "a refused pause leaves the schedule running"
            assert [e["kind"] for e in await audit()] == ["schedule.synced"]
            web = await console_login(app, tokens["duty_chief"])  # the console's 暂停 says the same
            try:
                page = await console_post(web, f"/console/schedules/{DRILL}/pause", {"back": "/console/drills"})
                assert page.status_code == 422 and "须填写暂停原因" in page.text, page.text[:500]
            finally:
                await web.aclose()

            r = await api.post(f"/api/schedules/{DRILL}/pause", headers=h("duty_chief"),
                               json={"reason": "防汛Ⅱ级应急响应期间暂停演练"})
            assert r.status_code == 200 and r.json()["paused"], r.text
            assert "防汛Ⅱ级应急响应期间暂停演练" in r.json()["note"]

            sms = await poll(lambda: _outbox(api, h("duty_chief")), bool, timeout=30, what="the duty chief told")
            assert [m["person_id"] for m in sms] == [people["duty_chief"]]
            body = sms[0]["body"]
            assert "值班长丁已暂停区级部门应急值守连通性演练" in body and "每周计划0次" in body and "每周至少2次" in body
            assert "防汛Ⅱ级应急响应期间暂停演练" in body and not any("a" <= ch.lower() <= "z" for ch in body), body

            events = await poll(audit, lambda ev: len(ev) == 3, timeout=30, what="the notice recorded")
            by_kind = {e["kind"]: e for e in events}
            paused = by_kind["schedule.paused"]["payload"]
            assert paused["reason"] == "防汛Ⅱ级应急响应期间暂停演练"
            assert paused["below_minimum"] == {"kind": "district", "kind_zh": "区级连通性演练", "planned": 0, "minimum": 2}
            told = by_kind["schedule.below_minimum.notified"]["payload"]
            assert told["sent_to"] == [{"role": "duty_chief", "person_id": people["duty_chief"]}]
            assert told["schedule"] == DRILL and told["reason"] == "防汛Ⅱ级应急响应期间暂停演练"

            # resuming needs no reason; pausing a schedule that is no drill neither
            r = await api.post(f"/api/schedules/{DRILL}/unpause", headers=h("duty_chief"))
            assert r.status_code == 200 and not r.json()["paused"], r.text
            r = await api.post("/api/schedules/handover/pause", headers=h("duty_chief"), json={"note": "x"})
            assert r.status_code == 200 and r.json()["paused"], r.text
            assert len(await _outbox(api, h("duty_chief"))) == 1, "only the pause below the minimum told anyone"
        finally:
            for sid in IDS:
                try:
                    await client.get_schedule_handle(sid).delete()
                except Exception:  # noqa: BLE001 - not installed
                    pass


async def _outbox(api: httpx.AsyncClient, headers: dict) -> list[dict]:
    r = await api.get("/api/outbox", headers=headers, params={"subject": "schedules"})
    return r.json() if r.status_code == 200 else []


async def test_a_schedule_temporal_refuses_is_a_422_that_names_it(dev_env, db_url, monkeypatch):
    """A spec the definitions make and Temporal refuses (years past 2100, say) is the sync's 422 with Temporal's
    reason and the schedule's id, not a 500."""
    from temporalio.client import ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

    from api.services.duty import schedules

    def refused(tz: str, hour: int, minute: int, calendar=None) -> ScheduleSpec:
        return ScheduleSpec(calendars=[ScheduleCalendarSpec(year=[ScheduleRange(2027, 9999)], hour=[ScheduleRange(hour)],
                                                            minute=[ScheduleRange(minute)])], time_zone_name=tz)

    monkeypatch.setattr(schedules, "first_working_day_spec", refused)
    with session_scope() as s:
        small_district(s)
        token = create_token(s, "admin", label="admin")
    app = create_app(temporal_client=dev_env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        try:
            r = await api.post("/api/schedules/sync", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 422, r.text
            assert "bulletin-monthly" in r.json()["detail"] and "Temporal" in r.json()["detail"]
        finally:
            for sid in IDS:
                try:
                    await dev_env.client.get_schedule_handle(sid).delete()
                except Exception:  # noqa: BLE001 - not installed
                    pass
