"""Response proposal 响应建议 (预警和响应一体化) on the time-skipping test server, with the real activities, the
real database and the real API: an orange rainstorm warning proposes the flood plan's Ⅳ级 to the leading leader."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlmodel import select

from api.app import create_app
from api.services import proposals as svc
from config import get_settings
from definitions.loader import load_or_raise
from store.activations import Activation
from store.audit import AuditEvent, verify
from store.auth import create_token
from store.db import session_scope
from store.incidents import Incident
from store.messages import OutboxMessage
from store.proposals import Proposal
from store.replay import load_events
from store.review import linked_proposals, timeline
from store.warnings import Warning
from tests.factories import response_district
from tests.helpers import console_login, console_post
from tests.workflows.activation_helpers import DEFINITIONS, terminate_activations
from tests.workflows.callout_helpers import idle, wait_for
from tests.workflows.duty_helpers import terminate
from tests.workflows.reporting_helpers import terminate_incidents
from worker import build_worker
from workflows.proposal import DecideIn, ResponseProposalWorkflow as W
from workflows.subjects import activation_subject, proposal_subject


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return response_district(s)


@pytest.fixture
async def tq(env, db_url, people, monkeypatch):
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    get_settings.cache_clear()
    settings = get_settings()
    settings.task_queue = f"prop-{uuid.uuid4().hex[:8]}"  # the incident and activation the acceptance starts run here
    started: list[str] = []
    async with build_worker(env.client, task_queue=settings.task_queue):
        yield settings, started
        await terminate(env.client, started)
        await terminate_activations(env.client)
        await terminate_incidents(env.client)


def warning(level: str = "orange", msg_type: str = "Alert", expires_in: timedelta | None = timedelta(hours=12),
            event: str = "暴雨", callout_id: str | None = None) -> Warning:
    wid = f"W{uuid.uuid4().hex[:12]}"
    return Warning(id=wid, identifier=f"CAP-{wid}", msg_type=msg_type, level=level, event=event,
                   headline=f"青溪区气象台发布暴雨{ {'orange': '橙色', 'red': '红色', 'yellow': '黄色'}[level] }预警",
                   description="预计未来6小时内降雨量将达50毫米以上", area_descs=["全区"], town_ids=[],
                   expires_at=datetime.now(UTC) + expires_in if expires_in else None, callout_id=callout_id,
                   meta={"drill": False})


async def propose(env, tq, w: Warning) -> list[str]:
    settings, started = tq
    lib = load_or_raise(DEFINITIONS)
    plan = lib.callout_plan_for(w.event, None, headline=w.headline)
    ids = await svc.propose_for_warning(env.client, settings, lib, SimpleNamespace(drill=False, refs=[]), w, plan,
                                        SimpleNamespace(callout_id=w.callout_id, note=None))
    started += [f"proposal-{i}" for i in ids]
    return ids


def kinds(subject: str) -> list[str]:
    with session_scope(write=False) as s:
        return [e.kind for e in s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq))]


def payload(subject: str, kind: str) -> dict:
    with session_scope(write=False) as s:
        ev = s.exec(select(AuditEvent).where(AuditEvent.subject == subject, AuditEvent.kind == kind)).first()
        assert ev is not None, f"no {kind} in {subject}: {kinds(subject)}"
        return ev.payload


def sent(subject: str, person_id: str, channel: str | None = None) -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        stmt = select(OutboxMessage).where(OutboxMessage.subject == subject, OutboxMessage.person_id == person_id)
        if channel:
            stmt = stmt.where(OutboxMessage.channel == channel)
        return list(s.exec(stmt.order_by(OutboxMessage.id)))


def row(pid: str) -> Proposal | None:
    with session_scope(write=False) as s:
        return s.get(Proposal, pid)


async def proposed(env, pid: str) -> None:
    await env.client.get_workflow_handle(f"proposal-{pid}").execute_update(W.opened_view)
    await wait_for(lambda: (r := row(pid)) is not None and r.status == "proposed", what="the proposal stored")


async def test_an_orange_rainstorm_warning_proposes_and_acceptance_activates_linked_to_the_warning(env, tq, people):
    leader = people["leading_leader"]
    w = warning("orange")
    ids = await propose(env, tq, w)
    pid = f"{w.id}-flood_control"
    assert ids == [pid]  # the flood plan's Ⅳ级 start condition: 发布暴雨橙色预警
    assert await propose(env, tq, w) == [pid]  # the same warning again: the same proposal, one workflow
    await proposed(env, pid)
    subj = proposal_subject(pid)
    made = payload(subj, "proposal.made")
    assert made["level"] == "IV" and made["warning_id"] == w.id and made["leader"]["person_id"] == leader
    sms = await wait_for(lambda: sent(subj, leader, "sms"), what="the proposal's SMS")
    body = sms[0].body
    assert body.startswith("【响应建议】") and "建议启动Ⅳ级应急响应" in body and "/a/" in body  # the link's short alias
    assert "/proposal/" in sms[0].ack_url
    assert "《青溪区防汛应急预案》" in body and not any(c.isascii() and c.isalpha() for c in body.split("http")[0])
    # the outbox row is written before the send goes out, the trail's event after it: waited for, not read once
    await wait_for(lambda: "proposal.sent" in kinds(subj), what="the send in the trail")

    h = env.client.get_workflow_handle_for(W.run, f"proposal-{pid}")
    view = await h.execute_update(W.accept, DecideIn(actor=leader, role="leading_leader", via="console"))
    assert view.status == "accepted" and view.activation_id and view.incident_id
    acc = payload(subj, "proposal.accepted")
    assert acc["activation_id"] == view.activation_id and acc["warning_id"] == w.id
    with session_scope(write=False) as s:
        act = s.get(Activation, view.activation_id)
        inc = s.get(Incident, view.incident_id)
    assert act is not None and act.plan_id == "flood_control" and act.level == "IV"
    assert inc is not None and inc.title == w.headline and inc.source == "warning"
    started = payload(activation_subject(view.activation_id), "activation.started")
    assert started["warning_id"] == w.id and started["proposal_id"] == pid
    assert (await h.result()).status == "accepted"
    assert sent(subj, leader, "sms")[-1].body.startswith("【响应建议】已同意")  # whoever was reached is told
    assert row(pid).activation_id == view.activation_id
    with session_scope(write=False) as s:  # the case of the response takes the proposal: in the review's timeline
        assert linked_proposals(s, view.activation_id) == [subj]
        lines = [r["text"] for r in timeline({subj: load_events(s, subj)})]
    assert lines[0].startswith("预警即启动条件:建议启动Ⅳ级应急响应") and "同意响应建议,启动Ⅳ级应急响应" in lines
    with session_scope(write=False) as s:
        assert verify(s, subj).ok


async def test_a_red_warning_proposes_level_three_and_a_yellow_one_nothing(env, tq, people):
    red = warning("red")
    assert await propose(env, tq, red) == [f"{red.id}-flood_control"]
    await proposed(env, f"{red.id}-flood_control")
    assert payload(proposal_subject(f"{red.id}-flood_control"), "proposal.made")["level"] == "III"
    assert await propose(env, tq, warning("yellow")) == []


async def test_declined_with_a_reason(env, tq, people):
    leader = people["leading_leader"]
    w = warning("orange")
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    with pytest.raises(svc.ProposalError) as exc:  # no reason: refused before the workflow is asked
        await svc.decide(env.client, pid, "decline", leader, "leading_leader", reason="  ")
    assert exc.value.status == 422
    view = await svc.decide(env.client, pid, "decline", leader, "leading_leader", reason="雨区偏南,已由乡镇防御")
    assert view.status == "declined" and view.reason == "雨区偏南,已由乡镇防御"
    assert payload(proposal_subject(pid), "proposal.declined")["reason"] == "雨区偏南,已由乡镇防御"
    with pytest.raises(svc.ProposalError) as exc:  # decided: nothing more
        await svc.decide(env.client, pid, "accept", leader, "leading_leader")
    assert exc.value.status == 409
    with session_scope(write=False) as s:
        assert not list(s.exec(select(Activation)))
    assert (await env.client.get_workflow_handle_for(W.run, f"proposal-{pid}").result()).status == "declined"


async def test_unanswered_the_leader_is_called_then_the_duty_chief_told_and_the_district_head_called(env, tq, people):
    leader, chief, head = people["leading_leader"], people["duty_chief"], people["district_head"]
    w = warning("orange")
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    subj = proposal_subject(pid)
    await idle(env.client.get_workflow_handle(f"proposal-{pid}"))
    await env.sleep(timedelta(minutes=16))  # past the first wait (15 min): a voice call
    await wait_for(lambda: sent(subj, leader, "voice"), what="the voice call to the leader")
    await idle(env.client.get_workflow_handle(f"proposal-{pid}"))
    await env.sleep(timedelta(minutes=11))  # past the second wait: the duty chief told, the district head called
    await wait_for(lambda: "proposal.escalated" in kinds(subj), what="the escalation")
    assert payload(subj, "proposal.escalated")["to"] == "position:district_head"
    assert "proposal.informed" in kinds(subj)
    assert sent(subj, chief) and "带班领导尚未决定" in sent(subj, chief, "sms")[0].body
    assert "请您决定" in sent(subj, head, "sms")[0].body
    assert row(pid).status == "proposed"  # still open: decided or withdrawn, never dropped


async def test_the_warning_cancelled_withdraws_the_proposal_and_tells_whoever_was_reached(env, tq, people):
    leader = people["leading_leader"]
    w = warning("orange")
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    cancel = warning("orange", msg_type="Cancel")
    settings, _ = tq
    lib = load_or_raise(DEFINITIONS)
    out = await svc.propose_for_warning(env.client, settings, lib,
                                        SimpleNamespace(drill=False, refs=[SimpleNamespace(warning_id=w.id)]),
                                        cancel, None, SimpleNamespace(callout_id=None))
    assert out == [pid]
    view = await env.client.get_workflow_handle_for(W.run, f"proposal-{pid}").result()
    assert view.status == "expired"
    exp = payload(proposal_subject(pid), "proposal.expired")
    assert "预警已解除" in exp["reason"] and exp["reached"] == [leader]
    assert "撤回" in sent(proposal_subject(pid), leader, "sms")[-1].body
    assert row(pid).status == "expired"


async def test_the_warning_expiring_withdraws_the_proposal(env, tq, people):
    w = warning("orange", expires_in=timedelta(minutes=5))
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    h = env.client.get_workflow_handle_for(W.run, f"proposal-{pid}")
    await idle(h)
    await env.sleep(timedelta(minutes=6))  # past the warning's expiry
    view = await h.result()
    assert view.status == "expired" and payload(proposal_subject(pid), "proposal.expired")["reason"] == "expired"


# ------------------------------------------------------------------ through the API


async def test_api_a_non_leader_is_refused_and_the_leaders_link_accepts(env, tq, people):
    settings, _ = tq
    leader = people["leading_leader"]
    with session_scope() as s:
        staff = create_token(s, "duty_staff", label="staff")
        other_leader = create_token(s, "leading_leader", person_id=people["D01.head"], label="not on duty")
    w = warning("orange")
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    app = create_app(temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        r = await api.get(f"/api/proposals/{pid}", headers={"Authorization": f"Bearer {staff}"})
        assert r.status_code == 200 and r.json()["status"] == "proposed" and r.json()["level"] == "IV"
        r = await api.post(f"/api/proposals/{pid}/accept", headers={"Authorization": f"Bearer {staff}"})
        assert r.status_code == 403 and "专业值班员不能处理此响应建议" in r.json()["detail"], r.text
        r = await api.post(f"/api/proposals/{pid}/accept", headers={"Authorization": f"Bearer {other_leader}"})
        assert r.status_code == 403 and "只有当班带班领导" in r.json()["detail"], r.text
        r = await api.post(f"/api/proposals/{pid}/decline", json={"reason": ""},
                           headers={"Authorization": f"Bearer {other_leader}"})
        assert r.status_code == 422
        assert row(pid).status == "proposed"
        link = httpx.URL(sent(proposal_subject(pid), leader, "sms")[0].ack_url).path
        page = await api.get(link)
        assert page.status_code == 200 and "建议启动" in page.text and "Ⅳ级应急响应" in page.text
        page = await api.post(link, data={"decision": "decline", "reason": ""})
        assert page.status_code == 422 and "理由" in page.text  # a decline needs its reason; nothing decided
        page = await api.post(link, data={"decision": "accept"})
        assert page.status_code == 200 and 'data-decision="accepted"' in page.text, page.text
        again = await api.post(link, data={"decision": "accept"})
        assert again.status_code == 409  # once
        r = await api.get(f"/api/proposals/{pid}", headers={"Authorization": f"Bearer {staff}"})
        done = r.json()
        assert done["status"] == "accepted" and done["activation_id"] and done["decided_via"] == "link"
        assert payload(proposal_subject(pid), "proposal.accepted")["via"] == "link"


async def test_console_the_leaders_desk_lists_it_and_the_page_declines_with_the_reason(env, tq, people):
    leader = people["leading_leader"]
    with session_scope() as s:
        token = create_token(s, "leading_leader", person_id=leader, label="leader")
    w = warning("orange")
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    app = create_app(temporal_client=env.client)
    web = await console_login(app, token)
    desk = await web.get("/console/desk")
    assert f"/console/proposals/{pid}" in desk.text and "响应建议待决定" in desk.text
    page = await web.get(f"/console/proposals/{pid}")
    assert page.status_code == 200 and "建议响应级别" in page.text and "Ⅳ级" in page.text and 'id="accept"' in page.text
    assert "pr_" not in page.text and "todo_" not in desk.text  # every string has its Chinese
    r = await console_post(web, f"/console/proposals/{pid}/decline", {"reason": ""})
    assert r.status_code == 422 and "理由" in r.text  # refused with the reason why, nothing decided
    r = await console_post(web, f"/console/proposals/{pid}/decline", {"reason": "雨势减弱"})
    assert r.status_code == 303
    page = await web.get(f"/console/proposals/{pid}")
    assert 'data-status="declined"' in page.text and "雨势减弱" in page.text
    assert f"/console/proposals/{pid}" not in (await web.get("/console/desk")).text


async def test_intake_an_orange_rainstorm_warning_starts_its_callout_and_the_proposal_the_board_shows(env, tq, people):
    """Through POST /api/warnings: the call-out starts as before and the proposal follows it (named on the call-out's
    board); the leader's acceptance receives the incident with the call-out related; a CAP Cancel of an accepted
    proposal's warning changes nothing of it."""
    leader = people["leading_leader"]
    with session_scope() as s:
        duty = create_token(s, "duty_chief", person_id=people["duty_chief"], label="chief")
        lead = create_token(s, "leading_leader", person_id=leader, label="leader")
    app = create_app(temporal_client=env.client)
    ident = f"RAIN-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"Authorization": f"Bearer {duty}"}) as api:
        r = await api.post("/api/warnings", json={
            "identifier": ident, "sender": "qx-met", "level": "orange", "event": "暴雨",
            "headline": "青溪区气象台发布暴雨橙色预警", "areas": ["330110"],
            "expires": (datetime.now(UTC) + timedelta(hours=6)).isoformat()})
        assert r.status_code == 201, r.text
        res = r.json()
        assert res["action"] == "callout_started"
        pid = f"{res['warning_id']}-flood_control"
        tq[1].extend([res["callout_id"], f"proposal-{pid}"])
        await proposed(env, pid)
        assert row(pid).callout_id == res["callout_id"]
        web = await console_login(app, duty)
        board = await web.get(f"/console/callouts/{res['callout_id']}")
        assert f'/console/proposals/{pid}' in board.text
        page = await web.get(f"/console/proposals/{pid}")
        assert f'href="/console/callouts/{res["callout_id"]}">叫应</a>' in page.text and "pr_" not in page.text
        r = await api.post(f"/api/proposals/{pid}/accept", headers={"Authorization": f"Bearer {lead}"})
        assert r.status_code == 200, r.text
        done = r.json()
        with session_scope(write=False) as s:
            inc = s.get(Incident, done["incident_id"])
        assert inc is not None and inc.title == "青溪区气象台发布暴雨橙色预警"
        assert payload(inc.id, "incident.received")["related"] == [res["callout_id"]]
        r = await api.post("/api/warnings", json={"identifier": f"{ident}-C", "sender": "qx-met", "msg_type": "Cancel",
                                                 "references": [f"qx-met,{ident}"], "event": "暴雨"})
        assert r.status_code in (200, 201), r.text
        assert row(pid).status == "accepted"


async def test_the_warning_raised_to_red_raises_the_open_proposal_and_asks_the_leader_again(env, tq, people):
    leader = people["leading_leader"]
    w = warning("orange", callout_id=None)
    pid = (await propose(env, tq, w))[0]
    await proposed(env, pid)
    subj = proposal_subject(pid)
    await wait_for(lambda: sent(subj, leader, "sms"), what="the first SMS")
    red = warning("red", msg_type="Update", callout_id=f"callout-{w.id}")  # an Update of the same warning's call-out
    assert await propose(env, tq, red) == [pid]  # the same proposal
    await wait_for(lambda: "proposal.raised" in kinds(subj), what="raised")
    raised = payload(subj, "proposal.raised")
    assert raised["from_level"] == "IV" and raised["to_level"] == "III"
    await wait_for(lambda: any("建议启动Ⅲ级应急响应" in m.body for m in sent(subj, leader, "sms")), what="asked again")
    assert await propose(env, tq, warning("orange", msg_type="Update", callout_id=f"callout-{w.id}")) == [pid]
    view = await svc.decide(env.client, pid, "decline", leader, "leading_leader", reason="已按Ⅳ级部署")
    assert view.level.value == "III" and view.status == "declined"
    assert kinds(subj).count("proposal.raised") == 1  # a lower level never lowers it
