"""Issue 19 #5: terminating a response settles what is past in the incident's reporting chain (漏报; the final
report 终报 is still owed), signing off the review settles everything and ends it.

What was never reported is marked 漏报 (omitted), a report made late stays 迟报, a follow-up not yet due is closed
未报(已终止) (lapsed); the chain records `report.settled`, stops its escalations and ends; the review's statistics,
the final report (JSON, HTML, PDF), the incident's read model, the desk's list and the handover note follow.
Also #10: the final report's time limit reads 终报, not 续报N. Time-skipping server, real worker and database."""
from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus

from activities.duty.handover import handover_items
from api.services.incidents import incident_detail, incident_list
from definitions.schema.reporting import Severity
from store import casefile
from store.audit import verify
from store.db import session_scope
from store.replay.reporting import replay_reporting
from store.review import CaseFile, Review, ReviewReport
from tests.factories import response_district
from tests.helpers import replayer
from tests.workflows import activation_helpers as act
from tests.workflows.callout_helpers import wait_for
from tests.workflows.reporting_helpers import deadlines, events, incident, incident_input, start, terminate_incidents
from tests.workflows.reporting_helpers import draft as draft_of
from tests.workflows.test_reporting import approve_and_submit, cadre
from worker import build_worker
from workflows.activation import PlanActivationWorkflow as A
from workflows.activation import TerminateIn
from workflows.reporting import IncidentReportingWorkflow as W
from workflows.reporting import VerbalIn
from workflows.review import PostEventReviewWorkflow as R
from workflows.review import ReviewInput, SignoffIn, SummaryContent, SummaryIn, review_subject, review_workflow_id


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return response_district(s)


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"settle-{uuid.uuid4().hex[:8]}"
    async with build_worker(env.client, task_queue=queue):
        yield queue
        await act.terminate_activations(env.client)
        await terminate_incidents(env.client)
        with session_scope(write=False) as s:
            ids = list(s.exec(select(Review.workflow_id)))
        for wid in ids:
            try:
                await env.client.get_workflow_handle(wid).terminate("test over")
            except Exception:  # noqa: BLE001 - closed already
                pass


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def listed_open(iid: str) -> tuple[list, list]:
    """What the desk (its open incidents, with their next limit) and the handover note list for the incident."""
    desk = [r for r in incident_list(20, "open", None) if r["id"] == iid]
    with session_scope(write=False) as s:
        note = [i for i in handover_items(s, datetime.now(UTC)) if i.ref.startswith(iid)]
    return desk, note


# ------------------------------------------------------------------ the review's sign-off


async def test_signing_off_a_review_marks_the_verbal_report_never_made_omitted_and_ends_the_chain(env, tq, people):
    inp = incident_input(reporting_unit_id="D01")
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await env.sleep(timedelta(minutes=31))  # the verbal report is overdue: the duty chief is called
    await wait_for(lambda: events(iid, "report.verbal.overdue"), what="verbal overdue")
    await wait_for(lambda: events(iid, "report.escalation.sent"), what="overdue call")
    await approve_and_submit(h, people)  # the written report, on time; 续报一 due next
    desk, note = listed_open(iid)
    assert desk and desk[0]["next_due"]["key"] == "verbal" and {i.ref for i in note} >= {iid, f"{iid}/verbal"}

    r = await env.client.start_workflow(R.run, ReviewInput(incident_id=iid, started_by=people["duty_chief"],
                                                           units=["D01"]), id=review_workflow_id(iid), task_queue=tq)
    await r.execute_update(R.opened_view)
    await r.execute_update(R.summary, SummaryIn(**cadre(people), unit_id="D01", summary=SummaryContent(
        what_worked="到场迅速", shortcomings="口头报告遗漏", suggestions="接报即口头报告", author="办公室 王五")))
    await wait_for(lambda: events(review_subject(iid), "review.report.compiled"), what="report compiled")
    for _ in range(400):  # the event is written by the activity; the workflow's state follows its result
        if (await r.query(R.state)).status == "compiled":
            break
        await asyncio.sleep(0.05)
    await r.execute_update(R.signoff, SignoffIn(actor=people["leading_leader"], role="leading_leader",
                                                decision="approve", lessons="接报后先口头报告"))
    result = await r.result()
    assert result.status == "sealed"

    # the chain settled: verbal 漏报, 续报一 (not yet due) 未报(已终止); it has ended
    chain = await h.result()
    assert chain.status == "closed" and chain.settled_by == review_subject(iid)
    states = {d.key: d.settled for d in chain.deadlines}
    assert states == {"verbal": "omitted", "written": None, "followup_1": "lapsed"}
    [settled] = events(iid, "report.settled")
    p = settled.payload
    assert p["by"] == review_subject(iid) and p["omitted"] == ["verbal"] and p["lapsed"] == ["followup_1"]
    assert p["late"] == [] and settled.actor == people["leading_leader"]
    [omitted] = events(iid, "report.verbal.omitted")
    assert omitted.payload["settled_by"] == review_subject(iid) and events(iid, "report.followup.lapsed")
    kinds = [e.kind for e in events(iid)]
    assert kinds.index("report.settled") < kinds.index("incident.closed")
    assert "report.escalation.canceled" in kinds  # the overdue call was stopped
    assert not [e for e in events(iid, "report.escalation.sent") if e.at > settled.at]
    assert incident(iid).status == "closed"
    assert {k: d.settled for k, d in deadlines(iid).items()} == states
    detail = incident_detail(iid)
    assert {d["key"]: d["state"] for d in detail["deadlines"]} == {"verbal": "omitted", "written": "on_time",
                                                                    "followup_1": "lapsed"}
    assert detail["compliance"]["omitted"] == ["verbal"] and detail["compliance"]["lapsed"] == ["followup_1"]
    assert detail["settled"]["by"] == review_subject(iid)  # the page says 已随复盘签发办结, not 已终报
    assert listed_open(iid) == ([], [])  # the desk and the handover note no longer list it

    # the sealed review's final report and its case file say 漏报, never 未到期
    with session_scope(write=False) as s:
        final = s.exec(select(ReviewReport).where(ReviewReport.incident_id == iid, ReviewReport.final)).one()
        stored = s.get(CaseFile, iid)
        assert verify(s, iid).ok and verify(s, review_subject(iid)).ok
    rep = json.loads(final.json_text)["statistics"]["reporting"][0]
    assert {d["key"]: d["state"] for d in rep["deadlines"]} == {"verbal": "omitted", "written": "on_time",
                                                                "followup_1": "lapsed"}
    assert rep["compliance"]["omitted"] == 1 and rep["compliance"]["open"] == 0 and rep["settled_by"] == review_subject(iid)
    text = pdf_text(final.pdf)
    assert "漏报" in text and "未到期" not in text and "未报(已终止)" in text
    assert "漏报" in final.html and "未到期" not in final.html
    check = casefile.verify_bytes(stored.data)
    assert check.ok, check.problems
    replay = replay_reporting(events(iid), events(iid)[-1].at)
    assert {d["key"]: d["state"] for d in replay["time_limits"]} == {"verbal": "omitted", "written": "on_time",
                                                                     "followup_1": "lapsed"}
    assert replay["open_limits"] == [] and replay["status"] == "closed"

    for wf, handle in ((W, h), (R, r)):  # the new path replays
        await replayer(wf).replay_workflow(await handle.fetch_history())


# ------------------------------------------------------------------ the response's termination


async def test_terminating_a_response_settles_its_incident_and_a_late_report_stays_late(env, tq, people):
    inp = incident_input(reporting_unit_id="D01")
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await env.sleep(timedelta(minutes=35))
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))  # 迟报5分钟 (and a little)
    await env.sleep(timedelta(minutes=30))  # the written report is overdue and never made
    await wait_for(lambda: events(iid, "report.written.overdue"), what="written overdue")

    ainp = act.activation_input("work_safety", level=Severity.IV)
    ainp = ainp.model_copy(update={"info": ainp.info.model_copy(update={
        "incident_id": iid, "activation_id": f"{iid}-work_safety"})})
    a = await act.start(env.client, tq, ainp)
    view = await a.execute_update(A.terminate, TerminateIn(actor=people["D01.head"], role="commander",
                                                           reason="现场处置完毕"))
    assert view.status == "terminated"
    # settled before the termination answered: 书面报告 漏报, 口头报告 stays 迟报, and the chain has ended
    [settled] = events(iid, "report.settled")
    assert settled.payload["by"] == act.subject(ainp) and settled.payload["omitted"] == ["written"]
    assert settled.payload["late"] == ["verbal"] and settled.payload["lapsed"] == []
    assert settled.payload["ended"] is True and settled.payload["open"] == []  # nothing left owed: the chain ends
    chain = await h.result()
    assert chain.status == "closed" and chain.settled_by == act.subject(ainp)
    dl = deadlines(iid)
    assert 300 <= dl["verbal"].late_by_s < 330 and dl["verbal"].settled is None and dl["written"].settled == "omitted"
    assert [e.payload["mark"][:2] for e in events(iid, "report.verbal.late")] == ["迟报"]
    assert {d["key"]: d["state"] for d in incident_detail(iid)["deadlines"]} == {"verbal": "late", "written": "omitted"}
    assert listed_open(iid) == ([], [])
    akinds = [e.kind for e in events(act.subject(ainp))]
    assert akinds.index("activation.terminated") < akinds.index("activation.review.started")
    assert settled.at <= next(e.at for e in events(act.subject(ainp), "activation.review.started"))

    # the review the termination started finds the chain settled (its sign-off settles nothing more)
    review = env.client.get_workflow_handle(review_workflow_id(iid))
    await wait_for(lambda: events(review_subject(iid), "review.started"), what="review started")
    assert (await review.describe()).status == WorkflowExecutionStatus.RUNNING

    await replayer(A).replay_workflow(await a.fetch_history())
    await replayer(W).replay_workflow(await h.fetch_history())
    with session_scope(write=False) as s:
        assert verify(s, iid).ok and verify(s, act.subject(ainp)).ok


async def test_after_the_termination_only_the_final_report_is_owed_and_it_closes_the_chain(env, tq, people):
    inp = incident_input(reporting_unit_id="D01")
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    await approve_and_submit(h, people)  # on time: 续报一 is due next
    ainp = act.activation_input("work_safety", level=Severity.IV)
    ainp = ainp.model_copy(update={"info": ainp.info.model_copy(update={
        "incident_id": iid, "activation_id": f"{iid}-work_safety"})})
    a = await act.start(env.client, tq, ainp)
    await a.execute_update(A.terminate, TerminateIn(actor=people["D01.head"], role="commander", reason="现场处置完毕"))
    [settled] = events(iid, "report.settled")
    assert settled.payload["ended"] is False and settled.payload["open"] == ["followup_1"]
    assert settled.payload["omitted"] == settled.payload["lapsed"] == []
    # nothing was past its limit; the limit after the written report is now the final report's, still owed
    view = await h.query(W.state)
    assert view.status == "open" and view.response_ended_by == act.subject(ainp)
    assert [(d.key, d.label, d.settled) for d in view.deadlines][-1] == ("followup_1", "终报", None)
    desk, note = listed_open(iid)
    assert desk[0]["next_due"]["label"] == "终报" and any(i.ref == f"{iid}/followup_1" for i in note)
    from temporalio.client import WorkflowUpdateFailedError
    from workflows.reporting import DraftIn

    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await h.execute_update(W.followup, DraftIn(**cadre(people), draft=draft_of(what="续报")))
    assert "final report 终报" in exc.value.cause.message
    view = await approve_and_submit(h, people, what="处置完毕", update=W.final)
    assert view.status == "closed" and view.settled_by is None
    assert [(d.key, d.label, d.met_by) for d in view.deadlines][-1] == ("followup_1", "终报", "终报")
    await h.result()
    assert listed_open(iid) == ([], [])
    assert {d["key"]: d["state"] for d in incident_detail(iid)["deadlines"]} == {
        "verbal": "on_time", "written": "on_time", "followup_1": "on_time"}
    await replayer(W).replay_workflow(await h.fetch_history())


# ------------------------------------------------------------------ 终报: its own limit (issue 19 #10)


async def test_the_final_reports_limit_reads_as_the_final_report(env, tq, people):
    inp = incident_input(reporting_unit_id="D01")
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    await approve_and_submit(h, people)
    await approve_and_submit(h, people, what="伤者已脱离危险", update=W.followup)
    view = await approve_and_submit(h, people, what="处置完毕", update=W.final)
    assert [(d.key, d.label, d.met_by) for d in view.deadlines][-2:] == [("followup_1", "续报一", "续报一"),
                                                                         ("followup_2", "终报", "终报")]
    await h.result()
    assert deadlines(iid)["followup_2"].label == "终报"
    assert [d["label"] for d in incident_detail(iid)["deadlines"]] == ["口头报告", "书面报告", "续报一", "终报"]
    replay = replay_reporting(events(iid), events(iid)[-1].at)
    assert [d["label"] for d in replay["time_limits"]] == ["口头报告", "书面报告", "续报一", "终报"]
    from store.review.reporting_stats import reporting_stats

    rows = reporting_stats(iid, events(iid))["deadlines"]
    assert {d["key"]: (d["label"], d["met_by"]) for d in rows}["followup_2"] == ("终报", "终报")
    await replayer(W).replay_workflow(await h.fetch_history())
