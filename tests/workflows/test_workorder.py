"""WorkOrderWorkflow on the time-skipping test server, with the real activities and database: signed on time by
the link, nobody signs (deputy, superior, duty chief), returned and reassigned, feedback late and chased (督办),
sent back and closed, 抄报消防救援, and 回访 posted to a fake hotline platform once, also when the platform's first
answer is lost after it stored the result (the activity retries)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Worker

from activities import all_activities
from api.services import answers
from config import get_settings
from store.db import session_scope
from store.workorders import unit_statistics
from tests.factories import response_district
from tests.fakes.hotline_platform import FakeHotline
from tests.helpers import replayer
from tests.workflows.callout_helpers import wait_for
from tests.workflows.reporting_helpers import events, outbox
from tests.workflows.workorder_helpers import assignments, order_input, row, start, terminate_workorders
from workflows import all_workflows
from workflows.workorder import (AssignIn, CloseIn, CompleteIn, FeedbackIn, ReturnIn, SatisfactionIn, SignIn,
                                 WorkOrderWorkflow as W)


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        return response_district(s)


@pytest.fixture
def hotline(db_url, monkeypatch):
    with FakeHotline() as fake:
        monkeypatch.setenv("YINGJI_HOTLINE_PLATFORM_URL", fake.base_url)
        get_settings.cache_clear()
        yield fake
    get_settings.cache_clear()


@pytest.fixture
async def tq(env, db_url, people, hotline):
    import concurrent.futures

    queue = f"wo-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=all_workflows(), activities=all_activities(),
                      activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16)):
        yield queue
        await terminate_workorders(env.client)


def office(people, **kw) -> dict:
    return {"actor": people["duty_cadre"], "role": "duty_cadre", **kw}


def person(pid: str, **kw) -> dict:
    return {"actor": pid, "role": "duty_staff", **kw}  # a unit's person with a token of their own


async def refused(call, kind: str, words: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await call
    assert exc.value.cause.type == kind, exc.value.cause
    assert words in exc.value.cause.message, exc.value.cause.message


def kinds(subject: str, prefix: str = "workorder.") -> list[str]:
    return [e.kind for e in events(subject, prefix)]


# ------------------------------------------------------------------ signed on time, closed, 回访 once


async def test_signed_on_time_by_link_then_feedback_completed_closed_and_the_result_posted_once(env, tq, people, hotline):
    inp = order_input("积水内涝", town_id="330110001")
    wid = inp.info.id
    assert inp.info.proposed_unit == "330110001"  # 积水内涝: the town first
    h = await start(env.client, tq, inp)
    assert row(wid).status == "received" and row(wid).caller_phone == "+8613900001111"

    await refused(h.execute_update(W.assign, AssignIn(**person(people["330110001.head"], role="commander"),
                                                      unit_id="330110001")), "forbidden", "不能分拨工单")
    await refused(h.execute_update(W.sign, SignIn(**person(people["330110001.head"]))), "conflict", "尚未分拨")
    view = await h.execute_update(W.assign, AssignIn(**office(people), unit_id="330110001"))
    a = view.assignments[0]
    assert view.status == "assigned" and a.unit_name == "第1街道" and people["330110001.head"] in a.answerers
    assert a.deadline("sign").due_at - a.assigned_at == timedelta(minutes=30)
    assert a.deadline("feedback").due_at - a.assigned_at == timedelta(hours=24)
    # five working days on, local time: within a working day, or at its end (24:00) for an order of the weekend
    assert (a.deadline("complete").due_at + timedelta(hours=8) - timedelta(microseconds=1)).weekday() < 5

    # the town head gets the order by SMS with a signed link (Chinese only) and signs by the link
    head = people["330110001.head"]
    [sms] = await wait_for(lambda: [m for m in outbox(wid, head) if m.channel == "sms"], what="the signing SMS")
    assert "【工单分拨】第1街道" in sms.body and "签收" in sms.body and "/ " not in sms.body and sms.ack_url
    await answers.acknowledge(env.client, wid, head, "link", ref="t:link")
    [signed] = await wait_for(lambda: events(wid, "workorder.signed"), what="signed by the link (its event)")
    await wait_for(lambda: row(wid).status == "signed", what="signed by the link (the read model)")
    assert signed.payload["on_time"] and signed.payload["via"] == "link" and not signed.payload["on_behalf"]
    assert signed.actor == head

    # only THE unit's persons give feedback: the head of another unit may not, whatever the role
    await refused(h.execute_update(W.feedback, FeedbackIn(**person(people["D01.head"]), text="已处理")),
                  "forbidden", "非第1街道人员")
    await refused(h.execute_update(W.return_, ReturnIn(**person(people["D02.head"]), reason="不归我们")),
                  "forbidden", "is not a person of")
    await refused(h.execute_update(W.close, CloseIn(**office(people), decision="close")), "conflict", "单位办结后方可审核")
    await env.sleep(timedelta(hours=2))
    view = await h.execute_update(W.feedback, FeedbackIn(**person(head), text="已调派抽水泵车2台到场"))
    assert view.assignments[0].deadline("feedback").late_by_s == 0
    view = await h.execute_update(W.complete, CompleteIn(**person(head), result="积水已排除,道路恢复通行"))
    assert view.status == "completed" and view.result == "积水已排除,道路恢复通行"

    # the duty office closes it; the platform's first answer is lost after it stored the result: the activity
    # retries, the platform still holds the result once
    hotline.lose_answers(1)
    view = await h.execute_update(W.close, CloseIn(**office(people), decision="close"))
    assert view.status == "closed"
    assert await asyncio.to_thread(hotline.stored.wait, 20), "the platform got the result"
    await wait_for(lambda: events(wid, "workorder.visit.posted"), what="the result posted", timeout=60)
    key = f"12345-{inp.info.ticket}-v1"
    assert list(hotline.results) == [key] and hotline.requests == [key, key]  # stored once, asked twice
    assert hotline.results[key]["result"] == "积水已排除,道路恢复通行" and hotline.results[key]["unit_id"] == "330110001"
    [posted] = events(wid, "workorder.visit.posted")
    assert posted.payload["duplicate"] is True and posted.payload["receipt"] == f"R-{key}"

    view = await h.execute_update(W.satisfaction, SatisfactionIn(actor="hotline-platform", role="hotline",
                                                                 satisfaction="满意"))
    assert view.status == "visited"
    result = await h.result()
    assert result.visits[-1].satisfaction == "满意" and row(wid).satisfaction == "满意"
    assert kinds(wid)[-1] == "workorder.ended"
    await replayer(W).replay_workflow(await h.fetch_history())

    with session_scope(write=False) as s:
        st = unit_statistics(s)["330110001"]
    assert (st.assigned, st.signed_on_time, st.signed_late, st.closed_on_time, st.returned) == (1, 1, 0, 1, 0)


# ------------------------------------------------------------------ nobody signs: deputy, superior, duty chief


async def test_nobody_signs_the_call_goes_to_the_deputy_the_superior_and_the_duty_chief_and_the_sign_is_late(env, tq, people):
    inp = order_input("积水内涝", town_id=None)  # no town: the department, 区水利局
    wid = inp.info.id
    assert inp.info.proposed_unit == "D02"
    h = await start(env.client, tq, inp)
    await h.execute_update(W.assign, AssignIn(**office(people), unit_id="D02"))
    head, deputy, superior, chief = people["D02.head"], people["D02.deputy"], people["deputy_head"], people["duty_chief"]
    await wait_for(lambda: outbox(wid, head), what="the head is asked")

    await env.sleep(timedelta(minutes=11))  # no answer: a voice call
    await wait_for(lambda: any(m.channel == "voice" for m in outbox(wid, head)), what="the head is called")
    await env.sleep(timedelta(minutes=10))  # still none: the deputy
    await wait_for(lambda: outbox(wid, deputy), what="the deputy is called")
    await env.sleep(timedelta(minutes=10))  # the signing limit (30 min) passes: overdue; then the superior
    await wait_for(lambda: events(wid, "workorder.sign.overdue"), what="sign overdue")
    await wait_for(lambda: outbox(wid, superior), what="the superior is called")
    assert row(wid).status == "assigned"
    await env.sleep(timedelta(minutes=16))  # the duty chief
    await wait_for(lambda: outbox(wid, chief), what="the duty chief is called")
    await wait_for(lambda: len(events(wid, "workorder.call.escalated")) >= 3, what="the third escalation in the trail")
    assert len(events(wid, "workorder.call.escalated")) == 3

    # the duty chief answers: signed, on the unit's behalf, late, with its permanent mark
    # (the answer's time is the test server's clock, which the test moved on: the wall clock is behind it)
    await answers.acknowledge(env.client, wid, chief, "sms", ref="t:chief", at=await env.get_current_time())
    [signed] = await wait_for(lambda: events(wid, "workorder.signed"), what="signed by the duty chief (its event)")
    await wait_for(lambda: row(wid).status == "signed", what="signed by the duty chief (the read model)")
    assert signed.payload["on_behalf"] is True and signed.payload["on_time"] is False
    [late] = events(wid, "workorder.sign.late")
    assert late.payload["mark"].startswith("逾期签收") and late.payload["late_by_s"] > 15 * 60
    a = assignments(wid)[0]
    assert a.sign_late_s and a.signed_by == chief

    # the replay from the audit trail alone: before the answer the limit was overdue and three were called
    from api.services.replay import replay_subject
    from tests.workflows.reporting_helpers import DEFINITIONS

    with session_scope(write=False) as s:
        before = replay_subject(s, wid, signed.at - timedelta(seconds=1), DEFINITIONS)
        after = replay_subject(s, wid, signed.at, DEFINITIONS)
    assert before["kind"] == "workorder" and before["status"] == "assigned"
    assert before["assignments"][0]["limits"]["sign"]["state"] == "overdue" and before["time_limits"][0]["overdue"]
    assert {t["person_id"] for t in before["targets"]} == {head} and before["deadlines_known"]
    assert after["status"] == "signed" and after["assignments"][0]["limits"]["sign"]["state"] == "late"
    with session_scope(write=False) as s:
        st = unit_statistics(s)["D02"]
    assert (st.signed, st.signed_on_time, st.signed_late) == (1, 0, 1)


# ------------------------------------------------------------------ signed: the read model and the trail together


async def test_the_order_never_reads_signed_without_its_signed_event(env, tq, people):
    """The signing flush wrote the order's view (signed) with the answer's events, then `workorder.signed` in a
    transaction of its own: between the two, the console and the API showed a signed order whose trail had no
    signing. Here every commit is a barrier at which the order and its trail are read."""
    from sqlmodel import select

    from store.audit import AuditEvent
    from store.messages import OutboxMessage
    from store.workorders import WorkOrder
    from tests.helpers import EveryCommit

    inp = order_input("积水内涝", town_id="330110001")
    wid, head = inp.info.id, people["330110001.head"]

    def look() -> tuple[str | None, bool, bool]:
        with session_scope(write=False) as s:
            order = s.get(WorkOrder, wid)
            signed = s.exec(select(AuditEvent.seq).where(AuditEvent.subject == wid,
                                                        AuditEvent.kind == "workorder.signed")).first()
            sms = s.exec(select(OutboxMessage.id).where(OutboxMessage.subject == wid, OutboxMessage.person_id == head,
                                                        OutboxMessage.channel == "sms")).first()
            return (order.status if order else None, signed is not None, sms is not None)

    with EveryCommit(look) as watch:
        h = await start(env.client, tq, inp)
        texted = watch.when(lambda v: v[2])
        await h.execute_update(W.assign, AssignIn(**office(people), unit_id="330110001"))
        await asyncio.wait_for(texted.wait(), 60)
        signed = watch.when(lambda v: v[0] == "signed" and v[1])
        await answers.acknowledge(env.client, wid, head, "link", ref="t:link")
        await asyncio.wait_for(signed.wait(), 60)
    assert not watch.errors
    assert [v for v in watch.seen if v[0] == "signed" and not v[1]] == [], "the order read signed before its event"
    assert kinds(wid)[-1] == "workorder.signed" and "workorder.call.ack" in kinds(wid)


# ------------------------------------------------------------------ returned and reassigned


async def test_returned_with_a_reason_and_reassigned_to_another_unit(env, tq, people):
    inp = order_input("树木倒伏", town_id=None)  # proposed 区综合行政执法局 D12; the duty office chooses D01 (wrong)
    wid = inp.info.id
    h = await start(env.client, tq, inp)
    await h.execute_update(W.assign, AssignIn(**office(people), unit_id="D01"))
    await wait_for(lambda: outbox(wid, people["D01.head"]), what="D01 asked")
    view = await h.execute_update(W.return_, ReturnIn(**person(people["D01.head"]), reason="树木倒伏属综合执法局职责"))
    assert view.status == "returned" and view.assignments[0].return_reason == "树木倒伏属综合执法局职责"
    await wait_for(lambda: [m for m in outbox(wid, people["D01.head"]) if "无需再督促" in m.body], what="call stopped")
    await refused(h.execute_update(W.sign, SignIn(**person(people["D01.head"]))), "conflict", "尚未分拨")
    await refused(h.execute_update(W.assign, AssignIn(**office(people), unit_id="D01")), "invalid", "已退回此工单")

    view = await h.execute_update(W.assign, AssignIn(**office(people), unit_id="D12", note="改派"))
    assert [x.unit_id for x in view.assignments] == ["D01", "D12"] and view.status == "assigned"
    await refused(h.execute_update(W.sign, SignIn(**person(people["D01.head"]))), "forbidden", "非区综合行政执法局人员")
    view = await h.execute_update(W.sign, SignIn(**person(people["D12.head"])))
    assert view.status == "signed" and view.assignments[1].signed_by == people["D12.head"]
    [assigned1, assigned2] = events(wid, "workorder.assigned")
    assert assigned2.payload["reassigned"] and assigned2.payload["as_proposed"] and not assigned1.payload["as_proposed"]
    with session_scope(write=False) as s:
        stats = unit_statistics(s)
    assert stats["D01"].returned == 1 and stats["D01"].signed == 0 and stats["D12"].signed_on_time == 1


# ------------------------------------------------------------------ feedback late (督办), sent back, closed; 抄报消防救援


async def test_feedback_late_is_chased_and_marked_completion_sent_back_then_closed_and_fire_rescue_copied(env, tq, people):
    inp = order_input("燃气泄漏", urgency="urgent", source="110", town_id="330110002")
    wid = inp.info.id
    assert inp.info.proposed_unit == "D06"
    h = await start(env.client, tq, inp)
    view = await h.execute_update(W.assign, AssignIn(**office(people), unit_id="D06"))
    a = view.assignments[0]
    assert a.deadline("sign").due_at - a.assigned_at == timedelta(minutes=5)  # urgent gas leak: in minutes and hours
    assert a.deadline("feedback").due_at - a.assigned_at == timedelta(hours=1)
    assert a.deadline("complete").due_at - a.assigned_at == timedelta(hours=12)

    # 抄报消防救援: the fire rescue unit's head is told
    fire = people["D09.head"]
    [copy] = await wait_for(lambda: outbox(wid, fire), what="fire rescue copied")
    assert copy.body.startswith("【抄报消防救援】【紧急】110工单") and "区住房和城乡建设局" in copy.body
    await wait_for(lambda: events(wid, "workorder.fire_copied"), what="copy recorded")

    head = people["D06.head"]
    await h.execute_update(W.sign, SignIn(**person(head)))
    await env.sleep(timedelta(hours=1, minutes=1))  # no feedback within the hour: overdue, chased (督办)
    await wait_for(lambda: events(wid, "workorder.feedback.overdue"), what="feedback overdue")
    await wait_for(lambda: [m for m in outbox(wid, head) if "【工单督办】" in m.body], what="the head chased")
    await env.sleep(timedelta(minutes=30))
    view = await h.execute_update(W.feedback, FeedbackIn(**person(head), text="已关阀,正在检修管线"))
    [late] = events(wid, "workorder.feedback.late")
    assert 31 * 60 <= late.payload["late_by_s"] < 40 * 60 and view.feedback[0].late  # (the wall clock moves too)
    assert late.payload["mark"] == f"逾期反馈{-(-late.payload['late_by_s'] // 60)}分钟"
    await wait_for(lambda: [m for m in outbox(wid, head) if "无需再督促" in m.body], what="the chase stopped")

    await h.execute_update(W.complete, CompleteIn(**person(head), result="已修复"))
    await refused(h.execute_update(W.close, CloseIn(**office(people), decision="send_back")), "invalid", "写明理由")
    await refused(h.execute_update(W.close, CloseIn(**person(head), decision="close")), "forbidden", "不能审核工单")
    view = await h.execute_update(W.close, CloseIn(**office(people), decision="send_back", reason="未附现场检测结果"))
    assert view.status == "sent_back" and view.sent_back_reasons == ["未附现场检测结果"]
    await refused(h.execute_update(W.close, CloseIn(**office(people), decision="close")), "conflict", "单位办结后方可审核")
    view = await h.execute_update(W.complete, CompleteIn(**person(head), result="已修复,检测浓度为零"))
    view = await h.execute_update(W.close, CloseIn(**office(people), decision="close"))
    assert view.status == "closed"
    await wait_for(lambda: events(wid, "workorder.visit.posted"), what="the result posted")
    assert kinds(wid).count("workorder.completed") == 2 and "workorder.sent_back" in kinds(wid)
    a = assignments(wid)[0]
    assert a.feedback_late_s == late.payload["late_by_s"] and a.sent_back == 1 and a.closed and a.complete_late_s == 0
    with session_scope(write=False) as s:
        st = unit_statistics(s)["D06"]
    assert (st.feedback_late, st.sent_back, st.closed_on_time) == (1, 1, 1)


# ------------------------------------------------------------------ a long order continues as new; no 回访 answer


async def test_a_long_order_continues_as_new_and_ends_unanswered_when_the_platform_never_answers(env, tq, people, hotline):
    inp = order_input("其他", town_id="330110002").model_copy(update={"max_history": 60})
    wid = inp.info.id
    h = await start(env.client, tq, inp)
    await h.execute_update(W.assign, AssignIn(**office(people), unit_id="330110002"))
    head = people["330110002.head"]
    await wait_for(lambda: outbox(wid, head), what="asked")
    for n in range(3):  # feedback after feedback: the history grows past max_history
        await h.execute_update(W.feedback, FeedbackIn(**person(head), text=f"进展{n}"))
    await env.sleep(timedelta(minutes=40))  # the signing call's waits: the history grows; it continues as new
    await wait_for(lambda: events(wid, "workorder.continued"), what="continued as new", timeout=60)
    view = await h.execute_update(W.complete, CompleteIn(**person(head), result="已处理"))
    assert view.runs >= 2 and len(view.feedback) == 4 and view.status == "completed"
    await h.execute_update(W.close, CloseIn(**office(people), decision="close"))
    await wait_for(lambda: events(wid, "workorder.visit.posted"), what="posted")
    await env.sleep(timedelta(days=7, minutes=1))  # the platform never answers: 未回访
    result = await env.client.get_workflow_handle_for(W.run, wid).result()  # the last run's
    assert result.status == "visited" and result.visits[-1].satisfaction == "未回访" and result.runs >= 2
    [unanswered] = events(wid, "workorder.visit.unanswered")
    assert unanswered.payload["version"] == 1 and row(wid).satisfaction == "未回访"
    assert list(hotline.results) == [f"12345-{inp.info.ticket}-v1"]
