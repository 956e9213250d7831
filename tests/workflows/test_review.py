"""PostEventReviewWorkflow on the time-skipping test server, with the real activities and database:
started by an activation as a child by name, summaries with reminders and escalation, the report compiled
from the audit trail, returned and signed off by the leading leader, the case file sealed and verified."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio import workflow
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Worker
from temporalio.workflow import ParentClosePolicy

from activities import all_activities
from api.services import answers
from store import casefile
from store.audit import NewEvent, append, verify
from store.db import session_scope
from store.review import CaseFile, Review, ReviewReport, ReviewUnit
from tests.factories import small_district
from tests.helpers import poll, replayer
from tests.workflows.callout_helpers import idle, wait_for
from tests.workflows.reporting_helpers import events, incident_input, outbox, start, terminate_incidents
from tests.workflows.test_reporting import approve_and_submit, cadre
from workflows import all_workflows
from workflows.escalation import late_step
from workflows.reporting import IncidentReportingWorkflow as IRW
from workflows.reporting import VerbalIn
from workflows.review import (
    CompileIn,
    PostEventReviewWorkflow as R,
    ReviewInput,
    SignoffIn,
    SummaryContent,
    SummaryIn,
    review_subject,
    review_workflow_id,
)


@workflow.defn(sandboxed=False)  # defined in a test module whose imports the sandbox would refuse
class FakeActivation:
    """What plan activation does on termination: start the review as a child, by name, with a plain dict."""

    @workflow.run
    async def run(self, args: dict) -> str:
        handle = await workflow.start_child_workflow(
            "PostEventReviewWorkflow",
            {"incident_id": args["incident_id"], "activation_id": f"activation-{args['activation_id']}",  # its workflow id
             "started_by": "p-commander",
             "units": args["units"]},
            id=f"review-{args['incident_id']}", parent_close_policy=ParentClosePolicy.ABANDON)
        return handle.id


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return small_district(s)


@pytest.fixture
async def tq(env, db_url, people):
    import concurrent.futures

    queue = f"rev-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[*all_workflows(), FakeActivation],
                      activities=all_activities(),
                      activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16)):
        yield queue
        await terminate_incidents(env.client)
        with session_scope(write=False) as s:
            ids = list(s.exec(select(Review.workflow_id)))
        for wid in ids:
            try:
                await env.client.get_workflow_handle(wid).terminate("test over")
            except Exception:  # noqa: BLE001 - closed already
                pass


def leader(people, **kw) -> dict:
    return {"actor": people["leading_leader"], "role": "leading_leader", **kw}


def summary(what: str = "先期处置迅速,20分钟内封控现场") -> SummaryContent:
    return SummaryContent(what_worked=what, shortcomings="村级回执偏慢,夜间语音叫应未全覆盖",
                          suggestions="夜间首轮改为语音;回执超时自动升级", author="办公室 王五")


async def closed_incident(env, tq, people) -> str:
    """A reporting chain run to its final report 终报 (verbal on time, written, final)."""
    inp = incident_input(reporting_unit_id="D01")
    h = await start(env.client, tq, inp)
    await h.execute_update(IRW.verbal, VerbalIn(**cadre(people), to_whom="区政府总值班室", by_whom="值班干部戊"))
    await approve_and_submit(h, people)
    await approve_and_submit(h, people, what="处置完毕", update=IRW.final)
    await h.result()
    return inp.incident.incident_id


def seed_activation(activation_id: str, at: datetime) -> None:
    """An activation's audit trail as PlanActivationWorkflow writes it (tests/activation_trail.py), moved to `at`,
    with the version of the shipped flood control plan."""
    from tests import activation_trail

    version = casefile.sha256((Path(__file__).resolve().parents[2] / "definitions/plans/flood_control.yaml")
                              .read_bytes())[:16]
    with session_scope() as s:
        append(s, [NewEvent(subject=f"activation/{activation_id}", kind=r.kind, step_id=r.step_id,
                            workflow_id=f"activation-{activation_id}", actor=r.actor, channel=r.channel,
                            at=r.at,
                            payload={**r.payload, "plan_version": version} if r.kind == "activation.started" else r.payload)
                   for r in activation_trail.trail(at)])


def unit_rows(iid: str) -> dict[str, ReviewUnit]:
    with session_scope(write=False) as s:
        return {u.unit_id: u for u in s.exec(select(ReviewUnit).where(ReviewUnit.incident_id == iid))}


async def refused(call, kind: str, words: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await call
    assert exc.value.cause.type == kind, exc.value.cause
    assert words in exc.value.cause.message, exc.value.cause.message


# ------------------------------------------------------------------ the whole review


async def test_review_started_by_an_activation_reminds_escalates_compiles_signs_and_seals(env, tq, people):
    iid = await closed_incident(env, tq, people)
    seed_activation("A1", datetime.now(UTC))
    parent = await env.client.execute_workflow(FakeActivation.run, {"incident_id": iid, "activation_id": "A1",
                                                                     "units": ["D01", "330110001"]},
                                               id=f"act-{iid}", task_queue=tq)
    assert parent == review_workflow_id(iid)
    h = env.client.get_workflow_handle_for(R.run, parent)
    view = await h.execute_update(R.opened_view)
    subject = review_subject(iid)
    assert view.subjects == [iid, "activation/A1", subject] and view.status == "collecting"
    assert view.activation_id == "A1"  # given as the activation's workflow id, as PlanActivationWorkflow passes it
    assert [u.unit_id for u in view.units] == ["D01", "330110001"]
    assert view.units[0].due_at - view.started_at == timedelta(days=7)

    # every unit's head is asked, by SMS and IM
    d01, town = people["D01.head"], people["330110001.head"]
    for pid in (d01, town):
        msgs = await wait_for(lambda: outbox(subject, pid), what="summary requested")
        assert {m.channel for m in msgs} == {"sms", "im"} and "书面总结" in msgs[0].body
    # the outbox row is claimed before the send, the audit event written after it: wait for both
    await wait_for(lambda: len(events(subject, "review.summary.requested")) == 2, what="requests recorded")

    await env.sleep(timedelta(days=5, minutes=1))  # 2 days before the deadline: a reminder
    await wait_for(lambda: len(events(subject, "review.summary.reminder")) == 2, what="first reminders")
    assert any("复盘提醒" in m.body for m in outbox(subject, town))
    view = await h.execute_update(R.summary, SummaryIn(actor=people["duty_cadre"], role="duty_cadre", unit_id="D01",
                                                       summary=summary()))
    assert view.units[0].state == "submitted" and view.units[0].late_by_s == 0
    await refused(h.execute_update(R.summary, SummaryIn(actor="x", role="duty_cadre", unit_id="D99", summary=summary())),
                  "invalid", "not a participating unit")
    await refused(h.execute_update(R.compile, CompileIn(actor=people["duty_cadre"], role="duty_cadre")),
                  "conflict", "has not passed")

    await env.sleep(timedelta(days=1, hours=12))  # 12 h before: a second reminder, only to the town
    await wait_for(lambda: len(events(subject, "review.summary.reminder")) == 3, what="second reminder")
    assert [e.payload["unit_id"] for e in events(subject, "review.summary.reminder")][-1] == "330110001"

    await env.sleep(timedelta(hours=13))  # overdue: the town head is called (text and voice)
    await wait_for(lambda: any(m.channel == "voice" for m in outbox(subject, town)), what="overdue call")
    overdue = await wait_for(lambda: events(subject, "review.summary.overdue"), what="overdue in the trail (after the sends)")
    assert overdue[0].payload["unit_id"] == "330110001"
    assert unit_rows(iid)["330110001"].state == "overdue"
    await env.sleep(timedelta(days=1, minutes=1))  # nobody answers: the deputy
    deputy = people["330110001.deputy"]
    await wait_for(lambda: outbox(subject, deputy), what="escalated to the deputy")
    await wait_for(lambda: events(subject, "review.escalation.escalated"), what="the escalation in the trail")
    await answers.acknowledge(env.client, subject, deputy, "sms", ref="t:dep")
    await wait_for(lambda: events(subject, "review.escalation.ack"), what="deputy acknowledges")

    await env.sleep(timedelta(hours=3))
    view = await h.execute_update(R.summary, SummaryIn(actor=people["duty_chief"], role="duty_chief",
                                                       unit_id="330110001", summary=summary("群众转移有序")))
    town_view = view.units[1]
    assert town_view.state == "late" and 28 * 3600 < town_view.late_by_s < 28 * 3600 + 600  # 7d+1h+1d+3h after
    [late] = events(subject, "review.summary.late")
    assert late.payload["mark"] == "迟交1天4小时"

    # every summary is in: the report is compiled at once (v1), statistics from the audit trail
    # the activity writes the event before the workflow takes its result: wait for the workflow's own state
    await wait_for(lambda: events(subject, "review.report.compiled"), what="report compiled")
    view = await poll(lambda: h.query(R.state), lambda v: v.status == "compiled", what="workflow sees the report")
    assert view.status == "compiled" and view.reports[0].version == 1 and view.reports[0].sha256_pdf

    await refused(h.execute_update(R.signoff, SignoffIn(actor=people["duty_chief"], role="duty_chief",
                                                        decision="approve", lessons="x")), "forbidden", "may not signoff")
    await refused(h.execute_update(R.signoff, SignoffIn(**leader(people, decision="return"))), "invalid", "comments")
    await refused(h.execute_update(R.signoff, SignoffIn(**leader(people, decision="approve"))), "invalid", "lessons")
    view = await h.execute_update(R.signoff, SignoffIn(**leader(people, decision="return",
                                                               comments="补充乡镇夜间值守情况")))
    assert view.status == "returned"
    await refused(h.execute_update(R.signoff, SignoffIn(**leader(people, decision="approve", lessons="x"))),
                  "conflict", "compile it again")
    view = await h.execute_update(R.compile, CompileIn(actor=people["duty_cadre"], role="duty_cadre"))
    assert view.status == "compiled" and view.reports[-1].version == 2
    await refused(h.execute_update(R.signoff, SignoffIn(**leader(people, decision="approve", lessons="x", version=1))),
                  "conflict", "not the latest")
    view = await h.execute_update(R.signoff, SignoffIn(**leader(people, decision="approve", version=2,
                                                               lessons="夜间叫应首轮用语音;村级回执纳入考核")))
    assert view.status in ("signed", "sealed") and view.reports[-1].final and view.reports[-1].version == 3
    await refused(h.execute_update(R.summary, SummaryIn(actor="x", role="duty_cadre", unit_id="D01",
                                                        summary=summary())), "conflict", "signed off")

    result = await h.result()
    assert result.status == "sealed" and result.archive is not None
    await replayer(R).replay_workflow(await h.fetch_history())

    # the final report: signed by the leading leader, with the lessons, the summaries and the activation
    with session_scope(write=False) as s:
        final = s.exec(select(ReviewReport).where(ReviewReport.incident_id == iid, ReviewReport.version == 3)).one()
        stored = s.get(CaseFile, iid)
        assert verify(s, subject).ok and verify(s, iid).ok
    data = json.loads(final.json_text)
    assert data["final"] and data["signoff"]["by"] == people["leading_leader"] and data["signoff"]["by_name"] == "副区长丙"
    assert "村级回执纳入考核" in final.html and "群众转移有序" in final.html and "迟交1天4小时" in final.html
    assert final.pdf.startswith(b"%PDF-") and data["returns"][0]["comments"] == "补充乡镇夜间值守情况"
    act = data["statistics"]["activations"][0]
    assert [lv["to"] for lv in act["levels"]] == ["IV", "III"] and act["tasks"]["on_time"] == act["tasks"]["late"] == 1
    assert act["directives"]["items"][0]["late_by_s"] == 300 and act["terminated_at"] is not None
    rep = data["statistics"]["reporting"][0]
    assert rep["compliance"]["on_time"] == rep["compliance"]["deadlines"] == 3  # verbal, written, 续报一 (met by 终报)
    assert data["statistics"]["review"]["late"] == 1 and data["statistics"]["review"]["on_time"] == 1

    # the case file: sealed, its hash in the audit trail, verifiable offline
    [sealed] = events(subject, "review.sealed")
    assert sealed.payload["sha256"] == stored.sha256 == result.archive.sha256 == casefile.sha256(stored.data)
    check = casefile.verify_bytes(stored.data)
    assert check.ok, check.problems
    assert set(check.manifest["subjects"]) == {iid, "activation/A1", subject}
    assert check.manifest["subjects"][subject]["events"] == sealed.payload["subjects"][subject]["events"]
    kinds = [d["kind"] for d in check.manifest["definitions"]]
    assert kinds == ["plans", "reporting", "review"] and all(d["file"] for d in check.manifest["definitions"])
    assert events(subject, "review.closed")[0].payload["late"] == ["330110001"]


# ------------------------------------------------------------------ by hand; units from the audit trail; out of date


async def test_an_answer_after_the_overdue_call_ended_is_recorded_late_while_the_review_runs(env, tq, people):
    """Issue 15 #1: the town head's overdue call went on to the deputy, who acknowledged it (that call has
    ended); the head answers afterwards while the review still collects. Before: nothing recorded."""
    iid = await closed_incident(env, tq, people)
    seed_activation("A2", datetime.now(UTC))
    parent = await env.client.execute_workflow(FakeActivation.run, {"incident_id": iid, "activation_id": "A2",
                                                                     "units": ["330110001"]},
                                               id=f"act-{iid}", task_queue=tq)
    h = env.client.get_workflow_handle_for(R.run, parent)
    await h.execute_update(R.opened_view)
    subject = review_subject(iid)
    town, deputy = people["330110001.head"], people["330110001.deputy"]
    await env.sleep(timedelta(days=7, hours=1))  # overdue: the town head is called
    await wait_for(lambda: any(m.channel == "voice" for m in outbox(subject, town)), what="overdue call")
    await env.sleep(timedelta(days=1, minutes=1))  # nobody answers: the deputy
    await wait_for(lambda: outbox(subject, deputy), what="escalated to the deputy")
    await answers.acknowledge(env.client, subject, deputy, "sms", ref="t:dep")
    await wait_for(lambda: events(subject, "review.escalation.ack"), what="deputy acknowledges")
    await idle(h)  # the call has ended (a barrier); the review waits for the town's summary

    answered = await answers.acknowledge(env.client, subject, town, "sms", ref="t:town-late")
    assert answered.recorded == "late" and answered.told == 0
    [ev] = await wait_for(lambda: events(subject, "review.escalation.ack.late"), what="late answer recorded")
    assert ev.actor == town and ev.step_id == late_step("-", town, "t:town-late") and ev.workflow_id == h.id
    p = ev.payload
    assert p["state_at_answer"] == "acknowledged" and p["acknowledged_by"] == deputy and p["recorded_by"] == "workflow"
    assert (await h.query(R.state)).status == "collecting"
    with session_scope(write=False) as s:
        assert verify(s, subject).ok


async def test_by_hand_units_from_the_audit_trail_missing_summary_and_a_report_out_of_date(env, tq, people, tmp_path):
    iid = await closed_incident(env, tq, people)
    h = await env.client.start_workflow(R.run, ReviewInput(incident_id=iid, started_by=people["duty_chief"]),
                                        id=review_workflow_id(iid), task_queue=tq)
    view = await h.execute_update(R.opened_view)
    assert [u.unit_id for u in view.units] == ["D01", "330110001"]  # reporting unit, town of the incident
    assert view.activation_id is None and view.subjects == [iid, review_subject(iid)]

    await env.sleep(timedelta(days=7, minutes=5))  # nobody sends anything
    await wait_for(lambda: len(events(review_subject(iid), "review.summary.overdue")) == 2, what="both overdue")
    view = await h.execute_update(R.compile, CompileIn(actor=people["duty_cadre"], role="duty_cadre"))
    assert view.status == "compiled"
    await refused(h.execute_update(R.compile, CompileIn(actor=people["duty_cadre"], role="duty_cadre")),
                  "conflict", "nothing changed")
    await h.execute_update(R.summary, SummaryIn(actor=people["duty_cadre"], role="duty_cadre", unit_id="D01",
                                                summary=summary()))
    # the summary arrived after v1: it is out of date, and (one unit still missing) not recompiled by itself
    await refused(h.execute_update(R.signoff, SignoffIn(**leader(people, decision="approve", lessons="x"))),
                  "conflict", "out of date")
    view = await h.execute_update(R.compile, CompileIn(actor=people["leading_leader"], role="leading_leader"))
    assert view.reports[-1].version == 2
    with session_scope(write=False) as s:
        v2 = s.exec(select(ReviewReport).where(ReviewReport.incident_id == iid, ReviewReport.version == 2)).one()
    data = json.loads(v2.json_text)
    assert [u["state"] for u in data["units"]] == ["late", "overdue"]
    assert "未报送" in v2.html and data["statistics"]["activations"] == [] and "未启动应急响应" in v2.html
    assert data["statistics"]["review"]["missing"] == ["330110001"]
    await h.execute_update(R.signoff, SignoffIn(**leader(people, decision="approve", lessons="按时报送总结")))
    result = await h.result()
    assert result.status == "sealed" and result.units[1].summary is None
    with session_scope(write=False) as s:
        stored = s.get(CaseFile, iid)
        assert casefile.verify_bytes(stored.data).ok
    from typer.testing import CliRunner

    from cli.main import app as cli

    out = CliRunner().invoke(cli, ["archive", "export", iid, "-o", str(tmp_path / "case.zip")])
    assert out.exit_code == 0 and "matches review.sealed" in out.output, out.output
    assert (tmp_path / "case.zip").read_bytes() == stored.data
    assert CliRunner().invoke(cli, ["archive", "export", "nope"]).exit_code == 2
    # the escalations of the missing summary were stopped when the report was signed
    assert any(e.payload.get("reason") == "复盘报告已签发" for e in events(review_subject(iid), "review.escalation.canceled"))


async def test_the_reviews_activities_keep_their_ten_minute_timeout(env, tq, people):
    """A large case file takes a while to compile and seal: the review's activities run with a 10-minute
    start-to-close timeout (workflows/review/models.py ACTIVITY), also through the procedure kit's `call`,
    whose default is the 5 minutes of every other procedure (workflows/kit/procedure.py activity_options)."""
    iid = await closed_incident(env, tq, people)
    h = await env.client.start_workflow(R.run, ReviewInput(incident_id=iid, started_by=people["duty_chief"]),
                                        id=review_workflow_id(iid), task_queue=tq)
    await h.execute_update(R.opened_view)
    scheduled = [e.activity_task_scheduled_event_attributes async for e in h.fetch_history_events()
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert {a.activity_type.name for a in scheduled} >= {"review.open", "review.notify"}
    assert {a.activity_type.name: a.start_to_close_timeout.ToTimedelta() for a in scheduled} == {
        a.activity_type.name: timedelta(minutes=10) for a in scheduled}
