"""The whole scenario through the API on the Temporal dev server (one clock for everything), with every wait
of the shipped definitions shortened to seconds: an orange warning → its call-out → an incident and its
reporting chain → the post-event review → the signed event report and the sealed case file.

The report's statistics are checked against a count made here directly from the audit events (read
through GET /api/audit/{subject}); replays at chosen instants against what the test did then; the case
file with `yingji archive verify`, before and after one byte is changed.
"""
from __future__ import annotations

import asyncio
import statistics
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
from tests.factories import small_district
from tests.helpers import CAP, as_delivered, in_seconds, poll, use_definitions
from worker import build_worker

ROLES = ("duty_staff", "duty_cadre", "duty_chief", "leading_leader", "commander", "supervisor")
INCIDENT = {"source": "12345", "category": "natural_disaster", "subtype": "内涝", "town_id": "330110001",
            "place": "第1街道青溪路地下通道", "summary": "暴雨致地下通道积水,1辆车被困", "casualties": {"trapped": 2},
            "reporting_unit": "区应急管理局", "reporting_unit_id": "D01", "reporter": "值班员"}
DRAFT = {"place": "第1街道青溪路地下通道", "what_happened": "积水1.2米,2人被困已救出", "measures": "封闭通道,抽排",
         "casualties": {"trapped": 0}}


@pytest.fixture
def fast_definitions(tmp_path: Path, monkeypatch) -> Path:
    """The shipped definitions with every wait in seconds (tests/helpers.py:in_seconds)."""
    return use_definitions(tmp_path, monkeypatch, in_seconds, NIGHT_START="00:00", NIGHT_END="00:00")


@pytest.fixture
async def api(dev_env, db_url, fast_definitions):
    settings = get_settings()
    settings.task_queue = f"rev-e2e-{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        people = small_district(s)
        persons = {r: people.get(r) for r in ("duty_cadre", "leading_leader", "duty_chief")}
        tokens = {role: create_token(s, role, person_id=persons.get(role), label=role) for role in ROLES}
        tokens["D01.head"] = create_token(s, "commander", person_id=people["D01.head"], label="D01.head")
    app = create_app(temporal_client=dev_env.client)
    async with build_worker(dev_env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        client.tokens, client.people = tokens, people  # type: ignore[attr-defined]
        yield client


def auth(api, role: str = "duty_cadre") -> dict:
    return {"Authorization": f"Bearer {api.tokens[role]}"}


async def call(api, method: str, path: str, role: str = "duty_cadre", status: int | tuple = (200, 201), **kw):
    r = await api.request(method, path, headers=auth(api, role), **kw)
    assert r.status_code in ((status,) if isinstance(status, int) else status), f"{method} {path}: {r.text}"
    return r.json() if "json" in r.headers.get("content-type", "") else r


async def get_or_none(api, path: str, role: str = "supervisor"):
    r = await api.get(path, headers=auth(api, role))
    return r.json() if r.status_code == 200 else None


async def trail(api, subject: str, **filters) -> list[dict]:
    out = await call(api, "GET", f"/api/audit/{subject}", "supervisor", params={"limit": 100000, **filters})
    assert out["count"] == len(out["events"]) and (filters or out["count"] == out["events_total"])
    return out["events"]


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"])


async def replay(api, subject: str, when: datetime) -> dict:
    return await call(api, "GET", f"/api/audit/{subject}/replay", "supervisor", params={"at": when.isoformat()})


async def test_warning_callout_incident_review_report_and_case_file(api, tmp_path):
    people = api.people
    # ---------------------------------------------------------------- the warning and its call-out
    r = await api.post("/api/warnings", content=CAP.format(ident=f"qx-{uuid.uuid4().hex[:8]}").encode(),
                       headers={**auth(api), "Content-Type": "application/cap+xml"})
    assert r.status_code == 201, r.text
    cid = r.json()["callout_id"]
    a, b, c = people["D01.head"], people["330110001.head"], people["330110001001.resp"]
    sms = await poll(lambda: get_or_none(api, f"/api/outbox?subject={cid}&channel=sms"),
                     lambda m: m and {a, b, c} <= {x["person_id"] for x in m}, what="first texts")
    link = httpx.URL(as_delivered(next(x for x in sms if x["person_id"] == a)["id"]).ack_url).path
    assert (await api.post(link)).status_code == 200  # A answers the text at once, by its link
    voice = await poll(lambda: get_or_none(api, f"/api/outbox?subject={cid}&channel=voice"),
                       lambda m: m and b in {x["person_id"] for x in m if x["provider_id"]}, what="B's voice call placed")
    await asyncio.sleep(0.5)
    r = await api.post(f"/api/simulator/messages/{next(x for x in voice if x['person_id'] == b)['id']}",
                       headers=auth(api), json={"outcome": "keypress", "digits": "1"})
    assert r.status_code == 200 and r.json()["handled"] == "ack", r.text  # B answers the call; C never answers
    await poll(lambda: get_or_none(api, f"/api/callouts/{cid}"), lambda x: x and x["status"] != "running",
               timeout=120, what="the call-out to end")

    # ---------------------------------------------------------------- the incident's reporting chain
    view = await call(api, "POST", "/api/incidents", json={**INCIDENT, "id": f"E2E-{uuid.uuid4().hex[:6]}",
                                                           "related": [cid]})  # the call-out joins the case here
    iid, base = view["incident_id"], f"/api/incidents/{view['incident_id']}"
    await asyncio.sleep(5)  # the verbal report is a little late
    await call(api, "POST", f"{base}/verbal", json={"to_whom": "区政府总值班室", "by_whom": "值班干部戊"})
    await call(api, "POST", f"{base}/draft", json=DRAFT)
    await call(api, "POST", f"{base}/review", "leading_leader", json={"decision": "approve"})
    await call(api, "POST", f"{base}/submit")
    await call(api, "POST", f"{base}/final", json={**DRAFT, "what_happened": "积水排净,通道恢复通行"})
    await call(api, "POST", f"{base}/review", "leading_leader", json={"decision": "approve"})
    assert (await call(api, "POST", f"{base}/submit"))["status"] == "closed"

    # ---------------------------------------------------------------- the review
    r = await api.post("/api/reviews", headers=auth(api, "duty_chief"), json={"incident_id": "nope"})
    assert r.status_code == 404 and "no incident" in r.json()["detail"]
    r = await api.post("/api/reviews", headers=auth(api, "duty_chief"), json={"incident_id": iid, "units": ["D99"]})
    assert r.status_code == 422 and "D99" in r.json()["detail"]
    r = await api.post("/api/reviews", headers=auth(api, "supervisor"), json={"incident_id": iid})
    assert r.status_code == 403
    rv = await call(api, "POST", "/api/reviews", "duty_chief", 201, json={"incident_id": iid, "related": [cid]})
    subject, rbase = rv["subject"], f"/api/reviews/{iid}"
    assert rv["subjects"] == [iid, cid, subject] and [u["unit_id"] for u in rv["units"]] == ["D01", "330110001"]
    again = await call(api, "POST", "/api/reviews", "duty_chief", 200, json={"incident_id": iid})
    assert again["duplicate"] is True
    summary = {"what_worked": "叫应到人,20分钟内封闭通道", "shortcomings": "村级责任人未应答", "suggestions": "夜间改语音"}
    r = await api.post(f"{rbase}/summaries", headers=auth(api, "commander"), json={"unit_id": "D01", **summary})
    assert r.status_code == 403 and "does not answer for" in r.json()["detail"]  # a commander, but not D01's
    await call(api, "POST", f"{rbase}/summaries", "D01.head", json={"unit_id": "D01", **summary})
    r = await api.post(f"{rbase}/signoff", headers=auth(api, "leading_leader"), json={"decision": "approve"})
    assert r.status_code == 409 and "no compiled report" in r.json()["detail"]
    town_head = people["330110001.head"]
    await poll(lambda: get_or_none(api, f"/api/outbox?subject={subject}&channel=voice"),
               lambda m: m and town_head in {x["person_id"] for x in m}, timeout=60, what="overdue summary: a call")
    await call(api, "POST", f"{rbase}/summaries", json={"unit_id": "330110001", **summary, "what_worked": "转移及时"})
    detail = await poll(lambda: get_or_none(api, rbase), lambda d: d and d["status"] == "compiled", what="compiled")
    assert [u["state"] for u in detail["units"]] == ["submitted", "late"]
    r = await api.post(f"{rbase}/signoff", headers=auth(api, "duty_chief"), json={"decision": "approve", "lessons": "x"})
    assert r.status_code == 403 and "signoff" in r.json()["detail"]
    await call(api, "POST", f"{rbase}/signoff", "leading_leader",
               json={"decision": "approve", "version": 1, "lessons": "地下通道积水提前封闭;村级叫应改语音"})
    detail = await poll(lambda: get_or_none(api, rbase), lambda d: d and d["status"] == "sealed", what="sealed")
    assert detail["signed_by"] == people["leading_leader"] and detail["case_file"]["sha256"]
    r = await api.post(f"{rbase}/summaries", headers=auth(api), json={"unit_id": "D01", **summary})
    assert r.status_code == 409
    assert not await trail(api, subject, kind="review.refused")  # refusals are counted apart (store/refusals.py)
    refusals = await call(api, "GET", "/api/audit/refusals", "supervisor", params={"subject": subject})
    assert {r["status"] for r in refusals} == {403, 409}

    # ---------------------------------------------------------------- the report's figures = a direct count
    report = await call(api, "GET", f"{rbase}/report.json")
    st = report["statistics"]
    assert report["final"] and report["version"] == 2 and report["signoff"]["by_name"] == "副区长丙"
    events = {s: await trail(api, s) for s in (cid, iid, subject)}
    ce = events[cid]
    first_ask = {}
    for e in ce:
        if e["kind"] == "callout.sent" and e["payload"]["purpose"] == "notify":
            first_ask.setdefault(e["payload"]["target"], at(e))
    acks = {}
    for e in ce:
        if e["kind"] == "callout.ack":
            acks.setdefault(e["payload"]["target"], e)
    total = sum(n for e in ce if e["kind"] == "callout.targets_resolved" for n in e["payload"]["per_tier"].values())
    unreachable = {e["payload"]["target"] for e in ce if e["kind"] == "callout.unreachable"} - set(acks)
    [co] = st["callouts"]
    assert co["targets"] == total and co["acknowledged"] == len(acks) == 2 and co["ack_rate"] == round(2 / total, 4)
    assert {u["target"] for u in co["unreachable"]} == unreachable and len(unreachable) == total - 2
    assert co["escalations"] == sum(1 for e in ce if e["kind"] == "callout.escalated") > 0
    for tier, fig in co["per_tier"].items():
        times = [(at(acks[t]) - first_ask[t]).total_seconds() for t in acks if t.startswith(tier + "/")]
        assert fig["acknowledged"] == len(times)
        assert fig["time_to_ack"]["median_s"] == (round(statistics.median(times), 1) if times else None)
    assert {ch: v["n"] for ch, v in co["per_ack_channel"].items()} == {"link": 1, "voice": 1}
    for ch, fig in st["channels"].items():
        sends = [e for es in events.values() for e in es if e["kind"].endswith(".sent") and e["channel"] == ch
                 and "status" in e["payload"]]
        assert fig["sends"] == len(sends), ch
    [rep] = st["reporting"]
    late = [e for e in events[iid] if e["kind"].endswith(".late")]
    assert rep["compliance"]["late"] == len(late) == 1
    verbal = next(d for d in rep["deadlines"] if d["key"] == "verbal")
    assert verbal["state"] == "late" and verbal["late_by_s"] == late[0]["payload"]["late_by_s"]
    assert st["activations"] == [] and st["review"]["late"] == 1 and st["review"]["on_time"] == 1
    assert st["escalations"]["total"] == sum(1 for es in events.values() for e in es if e["kind"].endswith(".escalated"))
    html = (await call(api, "GET", f"{rbase}/report.html")).text
    assert "转移及时" in html and "村级叫应改语音" in html and "未启动应急响应" in html
    pdf = await call(api, "GET", f"{rbase}/report.pdf")
    assert pdf.content.startswith(b"%PDF-") and pdf.headers["x-report-final"] == "true"

    # ---------------------------------------------------------------- replays at chosen instants
    a_ack, b_ack = sorted((e for e in acks.values()), key=at)
    s1 = await replay(api, cid, at(a_ack))  # A has answered; B not yet
    by_person = {t["person_id"]: t for t in s1["targets"]}
    assert by_person[a]["state"] == "acknowledged" and by_person[a]["ack_channel"] == "link"
    assert by_person[b]["state"] == "notified" and s1["level"] == "orange" and s1["status"] == "running"
    s2 = await replay(api, cid, at(b_ack) - timedelta(milliseconds=1))
    assert {t["person_id"]: t["state"] for t in s2["targets"]}[b] != "acknowledged"
    ended = next(e for e in ce if e["kind"] == "callout.ended")
    s3 = await replay(api, cid, at(ended))
    states = {t["person_id"]: t for t in s3["targets"]}
    assert states[b]["state"] == "acknowledged" and states[b]["ack_channel"] == "voice"
    assert states[c]["state"] == "unreachable" and states[c]["escalated_to"] and s3["status"] == "completed"
    assert s3["acknowledged"] == 2 and s3["open"] == 0

    made = next(e for e in events[iid] if e["kind"] == "report.verbal.made")
    r1 = await replay(api, iid, at(made))
    limits = {d["key"]: d for d in r1["time_limits"]}
    assert limits["verbal"]["state"] == "late" and limits["written"]["state"] == "open" and r1["status"] == "open"
    assert r1["verbal"]["to_whom"] == "区政府总值班室" and r1["reports"] == []
    before = await replay(api, iid, at(made) - timedelta(milliseconds=1))
    assert {d["key"]: d["state"] for d in before["time_limits"]}["verbal"] == "overdue"
    assert any(t["episode"] == "overdue/verbal" for t in before["targets"])  # the duty chief was being called
    closed = next(e for e in events[iid] if e["kind"] == "incident.closed")
    r2 = await replay(api, iid, at(closed))
    assert r2["status"] == "closed" and [x["state"] for x in r2["reports"]] == ["submitted", "submitted"]

    first = next(e for e in events[subject] if e["kind"] == "review.summary.submitted")
    v1 = await replay(api, subject, at(first))
    units = {u["unit_id"]: u["state"] for u in v1["units"]}
    assert units == {"D01": "on_time", "330110001": "open"} and v1["status"] == "collecting"
    v2 = await replay(api, subject, at(next(e for e in events[subject] if e["kind"] == "review.sealed")))
    assert v2["status"] == "sealed" and v2["sealed"]["sha256"] == detail["case_file"]["sha256"]
    assert any(t["person_id"] == town_head for t in v2["targets"])  # called for the overdue summary

    # ---------------------------------------------------------------- the case file, offline
    r = await api.get(f"{rbase}/casefile", headers=auth(api, "supervisor"))
    assert r.status_code == 200 and r.headers["x-sha256"] == casefile.sha256(r.content)
    [sealed] = await trail(api, subject, kind="review.sealed")
    assert sealed["payload"]["sha256"] == r.headers["x-sha256"]
    path = tmp_path / "case.zip"
    path.write_bytes(r.content)
    runner = CliRunner()
    out = runner.invoke(cli, ["archive", "verify", str(path), "--expect", sealed["payload"]["sha256"]])
    assert out.exit_code == 0 and "case file intact" in out.output, out.output
    entries = casefile.read_entries(r.content)
    manifest = casefile.verify_bytes(r.content).manifest
    # one file per chain: the call-out's shards each have their own (store/audit.py chain_of)
    assert {c.split("/shard-")[0] for c in manifest["subjects"]} == {iid, cid, subject}
    assert all(c.startswith(f"{cid}/shard-") for c in set(manifest["subjects"]) - {iid, cid, subject})
    assert {d["kind"] for d in manifest["definitions"]} == {"callout", "reporting", "review"}
    _, regions = casefile.write_zip(entries, datetime.fromisoformat(manifest["sealed_at"]))
    target = next(x for x in regions if x.name == casefile.subject_file(cid) and x.what == "content")
    bad = bytearray(r.content)
    bad[(target.start + target.end) // 2] ^= 0x20
    path.write_bytes(bytes(bad))
    out = runner.invoke(cli, ["archive", "verify", str(path)])
    assert out.exit_code == 1 and f"{casefile.subject_file(cid)}: content changed" in out.output, out.output
