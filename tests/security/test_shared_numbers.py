"""Issue 16, finding 4: an SMS reply from a number two persons share acknowledged the other person.

A reply is matched to the message it answers: by the code in it, else the latest message to the
number, unless that number has messages out for more than one person still waiting: then the reply is
held as ambiguous, listed for the duty office (`GET /api/answers/ambiguous`) and assigned by it
(`POST /api/answers/{id}/assign`), audited. Nobody is acknowledged by someone else's answer."""
from __future__ import annotations

import httpx
from sqlmodel import select

from store.audit import AuditEvent
from store.db import session_scope
from store.directory import Person
from store.links import reply_code
from tests.workflows.callout_helpers import callout_input, outbox, start, targets, wait_for


async def test_a_reply_from_a_shared_number_is_held_and_assigned(secured):
    a, b = secured.people["330110001001.resp"], secured.people["330110001002.resp"]
    with session_scope() as s:  # two village persons share one phone
        s.get(Person, b).mobile = s.get(Person, a).mobile
    inp = callout_input()
    cid = inp.callout_id
    await start(secured.client, secured.settings.task_queue, inp)
    sms = await wait_for(lambda: [m for p in (a, b) for m in outbox(cid, person_id=p) if m.provider_id and m.channel == "sms"]
                         if all(any(m.provider_id for m in outbox(cid, person_id=p)) for p in (a, b)) else None,
                         what="an SMS to each of the two")
    duty = {"Authorization": f"Bearer {secured.tokens['duty_staff']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=secured.app), base_url="http://test",
                                 headers=duty) as api:
        # "收到" without a code: whose? held, nobody acknowledged
        r = await api.post(f"/api/simulator/messages/{sms[0].id}", json={"outcome": "reply", "body": "收到"})
        assert r.status_code == 200, r.text
        assert r.json()["handled"] == "ambiguous" and r.json()["recorded"] == "held"
        held = (await api.get("/api/answers/ambiguous")).json()
        [item] = held
        assert {c["person_id"] for c in item["candidates"]} == {a, b} and item["body"] == "收到"
        assert not targets(cid)[a].acknowledged_at and not targets(cid)[b].acknowledged_at

        # a reply with b's code is b's answer
        r = await api.post(f"/api/simulator/messages/{sms[0].id}",
                           json={"outcome": "reply", "body": f"1 {reply_code(cid, b)}"})
        assert r.json()["handled"] == "ack" and r.json()["person_id"] == b
        await wait_for(lambda: targets(cid)[b].state == "acknowledged", what="b acknowledged")
        assert not targets(cid)[a].acknowledged_at

        # the duty officer rang the house: the held reply was a's
        bad = await api.post(f"/api/answers/{item['id']}/assign", json={"person_id": secured.people["D01.head"]})
        assert bad.status_code == 422, bad.text  # not someone this number was messaged for
        r = await api.post(f"/api/answers/{item['id']}/assign", json={"person_id": a})
        assert r.status_code == 200, r.text
        assert r.json()["person_id"] == a and r.json()["recorded"] in ("taken", "late")
        await wait_for(lambda: targets(cid)[a].acknowledged_at, what="a acknowledged")
        assert targets(cid)[a].ack_channel == "sms"
        assert (await api.post(f"/api/answers/{item['id']}/assign", json={"person_id": a})).status_code == 409
        assert (await api.get("/api/answers/ambiguous")).json() == []
        assert (await api.post("/api/answers/999999/assign", json={"person_id": a})).status_code == 404
        reader = {"Authorization": f"Bearer {secured.tokens['supervisor']}"}
        assert (await api.get("/api/answers/ambiguous", headers=reader)).status_code == 403

    with session_scope(write=False) as s:
        kinds = {e.kind: e for e in s.exec(select(AuditEvent).where(AuditEvent.subject == cid))}
    assert kinds["answer.ambiguous"].payload["candidates"] == sorted([a, b])
    assert kinds["answer.assigned"].actor  # the duty officer who assigned it
    assert kinds["answer.assigned"].payload["person_id"] == a


async def test_a_reply_from_a_shared_number_goes_to_the_one_still_waiting(secured):
    a, b = secured.people["330110002001.resp"], secured.people["330110002002.resp"]
    with session_scope() as s:
        s.get(Person, b).mobile = s.get(Person, a).mobile
    inp = callout_input(towns=["330110002"])
    cid = inp.callout_id
    await start(secured.client, secured.settings.task_queue, inp)
    await wait_for(lambda: all(any(m.provider_id for m in outbox(cid, person_id=p)) for p in (a, b)), what="SMS to both")
    [msg] = [m for m in outbox(cid, person_id=a) if m.channel == "sms"]
    duty = {"Authorization": f"Bearer {secured.tokens['duty_staff']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=secured.app), base_url="http://test",
                                 headers=duty) as api:
        r = await api.post(f"/api/simulator/messages/{msg.id}", json={"outcome": "reply", "body": f"收到{reply_code(cid, a)}"})
        assert r.json()["person_id"] == a
        # a has answered from this phone: a "1" without a code now is b's, the only one still waiting
        r = await api.post(f"/api/simulator/messages/{msg.id}", json={"outcome": "reply", "body": "1"})
        assert r.json()["handled"] == "ack" and r.json()["person_id"] == b, r.text
