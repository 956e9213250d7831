"""The incident reporting chain 信息报送 on the time-skipping test server, with the real activities and database."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.worker import Worker

from api.services import answers
from definitions.schema.reporting import Severity
from store.answers import LateAnswer, record_late
from store.audit import verify
from store.db import session_scope
from store.directory import OrgUnit
from tests.factories import small_district
from tests.helpers import replayer
from tests.workflows.callout_helpers import idle, wait_for
from tests.workflows.reporting_helpers import (
    deadlines,
    draft,
    events,
    incident_input,
    outbox,
    receipts,
    start,
    terminate_incidents,
)
from worker import build_worker
from workflows.escalation import late_step
from workflows.reporting import DraftIn, IncidentReportingWorkflow as W, ReviewIn, SubmitIn, VerbalIn


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"rep-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    async with w:
        yield queue
        await terminate_incidents(env.client)


def cadre(people) -> dict:
    return {"actor": people["duty_cadre"], "role": "duty_cadre"}


def leader(people) -> dict:
    return {"actor": people["leading_leader"], "role": "leading_leader"}


async def approve_and_submit(h, people, what: str = "脚手架坍塌,2人受伤送医", update=W.draft, **kw):
    await h.execute_update(update, DraftIn(**cadre(people), draft=draft(what=what, **kw)))
    await h.execute_update(W.review, ReviewIn(**leader(people), decision="approve"))
    return await h.execute_update(W.submit, SubmitIn(**cadre(people)))


async def refused(call, kind: str, words: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await call
    assert exc.value.cause.type == kind, exc.value.cause
    assert words in exc.value.cause.message, exc.value.cause.message


# ------------------------------------------------------------------ on time, end to end


async def test_on_time_chain_with_a_returned_draft_receipts_followup_and_final(env, tq, people):
    inp = incident_input()
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)

    await env.sleep(timedelta(minutes=20))
    view = await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室 李值班", by_whom="值班干部戊"))
    verbal = next(d for d in view.deadlines if d.key == "verbal")
    assert verbal.late_by_s == 0 and verbal.met_at is not None

    # draft -> returned with comments -> redraft -> approved -> submitted
    await h.execute_update(W.draft, DraftIn(**cadre(people), draft=draft(cause="初步判断为违规搭设")))
    view = await h.execute_update(W.review, ReviewIn(**leader(people), decision="return",
                                                     comments="原因尚未查实,删去;补充现场封控范围"))
    assert view.reports[0].state == "returned"
    await h.execute_update(W.draft, DraftIn(**cadre(people), draft=draft(what="脚手架坍塌,2人受伤送医,现场已封控50米")))
    view = await h.execute_update(W.review, ReviewIn(**leader(people), decision="approve", version=2))
    assert view.reports[0].state == "approved" and view.reports[0].versions[0].decision == "return"
    view = await h.execute_update(W.submit, SubmitIn(**cadre(people)))
    written = next(d for d in view.deadlines if d.key == "written")
    assert written.late_by_s == 0
    assert [d.key for d in view.deadlines] == ["verbal", "written", "followup_1"]
    assert next(d for d in view.deadlines if d.key == "followup_1").due_at - written.met_at == timedelta(hours=24)

    # every recipient gets it through the gateway; each receipt is recorded
    for rid in ("committee_office", "government_office"):
        msgs = await wait_for(lambda: outbox(iid, f"rcpt:{rid}"), what=f"report to {rid}")
        assert "【书面报告】" in msgs[0].body and "现场已封控50米" in msgs[0].body and "违规搭设" not in msgs[0].body
    await answers.acknowledge(env.client, iid, "rcpt:committee_office", "sms", ref="t:co")
    sms = outbox(iid, "rcpt:government_office")[0]
    await answers.sms_reply(env.client, "simulator", sms.to, f"收到 {sms.reply_code}", provider_id="t-reply-1")
    await wait_for(lambda: all(r.status == "confirmed" for r in receipts(iid, 0).values())
                   and len(receipts(iid, 0)) == 2, what="both receipts confirmed")
    assert {r.confirmed_via for r in receipts(iid, 0).values()} == {"sms"}

    # 续报一, then the final report 终报 closes the chain
    await env.sleep(timedelta(hours=2))
    view = await approve_and_submit(h, people, what="伤者已脱离危险", update=W.followup)
    assert view.reports[1].label == "续报一" and view.reports[1].state == "submitted"
    await wait_for(lambda: any("【续报一】" in m.body for m in outbox(iid, "rcpt:committee_office")), what="续报一 sent")
    view = await approve_and_submit(h, people, what="现场处置完毕,周边排查无隐患", update=W.final)
    assert view.status == "closed" and view.reports[2].label == "终报"
    result = await h.result()  # receipts of the final run their course
    assert result.status == "closed"
    # the saved history replays: the workflow code is deterministic
    await replayer(W).replay_workflow(await h.fetch_history())

    assert not events(iid, "report.") or not [e for e in events(iid) if e.kind.endswith(".late")]
    kinds = [e.kind for e in events(iid)]
    for k in ("incident.received", "report.verbal.made", "report.written.drafted", "report.written.returned",
              "report.written.approved", "report.written.submitted", "report.receipt.sent", "report.receipt.ack",
              "report.followup.submitted", "report.final.submitted", "incident.closed"):
        assert k in kinds, k
    assert "report.escalation.sent" not in kinds  # nothing was overdue
    assert not [e for e in events(iid) if e.kind == "incident.trigger"]
    dl = deadlines(iid)
    assert all(d.late_by_s == 0 for d in dl.values()) and dl["followup_2"].met_by == "终报"
    with session_scope(write=False) as s:
        assert verify(s, iid).ok


# ------------------------------------------------------------------ late


async def test_late_verbal_report_escalates_and_is_marked(env, tq, people):
    inp = incident_input()
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)

    await env.sleep(timedelta(minutes=21))
    reminders = await wait_for(lambda: events(iid, "report.verbal.reminder"), what="reminder 10 min before")
    assert reminders[0].payload["minutes_left"] == 10
    assert any("报送提醒" in m.body for m in outbox(iid, people["duty_cadre"]))

    await env.sleep(timedelta(minutes=10))  # 31 min: overdue -> the duty chief
    await wait_for(lambda: outbox(iid, people["duty_chief"]), what="duty chief called")
    chief = outbox(iid, people["duty_chief"])
    assert {m.channel for m in chief} == {"sms", "voice"} and "迟报督促" in chief[0].body
    await wait_for(lambda: events(iid, "report.verbal.overdue"), what="overdue in the trail (after the sends)")
    assert not outbox(iid, people["leading_leader"])

    await env.sleep(timedelta(minutes=10))  # the chief does not answer: the leading leader
    await wait_for(lambda: outbox(iid, people["leading_leader"]), what="leading leader called")
    await wait_for(lambda: events(iid, "report.escalation.escalated"), what="the escalation in the trail")

    view = await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    d = next(d for d in view.deadlines if d.key == "verbal")
    assert 11 * 60 <= d.late_by_s <= 13 * 60
    [late] = events(iid, "report.verbal.late")
    assert late.payload["late_by_s"] == d.late_by_s and late.payload["late_by_min"] == -(-d.late_by_s // 60)
    assert late.payload["mark"] == f"迟报{late.payload['late_by_min']}分钟"
    # the escalation stops, and those woken are told the report is made
    await wait_for(lambda: events(iid, "report.escalation.canceled"), what="escalation stopped")
    await wait_for(lambda: any("已报出" in m.body for m in outbox(iid, people["leading_leader"])), what="told")
    assert deadlines(iid)["verbal"].late_by_s == d.late_by_s  # the read model agrees with the audit trail


async def test_an_answer_after_the_escalation_ended_is_recorded_late_while_the_chain_runs(env, tq, people):
    """Issue 15 #1: the chief answers the overdue call after the verbal report stopped it; the chain still runs
    (the written report is due). Before: the signal was taken, the ended episode skipped it, nothing recorded."""
    inp = incident_input()
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    chief = people["duty_chief"]
    await env.sleep(timedelta(minutes=31))  # overdue: the duty chief is called
    await wait_for(lambda: outbox(iid, chief), what="duty chief called")
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    await wait_for(lambda: events(iid, "report.escalation.canceled"), what="escalation stopped")
    await idle(h)  # the episode has ended (a barrier, not a sleep); the chain waits for the written report

    answered = await answers.acknowledge(env.client, iid, chief, "sms", ref="t:chief-late")
    assert answered.recorded == "late" and answered.told == 0 and len(answered.late) == 1
    [ev] = await wait_for(lambda: events(iid, "report.escalation.ack.late"), what="late answer recorded")
    assert ev.actor == chief and ev.channel == "sms" and ev.workflow_id == h.id
    assert ev.step_id == late_step("-", chief, "t:chief-late")  # the store's id: one event whichever path records it
    p = ev.payload
    assert p["late"] is True and p["state_at_answer"] == "canceled" and p["recorded_by"] == "workflow"
    assert p["late_by_s"] >= 0 and p["ref"] == "t:chief-late" and p["episode"] == "overdue/verbal"
    assert (await h.describe()).status == WorkflowExecutionStatus.RUNNING

    again = await answers.acknowledge(env.client, iid, chief, "sms", ref="t:chief-late")  # the same answer again
    assert again.recorded == "repeat" and not again.late
    with session_scope() as s:  # the store path (the workflow gone) makes the same event: nothing new
        record_late(s, LateAnswer(subject=iid, person_id=chief, channel="sms", at=ev.at, actor=chief,
                                  ref="t:chief-late"), {h.id})
    await idle(h)
    assert len(events(iid, "report.escalation.ack.late")) == 1
    with session_scope(write=False) as s:
        assert verify(s, iid).ok


async def test_late_written_report(env, tq, people):
    inp = incident_input()
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    await env.sleep(timedelta(minutes=75))
    await wait_for(lambda: events(iid, "report.written.overdue") and outbox(iid, people["duty_chief"]),
                   what="written overdue")
    view = await approve_and_submit(h, people)
    d = next(d for d in view.deadlines if d.key == "written")
    assert 15 * 60 <= d.late_by_s <= 17 * 60
    [late] = events(iid, "report.written.late")
    assert late.payload["late_by_s"] == d.late_by_s and late.payload["label"] == "书面报告"
    assert not events(iid, "report.verbal.late")


# ------------------------------------------------------------------ the procedure's order and roles


async def test_roles_and_order_are_enforced_by_validators(env, tq, people):
    inp = incident_input()
    h = await start(env.client, tq, inp)
    c, l = cadre(people), leader(people)

    await refused(h.execute_update(W.submit, SubmitIn(**c)), "conflict", "nothing to submit")
    await refused(h.execute_update(W.draft, DraftIn(**l, draft=draft())), "forbidden", "'leading_leader' may not draft")
    await refused(h.execute_update(W.followup, DraftIn(**c, draft=draft())), "conflict", "must be submitted before")
    await h.execute_update(W.draft, DraftIn(**c, draft=draft()))
    await refused(h.execute_update(W.review, ReviewIn(**c, decision="approve")), "forbidden",
                  "'duty_cadre' may not review")
    await refused(h.execute_update(W.review, ReviewIn(actor=people["duty_cadre"], role="leading_leader",
                                                      decision="approve")), "forbidden", "own draft")
    await refused(h.execute_update(W.review, ReviewIn(**l, decision="return")), "invalid", "comments")
    await refused(h.execute_update(W.submit, SubmitIn(**c)), "conflict", "not been approved")
    await refused(h.execute_update(W.draft, DraftIn(**c, draft=draft())), "conflict", "with the reviewer")
    await h.execute_update(W.review, ReviewIn(**l, decision="return", comments="补充伤者去向"))
    await refused(h.execute_update(W.submit, SubmitIn(**c)), "conflict", "returned with comments")
    await h.execute_update(W.draft, DraftIn(**c, draft=draft()))
    await refused(h.execute_update(W.review, ReviewIn(**l, decision="approve", version=1)), "conflict", "not the latest")
    await h.execute_update(W.review, ReviewIn(**l, decision="approve"))
    await refused(h.execute_update(W.draft, DraftIn(**c, draft=draft())), "conflict", "approved and cannot be edited")
    await refused(h.execute_update(W.submit, SubmitIn(actor="x", role="duty_staff")), "forbidden", "may not submit")
    await h.execute_update(W.submit, SubmitIn(**c))
    await refused(h.execute_update(W.draft, DraftIn(**c, draft=draft())), "conflict", "follow-up")
    await refused(h.execute_update(W.submit, SubmitIn(**c)), "conflict", "submitted already")
    await h.execute_update(W.verbal, VerbalIn(**c, to_whom="总值班室", by_whom="戊"))
    await refused(h.execute_update(W.verbal, VerbalIn(**c, to_whom="总值班室", by_whom="戊")), "conflict", "recorded already")
    view = await h.query(W.state)
    assert [len(r.versions) for r in view.reports] == [2] and view.reports[0].state == "submitted"
    # refused updates leave no trace: the audit trail holds only what was done
    kinds = [e.kind for e in events(inp.incident.incident_id, "report.written")]
    assert kinds == ["report.written.drafted", "report.written.returned", "report.written.drafted",
                     "report.written.approved", "report.written.submitted"]


# ------------------------------------------------------------------ triggers


async def test_a_death_calls_the_sector_leader_to_the_scene(env, tq, people):
    inp = incident_input(deaths=1, injured=2)
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    leader_id = people["deputy_head"]  # 副区长: deputy_district_head, in charge of accidents in the rules
    msgs = await wait_for(lambda: outbox(iid, leader_id), what="sector leader called")
    assert {m.channel for m in msgs} == {"voice", "sms"} and "到现场指挥" in msgs[0].body and "1人死亡" in msgs[0].body
    [fired] = await wait_for(lambda: events(iid, "incident.trigger"), what="the trigger in the trail")
    assert fired.payload["trigger"] == "deaths_leader_to_scene"
    await answers.acknowledge(env.client, iid, leader_id, "voice", ref="t:leader")
    await wait_for(lambda: events(iid, "incident.call.ack"), what="leader acknowledged")
    view = await h.query(W.state)
    assert view.triggers[0].state == "acknowledged" and view.triggers[0].acknowledged_by == leader_id

    # approved facts that reach 较大 (3 deaths) propose plan activation to the leading leader
    await approve_and_submit(h, people, what="又发现2名遇难者", deaths=3)
    await wait_for(lambda: [e for e in events(iid, "incident.trigger") if e.payload["trigger"] == "major_propose_activation"],
                   what="activation proposed")
    view = await h.query(W.state)
    assert view.severity == Severity.III and {t.id for t in view.triggers} == {"deaths_leader_to_scene",
                                                                               "major_propose_activation"}


async def test_no_trigger_without_deaths(env, tq, people):
    inp = incident_input(injured=3)
    h = await start(env.client, tq, inp)
    view = await h.query(W.state)
    assert view.triggers == [] and not events(inp.incident.incident_id, "incident.trigger")


# ------------------------------------------------------------------ rules as data


async def test_stricter_jurisdiction_deadlines(env, tq, people):
    strict = incident_input(rules="major_strict", trapped=2)
    view = await (await start(env.client, tq, strict)).query(W.state)
    due = {d.key: d.due_at - view.received_at for d in view.deadlines}
    assert due == {"verbal": timedelta(minutes=15), "written": timedelta(minutes=30)}

    major = incident_input(rules="major_strict", severity=Severity.II)
    view = await (await start(env.client, tq, major)).query(W.state)
    assert {d.key: d.due_at - view.received_at for d in view.deadlines}["verbal"] == timedelta(minutes=15)

    minor = incident_input(rules="major_strict", injured=1)
    view = await (await start(env.client, tq, minor)).query(W.state)
    assert {d.key: d.due_at - view.received_at for d in view.deadlines} == {
        "verbal": timedelta(minutes=30), "written": timedelta(hours=1)}

    district = incident_input(deaths=1)
    view = await (await start(env.client, tq, district)).query(W.state)
    assert {d.key: d.due_at - view.received_at for d in view.deadlines} == {
        "verbal": timedelta(minutes=30), "written": timedelta(hours=1)}


async def test_a_department_with_a_vertical_line_also_reports_to_the_city(env, tq, people):
    with session_scope() as s:
        s.get(OrgUnit, "D04").vertical_line = True  # 区气象局: a city-level line
    inp = incident_input(category="natural_disaster", subtype="雷击", reporting_unit_id="D04")
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await approve_and_submit(h, people)
    await wait_for(lambda: len(receipts(iid, 0)) == 3, what="three recipients")
    assert set(receipts(iid, 0)) == {"committee_office", "government_office", "city_meteo"}


async def test_the_chain_survives_continue_as_new(env, tq, people):
    inp = incident_input(deaths=1, max_history=40)
    iid = inp.incident.incident_id
    h = await start(env.client, tq, inp)
    await h.execute_update(W.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    await approve_and_submit(h, people)
    await env.sleep(timedelta(minutes=2))
    await approve_and_submit(h, people, what="续报内容", update=W.followup)
    await wait_for(lambda: events(iid, "incident.continued"), what="continued as new")
    await answers.acknowledge(env.client, iid, people["deputy_head"], "sms", ref="t:after-can")
    await wait_for(lambda: events(iid, "incident.call.ack"), what="ack reaches the continued run")
    view = await approve_and_submit(h, people, what="终报内容", update=W.final)
    assert view.status == "closed" and view.runs >= 2
    assert [r.label for r in view.reports] == ["书面报告", "续报一", "终报"]
    result = await h.result()
    assert result.status == "closed"
    history_replayer = replayer(W)
    run_id: str | None = h.result_run_id
    replayed = 0
    while run_id:  # every run of the chain replays, the continued ones included
        history = await env.client.get_workflow_handle(h.id, run_id=run_id).fetch_history()
        await history_replayer.replay_workflow(history)
        replayed += 1
        last = history.events[-1]
        run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                  if last.HasField("workflow_execution_continued_as_new_event_attributes") else None)
    assert replayed == view.runs >= 2
    with session_scope(write=False) as s:
        assert verify(s, iid).ok
