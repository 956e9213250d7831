"""Every answer counts, through the API (issue 15, finding 1; issue 16, finding 4).

An answer to a message whose workflow has ended is recorded late and the route says so (never
`"workflows": 0` as a success, never a "done" page unrecorded): call-outs, the reporting chain,
and the activation, review and duty-day procedures (their sends written by the same flush they
use, for workflows that are no longer there). A reply from a number two persons share is held for
the duty office, which assigns it. Time-skipping test server, the real API and activities."""
from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from activities.escalation import Batch, send_and_record
from sqlmodel import func, select

from api.console.pages import library
from api.services import board as board_svc
from store.audit import verify
from store.callouts import CalloutTarget
from store.db import session_scope
from store.directory import Person
from tests.helpers import console_page
from tests.workflows import reporting_helpers as rep
from tests.workflows.callout_helpers import callout_input, duty_api, events, idle, outbox, start, wait_for
from worker import build_worker
from workflows.escalation import Send
from workflows.reporting import IncidentReportingWorkflow, VerbalIn




@pytest.fixture
async def api(env, db_url, monkeypatch):
    async with duty_api(env, monkeypatch, "late", missing_deputy=("330110001.deputy",)) as client, \
            build_worker(env.client, task_queue=client.tq):
        yield client
        await rep.terminate_incidents(env.client)  # (the call-outs: duty_api)


def sent(subject: str, person_id: str, channel: str = "sms"):
    return [m for m in outbox(subject, person_id=person_id) if m.provider_id and m.channel == channel]


async def test_callout_answers_after_the_end_through_the_api(env, api):
    people = api.people
    inp = callout_input()
    handle = await start(env.client, api.tq, inp)
    await handle.result()  # nobody answered: the call-out ended
    head, resp = people["D01.head"], people["330110001001.resp"]
    board_cursor = newest_change(inp.callout_id)  # where a live board's poll stands once the call-out has ended

    # an SMS reply (simulator): recorded late, and the answer says so
    r = await api.post(f"/api/simulator/messages/{sent(inp.callout_id, head)[0].id}", json={"outcome": "reply"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["handled"] == "ack" and body["recorded"] == "late" and body["late"] == 1 and body["workflows"] == 0
    assert "逾时" in body["message"] and body["late_by_s"] >= 0

    # the signed link: the page says "recorded late", not "done"
    link = httpx.URL(sent(inp.callout_id, resp)[0].ack_url).path
    page = await api.post(link)
    assert page.status_code == 200 and 'data-recorded="late"' in page.text and "已确认,谢谢" not in page.text

    # GET /api/callouts/{id}: acknowledged_at with the late mark
    c = (await api.get(f"/api/callouts/{inp.callout_id}")).json()
    by = {t["person_id"]: t for t in c["targets"]}
    for pid, channel in ((head, "sms"), (resp, "link")):
        assert by[pid]["late"] is True and by[pid]["acknowledged_at"] and by[pid]["ack_channel"] == channel
    assert not any(t["late"] for p, t in by.items() if p not in (head, resp))
    assert {e.payload["person_id"] for e in events(inp.callout_id, "callout.ack.late")} == {head, resp}

    # the board shows the late mark
    board = await console_page(api.app, api.token, f"/console/callouts/{inp.callout_id}")
    assert board.status_code == 200 and board.text.count('data-late="1"') == 2
    # and a board already open gets them at its next poll (the rows changed since its cursor; they were not)
    with session_scope(write=False) as s:
        rows, _ = board_svc.changed_rows(s, library(), inp.callout_id, board_cursor + timedelta(microseconds=1))
    assert {r["person_id"] for r in rows if r["ack_at"]} == {head, resp}
    with session_scope(write=False) as s:
        assert verify(s).ok


def newest_change(callout_id: str):
    with session_scope(write=False) as s:
        return s.exec(select(func.max(CalloutTarget.updated_at)).where(CalloutTarget.callout_id == callout_id)).one()


async def test_reporting_answer_after_the_chain_ended_is_recorded_late(env, api):
    people = api.people
    inp = rep.incident_input()
    iid = inp.incident.incident_id
    h = await rep.start(env.client, api.tq, inp)
    await env.sleep(timedelta(minutes=31))  # the verbal report is overdue: the duty chief is called
    chief = people["duty_chief"]
    await wait_for(lambda: sent(iid, chief), what="duty chief called")
    await h.terminate("ended")  # the chain is over before the chief answers

    r = await api.post(f"/api/simulator/messages/{sent(iid, chief)[0].id}", json={"outcome": "reply"})
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == "late" and r.json()["late"] == 1
    [ev] = events(iid, "report.escalation.ack.late")
    assert ev.actor == chief and ev.channel == "sms" and ev.payload["state_at_answer"] == "ended"
    assert ev.payload["late_by_s"] >= 0


async def test_reporting_answer_after_its_call_ended_while_the_chain_runs(env, api):
    """The chain still runs, the call that asked has ended (the verbal report stopped it): the route says late,
    and the running workflow recorded it (issue 15 #1: before, the signal was "taken" and nothing recorded)."""
    people = api.people
    inp = rep.incident_input()
    iid = inp.incident.incident_id
    h = await rep.start(env.client, api.tq, inp)
    await env.sleep(timedelta(minutes=31))  # the verbal report is overdue: the duty chief is called
    chief = people["duty_chief"]
    await wait_for(lambda: sent(iid, chief), what="duty chief called")
    await h.execute_update(IncidentReportingWorkflow.verbal, VerbalIn(actor=people["duty_cadre"], role="duty_cadre",
                                                                     to_whom="区政府总值班室", by_whom="值班干部戊"))
    await wait_for(lambda: events(iid, "report.escalation.canceled"), what="the call stopped")
    await idle(h)  # a barrier: the call has ended, the chain waits for the written report

    r = await api.post(f"/api/simulator/messages/{sent(iid, chief)[0].id}", json={"outcome": "reply"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["recorded"] == "late" and body["late"] == 1 and body["workflows"] == 0 and "逾时" in body["message"]
    [ev] = await wait_for(lambda: events(iid, "report.escalation.ack.late"), what="late answer recorded")
    assert ev.actor == chief and ev.payload["recorded_by"] == "workflow" and ev.payload["state_at_answer"] == "canceled"


# The procedures that ask for answers through the shared flush: (subject, audit kind, outbox meta).
FAMILIES = [
    ("activation/INC-9-flood_control", "activation.notice", {}),
    ("review/INC-9", "review.escalation", {}),
    ("handover-2026-12-03", "handover", {"procedure": "handover"}),
    ("spotcheck-callout-x", "spotcheck.followup", {"procedure": "followup"}),
    ("freshness-2026", "freshness", {"procedure": "freshness"}),
]


@pytest.mark.parametrize(("subject", "kind", "meta"), FAMILIES, ids=[f[1] for f in FAMILIES])
async def test_answers_to_ended_procedures_are_recorded_late(env, api, subject, kind, meta):
    person = api.people["330110002.head"]
    with session_scope(write=False) as s:
        mobile = s.get(Person, person).mobile
    wid = f"{subject}-wf-{uuid.uuid4().hex[:6]}"  # a workflow that has ended (and is gone)
    await send_and_record(Batch(subject=subject, workflow_id=wid, run_id=None, episode="ep", kind=kind, meta=meta,
                                sends=[Send(key=f"{wid}/t/0.0/{person}/sms", target_key="t", person_id=person,
                                            to=mobile, channel="sms")], records=[]),
                          lambda send, code, link: (f"请回复1确认(确认码{code})", None))
    [msg] = sent(subject, person)
    r = await api.post(f"/api/simulator/messages/{msg.id}", json={"outcome": "reply"})
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == "late" and r.json()["workflows"] == 0
    [ev] = events(subject, f"{kind}.ack.late")
    assert ev.actor == person and ev.workflow_id == wid and ev.payload["state_at_answer"] == "ended"

