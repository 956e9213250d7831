"""Whose id: for every route OWNERSHIP (test_access_table.py) marks `owned`, a role the route lets in but acting
on a person, unit, incident or review it does not own is refused (403 naming what it does not own), and where
the procedure lets the duty office act on the owner's behalf the step goes through recorded as such.

Findings 7 and 8 of issue 16 are two of these: `POST /api/activations/{id}/acks/{person}` follows the plan's
proxy roles like an item's acknowledgement (duty_staff is refused), and a unit's review summary comes from
that unit or is entered by the duty office on its behalf (代录), never by another unit's commander.

The procedures run for real (the worker on a time-skipping server, its clock left alone: no timer fires).
"""
from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import select

from tests.security.asgi import call
from tests.security.test_access_table import OWNED, OWNERSHIP

ANTI_HANG_S = 60  # the procedures answer within a second or two; generous under a loaded machine
PERSONS = {"cmd_D10": ("commander", "D10.head"), "cmd_D08": ("commander", "D08.head"),
           "cmd_D09": ("commander", "D09.head"), "cmd_D01": ("commander", "D01.head"),
           "cmd_D02": ("commander", "D02.head"), "duty_cadre": ("duty_cadre", "duty_cadre"),
           "duty_chief": ("duty_chief", "duty_chief"), "leading_leader": ("leading_leader", "deputy_head")}


@pytest.fixture
async def owned_env(module_time_env, db_url, monkeypatch):
    """The app over the response district, a worker, and tokens of persons: commanders of several departments,
    the duty office (duty_staff without a person), a supervisor."""
    from api.app import create_app
    from config import get_settings
    from store.auth import create_token
    from store.db import session_scope
    from tests.factories import response_district
    from tests.workflows.activation_helpers import terminate_activations
    from tests.workflows.callout_helpers import terminate_callouts
    from worker import build_worker

    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_TASK_QUEUE", f"own-{uuid.uuid4().hex[:6]}")
    get_settings.cache_clear()
    settings = get_settings()
    with session_scope() as s:
        people = response_district(s)
        tokens = {key: create_token(s, role, person_id=people[who], label=key) for key, (role, who) in PERSONS.items()}
        tokens["duty_staff"] = create_token(s, "duty_staff", label="duty_staff")
        tokens["supervisor"] = create_token(s, "supervisor", label="supervisor")
    app = create_app(temporal_client=module_time_env.client)
    async with build_worker(module_time_env.client, task_queue=settings.task_queue):
        yield SimpleNamespace(app=app, tokens=tokens, people=people, client=module_time_env.client,
                              task_queue=settings.task_queue)
        await _end_reviews(module_time_env.client)
        await terminate_activations(module_time_env.client)
        await terminate_callouts(module_time_env.client)


async def _end_reviews(client) -> None:
    from temporalio.service import RPCError

    from store.db import session_scope
    from store.review import Review

    with session_scope(write=False) as s:
        ids = [r.workflow_id for r in s.exec(select(Review))]
    for wid in ids:
        try:
            await client.get_workflow_handle(wid).terminate("test over")
        except RPCError:
            pass


async def post(env, path: str, who: str, body: dict | None = None):
    return await call(env.app, "POST", path, headers={"Authorization": f"Bearer {env.tokens[who]}"},
                      json=body if body is not None else {})


async def refused(env, path: str, who: str, body: dict, *words: str) -> None:
    got = await post(env, path, who, body)
    assert got.status == 403, f"{who} on {path}: {got.status} {got.text[:300]}"
    for w in words:
        assert w in got.json()["detail"], got.json()["detail"]


async def allowed(env, path: str, who: str, body: dict | None = None) -> dict:
    got = await post(env, path, who, body)
    assert got.status == 200, f"{who} on {path}: {got.status} {got.text[:300]}"
    return got.json()


def audit(subject: str) -> list:
    from store.audit import AuditEvent
    from store.db import session_scope

    with session_scope(write=False) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.subject == subject).order_by(AuditEvent.seq)))


async def recorded(subject: str, what: str, check) -> list:
    async def loop():
        while not (found := [e for e in audit(subject) if check(e)]):
            await asyncio.sleep(0.05)
        return found

    try:
        return await asyncio.wait_for(loop(), ANTI_HANG_S)
    except TimeoutError:
        raise AssertionError(f"not recorded in {subject}: {what}") from None


async def activation(env) -> tuple[str, str]:
    """A public-health response at Ⅳ级 (指挥长: the head of D10) running: (its base path, its audit subject)."""
    from tests.workflows.activation_helpers import activation_input, start

    inp = activation_input()
    await start(env.client, env.task_queue, inp)
    return f"/api/activations/{inp.info.activation_id}", f"activation/{inp.info.activation_id}"


async def review(env, units: tuple[str, ...] = ("D01", "D02")) -> str:
    """A post-event review of a new incident collecting the units' summaries: its incident id."""
    from workflows.review import PostEventReviewWorkflow, ReviewInput, review_workflow_id

    iid = f"INC-R{uuid.uuid4().hex[:6].upper()}"
    handle = await env.client.start_workflow(PostEventReviewWorkflow.run, ReviewInput(incident_id=iid, units=list(units)),
                                             id=review_workflow_id(iid), task_queue=env.task_queue)
    await handle.execute_update(PostEventReviewWorkflow.opened_view)
    return iid


# ------------------------------------------------------------------ one scenario per owned route


async def activate(env) -> None:
    from store.db import session_scope
    from store.incidents import Incident

    iid = f"INC-O{uuid.uuid4().hex[:6].upper()}"
    with session_scope() as s:
        s.add(Incident(id=iid, workflow_id=f"incident-{iid}", received_at=datetime.now(UTC), source="department",
                       category="public_health", town_id="330110001", rules_id="t", rules_version="t"))
    body = {"plan": "public_health", "level": "IV", "incident_id": iid, "reason": "初筛阳性3例"}
    got = await post(env, "/api/activations", "cmd_D08", body)  # a commander, but not of this plan at this level
    assert got.status == 403 and "does not command" in got.json()["detail"], got.text


async def directives(env) -> None:
    base, _ = await activation(env)
    body = {"text": "核查密接", "assignee": "group:data", "due_in": "2h"}
    await refused(env, f"{base}/directives", "cmd_D08", body, "p-D08.head", "指挥长")
    view = await allowed(env, f"{base}/directives", "cmd_D10", body)
    assert view["directives"][0]["issued_by"] == "p-D10.head"


async def consultations(env) -> None:
    """会商研判: convened by the duty office, the leading leader or a commander of the activation's level; its
    conclusions likewise."""
    from store.db import session_scope
    from store.resources import Expert

    base, subject = await activation(env)
    with session_scope() as s:
        if s.get(Expert, "X-OWN-1") is None:
            s.add(Expert(id="X-OWN-1", name="专家甲", field="medical", mobile="+8613900009911"))
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0).isoformat()
    body = {"fields": ["medical"], "at": at, "place": "区应急指挥中心会商室"}
    await refused(env, f"{base}/consultations", "cmd_D08", body, "p-D08.head")
    view = await allowed(env, f"{base}/consultations", "cmd_D10", body)
    assert view["meetings"][0]["experts"][0]["id"] == "X-OWN-1"
    path = f"{base}/consultations/1/conclusions"
    await refused(env, path, "cmd_D08", {"text": "x"}, "p-D08.head")
    view = await allowed(env, path, "cmd_D10", {"text": "建议加强流调"})
    assert view["meetings"][0]["conclusions"][0]["text"] == "建议加强流调"
    await recorded(subject, "the meeting convened by the commander", lambda e: e.kind == "activation.meeting.convened"
                   and e.actor == "p-D10.head")


async def item_ack(env) -> None:
    base, subject = await activation(env)
    path = f"{base}/items/T-trajectory/ack"  # the tracing group's task: the head of D10 (or deputy) is its assignee
    await refused(env, path, "cmd_D08", {}, "p-D08.head", "not the assignee of T-trajectory")
    await refused(env, path, "duty_staff", {"note": "电话确认"}, "not the assignee", "duty_staff")
    view = await allowed(env, path, "duty_cadre", {"note": "电话确认已收到"})
    task = next(t for t in view["tasks"] if t["id"] == "T-trajectory")
    assert task["acknowledged_by"] == "p-duty_cadre" and task["acknowledged_via"] == "proxy"
    await recorded(subject, "the acknowledgement on behalf", lambda e: e.channel == "proxy" and e.actor == "p-duty_cadre")


async def item_feedback(env) -> None:
    base, subject = await activation(env)
    path = f"{base}/items/T-trajectory/feedback"
    await refused(env, path, "cmd_D08", {"kind": "progress", "text": "x"}, "not the assignee of T-trajectory")
    await refused(env, path, "duty_staff", {"kind": "progress", "text": "x"}, "not the assignee")
    await allowed(env, path, "duty_cadre", {"kind": "progress", "text": "已完成一半", "note": "电话听取"})
    ev = await recorded(subject, "feedback on behalf", lambda e: e.kind == "activation.task.feedback")
    assert ev[0].actor == "p-duty_cadre" and ev[0].payload["on_behalf"] is True


async def item_review(env) -> None:
    base, _ = await activation(env)
    await refused(env, f"{base}/items/T-trajectory/review", "cmd_D08", {"decision": "accept"}, "p-D08.head", "指挥长")


async def level(env) -> None:
    base, _ = await activation(env)
    await refused(env, f"{base}/level", "cmd_D08", {"level": "III", "reason": "升级"}, "p-D08.head", "指挥长")


async def terminate(env) -> None:
    base, _ = await activation(env)
    await refused(env, f"{base}/terminate", "cmd_D08", {"reason": "结束"}, "p-D08.head", "指挥长")


async def dispatches(env) -> None:
    base, _ = await activation(env)
    body = {"forces": ["police"], "task": "封控小区"}
    await refused(env, f"{base}/dispatches", "cmd_D08", body, "fire rescue", "p-D08.head")
    await allowed(env, f"{base}/dispatches", "cmd_D09", body)


async def _drafted(env) -> str:
    base, _ = await activation(env)
    await allowed(env, f"{base}/dispatches", "cmd_D09", {"forces": ["police"], "task": "封控小区"})
    return base


async def consult(env) -> None:
    base = await _drafted(env)
    await refused(env, f"{base}/dispatches/1/consult", "cmd_D08", {"agree": True, "opinion": "同意"}, "p-D08.head",
                  "neither")


async def decision(env) -> None:
    base = await _drafted(env)
    await refused(env, f"{base}/dispatches/1/decision", "cmd_D08", {"decision": "approve"}, "emergency management")


async def reinforcements(env) -> None:
    base, _ = await activation(env)
    await refused(env, f"{base}/reinforcements", "cmd_D08", {"kind": "experts", "detail": "流调专家"}, "p-D08.head",
                  "指挥长")


async def acks_on_behalf(env) -> None:
    """Finding 7: duty_staff is refused on the item route; the person route must not let them round it."""
    base, subject = await activation(env)
    commander = env.people["D10.head"]
    await refused(env, f"{base}/items/T-trajectory/ack", "duty_staff", {"note": "电话确认"}, "not the assignee")
    await refused(env, f"{base}/acks/{commander}", "duty_staff", {"note": "电话确认"}, commander, "duty_staff")
    assert not [e for e in audit(subject) if e.channel == "proxy"], "nothing was acknowledged for them"
    got = await post(env, f"{base}/acks/p-nobody", "duty_cadre", {"note": "电话确认"})
    assert got.status == 404 and "p-nobody" in got.json()["detail"]
    assert (await allowed(env, f"{base}/acks/{commander}", "duty_cadre", {"note": "电话确认已到岗"}))["acknowledged"] == commander
    ev = await recorded(subject, "the convene acknowledged on behalf", lambda e: e.kind == "activation.convene.ack")
    assert ev[0].channel == "proxy" and ev[0].actor == "p-duty_cadre" and ev[0].payload["person_id"] == commander


async def summaries(env) -> None:
    """Finding 8: a unit's summary comes from that unit, or the duty office enters it on its behalf (代录)."""
    iid = await review(env)
    path = f"/api/reviews/{iid}/summaries"
    text = {"what_worked": "联动迅速", "shortcomings": "信息滞后"}
    await refused(env, path, "cmd_D02", {**text, "unit_id": "D01"}, "p-D02.head", "does not answer for", "D01")
    await refused(env, path, "duty_staff", {**text, "unit_id": "D02"}, "does not answer for", "D02", "duty_staff")
    own = await allowed(env, path, "cmd_D01", {**text, "unit_id": "D01"})
    assert next(u for u in own["units"] if u["unit_id"] == "D01")["on_behalf"] is False
    proxy = await allowed(env, path, "duty_cadre", {**text, "unit_id": "D02", "author": "水利局办公室"})
    d02 = next(u for u in proxy["units"] if u["unit_id"] == "D02")
    assert d02["on_behalf"] is True and d02["submitted_by"] == "p-duty_cadre"
    events = [e for e in audit(f"review/{iid}") if e.kind == "review.summary.submitted"]
    assert [(e.actor, e.payload["unit_id"], e.payload["on_behalf"], e.payload["on_behalf_of"]) for e in events] == [
        ("p-D01.head", "D01", False, None), ("p-duty_cadre", "D02", True, "D02")]


async def workorder(env, unit: str = "D01") -> str:
    """A 12345 gas-leak order taken by the duty office and assigned to `unit`: its base path."""
    body = {"ticket": f"T{uuid.uuid4().hex[:8]}", "source": "12345", "category": "燃气泄漏", "urgency": "normal",
            "place": "河西街12号", "town_id": "330110001", "words": "楼道里有很重的煤气味", "caller_phone": "13900001234"}
    got = await post(env, "/api/workorders", "duty_cadre", body)
    assert got.status == 201, got.text
    path = f"/api/workorders/{got.json()['id']}"
    await allowed(env, f"{path}/assign", "duty_cadre", {"unit_id": unit})
    return path


async def workorder_sign(env) -> None:
    """签收: D02's commander may not sign an order assigned to D01; D01's head signs it."""
    path = await workorder(env)
    await refused(env, f"{path}/sign", "cmd_D02", {}, "D01")
    assert (await allowed(env, f"{path}/sign", "cmd_D01", {}))["status"] == "signed"


async def workorder_return(env) -> None:
    path = await workorder(env)
    await refused(env, f"{path}/return", "cmd_D02", {"reason": "不归我们管"}, "D01")
    await allowed(env, f"{path}/return", "cmd_D01", {"reason": "燃气归住建局"})


async def workorder_feedback(env) -> None:
    path = await workorder(env)
    await allowed(env, f"{path}/sign", "cmd_D01", {})
    await refused(env, f"{path}/feedback", "cmd_D02", {"text": "已处理"}, "D01")
    await allowed(env, f"{path}/feedback", "cmd_D01", {"text": "已关阀,正在排查"})


async def workorder_complete(env) -> None:
    path = await workorder(env)
    await allowed(env, f"{path}/sign", "cmd_D01", {})
    await refused(env, f"{path}/complete", "cmd_D02", {"result": "已修复"}, "D01")
    await allowed(env, f"{path}/complete", "cmd_D01", {"result": "已修复"})


SCENARIOS = {
    ("POST", "/api/workorders/{workorder_id}/sign"): workorder_sign,
    ("POST", "/api/workorders/{workorder_id}/return"): workorder_return,
    ("POST", "/api/workorders/{workorder_id}/feedback"): workorder_feedback,
    ("POST", "/api/workorders/{workorder_id}/complete"): workorder_complete,
    ("POST", "/api/activations"): activate,
    ("POST", "/api/activations/{activation_id}/directives"): directives,
    ("POST", "/api/activations/{activation_id}/items/{item_id}/ack"): item_ack,
    ("POST", "/api/activations/{activation_id}/items/{item_id}/feedback"): item_feedback,
    ("POST", "/api/activations/{activation_id}/items/{item_id}/review"): item_review,
    ("POST", "/api/activations/{activation_id}/level"): level,
    ("POST", "/api/activations/{activation_id}/terminate"): terminate,
    ("POST", "/api/activations/{activation_id}/dispatches"): dispatches,
    ("POST", "/api/activations/{activation_id}/consultations"): consultations,
    ("POST", "/api/activations/{activation_id}/consultations/{seq}/conclusions"): consultations,
    ("POST", "/api/activations/{activation_id}/dispatches/{seq}/consult"): consult,
    ("POST", "/api/activations/{activation_id}/dispatches/{seq}/decision"): decision,
    ("POST", "/api/activations/{activation_id}/reinforcements"): reinforcements,
    ("POST", "/api/activations/{activation_id}/acks/{person_id}"): acks_on_behalf,
    ("POST", "/api/reviews/{incident_id}/summaries"): summaries,
}
# console pages that run the same workflow updates as REST routes: covered by those routes' scenarios
SAME_AS = {
    ("POST", "/console/activations/{activation_id}/{action}"): [c for c in SCENARIOS if c[1].startswith("/api/activations/")],
    ("POST", "/console/reviews/{incident_id}/{action}"): [("POST", "/api/reviews/{incident_id}/summaries")],
    ("POST", "/console/workorders/{workorder_id}/{action}"): [c for c in SCENARIOS if c[1].startswith("/api/workorders/")],
}


def test_every_owned_route_has_its_scenario():
    owned = {c for c, o in OWNERSHIP.items() if o.kind == OWNED}
    assert owned == set(SCENARIOS) | set(SAME_AS), (
        "owned routes without a scenario here: " + ", ".join(f"{m} {p}" for m, p in sorted(owned - set(SCENARIOS) - set(SAME_AS))))


@pytest.mark.parametrize("case", list(SCENARIOS), ids=lambda c: f"{c[0]} {c[1]}")
async def test_an_allowed_role_not_owning_the_id_is_refused(owned_env, case):
    await SCENARIOS[case](owned_env)


# ------------------------------------------------------------------ on behalf by design: recorded as such


async def callout_target_ack(env) -> None:
    """Any duty officer confirms by phone for a person called; the acknowledgement is the proxy's, with its actor."""
    from tests.helpers import CAP

    got = await call(env.app, "POST", "/api/warnings", content=CAP.format(ident=f"own-{uuid.uuid4().hex[:8]}").encode(),
                     headers={"Authorization": f"Bearer {env.tokens['duty_cadre']}", "Content-Type": "application/cap+xml"})
    assert got.status == 201, got.text
    cid, person = got.json()["callout_id"], env.people["D01.head"]

    def sent():
        from store.db import session_scope
        from store.messages import OutboxMessage

        with session_scope(write=False) as s:
            return s.exec(select(OutboxMessage.id).where(OutboxMessage.subject == cid,
                                                          OutboxMessage.person_id == person)).first()

    async def texted():
        while sent() is None:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(texted(), ANTI_HANG_S)
    await allowed(env, f"/api/callouts/{cid}/targets/{person}/ack", "duty_staff", {"note": "电话确认已收到"})
    ev = await recorded(cid, "the proxy acknowledgement", lambda e: e.kind == "callout.ack")
    assert ev[0].channel == "proxy" and ev[0].actor == "duty_staff:duty_staff" and ev[0].payload["person_id"] == person


ON_BEHALF_SCENARIOS = {
    ("POST", "/api/callouts/{callout_id}/targets/{person_id}/ack"): callout_target_ack,
}


@pytest.mark.parametrize("case", list(ON_BEHALF_SCENARIOS), ids=lambda c: f"{c[0]} {c[1]}")
async def test_acting_on_behalf_is_recorded_as_such(owned_env, case):
    from tests.security.test_access_table import ON_BEHALF

    assert OWNERSHIP[case].kind == ON_BEHALF
    await ON_BEHALF_SCENARIOS[case](owned_env)
