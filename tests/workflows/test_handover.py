"""Shift handover 交接班 on the time-skipping test server, with the real activities and database."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Worker

from api.services import answers
from store.audit import verify
from store.callouts import Callout
from store.db import session_scope
from store.directory import Person
from store.duty import Handover
from store.roster import DutyShift
from store.warnings import Warning
from tests.factories import small_district
from tests.helpers import replayer
from tests.workflows.callout_helpers import idle, wait_for
from tests.workflows.duty_helpers import duty_settings, events, kinds, outbox, row, terminate
from worker import build_worker
from workflows.escalation import late_step
from workflows.handover import HandoverInput, HandoverWorkflow as W, HandOverIn, NoteIn, NoteItem, TakeOverIn


@pytest.fixture
def shift_at() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)


@pytest.fixture
def people(db_url, shift_at):
    """The small district; the duty chief 值班长丁 hands over to 值班长庚 at `shift_at`.
    Also open: an orange warning, a running call-out, and a running drill (not handed over as real)."""
    with session_scope() as s:
        p = small_district(s)
        s.add(Person(id="p-chief2", name="值班长庚", mobile="+8613911110000", org_unit_id="DUTY", im_id="im-chief2"))
        s.flush()
        for shift in s.exec(select(DutyShift).where(DutyShift.role == "duty_chief")):
            shift.ends_at = shift_at
        s.add(DutyShift(starts_at=shift_at, ends_at=shift_at + timedelta(days=1), role="duty_chief", person_id="p-chief2"))
        s.add(Warning(id="W1", identifier="W1", level="orange", event="暴雨", headline="青溪区暴雨橙色预警",
                      expires_at=shift_at + timedelta(hours=6)))
        s.add(Callout(id="C-real", plan_id="heavy_rain", plan_version="x", level="orange", category="heavy_rain",
                      title="暴雨橙色预警叫应"))
        s.add(Callout(id="C-drill", plan_id="drill_x", plan_version="x", level="orange", category="drill",
                      title="[演练]区级部门应急值守连通性演练", drill=True))
        p["chief2"] = "p-chief2"
        return p


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"ho-{uuid.uuid4().hex[:8]}"
    w: Worker = build_worker(env.client, task_queue=queue)
    started: list[str] = []
    async with w:
        yield queue, started
        await terminate(env.client, started)


async def start(env, tq, shift_at):
    queue, started = tq
    settings = duty_settings()
    wid = f"handover-test-{uuid.uuid4().hex[:6]}"
    h = await env.client.start_workflow(W.run, HandoverInput(settings=settings.handover, version="t", shift_at=shift_at),
                                        id=wid, task_queue=queue)
    started.append(wid)
    view = await h.execute_update(W.opened_view)
    return h, view


async def refused(call, kind: str, words: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await call
    assert exc.value.cause.type == kind, exc.value.cause
    assert words in exc.value.cause.message, exc.value.cause.message


async def test_nobody_takes_over_in_time_the_leading_leader_is_called(env, tq, people, shift_at):
    h, view = await start(env, tq, shift_at)
    hid = h.id
    assert view.status == "open" and view.outgoing.person_id == people["duty_chief"]
    assert view.incoming.person_id == "p-chief2" and view.leader.person_id == people["leading_leader"]
    assert shift_at + timedelta(minutes=30) < view.due_at < datetime.now(UTC) + timedelta(minutes=31)
    texts = [i.text for i in view.note.items]
    assert any("暴雨橙色预警" in t and i.kind == "warning" for t, i in zip(texts, view.note.items))
    assert any(i.kind == "callout" and i.ref == "C-real" for i in view.note.items)
    assert not any(i.ref == "C-drill" for i in view.note.items), "a drill is not handed over as a real call-out"

    # the incoming chief is told at once (SMS + IM), with a reply code to take over by SMS
    first = await wait_for(lambda: outbox(hid, "p-chief2"), what="incoming chief told")
    assert {m.channel for m in first} == {"sms", "im"} and "确认接班" in first[0].body and first[0].reply_code

    # only the outgoing chief edits the note; the incoming one may not
    await refused(h.execute_update(W.edit_note, NoteIn(actor="p-chief2", role="duty_chief", text="x")),
                  "forbidden", "outgoing duty chief")
    view = await h.execute_update(W.edit_note, NoteIn(actor=people["duty_chief"], role="duty_chief",
                                                      items=[*view.note.items, NoteItem(text="第2街道积水点需持续关注")],
                                                      text="夜间无重大情况"))
    assert view.note.text == "夜间无重大情况" and view.note.items[-1].text == "第2街道积水点需持续关注"
    view = await h.execute_update(W.hand_over, HandOverIn(actor=people["duty_chief"], role="duty_chief"))
    assert view.status == "handed_over"

    # nobody takes over: voice after 20 min, the leading leader after 30
    await env.sleep(timedelta(minutes=31))
    leader_msgs = await wait_for(lambda: outbox(hid, people["leading_leader"]), what="leading leader called")
    assert {m.channel for m in leader_msgs} == {"voice", "sms"}
    assert "交接班升级" in next(m.body for m in leader_msgs if m.channel == "sms")
    assert any(m.channel == "voice" for m in outbox(hid, "p-chief2"))
    await wait_for(lambda: "handover.escalated" in kinds(hid), what="the escalation in the trail (after the sends)")

    # the leader acknowledges (keeps it in hand), then the incoming chief takes over, late
    await answers.acknowledge(env.client, hid, people["leading_leader"], "sms", ref="t:leader")
    await wait_for(lambda: "handover.leader_acknowledged" in kinds(hid), what="leader ack recorded")
    view = await h.execute_update(W.take_over, TakeOverIn(actor="p-chief2", role="duty_chief"))
    assert view.status == "taken_over" and view.taken_over_via == "console"
    result = await h.result()
    assert result.status == "taken_over" and result.leader_ack_by == people["leading_leader"]
    taken = next(e for e in events(hid) if e.kind == "handover.taken_over")
    assert taken.payload["late_by_s"] >= 60
    ho = row(Handover, hid)
    assert ho.status == "taken_over" and ho.escalated_at is not None and ho.leader_ack_by == people["leading_leader"]
    assert ho.note["text"] == "夜间无重大情况"
    assert kinds(hid)[0] == "handover.opened" and kinds(hid)[-1] == "handover.closed"
    with session_scope(write=False) as s:
        assert verify(s, hid).ok
    await replayer(W).replay_workflow(await h.fetch_history())


async def test_an_answer_after_the_take_over_call_ended_is_recorded_late(env, tq, people, shift_at):
    """Issue 15 #1: the leading leader acknowledged the escalated call (it has ended); the incoming chief's SMS
    answer comes afterwards while the handover waits for the take-over. Before: left in an inbox nobody read."""
    h, _ = await start(env, tq, shift_at)
    hid = h.id
    await wait_for(lambda: outbox(hid, "p-chief2"), what="incoming chief told")
    await env.sleep(timedelta(minutes=31))
    await wait_for(lambda: outbox(hid, people["leading_leader"]), what="leading leader called")
    await answers.acknowledge(env.client, hid, people["leading_leader"], "sms", ref="t:leader")
    await wait_for(lambda: "handover.leader_acknowledged" in kinds(hid), what="leader ack recorded")
    await idle(h)  # the call has ended (a barrier); the handover waits for the take-over

    answered = await answers.acknowledge(env.client, hid, "p-chief2", "sms", ref="t:incoming-late")
    assert answered.recorded == "late" and answered.told == 0
    [ev] = await wait_for(lambda: [e for e in events(hid) if e.kind == "handover.ack.late"], what="late answer")
    assert ev.actor == "p-chief2" and ev.step_id == late_step("-", "p-chief2", "t:incoming-late")
    assert ev.payload["acknowledged_by"] == people["leading_leader"] and ev.payload["recorded_by"] == "workflow"
    view = await h.execute_update(W.take_over, TakeOverIn(actor="p-chief2", role="duty_chief"))
    assert view.status == "taken_over"
    await h.result()
    with session_scope(write=False) as s:
        assert verify(s, hid).ok


async def test_taking_over_by_sms_reply_in_time_calls_nobody_else(env, tq, people, shift_at):
    h, _ = await start(env, tq, shift_at)
    msgs = await wait_for(lambda: [m for m in outbox(h.id, "p-chief2") if m.channel == "sms"], what="sms to incoming")
    await env.sleep(timedelta(minutes=5))
    got = await answers.sms_reply(env.client, "simulator", msgs[0].to, f"收到 {msgs[0].reply_code}", provider_id="t-ho-1")
    assert got["handled"] == "ack", got
    result = await h.result()
    assert result.status == "taken_over" and result.taken_over_via == "sms" and result.taken_over_by == "p-chief2"
    assert result.escalated_at is None
    assert not outbox(h.id, people["leading_leader"]), "the leading leader is not disturbed"
    late = next(e for e in events(h.id) if e.kind == "handover.taken_over").payload["late_by_s"]
    assert late == 0


async def test_never_taken_over_is_closed_and_recorded(env, tq, people, shift_at):
    h, _ = await start(env, tq, shift_at)
    await env.sleep(timedelta(hours=13))
    result = await h.result()
    assert result.status == "not_taken_over" and result.escalated_at is not None
    assert "handover.unreachable" in kinds(h.id)
    assert kinds(h.id)[-1] == "handover.not_taken_over"
    assert row(Handover, h.id).status == "not_taken_over"


async def test_the_same_chief_staying_on_is_no_handover(env, tq, people):
    later = datetime.now(UTC) + timedelta(days=3)  # 值班长庚 is on duty before and after
    with session_scope() as s:
        s.add(DutyShift(starts_at=later - timedelta(hours=2), ends_at=later + timedelta(hours=2), role="duty_chief",
                        person_id="p-chief2"))
    h, view = await start(env, tq, later)
    assert view.status == "skipped"
    assert kinds(h.id) == ["handover.skipped"]
