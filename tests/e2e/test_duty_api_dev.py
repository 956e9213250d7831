"""The duty day through the API on the Temporal dev server, with the simulator gateway and real time:
a handover taken over through the API (with refusals explained and audited), a 六问 spot check answered
by the voice menu's keys, the SMS form and by phone (a "no" opens a follow-up the town head acknowledges
by link and a duty officer resolves), and a contact confirmation round answered through the signed link,
with the call-out preview warning about the stale and failing contacts.
"""
from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from config import get_settings
from store.auth import create_token
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import Person, Post
from store.messages import OutboxMessage
from store.roster import DutyShift
from tests.factories import small_district
from tests.helpers import as_delivered, poll, use_definitions
from tests.workflows.duty_helpers import terminate
from worker import build_worker

YES = {q: True for q in ("received", "on_duty", "patrolled", "evacuation", "supplies", "arrangements")}


@pytest.fixture
def fast_duty(tmp_path: Path, monkeypatch) -> Path:
    def edit(path: Path, text: str) -> str:
        if path.as_posix() == "duty/spotcheck.yaml":  # the voice round ends in 2 s (b gets the form); the rest of
            # the policy outlasts the test's own steps on any machine (everyone answers, so nobody waits it out)
            text = re.sub(r"wait_ack: \d+[mhd]", "wait_ack: 60s", text.replace("wait_ack: 10m", "wait_ack: 2s", 1))
            return text.replace("sample_size: 5", "sample_size: 3")
        if path.as_posix() not in ("duty/handover.yaml", "duty/freshness.yaml"):
            return text
        return re.sub(r"wait_ack: \d+[mhd]", "wait_ack: 2s", text)

    return use_definitions(tmp_path, monkeypatch, edit, ADMIN_TOKEN="duty-e2e-admin")


@pytest.mark.budget(60)  # real time: a confirmation round's deadline in seconds (estimated)
async def test_handover_spot_check_and_confirmation_through_the_api(dev_env, db_url, fast_duty):
    now = datetime.now(UTC).replace(microsecond=0)
    with session_scope() as s:
        people = small_district(s, towns=2, villages=2)
        s.add(Person(id="p-chief2", name="值班长庚", mobile="+8613911112222", org_unit_id="DUTY"))
        s.flush()
        for shift in s.exec(select(DutyShift).where(DutyShift.role == "duty_chief")):
            shift.ends_at = now
        s.add(DutyShift(starts_at=now, ends_at=now + timedelta(days=1), role="duty_chief", person_id="p-chief2"))
        tokens = {"out": create_token(s, "duty_chief", person_id=people["duty_chief"], label="out"),
                  "in": create_token(s, "duty_chief", person_id="p-chief2", label="in"),
                  "cadre": create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="cadre"),
                  "admin": "duty-e2e-admin"}
        s.add(Callout(id="C-e2e", plan_id="heavy_rain", plan_version="x", level="red", category="heavy_rain",
                      title="暴雨红色预警叫应", status="completed", started_at=now - timedelta(hours=1), ended_at=now))
        s.flush()
        for post in s.exec(select(Post).where(Post.position_code == "village_flood_resp")):
            s.add(CalloutTarget(callout_id="C-e2e", target_key=f"villages/{post.id}", tier="villages",
                                position_code="village_flood_resp", org_unit_id=post.org_unit_id,
                                person_id=post.person_id, state="acknowledged", acknowledged_at=now))
    settings = get_settings()
    tq = settings.task_queue = f"e2e-duty-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)
    started: list[str] = []

    def h(who: str) -> dict:
        return {"Authorization": f"Bearer {tokens[who]}"}

    async with build_worker(dev_env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        async def get(path: str, **params):
            r = await api.get(path, headers=h("admin"), params=params)
            return r.json() if r.status_code == 200 else None

        try:
            # ---------------------------------------------------------------- handover
            r = await api.post("/api/handovers", headers=h("out"), json={"shift_at": now.isoformat()})
            assert r.status_code == 201, r.text
            hid = r.json()["handover_id"]
            started.append(hid)
            assert r.json()["incoming"]["person_id"] == "p-chief2"
            assert (await api.post("/api/handovers", headers=h("out"), json={"shift_at": now.isoformat()})).status_code == 200
            r = await api.post(f"/api/handovers/{hid}/note", headers=h("in"), json={"text": "x"})
            assert r.status_code == 403 and "outgoing duty chief" in r.json()["detail"]
            r = await api.post(f"/api/handovers/{hid}/note", headers=h("out"), json={"text": "第2街道积水点持续关注"})
            assert r.status_code == 200 and r.json()["note"]["text"] == "第2街道积水点持续关注"
            r = await api.post(f"/api/handovers/{hid}/hand-over", headers=h("out"))
            assert r.status_code == 200 and r.json()["status"] == "handed_over"
            r = await api.post(f"/api/handovers/{hid}/take-over", headers=h("cadre"))
            assert r.status_code == 403
            r = await api.post(f"/api/handovers/{hid}/take-over", headers=h("in"))
            assert r.status_code == 200 and r.json()["status"] == "taken_over", r.text
            detail = await poll(lambda: get(f"/api/handovers/{hid}"), lambda d: d and d["closed_at"], what="closed")
            assert detail["status"] == "taken_over" and detail["taken_over_by"] == "p-chief2" and detail["late_by_s"] == 0
            r = await api.post(f"/api/handovers/{hid}/take-over", headers=h("in"))
            assert r.status_code == 409 and "ended" in r.json()["detail"]
            kinds = [e["kind"] for e in detail["timeline"]]
            assert kinds[0] == "handover.opened" and "handover.refused" not in kinds
            refused = await get("/api/audit/refusals", subject=hid)  # counted apart (store/refusals.py)
            assert sorted((r["action"], r["status"], r["count"]) for r in refused) == [  # two while open, one ended
                ("edit_note", 403, 1), ("take_over", 403, 1), ("take_over", 409, 1)], refused
            assert {"handover.note_edited", "handover.handed_over", "handover.taken_over", "handover.closed"} <= set(kinds)

            # ---------------------------------------------------------------- 六问 spot check
            r = await api.post("/api/spotchecks", headers=h("cadre"), json={"callout_id": "C-e2e"})
            assert r.status_code == 201, r.text
            cid = r.json()["check_id"]
            started.append(cid)
            assert (await api.post("/api/spotchecks", headers=h("cadre"), json={"callout_id": "C-e2e"})).status_code == 409
            calls = await poll(lambda: get("/api/outbox", subject=cid, channel="voice"), lambda m: m and len(m) == 3,
                               what="three voice calls")
            a, b, c = (m["person_id"] for m in calls)
            # a: keys on the call (the simulator plays them the way the voice menu records them)
            voice_a = next(m for m in calls if m["person_id"] == a)
            r = await api.post(f"/api/simulator/spotcheck/{voice_a['id']}", headers=h("cadre"), json={"keys": "111111"})
            assert r.status_code == 200 and all(r.json()["answers"].values()), r.text
            r = await api.post(f"/api/simulator/spotcheck/{voice_a['id']}", headers=h("cadre"), json={"keys": "1111"})
            assert r.status_code == 422 and "one key per question" in r.json()["detail"]
            # b: the SMS form after the unanswered call
            form = await poll(lambda: get("/api/outbox", subject=cid, person_id=b, channel="sms"), bool, what="form sms")
            alias = re.search(r"(/a/\S+)", as_delivered(form[0]["id"]).body).group(1)  # the link's short alias
            path = (await api.get(alias, follow_redirects=False)).headers["location"]
            assert path.startswith("/spotcheck/")
            page = await api.get(path)
            assert page.status_code == 200 and "隐患点巡查了吗" in page.text
            r = await api.post(path, data={**{q: "yes" for q in YES}, "supplies": "no"})
            assert r.status_code == 200 and "已记录您的回答" in r.text and "防汛物资到位了吗" in r.text
            assert (await api.post(path, data={q: "yes" for q in YES})).status_code == 409, "the form works once"
            # c: by phone, on their behalf
            r = await api.post(f"/api/spotchecks/{cid}/answers", headers=h("cadre"), json={"person_id": c, "answers": YES,
                                                                                          "note": "电话抽查"})
            assert r.status_code == 200, r.text
            r = await api.post(f"/api/spotchecks/{cid}/answers", headers=h("cadre"), json={"person_id": "p-x", "answers": YES})
            assert r.status_code == 422 and "not in this spot check" in r.json()["detail"]
            # the follow-up for b's town: the town head acknowledges by the link; a duty officer resolves it
            town = b.removeprefix("p-")[:9]
            head_sms = await poll(lambda: get("/api/outbox", subject=cid, person_id=people[f"{town}.head"], channel="sms"),
                                  bool, what="town head told")
            assert "六问整改" in head_sms[0]["body"]
            ack_path = httpx.URL(as_delivered(head_sms[0]["id"]).ack_url).path
            assert (await api.post(ack_path)).status_code == 200
            detail = await poll(lambda: get(f"/api/spotchecks/{cid}"),
                                lambda d: d and d["followups"] and d["followups"][0]["status"] == "acknowledged",
                                what="follow-up acknowledged")
            key = detail["followups"][0]["key"]
            r = await api.post(f"/api/spotchecks/{cid}/resolve", headers=h("cadre"), json={"key": key, "note": "物资已补齐"})
            assert r.status_code == 200, r.text
            detail = await poll(lambda: get(f"/api/spotchecks/{cid}"), lambda d: d and d["status"] == "closed",
                                what="spot check closed")
            answers = {p["person_id"]: p for p in detail["persons"]}
            assert answers[a]["channel"] == "voice" and answers[b]["channel"] == "link" and answers[c]["channel"] == "phone"
            assert answers[b]["answers"]["supplies"] is False and detail["followups"][0]["status"] == "resolved"

            # ---------------------------------------------------------------- contact confirmation round
            with session_scope() as s:  # one number has been failing lately
                s.add(OutboxMessage(idempotency_key=f"old-{uuid.uuid4().hex}", channel="sms", to=s.get(Person, people["D01.head"]).mobile,
                                    person_id=people["D01.head"], body="x", status="undelivered", error="Twilio 30005"))
            preview = await get("/api/freshness/preview", event="暴雨", level="orange", towns=["330110001"])
            by_id = {w["person_id"]: w for w in preview["warnings"]}
            assert preview["total"] > 0 and by_id[people["D01.head"]]["failing"] and by_id[people["D01.head"]]["stale"]
            r = await api.post("/api/freshness/rounds", headers=h("cadre"), json={})
            assert r.status_code == 403
            deadline = datetime.now(UTC) + timedelta(seconds=20)  # outlasts the steps below on a slow machine
            r = await api.post("/api/freshness/rounds", headers=h("admin"), json={"deadline": deadline.isoformat()})
            assert r.status_code == 202, r.text
            rid = r.json()["round_id"]
            started.extend([rid, f"{rid}/shard-0"])
            target = people["330110001.head"]
            msg = await poll(lambda: get("/api/outbox", subject=rid, person_id=target), bool, what="asked to confirm")
            alias = re.search(r"(/a/\S+)", as_delivered(msg[0]["id"]).body).group(1)  # the link's short alias
            link = (await api.get(alias, follow_redirects=False)).headers["location"]
            assert link.startswith("/confirm/")
            page = await api.get(link)
            assert page.status_code == 200 and "****" in page.text and "街道1主任" in page.text
            assert (await api.post(link)).status_code == 200
            assert (await api.post(link)).status_code == 409

            async def confirmed_at():
                with session_scope(write=False) as s:
                    return s.get(Person, target).contact_confirmed_at

            await poll(confirmed_at, bool, what="the last-confirmed date set")  # by the round's activity
            done = await poll(lambda: get(f"/api/freshness/rounds/{rid}"), lambda d: d and d["status"] == "closed",
                              timeout=40, what="round closed at its deadline")
            assert done["confirmed"] == 1 and done["unconfirmed"] == done["total"] - 1
            unconfirmed = await get(f"/api/freshness/rounds/{rid}", state="unconfirmed")
            assert target not in {p["person_id"] for p in unconfirmed["persons"]}
            preview = await get("/api/freshness/preview", event="暴雨", level="orange", towns=["330110001"])
            assert target not in {w["person_id"] for w in preview["warnings"]}, "confirmed: no longer stale"
            stale = await get("/api/freshness/contacts", which="failing")
            assert [p["person_id"] for p in stale] == [people["D01.head"]]
            for subject in (hid, cid, rid):
                assert (await get("/api/audit/verify", subject=subject))["ok"]
        finally:
            await terminate(dev_env.client, started)
