"""The full scenario of issue 7 through the API on the Temporal dev server (one clock for everything), with every
wait of the shipped definitions shortened to seconds:

an orange heavy-rain warning (CAP) → its call-out → an incident that follows from it and its reporting chain →
the flood control plan activated at Ⅳ级 (the commander confirms by SMS; tasks done on time, late and not at all;
a directive) → raised to Ⅲ级 → terminated, which starts the post-event review as a child → every unit's summary
(one late, its head called) → compiled, returned, compiled again, signed off → the sealed case file.

The report's statistics — call-out, reporting chain, and the activation's levels, tasks and directives against
their limits, escalations — are checked against a count made here directly from the audit events; replays of
the call-out, the reporting chain and the activation at chosen instants against what the test did then; the
case file with `yingji archive verify`, before and after one byte of the activation's trail is changed.
"""
from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from config import get_settings
from store import casefile
from store.auth import create_token
from store.db import session_scope
from tests.factories import response_district
from tests.helpers import CAP, as_delivered, in_seconds, poll, use_definitions
from tests.workflows.activation_helpers import terminate_activations
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

INCIDENT = {"source": "12345", "category": "natural_disaster", "subtype": "内涝", "town_id": "330110001",
            "place": "第1街道青溪路地下通道", "summary": "暴雨致地下通道积水,1辆车被困", "casualties": {"trapped": 2},
            "reporting_unit": "区应急管理局", "reporting_unit_id": "D01", "reporter": "值班员"}
DRAFT = {"place": "第1街道青溪路地下通道", "what_happened": "积水1.2米,2人被困已救出", "measures": "封闭通道,抽排",
         "casualties": {"trapped": 0}}
SUMMARY = {"what_worked": "叫应到人,指挥部20分钟内到位", "shortcomings": "巡堤查险反馈超时", "suggestions": "险工险段提前分片包干"}
# Task time limits of the flood control plan in seconds (the shipped hours / 360): Ⅳ级 会商 20 s, 预报 30 s,
# 巡堤 20 s, 转移 80 s; Ⅲ级 adds 交通管制 40 s, 上岗 80 s, 物资前置 60 s (no feedback needed).


@pytest.fixture
def fast_definitions(tmp_path: Path, monkeypatch) -> Path:
    """The shipped definitions with every wait in seconds (tests/helpers.py:in_seconds); today inside no
    special period (dispatch needs no consultation)."""
    return use_definitions(tmp_path, monkeypatch, in_seconds, NIGHT_START="00:00", NIGHT_END="00:00")


@pytest.fixture
async def api(dev_env, db_url, fast_definitions):
    settings = get_settings()
    settings.task_queue = f"scn-e2e-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = response_district(s)
        tokens = {role: create_token(s, role, person_id=people.get(role), label=role)
                  for role in ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "supervisor")}
        for key in ("D01.head", "D02.head", "D09.head", "deputy_head"):
            tokens[key] = create_token(s, "commander", person_id=people[key], label=key)
    app = create_app(temporal_client=dev_env.client)
    async with build_worker(dev_env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.tokens, client.people = tokens, people  # type: ignore[attr-defined]
        try:
            yield client
        finally:
            await terminate_activations(dev_env.client)
            await terminate_incidents(dev_env.client)


def auth(api, who: str = "duty_cadre") -> dict:
    return {"Authorization": f"Bearer {api.tokens[who]}"}


async def call(api, method: str, path: str, who: str = "duty_cadre", status: int | tuple = (200, 201), **kw):
    r = await api.request(method, path, headers=auth(api, who), **kw)
    assert r.status_code in ((status,) if isinstance(status, int) else status), f"{method} {path}: {r.text}"
    return r.json() if "json" in r.headers.get("content-type", "") else r


async def get_or_none(api, path: str, **params):
    r = await api.get(path, headers=auth(api, "supervisor"), params=params)
    return r.json() if r.status_code == 200 else None


async def trail(api, subject: str, **filters) -> list[dict]:
    out = await call(api, "GET", f"/api/audit/{subject}", "supervisor", params={"limit": 100000, **filters})
    assert out["count"] == len(out["events"]) and (filters or out["count"] == out["events_total"])
    return out["events"]


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"])


def t(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def replay(api, subject: str, when: datetime) -> dict:
    return await call(api, "GET", f"/api/audit/{subject}/replay", "supervisor", params={"at": when.isoformat()})


def first(events: list[dict], kind: str, **payload) -> dict:
    return next(e for e in events if e["kind"] == kind and all(e["payload"].get(k) == v for k, v in payload.items()))


def count_items(events: list[dict]) -> dict[str, dict]:
    """Each task's and directive's outcome, counted here from its events: accepted (late if the workflow marked it
    late), done when acknowledged if it needs no feedback, otherwise overdue or closed."""
    out: dict[str, dict] = {}
    for e in events:
        k, p = e["kind"], e["payload"]
        if k in ("activation.task.opened", "activation.directive.issued"):
            out[p["item"]] = {"kind": k.split(".")[1], "due": t(p["due_at"]), "feedback": p["feedback_required"],
                              "accepted": None, "late_by_s": None, "acked": None, "overdue": False, "closed": False,
                              "done": None}
    for e in events:
        k, p = e["kind"], e["payload"]
        item = out.get(p.get("item") or (p.get("target") if k == "activation.notice.ack" else None) or "")
        if item is None:
            continue
        if k.endswith(".feedback") and p["kind"] == "done":
            item["done"] = at(e)
        elif k.endswith(".accepted"):
            item["accepted"] = at(e)
        elif k.endswith(".late"):
            item["late_by_s"] = p["late_by_s"]
        elif k == "activation.notice.ack" and item["acked"] is None:
            item["acked"] = at(e)
        elif k.endswith(".overdue"):
            item["overdue"] = True
        elif k.endswith(".closed"):
            item["closed"] = True
    for item in out.values():
        if item["accepted"]:
            item["state"] = "late" if item["late_by_s"] else "on_time"
        elif not item["feedback"] and item["acked"]:
            item["state"] = "on_time" if item["acked"] <= item["due"] else "late"
        else:
            assert item["closed"]
            item["state"] = "overdue" if item["overdue"] else "closed"
    return out


@pytest.mark.budget(180)  # real time: every wait of the scenario in seconds (estimated)
async def test_warning_to_sealed_case_file_with_an_activation(api, tmp_path):
    people = api.people
    # ---------------------------------------------------------------- the warning and its call-out
    r = await api.post("/api/warnings", content=CAP.format(ident=f"scn-{uuid.uuid4().hex[:8]}").encode(),
                       headers={**auth(api), "Content-Type": "application/cap+xml"})
    assert r.status_code == 201, r.text
    cid = r.json()["callout_id"]
    a, b, c = people["D01.head"], people["330110001.head"], people["330110001001.resp"]
    sms = await poll(lambda: get_or_none(api, "/api/outbox", subject=cid, channel="sms"),
                     lambda m: m and {a, b, c} <= {x["person_id"] for x in m}, what="first texts")
    assert (await api.post(httpx.URL(as_delivered(next(x for x in sms if x["person_id"] == a)["id"]).ack_url).path)).status_code == 200
    voice = await poll(lambda: get_or_none(api, "/api/outbox", subject=cid, channel="voice"),
                       lambda m: m and b in {x["person_id"] for x in m if x["provider_id"]}, what="B's voice call placed")
    r = await api.post(f"/api/simulator/messages/{next(x for x in voice if x['person_id'] == b)['id']}",
                       headers=auth(api), json={"outcome": "keypress", "digits": "1"})
    assert r.status_code == 200 and r.json()["handled"] == "ack", r.text  # B answers the call; C never answers

    # ---------------------------------------------------------------- the incident, following from the warning
    r = await api.post("/api/incidents", headers=auth(api), json={**INCIDENT, "related": ["no-such-callout"]})
    assert r.status_code == 422 and "no-such-callout" in r.json()["detail"]
    view = await call(api, "POST", "/api/incidents", json={**INCIDENT, "id": f"SCN-{uuid.uuid4().hex[:6]}",
                                                           "related": [cid]})
    iid, ibase = view["incident_id"], f"/api/incidents/{view['incident_id']}"
    await asyncio.sleep(5)  # the verbal report is a little late
    await call(api, "POST", f"{ibase}/verbal", json={"to_whom": "区政府总值班室", "by_whom": "值班干部戊"})
    await call(api, "POST", f"{ibase}/draft", json=DRAFT)
    await call(api, "POST", f"{ibase}/review", "leading_leader", json={"decision": "approve"})
    await call(api, "POST", f"{ibase}/submit")

    # ---------------------------------------------------------------- Ⅳ级: the commander confirms, the work begins
    act = await call(api, "POST", "/api/activations", "duty_chief", 201, json={
        "plan": "flood_control", "level": "IV", "incident_id": iid, "reason": "暴雨橙色预警,地下通道内涝"})
    aid, asubj, abase = act["activation_id"], act["subject"], f"/api/activations/{act['activation_id']}"
    cmd_sms = await poll(lambda: get_or_none(api, "/api/outbox", subject=asubj, person_id=a, channel="sms"),
                         lambda m: m and any("您任指挥长" in x["body"] and x["provider_id"] for x in m),
                         what="the commander texted")
    r = await api.post(f"/api/simulator/messages/{next(x for x in cmd_sms if '您任指挥长' in x['body'])['id']}",
                       json={"outcome": "reply", "body": "1"}, headers=auth(api, "duty_chief"))
    assert r.status_code == 200 and r.json()["handled"] == "ack", r.text
    items = f"{abase}/items"
    await call(api, "POST", f"{items}/T-consultation/feedback", "D01.head", json={"kind": "done", "text": "会商完毕"})
    await call(api, "POST", f"{items}/T-consultation/review", "D01.head", json={"decision": "accept"})
    await call(api, "POST", f"{abase}/directives", "D01.head", json={"title": "封闭地下通道", "text": "立即封闭青溪路地下通道",
                                                                    "assignee": "group:rescue", "due_in": "15s"})
    await call(api, "POST", f"{items}/D1/ack", "D09.head", json={})
    await call(api, "POST", f"{items}/D1/feedback", "D09.head", json={"kind": "done", "text": "已封闭"})
    await call(api, "POST", f"{items}/D1/review", "D01.head", json={"decision": "accept"})
    await call(api, "POST", f"{items}/T-patrol/ack", "D09.head", json={})
    # 巡堤查险 passes its limit: the assignee is called again, then the superior
    await poll(lambda: get_or_none(api, "/api/audit", subject=asubj, kind="activation.overdue.escalated"),
               lambda ev: ev and any(e["payload"]["episode"].startswith("overdue/T-patrol/") for e in ev), timeout=90,
               what="T-patrol overdue, escalated")
    await call(api, "POST", f"{items}/T-patrol/feedback", "D09.head", json={"kind": "done", "text": "险段巡查完毕"})
    view = await call(api, "POST", f"{items}/T-patrol/review", "D01.head", json={"decision": "accept"})
    patrol_late = next(x for x in view["tasks"] if x["id"] == "T-patrol")["late_by_s"]
    assert patrol_late > 0
    await poll(lambda: get_or_none(api, "/api/audit", subject=asubj, kind="activation.task.overdue"),
               lambda ev: ev and any(e["payload"]["item"] == "T-forecast" for e in ev), timeout=60,
               what="T-forecast overdue")

    # ---------------------------------------------------------------- Ⅲ级, then the termination
    view = await call(api, "POST", f"{abase}/level", "deputy_head", json={"level": "III", "reason": "青溪河超警戒水位"})
    assert view["level"] == "III" and {"T-road_control", "T-stock"} <= {x["id"] for x in view["tasks"]}
    await call(api, "POST", f"{items}/T-stock/ack", "D02.head", json={})  # needs no feedback: done once acknowledged
    view = await call(api, "POST", f"{abase}/terminate", "deputy_head", json={"reason": "积水排净,险情解除"})
    assert view["status"] == "terminated" and view["review_workflow_id"] == f"review-{iid}"
    await call(api, "POST", f"{ibase}/final", json={**DRAFT, "what_happened": "积水排净,通道恢复通行"})
    await call(api, "POST", f"{ibase}/review", "leading_leader", json={"decision": "approve"})
    assert (await call(api, "POST", f"{ibase}/submit"))["status"] == "closed"
    await poll(lambda: get_or_none(api, f"/api/callouts/{cid}"), lambda x: x and x["status"] != "running",
               timeout=120, what="the call-out to end")

    # ---------------------------------------------------------------- the review the termination started
    rbase = f"/api/reviews/{iid}"
    rv = await poll(lambda: get_or_none(api, rbase), lambda d: d and d["units"], what="the review opened")
    rsubj = rv["subject"]
    assert rv["activation_id"] == aid and rv["subjects"] == [iid, asubj, cid, rsubj] and not rv["gaps"]
    units = [u["unit_id"] for u in rv["units"]]
    assert set(units) == set(view["units"]) and "330110001" in units
    for uid in units:
        if uid != "330110001":
            await call(api, "POST", f"{rbase}/summaries", json={"unit_id": uid, **SUMMARY})
    r = await api.post(f"{rbase}/compile", headers=auth(api))
    assert r.status_code == 409 and "has not passed" in r.json()["detail"]
    town_head = people["330110001.head"]
    await poll(lambda: get_or_none(api, "/api/outbox", subject=rsubj, channel="voice"),
               lambda m: m and town_head in {x["person_id"] for x in m}, timeout=60, what="overdue summary: a call")
    detail = await call(api, "POST", f"{rbase}/compile")  # after the deadline the duty office may compile
    assert detail["status"] == "compiled" and detail["reports"][-1]["version"] == 1
    await call(api, "POST", f"{rbase}/summaries", json={"unit_id": "330110001", **SUMMARY, "what_worked": "群众转移及时"})
    detail = await poll(lambda: get_or_none(api, rbase),
                        lambda d: d and d["status"] == "compiled" and d["report_version"] == 2, what="compiled again")
    await call(api, "POST", f"{rbase}/signoff", "leading_leader", json={"decision": "return", "comments": "补充物资前置情况"})
    detail = await call(api, "POST", f"{rbase}/compile", "duty_chief")
    assert detail["reports"][-1]["version"] == 3
    await call(api, "POST", f"{rbase}/signoff", "leading_leader",
               json={"decision": "approve", "version": 3, "lessons": "险工险段分片包干;地下通道积水提前封闭"})
    detail = await poll(lambda: get_or_none(api, rbase), lambda d: d and d["status"] == "sealed", what="sealed")

    # ---------------------------------------------------------------- the report's figures = a direct count
    report = await call(api, "GET", f"{rbase}/report.json")
    st = report["statistics"]
    assert report["final"] and report["version"] == 4
    events = {s: await trail(api, s) for s in (cid, iid, asubj, rsubj)}
    ae = events[asubj]
    [fig] = st["activations"]
    assert fig["subject"] == asubj and fig["plan"] == "flood_control"
    started, changed = first(ae, "activation.started"), first(ae, "activation.level.changed")
    ended = first(ae, "activation.terminated")
    assert [(lv["from"], lv["to"], t(lv["at"])) for lv in fig["levels"]] == [
        (None, "IV", at(started)), ("IV", "III", at(changed))]
    assert fig["level_changes"][0]["by"] == people["deputy_head"] and fig["level_changes"][0]["direction"] == "up"
    assert t(fig["terminated_at"]) == at(ended) and fig["level"] == "III"
    assert fig["levels"][0]["duration_s"] == round((at(changed) - at(started)).total_seconds())
    counted = count_items(ae)
    for name in ("tasks", "directives"):
        rows = {x["id"]: x for x in fig[name]["items"]}
        mine = {k: v for k, v in counted.items() if v["kind"] == name[:-1]}
        assert {k: x["state"] for k, x in rows.items()} == {k: v["state"] for k, v in mine.items()}, name
        assert {k: x["late_by_s"] for k, x in rows.items() if x["state"] == "late"} == \
            {k: v["late_by_s"] for k, v in mine.items() if v["state"] == "late"}
        for s_ in ("on_time", "late", "overdue", "closed"):
            assert fig[name][s_] == sum(v["state"] == s_ for v in mine.values()), (name, s_)
        followed = [re.match(r"(notice|overdue)/([^/]+)", e["payload"].get("episode", "")) for e in ae
                    if e["kind"].endswith(".escalated")]  # a task's or directive's notice, or its overdue calls
        assert fig[name]["escalations"] == sum(1 for m in followed if m and m.group(2) in mine)
    # and what the test knows it did
    assert {k: v["state"] for k, v in counted.items()} == {
        "T-consultation": "on_time", "T-forecast": "overdue", "T-patrol": "late", "T-evacuate": "closed",
        "D1": "on_time", "T-road_control": "closed", "T-on_post": "closed", "T-stock": "on_time"}
    assert counted["T-patrol"]["late_by_s"] == patrol_late
    assert fig["escalations"] == sum(1 for e in ae if e["kind"].endswith(".escalated")) > 0
    assert st["escalations"]["by_subject"][asubj] == fig["escalations"]
    assert st["escalations"]["total"] == sum(1 for es in events.values() for e in es if e["kind"].endswith(".escalated"))
    for ch, fig_ch in st["channels"].items():
        sends = [e for es in events.values() for e in es if e["kind"].endswith(".sent") and e["channel"] == ch
                 and "status" in e["payload"]]
        assert fig_ch["sends"] == len(sends), ch
    [co] = st["callouts"]
    acks = {}
    for e in events[cid]:
        if e["kind"] == "callout.ack":
            acks.setdefault(e["payload"]["target"], e)
    assert co["acknowledged"] == len(acks) == 2 and co["escalations"] == sum(
        1 for e in events[cid] if e["kind"] == "callout.escalated")
    [rep] = st["reporting"]
    assert rep["compliance"]["late"] == sum(1 for e in events[iid] if e["kind"].endswith(".late")) == 1
    assert st["review"]["late"] == 1 and st["review"]["on_time"] == len(units) - 1
    html = (await call(api, "GET", f"{rbase}/report.html")).text
    for words in ("青溪区防汛应急预案", "逾期办结", "逾期未完成", "未完成即关闭", "青溪河超警戒水位", "群众转移及时",
                  "险工险段分片包干", "响应提升:由Ⅳ级调整为Ⅲ级"):
        assert words in html, words

    # ---------------------------------------------------------------- replays at chosen instants
    a_ack = acks[next(k for k, e in acks.items() if e["payload"]["person_id"] == a)]
    s1 = await replay(api, cid, at(a_ack))  # A has answered by the link; B not yet
    states = {x["person_id"]: x for x in s1["targets"]}
    assert states[a]["state"] == "acknowledged" and states[a]["ack_channel"] == "link"
    assert states[b]["state"] != "acknowledged" and s1["status"] == "running"
    s2 = await replay(api, cid, at(first(events[cid], "callout.ended")))
    states = {x["person_id"]: x["state"] for x in s2["targets"]}
    assert states[b] == "acknowledged" and states[c] == "unreachable" and s2["acknowledged"] == 2 and s2["open"] == 0

    made = first(events[iid], "report.verbal.made")
    r1 = await replay(api, iid, at(made))
    limits = {d["key"]: d["state"] for d in r1["time_limits"]}
    assert limits["verbal"] == "late" and limits["written"] == "open" and r1["status"] == "open"
    assert r1["incident"]["incident_id"] == iid

    cmd_ack = first(ae, "activation.convene.ack", person_id=a)
    s = await replay(api, asubj, at(cmd_ack) - timedelta(milliseconds=1))  # the commander not yet answered
    commander = next(x for x in s["targets"] if x["episode"] == "convene/0" and x["person_id"] == a)
    assert commander["state"] == "notified" and s["level"] == "IV" and s["status"] == "active"
    s = await replay(api, asubj, at(cmd_ack))
    commander = next(x for x in s["targets"] if x["episode"] == "convene/0" and x["person_id"] == a)
    assert commander["state"] == "acknowledged" and commander["ack_channel"] == "sms"
    due = {d["key"]: t(d["due"]) for d in s["time_limits"]}
    assert due["T-patrol"] == at(started) + timedelta(seconds=20) and "T-road_control" not in due
    overdue = first(ae, "activation.task.overdue", item="T-patrol")
    s = await replay(api, asubj, at(overdue))
    limits = {d["key"]: d for d in s["time_limits"]}
    assert limits["T-patrol"]["overdue"] and not limits["T-evacuate"]["overdue"] and "T-consultation" not in limits
    tasks = {x["id"]: x for x in s["tasks"]}
    assert tasks["T-consultation"]["state"] == "on_time" and tasks["T-patrol"]["status"] == "acknowledged"
    assert s["directives"][0]["state"] == "on_time"
    s = await replay(api, asubj, at(changed) - timedelta(milliseconds=1))
    assert s["level"] == "IV" and len(s["levels"]) == 1
    opened = first(ae, "activation.task.opened", item="T-road_control")
    s = await replay(api, asubj, at(opened))
    assert s["level"] == "III" and [x["to"] for x in s["levels"]] == ["IV", "III"]
    limits = {d["key"]: t(d["due"]) for d in s["time_limits"]}
    assert limits["T-road_control"] == at(changed) + timedelta(seconds=40) and "T-patrol" not in limits
    called = first(ae, "activation.convene.sent", episode="convene/1", person_id=people["deputy_head"])
    s = await replay(api, asubj, at(called))  # the Ⅲ级 commander called
    assert next(x for x in s["targets"] if x["episode"] == "convene/1" and x["person_id"] == people["deputy_head"])[
        "state"] == "notified"
    s = await replay(api, asubj, at(ended))
    assert s["status"] == "terminated" and s["time_limits"] == [] and s["level"] == "III"

    # ---------------------------------------------------------------- the case file, offline
    r = await api.get(f"{rbase}/casefile", headers=auth(api, "supervisor"))
    assert r.status_code == 200 and r.headers["x-sha256"] == casefile.sha256(r.content)
    [sealed] = await trail(api, rsubj, kind="review.sealed")
    assert sealed["payload"]["sha256"] == r.headers["x-sha256"] == detail["case_file"]["sha256"]
    path = tmp_path / "case.zip"
    path.write_bytes(r.content)
    runner = CliRunner()
    out = runner.invoke(cli, ["archive", "verify", str(path), "--expect", sealed["payload"]["sha256"]])
    assert out.exit_code == 0 and "case file intact" in out.output, out.output
    manifest = casefile.verify_bytes(r.content).manifest
    # one file per chain: the call-out's shards each have their own (store/audit.py chain_of)
    assert {c.split("/shard-")[0] for c in manifest["subjects"]} == {iid, cid, asubj, rsubj}
    assert all(c.startswith(f"{cid}/shard-") for c in set(manifest["subjects"]) - {iid, cid, asubj, rsubj})
    assert manifest["subjects"][asubj]["events"] == len(ae)
    assert {d["kind"] for d in manifest["definitions"]} == {"callout", "reporting", "plans", "review"}
    assert all(d.get("file") for d in manifest["definitions"])
    entries = casefile.read_entries(r.content)
    _, regions = casefile.write_zip(entries, datetime.fromisoformat(manifest["sealed_at"]))
    target = next(x for x in regions if x.name == casefile.subject_file(asubj) and x.what == "content")
    bad = bytearray(r.content)
    bad[(target.start + target.end) // 2] ^= 0x20
    path.write_bytes(bytes(bad))
    out = runner.invoke(cli, ["archive", "verify", str(path)])
    assert out.exit_code == 1 and f"{casefile.subject_file(asubj)}: content changed" in out.output, out.output
