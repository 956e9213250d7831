"""Plan activation in the console (httpx → create_app, time-skipping server, real worker and DB):
activate from the form, the board with commanders, groups and tasks, a directive issued by the
commander, acknowledged and reported by the group lead and accepted, a refusal showing the
procedure's reason, a level change and termination."""
from __future__ import annotations

import re
import uuid

import pytest

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.db import session_scope
from tests.factories import response_district
from tests.helpers import console_login, console_post as post, poll
from tests.workflows.activation_helpers import terminate_activations
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker


@pytest.fixture
async def console(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"con-act-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        p = response_district(s)
        tokens = {"chief": create_token(s, "duty_chief", person_id=p["duty_chief"], label="chief"),
                  "commander": create_token(s, "commander", person_id=p["D10.head"], label="commander"),
                  "lead": create_token(s, "commander", person_id=p["D08.head"], label="lead")}
    app = create_app(temporal_client=env.client)
    async with build_worker(env.client, task_queue=settings.task_queue):
        webs = {k: await console_login(app, v) for k, v in tokens.items()}
        try:
            yield webs
        finally:
            for w in webs.values():
                await w.aclose()
            await terminate_activations(env.client)
            await terminate_incidents(env.client)


async def test_response_run_from_the_console(console):
    chief, commander, lead = console["chief"], console["commander"], console["lead"]
    r = await post(chief, "/console/incidents", {
        "source": "department", "category": "public_health", "subtype": "聚集性疫情", "town_id": "330110001",
        "place": "第1街道青溪花园小区", "summary": "初筛阳性3例", "reporting_unit": "区卫生健康局", "reporter": "疾控值班员"})
    assert r.status_code == 303
    incident_id = r.headers["location"].rsplit("/", 1)[1]

    page = await chief.get("/console/activations")
    assert 'id="form-activate"' in page.text and incident_id in page.text
    assert '<option value="" selected>请选择响应级别</option>' in page.text  # no level chosen for the user
    assert "应急预案" in page.text and "启动条件" in page.text
    bad = await post(chief, "/console/activations", {"plan": "public_health", "level": "IV", "incident_id": incident_id,
                                                     "reason": ""})
    assert bad.status_code == 422 and "reason" in bad.text
    r = await post(chief, "/console/activations", {"plan": "public_health", "level": "IV", "incident_id": incident_id,
                                                   "reason": "初筛阳性3例,启动Ⅳ级响应"})
    assert r.status_code == 303, r.text
    board_url = r.headers["location"]
    board = await chief.get(board_url)
    assert board.status_code == 200
    assert 'id="commanders"' in board.text and 'id="tasks"' in board.text and 'class="countdown"' in board.text
    assert "Ⅳ级" in board.text and 'class="badge lv-IV" id="level"' in board.text  # the grade in its colour (Ⅳ blue)
    hq = re.search(r'<table class="stack" id="commanders">(.*?)</table>', board.text, re.S).group(1)
    rows = re.findall(r"<tr><th scope=\"row\">([^<]*)</th><td>([^<]*)</td>", hq)
    assert rows and len(rows) == len(set(rows)), rows  # every seat once (the commander was listed twice)
    assert 'id="form-terminate"' in board.text and "data-confirm=" in board.text  # terminating asks first
    assert board_url.rsplit("/", 1)[1] in (await chief.get("/console/desk")).text  # the desk lists the response

    # force dispatch from the resource register: the plan's kinds offered (available first), a busy team not
    # offered, the chosen one marked busy and named in the plan
    from store.resources import RescueTeam

    with session_scope() as s:
        s.add_all([RescueTeam(id="T-ME-1", name="急救中心救护队", kind="medical", strength=16, town_id="330110001",
                              duty_phone="+8657186900120"),
                   RescueTeam(id="T-ME-2", name="第二救护队", kind="medical", strength=12, status="busy"),
                   RescueTeam(id="T-FL-1", name="防汛抢险队", kind="flood", strength=40)])  # not a kind this plan needs
    board = await chief.get(board_url)
    offered = re.search(r'<fieldset class="wide" id="register-teams">(.*?)</fieldset>', board.text, re.S).group(1)
    assert 'value="T-ME-1" >' in offered and 'value="T-ME-2" disabled' in offered and "T-FL-1" not in offered
    assert "医疗救护 · 16人" in offered and "已出动" in offered
    r = await post(chief, f"{board_url}/dispatch", {"teams": "T-ME-1", "task": "转运阳性人员", "note": "代消防救援拟定"})
    assert r.status_code == 303, r.text
    with session_scope(write=False) as s:
        assert s.get(RescueTeam, "T-ME-1").status == "busy"
    board = await chief.get(board_url)
    assert "急救中心救护队(16人)" in board.text and 'value="T-ME-1" disabled' in board.text

    # 物资调拨 asked through the API shows on the page, a shortage marked
    from api.services import supplies
    from store.resources import StockLine, SupplyDepot

    activation_id = board_url.rsplit("/", 1)[1]
    with session_scope() as s:
        s.add(SupplyDepot(id="DEP-1", name="区级应急物资储备库"))
        s.flush()
        s.add(StockLine(depot_id="DEP-1", item="医用口罩", quantity=500, unit="箱"))
        s.flush()
        supplies.request(s, activation_id, supplies.SupplyRequestIn(
            depot_id="DEP-1", items=[{"item": "医用口罩", "quantity": 800}]), "p-duty_chief")
    board = await chief.get(board_url)
    assert 'data-supplies="1" data-state="requested"' in board.text and "库存缺口 300箱" in board.text
    assert "待审批" in board.text

    # only a commander may direct: the workflow's reason is shown
    refused = await post(chief, f"{board_url}/directive", {"assignee": "group:data", "title": "密接核查",
                                                           "text": "完成密接人员落地核查", "due_in": "2h"})
    assert refused.status_code == 403 and 'id="step-error"' in refused.text
    r = await post(commander, f"{board_url}/directive", {"assignee": "group:data", "title": "密接核查",
                                                         "text": "完成密接人员落地核查", "due_in": "2h"})
    assert r.status_code == 303, r.text
    board = await lead.get(board_url)
    assert 'id="item-D1"' in board.text

    assert (await post(lead, f"{board_url}/acknowledge", {"item_id": "D1"})).status_code == 303
    assert (await post(lead, f"{board_url}/feedback", {"item_id": "D1", "kind": "done", "text": "已核查"})).status_code == 303
    board = await commander.get(board_url)
    assert 'data-state="reported"' in board.text
    assert (await post(commander, f"{board_url}/review", {"item_id": "D1", "decision": "accept"})).status_code == 303
    board = await commander.get(board_url)
    assert re.search(r'id="item-D1" data-state="accepted"', board.text)

    r = await post(commander, f"{board_url}/level", {"level": "III", "reason": "病例增加"})
    assert r.status_code == 303, re.search(r'id="step-error">([^<]*)', r.text)
    board = await chief.get(board_url)
    assert re.search(r'id="level">Ⅲ级', board.text)
    # the duty chief may not terminate (the plan: commanders only)
    refused = await post(chief, f"{board_url}/terminate", {"reason": "疫情得到控制"})
    assert refused.status_code == 403 and 'id="step-error"' in refused.text
    r = await post(commander, f"{board_url}/terminate", {"reason": "疫情得到控制"})
    assert r.status_code == 303, re.search(r'id="step-error">([^<]*)', r.text)
    board = await poll(lambda: chief.get(board_url), lambda b: 'id="status">已终止' in b.text,
                       timeout=20, what="terminated")
    assert 'id="form-directive"' not in board.text  # nothing more to do on a terminated response
    assert f'href="/console/reviews/{incident_id}"' in board.text  # the review it started

    # the supervisor's replay of the response (a subject with a slash): its levels, tasks and directives
    aid = board_url.rsplit("/", 1)[1]
    replay = await chief.get(f"/console/replay/activation/{aid}")
    assert replay.status_code == 200 and f'href="/console/activations/{aid}"' in replay.text
    state = await chief.get(f"/console/replay/activation/{aid}/state")
    assert 'id="replay-activation"' in state.text and re.search(r'data-item="D1" data-state="on_time"', state.text)
    assert "Ⅳ级 → <strong>Ⅲ级</strong>" in state.text
    english = await chief.get(f"{board_url}?lang=en")
    assert "Standing tasks" in english.text and "terminated" in english.text
