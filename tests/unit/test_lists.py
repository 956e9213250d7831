"""The lists: the message log (filters, names, masked numbers, Chinese statuses, who may read it), the search
box (persons by part of a number), the local date filters of the lists (services, REST, console) and the Excel
exports opened back with openpyxl, cell by cell."""
from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import pytest
from openpyxl import load_workbook

from api.services import messagelog, search
from api.services.callouts import callout_list
from api.services.dates import DateFilterError, local_range
from api.services.incidents import incident_list
from config import get_settings
from store.auth import create_token
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import Person
from store.incidents import Incident
from store.messages import OutboxMessage

# local (Asia/Shanghai) 2026-12-03 23:30 and 2026-12-04 00:30: either side of a local midnight
LATE_3RD = datetime(2026, 12, 3, 15, 30, tzinfo=UTC)
EARLY_4TH = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)
CID = "callout-W0123456789ab"


def _msg(n: int, person: str, to: str, channel: str, status: str, at: datetime, subject: str, error: str | None = None):
    return OutboxMessage(idempotency_key=f"k{n}", channel=channel, to=to, person_id=person, subject=subject,
                         body=f"消息{n}", status=status, error=error, created_at=at, sent_at=at)


@pytest.fixture
def data(db_url, monkeypatch):
    from tests.factories import small_district

    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "lists-admin")
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    with session_scope() as s:
        people = small_district(s, towns=1, villages=1)
        head = s.get(Person, people["D01.head"])
        head.mobile = "+8613712345678"  # 区应急管理局局长
        s.add(Callout(id=CID, plan_id="heavy_rain", plan_version="x", level="orange", category="heavy_rain",
                      title="暴雨橙色预警叫应", status="completed", started_at=LATE_3RD, ended_at=EARLY_4TH))
        s.add(Incident(id="20261204-001", workflow_id="incident-20261204-001", title="东山村山体滑坡",
                       received_at=EARLY_4TH, source="town", category="natural_disaster", place="东山村后山",
                       rules_id="district", rules_version="x"))
        s.add(Incident(id="20261203-001", workflow_id="incident-20261203-001", title="道路交通事故",
                       received_at=LATE_3RD, source="110", category="accident", place="S14省道",
                       rules_id="district", rules_version="x", deaths=1))
        s.flush()
        s.add(CalloutTarget(callout_id=CID, target_key="departments/D01", tier="departments", position_code="dept_head",
                            org_unit_id="D01", person_id=people["D01.head"], name="区应急管理局 部门主要负责人",
                            state="acknowledged", acknowledged_at=LATE_3RD + timedelta(minutes=3), ack_channel="sms",
                            ack_by=people["D01.deputy"],
                            attempts=[{"purpose": "notify", "at": LATE_3RD.isoformat(), "channel": "sms", "status": "sent"}]))
        s.add(CalloutTarget(callout_id=CID, target_key="departments/D02", tier="departments", position_code="dept_head",
                            org_unit_id="D02", person_id=people["D02.head"], name="区水利局 部门主要负责人",
                            state="unreachable", attempts=[]))
        s.add(_msg(1, people["D01.head"], "+8613712345678", "sms", "delivered", LATE_3RD, CID))
        s.add(_msg(2, people["D02.head"], "+8613900000099", "voice", "no_answer", EARLY_4TH, CID))
        s.add(_msg(3, people["D02.head"], "+8613900000099", "sms", "failed", EARLY_4TH + timedelta(minutes=1), CID,
                   error="simulated failure"))
        s.add(_msg(4, people["duty_chief"], "im-duty_chief", "im", "sent", EARLY_4TH + timedelta(minutes=2),
                   "20261204-001"))
        tokens = {role: create_token(s, role, label=role) for role in ("duty_staff", "commander", "supervisor")}
    return people, tokens


def _log(**kw) -> dict:
    f = messagelog.LogFilter(**kw)
    with session_scope(write=False) as s:
        return messagelog.message_log(s, f)


def test_the_message_log_filters_names_and_masks(data):
    people, _ = data
    every = _log()
    assert [r["id"] for r in every["rows"]] == [4, 3, 2, 1], "newest first"
    first = every["rows"][-1]
    assert first["name"] == "区应急管理局局长" and first["to"] == "+86137****5678"
    assert first["kind"] == "callout" and first["link"] == f"/console/callouts/{CID}"
    assert first["title"] == "暴雨橙色预警叫应"
    assert every["rows"][0]["link"] == "/console/incidents/20261204-001" and every["rows"][0]["to"] == ""
    assert [r["id"] for r in _log(who="水利局")["rows"]] == [3, 2]  # part of a name
    assert [r["id"] for r in _log(who="2345")["rows"]] == [1]  # part of a number
    assert [r["id"] for r in _log(channel="sms")["rows"]] == [3, 1]
    assert [r["id"] for r in _log(status="failed")["rows"]] == [3]
    assert [r["id"] for r in _log(subject="20261204")["rows"]] == [4]
    assert [r["id"] for r in _log(dates=local_range("2026-12-03", "2026-12-03"))["rows"]] == [1]
    assert [r["id"] for r in _log(dates=local_range("2026-12-04", None))["rows"]] == [4, 3, 2]
    with session_scope(write=False) as s:
        page = messagelog.message_log(s, messagelog.LogFilter(), page=2, per_page=3)
    assert page["total"] == 4 and page["pages"] == 2 and [r["id"] for r in page["rows"]] == [1]
    with pytest.raises(messagelog.MessageLogError):
        _log(status="nonsense")


def test_search_finds_a_person_by_part_of_a_number_and_incidents_by_place(data):
    with session_scope(write=False) as s:
        found = search.search(s, "1234 56")
        assert [p["name"] for p in found["persons"]] == ["区应急管理局局长"]
        person = found["persons"][0]
        assert person["mobile"] == "+86137****5678" and person["posts"][0]["unit"] == "区应急管理局"
        assert person["posts"][0]["position"] == "部门主要负责人"
        assert [i["id"] for i in search.search(s, "东山村")["incidents"]] == ["20261204-001"]
        assert [c["id"] for c in search.search(s, "暴雨橙色")["callouts"]] == [CID]
        assert [p["name"] for p in search.search(s, "水利局副")["persons"]] == ["区水利局副局长"]
        for q in ("", "13"):
            with pytest.raises(search.SearchError) as err:
                search.search(s, q)
            assert err.value.status == 422 and re.search(r"[\u4e00-\u9fff]", str(err.value))


def test_date_filters_are_local_days(data):
    day = local_range("2026-12-04", "2026-12-04")
    assert day.start == datetime(2026, 12, 3, 16, tzinfo=UTC) and day.end == datetime(2026, 12, 4, 16, tzinfo=UTC)
    assert [r["id"] for r in incident_list(10, None, None, dates=day)] == ["20261204-001"]
    assert [r["id"] for r in incident_list(10, None, None, dates=local_range(None, "2026-12-03"))] == ["20261203-001"]
    with session_scope(write=False) as s:
        assert [c["id"] for c in callout_list(s, dates=local_range("2026-12-03", "2026-12-03"))] == [CID]
        assert callout_list(s, dates=day) == []
    for bad in (("2026-13-01", None), ("2026-12-05", "2026-12-04"), ("0001-01-01", None), (None, "9999-12-31")):
        with pytest.raises(DateFilterError):
            local_range(*bad)


def _sheet(resp: httpx.Response):
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml")
    return load_workbook(io.BytesIO(resp.content)).active


def _filename(resp: httpx.Response) -> str:
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"") and disposition.encode("latin-1")
    return unquote(disposition.split("filename*=UTF-8''")[1])


async def _login(web: httpx.AsyncClient, token: str) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', (await web.get("/console/login")).text).group(1)
    assert (await web.post("/console/login/token", data={"token": token, "csrf": csrf})).status_code == 303


async def test_console_pages_exports_and_who_may_read_the_log(data):
    from api.app import create_app

    _, tokens = data
    app = create_app(temporal_client=object())  # the pages below never reach Temporal
    admin = {"Authorization": "Bearer lists-admin"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        # REST takes the same date filters; a bad one is a 422 in Chinese
        got = (await web.get("/api/incidents", params={"date_from": "2026-12-04"}, headers=admin)).json()
        assert [i["id"] for i in got] == ["20261204-001"]
        bad = await web.get("/api/callouts", params={"date_from": "04.12.2026"}, headers=admin)
        assert bad.status_code == 422 and "日期格式" in bad.json()["detail"]
        got = (await web.get("/api/outbox", params={"date_to": "2026-12-03"}, headers=admin)).json()
        assert [m["id"] for m in got] == [1]

        await _login(web, tokens["duty_staff"])
        page = (await web.get("/console/messages")).text
        assert 'href="/console/messages"' in page and 'action="/console/search"' in page
        assert "区水利局局长" in page and "无人接听" in page and "模拟网关:发送失败" in page
        assert "+86137****5678" in page and "+8613712345678" not in page
        assert f'href="/console/callouts/{CID}"' in page and "p-D02.head" not in page
        english = (await web.get("/console/messages", params={"lang": "en"})).text
        assert "Message log" in english and "nobody answered" in english and "无人接听" not in english
        await web.get("/console/messages", params={"lang": "zh"})
        page = (await web.get("/console/messages", params={"status": "failed"})).text
        assert page.count('<tr id="msg-') == 1 and 'id="msg-3"' in page
        assert 'href="/console/export/messages.xlsx?status=failed"' in page
        bad = await web.get("/console/messages", params={"date_from": "yesterday"})
        assert bad.status_code == 422 and "日期格式" in bad.text and 'id="log-filters"' in bad.text

        ws = _sheet(resp := await web.get("/console/export/messages.xlsx", params={"channel": "sms"}))
        assert re.fullmatch(r"消息记录-messages-\d{8}\.xlsx", _filename(resp))
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        assert rows[0][:6] == ["时间", "接收人", "号码", "渠道", "状态", "事由类型"]
        assert len(rows) == 3  # the header and the two SMS
        assert rows[1][:9] == [datetime(2026, 12, 4, 0, 31), "区水利局局长", "+86139****0099", "短信", "发送失败", "叫应",
                               "暴雨橙色预警叫应", CID, "模拟网关:发送失败"]
        assert rows[2][0] == datetime(2026, 12, 3, 23, 30) and rows[2][4] == "已送达"
        assert ws["A2"].number_format == "yyyy-mm-dd hh:mm:ss"

        ws = _sheet(resp := await web.get(f"/console/export/callouts/{CID}.xlsx"))
        assert re.fullmatch(rf"叫应-{CID}-\d{{8}}\.xlsx", _filename(resp))
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        assert rows[0] == ["层级", "姓名", "单位", "岗位", "状态", "发送次数", "首次通知时间", "最后通知时间", "收到回复时间",
                           "应答时间", "应答方式", "应答人", "超时后应答", "升级至"]
        assert rows[1] == ["区级部门", "区应急管理局局长", "区应急管理局", "部门主要负责人", "已应答", 1,
                           datetime(2026, 12, 3, 23, 30), datetime(2026, 12, 3, 23, 30), None, datetime(2026, 12, 3, 23, 33),
                           "短信", "区应急管理局副局长", None, None]
        assert rows[2][1] == "区水利局局长" and rows[2][4] == "未叫应" and rows[2][8] is None and rows[2][9] is None
        assert 'id="targets-export"' in (await web.get(f"/console/callouts/{CID}")).text

        ws = _sheet(await web.get("/console/export/incidents.xlsx", params={"date_to": "2026-12-03"}))
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        assert len(rows) == 2 and rows[1][:5] == ["20261203-001", "道路交通事故", datetime(2026, 12, 3, 23, 30), "110", "事故灾难"]
        assert rows[1][rows[0].index("死亡")] == 1
        page = (await web.get("/console/incidents", params={"date_from": "2026-12-04"})).text
        assert "东山村山体滑坡" in page and "道路交通事故" not in page
        assert 'href="/console/export/incidents.xlsx?date_from=2026-12-04"' in page

        ws = _sheet(resp := await web.get("/console/export/directory.xlsx"))
        assert _filename(resp).startswith("通讯录-directory-")
        rows = [list(r) for r in ws.iter_rows(values_only=True)]
        head = next(r for r in rows if r[5] == "区应急管理局局长")
        assert head[:7] == ["区应急管理局", "D01", "部门", "青溪区", "部门主要负责人", "区应急管理局局长", "+86137****5678"]
        assert "+8613712345678" not in resp.content.decode("latin-1")

        page = (await web.get("/console/search", params={"q": "5678"})).text
        assert "区应急管理局局长" in page and "部门主要负责人" in page
        assert (await web.get("/console/search", params={"q": "1"})).status_code == 422

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        await _login(web, tokens["commander"])  # a commander reads no message log
        assert 'href="/console/messages"' not in (await web.get("/console/desk")).text
        for path in ("/console/messages", "/console/export/messages.xlsx"):
            refused = await web.get(path)
            assert refused.status_code == 403 and "spreadsheetml" not in refused.headers["content-type"]
        assert (await web.get("/console/search", params={"q": "东山村"})).status_code == 200

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        await _login(web, tokens["supervisor"])
        assert (await web.get("/console/messages")).status_code == 200


async def test_activations_and_reviews_filter_by_local_dates(data):
    from api.app import create_app
    from api.services import activations, reviews
    from store.activations import Activation
    from store.review import Review

    _, tokens = data
    with session_scope() as s:
        for iid, at in (("20261203-001", LATE_3RD), ("20261204-001", EARLY_4TH)):
            s.add(Activation(id=f"{iid}-flood", workflow_id=f"activation-{iid}", incident_id=iid, plan_id="flood",
                             plan_version="x", plan_name=f"防汛应急预案 {iid}", level="IV", activated_by="t",
                             activated_at=at))
            s.add(Review(incident_id=iid, workflow_id=f"review-{iid}", subject=f"review/{iid}", title=f"复盘 {iid}",
                         started_at=at))
    fourth = local_range("2026-12-04", "2026-12-04")
    assert [a["id"] for a in activations.listing(10, None, None, dates=fourth)] == ["20261204-001-flood"]
    assert [r["incident_id"] for r in reviews.listing(10, None, dates=local_range(None, "2026-12-03"))] == ["20261203-001"]
    app = create_app(temporal_client=object())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as web:
        admin = {"Authorization": "Bearer lists-admin"}
        got = (await web.get("/api/activations", params={"date_to": "2026-12-03"}, headers=admin)).json()
        assert [a["id"] for a in got] == ["20261203-001-flood"]
        got = (await web.get("/api/reviews", params={"date_from": "2026-12-04"}, headers=admin)).json()
        assert [r["incident_id"] for r in got] == ["20261204-001"]
        await _login(web, tokens["duty_staff"])
        page = (await web.get("/console/activations", params={"date_from": "2026-12-04"})).text
        assert "防汛应急预案 20261204-001" in page and "防汛应急预案 20261203-001" not in page
        assert 'name="date_from" value="2026-12-04"' in page
        page = (await web.get("/console/reviews", params={"date_to": "2026-12-03"})).text
        assert "复盘 20261203-001" in page and "复盘 20261204-001" not in page
        for path in ("/console/activations", "/console/reviews", "/console/incidents"):
            bad = await web.get(path, params={"date_from": "2026-12-05", "date_to": "2026-12-04"})
            assert bad.status_code == 422 and "结束日期早于开始日期" in bad.text and 'name="date_to"' in bad.text


def test_a_sheet_keeps_text_as_text_and_times_local():
    from api.services.xlsx import workbook

    data = workbook("通讯录/测试", ["标题", "时间"], [["=HYPERLINK(\"http://x\")", EARLY_4TH], ["+8613", None]],
                    tz="Asia/Shanghai")
    ws = load_workbook(io.BytesIO(data)).active
    assert ws.title == "通讯录 测试"
    assert ws["A2"].value == "=HYPERLINK(\"http://x\")" and ws["A2"].data_type == "s"
    assert ws["B2"].value == datetime(2026, 12, 4, 0, 30) and ws["A3"].value == "+8613" and ws["B3"].value is None


def test_every_kind_of_subject_has_a_name_in_the_log_and_a_proposal_its_page():
    """The message log names a message's subject by its kind (api/console/i18n_lists.SUBJECT_KINDS): a kind left out
    showed its English key on the Chinese page ("proposal": the leader's 响应建议 SMS, found by the console walk)."""
    from api.console.i18n_lists import SUBJECT_KINDS, subject_kind
    from workflows.subjects import NAMES, PREFIXES, kind_of, proposal_subject

    kinds = {*PREFIXES.values(), *NAMES.values(), kind_of("W0123456789ab"), kind_of("INC-1")}
    assert not kinds - SUBJECT_KINDS.keys(), kinds - SUBJECT_KINDS.keys()
    assert all(re.search(r"[\u4e00-\u9fff]", subject_kind(k)) for k in kinds)
    assert messagelog.subject_link(proposal_subject("W0123456789ab-flood")) == (
        "proposal", "/console/proposals/W0123456789ab-flood")
    links = {subject: messagelog.subject_link(subject)[1] for subject in (
        "activation/act-1", "review/INC-1", "bulletin/2026-11", CID, "INC-1", "gateway")}
    assert links == {"activation/act-1": "/console/activations/act-1", "review/INC-1": "/console/reviews/INC-1",
                     "bulletin/2026-11": "/console/bulletins/2026-11", CID: f"/console/callouts/{CID}",
                     "INC-1": "/console/incidents/INC-1", "gateway": None}
