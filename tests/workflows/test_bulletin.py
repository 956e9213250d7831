"""The monthly bulletin 通报 (workflows/bulletin.py) on the time-skipping server with the real activities, database
and API: November compiled from hand-built audit events (a call-out with a silence, a drill that must not count, an
incident with a late report, drill weeks below the minimum), refused to the wrong role and without a reason,
returned by the leading leader and compiled again, approved, sealed with its hash and sent to the units' heads; the
PDF is a PDF with the units' Chinese names."""
from __future__ import annotations

import uuid
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import httpx
from sqlmodel import select

from api.app import create_app
from store import report
from store.audit import AuditEvent, append, verify
from store.auth import create_token
from store.bulletins import Bulletin
from store.db import session_scope
from store.directory import OrgUnit
from store.messages import OutboxMessage
from tests.factories import small_district
from tests.helpers import console_login, console_post
from tests.unit.test_scorecards_api import DEPT, T0, TOWN, TOWN2, _callout, _ev
from tests.workflows.callout_helpers import wait_for
from worker import build_worker
from workflows.bulletin import BulletinView

MONTH = "2026-11"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def seed(s) -> dict[str, str]:
    people = small_district(s)
    evs = _callout(s, "callout-W1", "callout-W1", False, {"towns/1": TOWN, "departments/3": DEPT})
    evs += [_ev("callout-W1", "callout-W1/shard-0", "callout.ack", 3, "towns/1/ack", target="towns/1", state="acknowledged"),
            _ev("callout-W1", "callout-W1/shard-0", "callout.unreachable", 30, "departments/3/u", target="departments/3",
                state="unreachable")]
    evs += _callout(s, "callout-Wdrill", "callout-Wdrill", True, {"departments/9": DEPT})  # a drill: never counts
    evs += [_ev("INC-9", "incident-INC-9", "incident.received", 0, "received", title="内涝", town_id=TOWN2,
                deadlines={"verbal": (T0 + timedelta(minutes=30)).isoformat()}),
            _ev("INC-9", "incident-INC-9", "report.verbal.made", 40, "verbal"),
            _ev("INC-9", "incident-INC-9", "report.verbal.late", 40, "deadline/verbal/late", deadline="verbal",
                label="口头报告", late_by_s=600, due_at=(T0 + timedelta(minutes=30)).isoformat())]
    # one district drill in the week of 10 November: below the minimum of 2
    evs.append(_ev("drill-district_connectivity-1", "drill-district_connectivity-1", "drill.started", 60, "started",
                   drill="district_connectivity", counts_as="district"))
    append(s, evs)
    return people


async def test_compile_return_compile_approve_seal_and_send(env, db_url, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    with session_scope() as s:
        people = seed(s)
        tokens = {r: create_token(s, r, person_id=people[r], label=r) for r in ("leading_leader", "duty_chief")}
        names = {u.id: u.name for u in s.exec(select(OrgUnit))}
    from config import get_settings

    get_settings.cache_clear()
    tq = get_settings().task_queue = f"bulletin-{uuid.uuid4().hex[:6]}"
    app = create_app(temporal_client=env.client)

    def h(role: str) -> dict:
        return {"Authorization": f"Bearer {tokens[role]}"}

    def row() -> Bulletin | None:
        with session_scope(write=False) as s:
            b = s.get(Bulletin, MONTH)
            if b is not None:
                s.expunge(b)
            return b

    async with build_worker(env.client, task_queue=tq), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t") as api:
        r = await api.post("/api/bulletins", headers=h("duty_chief"), json={"month": "2026-13"})
        assert r.status_code == 422, r.text
        r = await api.post("/api/bulletins", headers=h("duty_chief"), json={"month": MONTH})
        assert r.status_code == 202, r.text
        handle = env.client.get_workflow_handle(r.json()["workflow_id"], result_type=BulletinView)
        first = await wait_for(lambda: (b := row()) and b.status == "awaiting" and b, what="version 1 compiled")
        assert first.version == 1 and first.pdf.startswith(b"%PDF")
        r = await api.post("/api/bulletins", headers=h("duty_chief"), json={"month": MONTH})
        assert r.status_code == 409, "one bulletin a month"

        got = (await api.get(f"/api/bulletins/{MONTH}", headers=h("duty_chief"))).json()
        content = got["content"]
        town = next(x for x in content["ranking"]["town"] if x["unit_id"] == TOWN)
        dept = next(x for x in content["ranking"]["department"] if x["unit_id"] == DEPT)
        assert town["score"] == 100.0 and town["rank"] == 1 and town["link"].startswith(f"/console/scorecards/{TOWN}?")
        assert dept["score"] == 0.0 and dept["rank"] == 1 and [b["figure"] for b in dept["breaches"]] == ["callouts.answer_rate"]
        assert [b["figure"] for b in next(x for x in content["ranking"]["town"] if x["unit_id"] == TOWN2)["breaches"]] \
            == ["reporting.late"]
        assert [(x["unit_id"], x["late_by_s"]) for x in content["late_reports"]] == [(TOWN2, 600)]
        assert [(x["unit_id"], x["never"]) for x in content["unanswered"]] == [(DEPT, 1)], "the drill's silence is apart"
        nov10 = next(w for w in content["drill_weeks"] if w["week"] == "2026-W46")
        assert nov10["kinds"]["district"]["run"] == 1 and nov10["below"]
        assert [w["week"] for w in content["drill_weeks"]] == ["2026-W45", "2026-W46", "2026-W47", "2026-W48"], \
            "the weeks whose Thursday is in November"
        assert content["drill_weeks_below"] == 4 and not content["drills_ok"]
        below = (await api.get(f"/api/bulletins/{MONTH}", headers=h("duty_chief"),
                               params={"kind": "department", "below": "true"})).json()["content"]["ranking"]
        assert list(below) == ["department"] and [x["unit_id"] for x in below["department"]] == [DEPT]

        # refusals: the role, a missing reason (each the workflow's own words)
        r = await api.post(f"/api/bulletins/{MONTH}/approve", headers=h("duty_chief"))
        assert r.status_code == 403 and "值班长不能审定通报" in r.json()["detail"], r.text
        r = await api.post(f"/api/bulletins/{MONTH}/return", headers=h("leading_leader"), json={"reason": " "})
        assert r.status_code == 422 and "reason" in r.json()["detail"], r.text
        r = await api.post("/api/bulletins/nope/approve", headers=h("leading_leader"))
        assert r.status_code == 404

        # the console: the page with its period, filters, charts and links; the leading leader returns it there
        web = await console_login(app, tokens["leading_leader"])
        try:
            page = (await web.get(f"/console/bulletins/{MONTH}")).text
            assert "2026年11月应急值守工作情况通报" in page and "2026-11-01 — 2026-11-30" in page and "<svg" in page
            assert f'href="/console/scorecards/{TOWN}?date_from=2026-11-01&amp;date_to=2026-11-30"' in page
            assert "审定印发" in page and "退回重新汇编" in page
            only = (await web.get(f"/console/bulletins/{MONTH}", params={"kind": "department", "below": "1"})).text
            assert names[DEPT] in only and names[TOWN] not in only
            listed = (await web.get("/console/bulletins")).text
            assert f'href="/console/bulletins/{MONTH}"' in listed and "待审定" in listed and "立即汇编" in listed
            r = await console_post(web, "/console/bulletins", {"month": MONTH})
            assert r.status_code == 409 and "2026-11的通报已在办理" in r.text, "one bulletin a month, in the console too"
            r = await console_post(web, f"/console/bulletins/{MONTH}/return", {"reason": "请核实第2街道迟报情况"})
            assert r.status_code == 303, r.text
        finally:
            await web.aclose()
        second = await wait_for(lambda: (b := row()) and b.version == 2 and b.status == "awaiting" and b,
                                what="version 2 compiled")
        assert second.returns[0]["reason"] == "请核实第2街道迟报情况" and second.returns[0]["version"] == 1
        r = await api.post(f"/api/bulletins/{MONTH}/approve", headers=h("leading_leader"))
        assert r.status_code == 200 and r.json()["status"] == "approved", r.text
        view = await handle.result()
        assert view.status == "sealed" and view.version == 2
        r = await api.post(f"/api/bulletins/{MONTH}/approve", headers=h("leading_leader"))
        assert r.status_code == 409, "approved once"

        pdf = await api.get(f"/api/bulletins/{MONTH}/pdf", headers=h("duty_chief"))
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert pdf.headers["x-bulletin-seal"] == view.seal_sha256
        web = await console_login(app, tokens["duty_chief"])
        try:
            page = (await web.get(f"/console/bulletins/{MONTH}")).text
            assert "已印发封存" in page and view.seal_sha256[:16] in page and "审定印发" not in page
            r = await console_post(web, f"/console/bulletins/{MONTH}/approve", {})
            assert r.status_code == 409, "sealed: nothing to approve"
        finally:
            await web.aclose()

    sealed = row()
    assert sealed.status == "sealed" and sealed.sha256_pdf == report.sha256(sealed.pdf) == view.sha256_pdf
    assert sealed.seal_sha256 == report.sha256(f"{MONTH}\n2\n{sealed.sha256_json}\n{sealed.sha256_pdf}")
    from pypdf import PdfReader

    text = "".join(p.extract_text() for p in PdfReader(BytesIO(sealed.pdf)).pages)
    for uid in (TOWN, TOWN2, DEPT):
        assert names[uid] in text, f"{names[uid]} not in the PDF"
    assert "2026年11月应急值守工作情况通报" in text and "待带班领导审定" not in text and "审定" in text
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bulletin-2026-11.pdf").write_bytes(sealed.pdf)

    with session_scope(write=False) as s:
        kinds = [e.kind for e in s.exec(select(AuditEvent).where(AuditEvent.subject == f"bulletin/{MONTH}")
                                        .order_by(AuditEvent.chain_seq))]
        assert verify(s, f"bulletin/{MONTH}").ok
        sealed_ev = s.exec(select(AuditEvent).where(AuditEvent.kind == "bulletin.sealed")).one()
        sms = list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == f"bulletin/{MONTH}")))
    assert kinds == ["bulletin.compiled", "bulletin.returned", "bulletin.compiled", "bulletin.approved",
                     "bulletin.sealed", "bulletin.sent"]
    assert sealed_ev.payload["seal_sha256"] == view.seal_sha256 and sealed_ev.actor == people["leading_leader"]
    heads = {m.person_id: m.body for m in sms}
    assert len(heads) == len(sms) >= 3
    body = next(b for b in heads.values() if names[DEPT] in b)
    assert body.startswith("【通报】2026年11月") and "叫应时限内应答率未达标" in body
    assert not any(c.isascii() and c.isalpha() for b in heads.values() for c in b), "Chinese only"
