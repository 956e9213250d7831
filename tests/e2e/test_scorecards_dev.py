"""考核 scorecards against the audit trail, on the Temporal dev server through the API (real time, simulator gateway):
two real call-outs (some answer at once, one after the call-out gave them up, the rest never), a drill (one answers),
an incident whose verbal report is late and whose reporting town reported late from 知悉, and a 六问 spot check with a
"no"; then `GET /api/scorecards` for the day, every figure checked against a direct count of the audit events the
test made (its own reading of the trail, not the scorecards' code)."""
from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.services.answers import acknowledge
from api.services.dates import local_today
from config import get_settings
from store.audit import AuditEvent
from store.auth import create_token
from store.callouts import CalloutTarget
from store.db import session_scope
from store.directory import OrgUnit
from tests.factories import small_district
from tests.helpers import in_seconds, poll, use_definitions
from tests.workflows.callout_helpers import terminate_callouts
from tests.workflows.duty_helpers import terminate
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker

TOWN1, TOWN2 = "330110001", "330110002"
YES = {q: True for q in ("received", "on_duty", "patrolled", "evacuation", "supplies", "arrangements")}


@pytest.fixture
def fast(tmp_path: Path, monkeypatch) -> Path:
    def edit(path: Path, text: str) -> str:
        if path.as_posix() in ("duty/drills.yaml", "duty/spotcheck.yaml"):  # the drill's calls end in seconds
            return re.sub(r"wait_ack: \d+[mhd]", "wait_ack: 2s", text)
        return in_seconds(path, text)

    return use_definitions(tmp_path, monkeypatch, edit, ADMIN_TOKEN="scd-admin")


def trail(kind_prefix: str = "") -> list[AuditEvent]:
    with session_scope(write=False) as s:
        rows = s.exec(select(AuditEvent).order_by(AuditEvent.subject, AuditEvent.seq))
        return [e for e in rows if e.kind.startswith(kind_prefix)]


def town_of() -> dict[str, str]:
    """Directory unit id -> its town or department (a village counts for its town)."""
    with session_scope(write=False) as s:
        units = {u.id: u for u in s.exec(select(OrgUnit))}
    out = {}
    for uid, u in units.items():
        while u is not None and u.kind not in ("town", "department"):
            u = units.get(u.parent_id) if u.parent_id else None
        if u is not None:
            out[uid] = u.id
    return out


def direct_callout_counts(drills: bool) -> dict[str, dict[str, int]]:
    """Per town/department, straight from the trail: targets sent to, acknowledged (within the call-out), answered
    late, never; for drills, acknowledged within 30 minutes of the first message."""
    with session_scope(write=False) as s:
        unit_of_target = {(t.callout_id, t.target_key): t.org_unit_id for t in s.exec(select(CalloutTarget))}
    roll = town_of()
    first: dict[tuple[str, str], datetime] = {}
    acked: dict[tuple[str, str], datetime] = {}
    late: set[tuple[str, str]] = set()
    for e in trail():
        is_drill_subject = e.subject.startswith("drill-")
        if not (e.subject.startswith("callout-") or (drills and e.subject.endswith("/callout"))) \
                or is_drill_subject != drills:
            continue
        key = (e.subject, e.payload.get("target"))
        if key[1] is None:
            continue
        if e.kind == "callout.sent" and e.payload.get("purpose") == "notify":
            first.setdefault(key, e.at)
        elif e.kind == "callout.ack":
            acked.setdefault(key, e.at)
        elif e.kind == "callout.ack.late":
            late.add(key)
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for key, sent in first.items():
        u = out[roll[unit_of_target[key]]]
        u["called"] += 1
        if key in acked:
            u["answered"] += 1
            u["responded"] += (acked[key] - sent).total_seconds() <= 1800
        elif key in late:
            u["answered_late"] += 1
        else:
            u["never"] += 1
    return out


def value(card: dict, section: str, name: str) -> int:
    return ((card.get(section) or {}).get(name) or {}).get("value", 0)


@pytest.mark.budget(120)  # real time: two call-outs, a drill and a chain's 4-second deadline (estimated)
async def test_scorecards_match_a_direct_count_of_the_trail(dev_env, db_url, fast):
    with session_scope() as s:
        people = small_district(s, towns=2, villages=2)
        tokens = {"chief": create_token(s, "duty_chief", person_id=people["duty_chief"], label="chief"),
                  "cadre": create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="cadre"),
                  "sup": create_token(s, "supervisor", label="sup")}
    settings = get_settings()
    settings.task_queue = f"e2e-scd-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=dev_env.client)
    started: list[str] = []

    def h(who: str) -> dict:
        return {"Authorization": f"Bearer {tokens[who]}"}

    async def ended(cid: str):
        r = await api.get(f"/api/callouts/{cid}", headers=h("sup"))
        return r.json() if r.status_code == 200 and r.json().get("status") != "running" else None

    async def targets(cid: str) -> list[CalloutTarget]:
        with session_scope(write=False) as s:
            return list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == cid)))

    async with build_worker(dev_env.client, task_queue=settings.task_queue), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        try:
            # the local day the trail begins on: the period asked for runs from it to the day the test ends (a
            # run across midnight in Beijing puts its first events in the day before)
            first_day = local_today().isoformat()
            # ------------------------------------------------ two real call-outs
            cids = []
            for town in (TOWN1, TOWN2):
                r = await api.post("/api/warnings", headers=h("chief"), json={
                    "identifier": f"scd-{uuid.uuid4().hex[:8]}", "level": "orange", "event": "大风",
                    "headline": "大风橙色预警", "areas": [town]})
                assert r.status_code == 201, r.text
                cids.append(r.json()["callout_id"])
            sent = await poll(lambda: targets(cids[0]), lambda ts: ts and all(t.state != "pending" for t in ts),
                              what="the first call-out's targets called")
            villages = [t for t in sent if t.tier == "villages"]
            town_heads = [t for t in sent if t.tier != "villages"]
            for t in [*villages, town_heads[0]]:  # the villages and one town person answer at once
                await acknowledge(dev_env.client, cids[0], t.person_id, "sms", ref=f"scd:{t.person_id}")
            other = await poll(lambda: targets(cids[1]), lambda ts: ts and all(t.state != "pending" for t in ts),
                               what="the second call-out's targets called")
            await acknowledge(dev_env.client, cids[1], other[0].person_id, "link", ref="scd:other")
            for cid in cids:
                await poll(lambda: ended(cid), bool, timeout=120, what=f"{cid} ended")
            # after the end: an answer is recorded late (never lost, never 'done')
            never = next(t for t in town_heads if t.person_id != town_heads[0].person_id)
            await acknowledge(dev_env.client, cids[0], never.person_id, "sms", ref="scd:late")
            await poll(lambda: _ready(trail("callout.ack.late")), bool, what="the late answer recorded")

            # ------------------------------------------------ a drill (it must not count as a call-out)
            r = await api.post("/api/drill-programme/town_spot_check/run", headers=h("chief"))
            assert r.status_code == 202, r.text
            run = r.json()["run_id"]
            started.append(run)
            drilled = await poll(lambda: targets(f"{run}/callout"), lambda ts: ts and all(t.state != "pending" for t in ts),
                                 what="the drill's persons called")
            await acknowledge(dev_env.client, f"{run}/callout", drilled[0].person_id, "sms", ref="scd:drill")
            await poll(lambda: _ready(trail("drill.reported")), bool, timeout=120, what="the drill reported")

            # ------------------------------------------------ an incident: the town reported late, the verbal report late
            now = datetime.now(UTC)
            r = await api.post("/api/incidents", headers=h("cadre"), json={
                "source": "town", "category": "natural_disaster", "subtype": "大风", "town_id": TOWN1,
                "place": "第1街道广告牌", "summary": "大风吹落广告牌,无人员伤亡", "reporting_unit": "第1街道",
                "reporting_unit_id": TOWN1, "reporter": "街道值班员", "known_at": (now - timedelta(hours=2)).isoformat()})
            assert r.status_code == 201, r.text
            iid = r.json()["incident_id"]
            await poll(lambda: _ready(trail("report.verbal.overdue")), bool, what="the verbal report overdue")
            r = await api.post(f"/api/incidents/{iid}/verbal", headers=h("cadre"),
                               json={"to_whom": "区政府总值班室", "by_whom": "值班干部"})
            assert r.status_code == 200, r.text
            await poll(lambda: _ready(trail("report.verbal.late")), bool, what="the verbal report marked late")

            # ------------------------------------------------ a 六问 spot check with a "no"
            r = await api.post("/api/spotchecks", headers=h("cadre"), json={"callout_id": cids[0]})
            assert r.status_code == 201, r.text
            check = r.json()["check_id"]
            started.append(check)
            detail = await poll(lambda: _get(api, f"/api/spotchecks/{check}", h("sup")), lambda d: d and d["persons"],
                                what="the sample")
            sampled = detail["persons"][0]["person_id"]
            r = await api.post(f"/api/spotchecks/{check}/answers", headers=h("cadre"),
                               json={"person_id": sampled, "answers": {**YES, "patrolled": False}, "note": "电话抽查"})
            assert r.status_code == 200, r.text
            await poll(lambda: _ready([e for e in trail("spotcheck.answered") if e.payload.get("no")]), bool,
                       what="the answer recorded")

            # ------------------------------------------------ the scorecards, against the trail
            period = {"from": first_day, "to": local_today().isoformat()}
            r = await api.get("/api/scorecards", headers=h("sup"), params=period)
            assert r.status_code == 200, r.text
            cards = {u["unit_id"]: u for u in r.json()["units"]}
            real, drill = direct_callout_counts(drills=False), direct_callout_counts(drills=True)
            assert {TOWN1, TOWN2} <= set(real) and sum(u["answered_late"] for u in real.values()) == 1
            for uid, card in cards.items():
                mine = real.get(uid, {})
                assert [value(card, "callouts", n) for n in ("called", "answered", "answered_late", "never")] == \
                    [mine.get(n, 0) for n in ("called", "answered", "answered_late", "never")], uid
                ours = drill.get(uid, {})
                assert (value(card, "drills", "called"), value(card, "drills", "responded")) == \
                    (ours.get("called", 0), ours.get("responded", 0)), uid
                assert value(card, "drills", "drills") == (1 if ours else 0), uid
            assert sum(value(c, "drills", "responded") for c in cards.values()) == 1

            roll = town_of()
            verbal_late = [e for e in trail("report.verbal.late") if e.subject == iid]
            own_late = [e for e in trail("incident.received") if e.subject == iid and
                        (e.payload.get("unit_report") or {}).get("late_by_s")]
            assert len(verbal_late) == 1 and len(own_late) == 1
            lates = [e for e in trail("report.") if e.subject == iid and e.kind.endswith(".late")]  # verbal, the unit's
            assert sorted(e.kind for e in lates) == ["report.unit.late", "report.verbal.late"]
            rep = cards[TOWN1]["reporting"]
            assert rep["late"]["value"] == len(lates)
            assert sorted(r["late_by_s"] for r in rep["late"]["refs"]) == sorted(e.payload["late_by_s"] for e in lates)
            assert rep["own_late"]["value"] == 1
            assert rep["own_late"]["refs"][0]["late_by_s"] == own_late[0].payload["unit_report"]["late_by_s"]
            assert cards[TOWN2]["reporting"] is None

            answered = [e for e in trail("spotcheck.answered") if e.payload.get("no")]
            no_by_town: dict[str, int] = defaultdict(int)
            with session_scope(write=False) as s:
                from store.directory import Person

                for e in answered:
                    no_by_town[roll[s.get(Person, e.payload["person_id"]).org_unit_id]] += len(e.payload["no"])
            for uid, card in cards.items():
                assert value(card, "spotchecks", "answered_no") == no_by_town.get(uid, 0), uid
            assert sum(no_by_town.values()) == 1

            # a supervisor goes from a figure to its events, and from there to the replay
            one = (await api.get(f"/api/scorecards/{TOWN1}", headers=h("sup"),
                                 params=period)).json()
            subjects = {e["subject"] for e in one["events"]}
            assert {cids[0], iid, check, run} <= subjects and cids[1] not in subjects
            replay = await api.get("/api/audit/verify", headers=h("sup"), params={"subject": cids[0]})
            assert replay.status_code == 200 and replay.json()["ok"]
        finally:
            await terminate(dev_env.client, started)
            await terminate_callouts(dev_env.client)
            await terminate_incidents(dev_env.client)


async def _ready(v):
    return v


async def _get(api, path: str, headers: dict):
    r = await api.get(path, headers=headers)
    return r.json() if r.status_code == 200 else None

