"""The post-event review in the console (httpx → create_app, time-skipping server, real worker and DB): started
by hand for an incident, the units with their countdowns, a summary recorded by the duty office, a compile
refused before the deadline with the procedure's reason, a summary overdue (its head called) and then late,
the report compiled by itself, returned and compiled again by the duty office, signed off by the leading
leader, the case file downloaded with its hash; the desk lists the open review; the supervisor's replay of
subjects with a slash, and the case file offered there."""
from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from config import get_settings
from store import casefile
from store.auth import create_token
from store.db import session_scope
from store.review import Review
from tests.factories import response_district
from tests.helpers import console_login, console_post as post, poll
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker


def error_of(r: httpx.Response) -> str | None:
    m = re.search(r'id="step-error">([^<]*)', r.text)
    return m.group(1) if m else None


@pytest.fixture
async def console(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"con-rev-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        p = response_district(s)
        tokens = {"cadre": create_token(s, "duty_cadre", person_id=p["duty_cadre"], label="cadre"),
                  "leader": create_token(s, "leading_leader", person_id=p["leading_leader"], label="leader"),
                  "supervisor": create_token(s, "supervisor", label="supervisor")}
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue):
        webs = {k: await console_login(app, v) for k, v in tokens.items()}
        webs["people"] = p  # type: ignore[assignment]
        try:
            yield webs
        finally:
            for k, w in webs.items():
                if k != "people":
                    await w.aclose()
            with session_scope(write=False) as s:
                ids = list(s.exec(select(Review.workflow_id)))
            for wid in ids:
                try:
                    await env.client.get_workflow_handle(wid).terminate("test over")
                except Exception:  # noqa: BLE001 - closed already
                    pass
            await terminate_incidents(env.client)


SUMMARY = {"what_worked": "封闭通道及时", "shortcomings": "夜间回执偏慢", "suggestions": "夜间首轮改语音", "author": "办公室 王五"}


async def test_review_run_from_the_console(console, env):
    cadre, leader, sup = console["cadre"], console["leader"], console["supervisor"]
    r = await post(cadre, "/console/incidents", {
        "source": "12345", "category": "natural_disaster", "subtype": "内涝", "town_id": "330110001",
        "place": "第1街道青溪路地下通道", "summary": "地下通道积水", "reporting_unit": "区应急管理局", "reporter": "值班员"})
    assert r.status_code == 303
    iid = r.headers["location"].rsplit("/", 1)[1]

    # the list, with a form to start one by hand; an unknown unit is refused with the reason
    page = await cadre.get("/console/reviews")
    assert page.status_code == 200 and 'id="form-start"' in page.text and iid in page.text
    assert 'href="/console/reviews"' in page.text  # the nav entry
    bad = await post(cadre, "/console/reviews", {"incident_id": iid, "units": "D99"})
    assert bad.status_code == 422 and "D99" in error_of(bad)
    r = await post(cadre, "/console/reviews", {"incident_id": iid, "units": "D01, 330110001"})
    assert r.status_code == 303, error_of(r)
    url = r.headers["location"]
    assert url == f"/console/reviews/{iid}"

    page = await cadre.get(url)
    assert page.status_code == 200
    assert re.search(r'id="unit-D01" data-state="requested"', page.text) and 'class="countdown"' in page.text
    assert 'id="form-summary"' in page.text and 'id="form-compile"' in page.text and 'id="form-signoff"' not in page.text
    assert 'id="temporal-link"' not in page.text  # the Temporal UI (workflow internals): supervisors and admin only
    watched = await console["supervisor"].get(url)
    assert 'id="temporal-link"' in watched.text and f"review-{iid}" in watched.text
    desk = await cadre.get("/console/desk")
    assert 'id="desk-reviews"' in desk.text and url in desk.text  # the desk lists the open review

    # the duty office records D01's summary; compiling before the deadline is refused, the reason shown
    r = await post(cadre, f"{url}/summary", {"unit_id": "D01", **SUMMARY})
    assert r.status_code == 303, error_of(r)
    page = await cadre.get(url)
    assert re.search(r'id="unit-D01" data-state="submitted"', page.text) and "封闭通道及时" in page.text
    assert "值班干部戊" in page.text  # who entered it
    refused = await post(cadre, f"{url}/compile", {})
    assert refused.status_code == 409 and "报送时限未到" in error_of(refused)  # the page says it in Chinese
    empty = await post(cadre, f"{url}/summary", {"unit_id": "330110001", **SUMMARY, "what_worked": ""})
    assert empty.status_code == 422 and "what_worked" in error_of(empty)

    # the town's summary is overdue: its head is called; then it comes, late, and the report compiles by itself
    await env.sleep(timedelta(days=7, minutes=1))
    page = await poll(lambda: cadre.get(url), lambda p: re.search(r'id="unit-330110001" data-state="overdue"', p.text),
                      timeout=30, what="the town's summary overdue")
    assert "逾期未报" in page.text
    r = await post(cadre, f"{url}/summary", {"unit_id": "330110001", **SUMMARY, "what_worked": "群众转移有序"})
    assert r.status_code == 303, error_of(r)
    page = await poll(lambda: leader.get(url), lambda p: 'data-status="compiled"' in p.text, timeout=30,
                      what="compiled")
    assert re.search(r'id="unit-330110001" data-state="late"', page.text) and "迟交" in page.text
    assert 'id="form-signoff"' in page.text and 'id="report-v1"' in page.text
    assert 'id="form-signoff"' not in (await cadre.get(url)).text  # only the leading leader signs off

    # returned with comments; compiled again by the duty office; signed off with the lessons; sealed
    r = await post(leader, f"{url}/signoff", {"decision": "approve", "version": "1", "lessons": ""})
    assert r.status_code == 422 and "经验教训" in error_of(r)
    r = await post(leader, f"{url}/signoff", {"decision": "return", "version": "1", "comments": "补充夜间值守情况"})
    assert r.status_code == 303, error_of(r)
    page = await cadre.get(url)
    assert 'data-status="returned"' in page.text and "补充夜间值守情况" in page.text
    assert (await post(cadre, f"{url}/compile", {})).status_code == 303
    r = await post(leader, f"{url}/signoff", {"decision": "approve", "version": "2", "lessons": "夜间叫应首轮用语音"})
    assert r.status_code == 303, error_of(r)
    page = await poll(lambda: sup.get(url), lambda p: 'data-status="sealed"' in p.text, timeout=30, what="sealed")
    sha = re.search(r'id="casefile-sha256">([0-9a-f]{64})<', page.text).group(1)
    assert 'id="form-summary"' not in page.text and 'id="form-compile"' not in page.text
    assert "夜间叫应首轮用语音" in page.text and 'id="report-v3"' in page.text  # the final report
    zipped = await sup.get(f"{url}/casefile")
    assert zipped.status_code == 200 and casefile.sha256(zipped.content) == sha == zipped.headers["x-sha256"]
    assert casefile.verify_bytes(zipped.content).ok
    html = await sup.get(f"{url}/report.html?version=3")
    assert html.status_code == 200 and "夜间叫应首轮用语音" in html.text and "群众转移有序" in html.text
    pdf = await sup.get(f"{url}/report.pdf?version=3")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert (await sup.get(f"{url}/report.json")).json()["final"] is True
    assert (await sup.get(f"{url}/report.xml")).status_code == 404
    listing = await sup.get("/console/reviews?status=sealed")
    assert re.search(rf'id="review-{re.escape(iid)}" data-status="sealed"', listing.text)
    assert url not in (await cadre.get("/console/desk")).text  # sealed: no longer open

    # the replay of a subject with a slash; the case file offered there and on the incident's replay
    replay = await sup.get(f"/console/replay/review/{iid}")
    assert replay.status_code == 200 and 'id="case-file"' in replay.text and sha in replay.text
    assert f'href="/console/reviews/{iid}"' in replay.text and f'hx-get="/console/replay/review/{iid}/state' in replay.text
    state = await sup.get(f"/console/replay/review/{iid}/state", params={"t": 0})
    assert state.status_code == 200 and 'id="replay-review"' in state.text
    assert re.search(r'data-unit="D01" data-state="open"', state.text)
    state = await sup.get(f"/console/replay/review/{iid}/state")  # the last instant
    assert re.search(r'data-unit="330110001" data-state="late"', state.text)
    inc = await sup.get(f"/console/replay/{iid}")
    assert inc.status_code == 200 and 'id="case-file"' in inc.text and f'href="/console/incidents/{iid}"' in inc.text
    r = await sup.get("/console/replay", params={"subject": f"review/{iid}"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/console/replay/review/{iid}"
    index = await sup.get("/console/replay")
    assert f'href="/console/replay/review/{iid}"' in index.text
    assert (await cadre.get(f"/console/replay/review/{iid}")).status_code == 403  # supervisors only
    english = await sup.get(f"{url}?lang=en")
    assert "Post-event review" in english.text and "sealed" in english.text
