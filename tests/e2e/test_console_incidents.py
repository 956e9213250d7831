"""The incident chain in the console (httpx → create_app, time-skipping server, real worker and DB):
接报 from the form, the verbal report, a draft, the leading leader returning then approving it,
submission with receipts, a refused step showing the procedure's reason, and the desk listing it."""
from __future__ import annotations

import re
import uuid

import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.helpers import console_login, console_post as post, poll
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

DRAFT = {"place": "青溪路88号工地", "what_happened": "脚手架坍塌,2人受伤送医", "injured": "2", "measures": "现场已封控"}


@pytest.fixture
async def console(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"con-inc-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s)
        cadre = create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="cadre")
        leader = create_token(s, "leading_leader", person_id=people["leading_leader"], label="leader")
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue):
        cadre_web, leader_web = await console_login(app, cadre), await console_login(app, leader)
        try:
            yield cadre_web, leader_web
        finally:
            await cadre_web.aclose()
            await leader_web.aclose()
            await terminate_incidents(env.client)


async def test_incident_chain_clicked_through_the_console(console):
    cadre, leader = console
    listing = await cadre.get("/console/incidents")
    assert listing.status_code == 200 and "接报登记" in listing.text

    bad = await post(cadre, "/console/incidents", {"source": "12345", "category": "accident", "place": "",
                                                   "summary": "x", "reporting_unit": "u", "reporter": "r"})
    assert bad.status_code == 422 and "place" in bad.text  # the field is named, nothing started

    # a call-out of the last days is offered as the one the incident follows from
    from datetime import UTC, datetime

    from store.audit import NewEvent, append
    from store.callouts import Callout

    with session_scope() as s:
        s.add(Callout(id="callout-W1", warning_id="W1", plan_id="heavy_rain", plan_version="v", level="orange",
                      category="heavy_rain", title="暴雨橙色预警叫应", status="completed", started_at=datetime.now(UTC)))
        append(s, [NewEvent(subject="callout-W1", kind="callout.started", step_id="started")])
    assert "暴雨橙色预警叫应" in (await cadre.get("/console/incidents")).text
    resp = await post(cadre, "/console/incidents", {
        "source": "12345", "category": "accident", "subtype": "建筑施工", "town_id": "330110001",
        "place": "青溪路88号工地", "summary": "脚手架坍塌,2人受伤", "injured": "2", "reporting_unit": "第1街道",
        "reporter": "街道值班员", "reporter_phone": "13800138000", "related": "callout-W1"})
    assert resp.status_code == 303
    page_url = resp.headers["location"]
    incident_id = page_url.rsplit("/", 1)[1]
    from sqlmodel import select

    from store.audit import AuditEvent

    async def received():
        with session_scope(write=False) as s:
            return s.exec(select(AuditEvent).where(AuditEvent.subject == incident_id,
                                                   AuditEvent.kind == "incident.received")).first()

    opened = await poll(received, lambda e: e is not None, timeout=20, what="incident.received")
    assert "callout-W1" in str(opened.payload)  # the review will take the call-out's trail along
    page = await cadre.get(page_url)
    assert page.status_code == 200
    assert 'id="deadlines"' in page.text and "口头报告" in page.text and 'class="countdown"' in page.text
    assert 'id="form-verbal"' in page.text and 'id="form-draft"' in page.text

    desk = await cadre.get("/console/desk")
    assert f"/console/incidents/{incident_id}" in desk.text  # the desk lists it with its next deadline

    resp = await post(cadre, f"{page_url}/verbal", {"to_whom": "区政府总值班室", "by_whom": "值班干部"})
    assert resp.status_code == 303, resp.text
    resp = await post(cadre, f"{page_url}/draft", DRAFT)
    assert resp.status_code == 303, resp.text

    # the duty cadre may not approve: the workflow's reason is shown, with its status
    refused = await post(cadre, f"{page_url}/review", {"decision": "approve", "version": "1"})
    assert refused.status_code == 403 and 'id="step-error"' in refused.text, re.search(r'id="step-error">([^<]*)', refused.text)

    page = await leader.get(page_url)
    assert 'id="verbal-made"' in page.text and 'id="form-review"' in page.text and "待审核" in page.text
    resp = await post(leader, f"{page_url}/review", {"decision": "return", "comments": "补充伤者情况", "version": "1"})
    assert resp.status_code == 303

    page = await cadre.get(page_url)
    assert "补充伤者情况" in page.text and "按审核意见修改" in page.text
    assert "尚无灾情统计数据" in page.text
    resp = await post(cadre, f"{page_url}/draft", {**DRAFT, "what_happened": "脚手架坍塌,2人轻伤送医",
                                                   "affected_population": "-5"})  # 灾情统计: refused, named
    assert resp.status_code == 422 and "affected_population" in resp.text
    resp = await post(cadre, f"{page_url}/draft", {**DRAFT, "what_happened": "脚手架坍塌,2人轻伤送医",
                                                   "affected_population": "120", "relocated": "35",
                                                   "houses_damaged": "", "crop_area_ha": "0.5", "direct_loss_wan": "12.5"})
    assert resp.status_code == 303
    resp = await post(leader, f"{page_url}/review", {"decision": "approve", "version": "2"})
    assert resp.status_code == 303
    resp = await post(cadre, f"{page_url}/submit", {})
    assert resp.status_code == 303

    # the receipts are recorded by the submission's activity, a moment after the step returns
    page = await poll(lambda: cadre.get(page_url), lambda r: 'data-report-state="submitted"' in r.text and "回执" in r.text,
                      timeout=20, what="the submitted report with its receipts")
    assert 'id="form-followup"' in page.text and 'id="form-final"' in page.text
    for key, value in (("affected_population", "120"), ("relocated", "35"), ("houses_damaged", "0"),
                       ("crop_area_ha", "0.5"), ("direct_loss_wan", "12.5")):  # the approved report's totals
        assert f'data-figure="{key}">{value}<' in page.text, key
    assert 'name="affected_population" type="number" min="0" step="1" value="120"' in page.text  # the follow-up starts there
    english = await cadre.get(f"{page_url}?lang=en")
    assert "Reporting deadlines" in english.text and "Follow-up report" in english.text


async def test_unknown_step_and_incident_are_404(console):
    cadre, _ = console
    assert (await cadre.get("/console/incidents/nope")).status_code == 404
    assert (await post(cadre, "/console/incidents/nope/launch", {})).status_code == 404
