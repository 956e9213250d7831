"""六问 spot checks on the time-skipping test server, with the real activities and database.

The call-outs they follow are written straight into the read model (what the call-out
workflow leaves behind); tests/workflows/test_callout.py covers how they get there.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor, Worker

from activities import all_activities
from api.services import answers
from store.audit import verify
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import Post
from store.duty import SpotCheck, SpotCheckAnswer, SpotCheckFollowup
from tests.factories import small_district
from tests.helpers import poll, replayer
from tests.workflows.callout_helpers import idle, wait_for
from tests.workflows.duty_helpers import duty_settings, events, kinds, outbox, row, rows, terminate
from worker import build_worker
from workflows import all_workflows
from workflows.escalation import late_step
from workflows.spotcheck import (
    AnswerIn,
    ResolveIn,
    SpotCheckInput,
    SpotCheckSweepWorkflow,
    SpotCheckWorkflow as W,
    SweepInput,
    check_id_for,
)

ALL_YES = {q: True for q in ("received", "on_duty", "patrolled", "evacuation", "supplies", "arrangements")}


def ended_callout(s, cid: str, level: str = "orange", drill: bool = False) -> None:
    """A call-out that ended a moment ago, every village flood-control person having acknowledged."""
    now = datetime.now(UTC)
    s.add(Callout(id=cid, plan_id="heavy_rain", plan_version="x", level=level, category="heavy_rain",
                  title=f"{'[演练]' if drill else ''}暴雨{level}预警叫应", drill=drill, status="completed",
                  started_at=now - timedelta(hours=1), ended_at=now))
    s.flush()
    for post in s.exec(select(Post).where(Post.position_code == "village_flood_resp")):
        s.add(CalloutTarget(callout_id=cid, target_key=f"villages/{post.id}", tier="villages",
                            position_code="village_flood_resp", org_unit_id=post.org_unit_id, person_id=post.person_id,
                            name=post.person_id, state="acknowledged", acknowledged_at=now - timedelta(minutes=30),
                            ack_channel="sms"))


@pytest.fixture
def people(db_url):
    with session_scope() as s:
        p = small_district(s, towns=3, villages=2)
        ended_callout(s, "C-real")
        ended_callout(s, "C-drill", drill=True)
        ended_callout(s, "C-yellow", level="yellow")
        return p


@pytest.fixture
async def tq(env, db_url, people):
    queue = f"sc-{uuid.uuid4().hex[:8]}"
    started: list[str] = []
    async with build_worker(env.client, task_queue=queue):
        yield queue, started
        await terminate(env.client, started)


async def run_sweep(env, queue: str, inp: SweepInput):
    """Run the sweep without waiting on its result: a result() wait lets the test server skip time,
    which would run the spot check's own timers ahead of the test."""
    from temporalio.client import WorkflowExecutionStatus

    h = await env.client.start_workflow(SpotCheckSweepWorkflow.run, inp, id=f"sweep-{uuid.uuid4().hex[:6]}",
                                        task_queue=queue)
    await poll(lambda: h.describe(), lambda d: d.status == WorkflowExecutionStatus.COMPLETED)
    return await h.result()


async def refused(call, kind: str, words: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as exc:
        await call
    assert exc.value.cause.type == kind, exc.value.cause
    assert words in exc.value.cause.message, exc.value.cause.message


async def test_answers_a_no_opens_a_followup_acknowledged_and_resolved(env, tq, people):
    queue, started = tq
    settings = duty_settings().spotcheck
    cid = check_id_for("C-real")
    started.append(cid)
    h = await env.client.start_workflow(  # as the sweep starts it: 30 minutes after the call-out ended
        W.run, SpotCheckInput(callout_id="C-real", settings=settings, not_before=datetime.now(UTC) + settings.delay),
        id=cid, task_queue=queue)


    await env.sleep(timedelta(minutes=31))  # the settings' delay after the call-out's end
    view = await wait_for(lambda: row(SpotCheck, cid), what="spot check opened")
    view = await h.query(W.state)
    assert view.status == "running" and len(view.persons) == 5
    sampled = [p.person_id for p in view.persons]
    assert all(p.startswith("p-330110") and p.endswith(".resp") for p in sampled)
    calls = await wait_for(lambda: [m for m in outbox(cid) if m.channel == "voice"], what="voice calls")
    assert len(calls) == 5 and "六问抽查" in calls[0].meta["voice_text"]
    assert (calls[0].meta or {}).get("procedure") == "spotcheck"

    a, b, c, d, e = sampled
    # a: all yes by the voice menu
    await h.execute_update(W.answer, AnswerIn(actor=a, role="person", person_id=a, answers=ALL_YES, channel="voice",
                                              ref="CA-1"))
    # the same answer again (a retried webhook) changes nothing; a second, different answer is refused
    await h.execute_update(W.answer, AnswerIn(actor=a, role="person", person_id=a, answers=ALL_YES, channel="voice",
                                              ref="CA-1"))
    await refused(h.execute_update(W.answer, AnswerIn(actor=a, role="person", person_id=a, answers=ALL_YES,
                                                      channel="voice", ref="CA-2")), "conflict", "answered already")
    await refused(h.execute_update(W.answer, AnswerIn(actor="p-duty_cadre", role="duty_cadre", person_id="p-nobody",
                                                      answers=ALL_YES, channel="phone")), "invalid", "not in this spot check")
    await refused(h.execute_update(W.answer, AnswerIn(actor=b, role="person", person_id=b,
                                                      answers={"received": True}, channel="link")), "invalid", "missing")
    await refused(h.execute_update(W.answer, AnswerIn(actor=c, role="person", person_id=b, answers=ALL_YES,
                                                      channel="link")), "forbidden", "from the person asked")
    # b: hazard points not patrolled, by the SMS form -> a follow-up for b's town
    view = await h.execute_update(W.answer, AnswerIn(actor=b, role="person", person_id=b, channel="link", ref="link:b",
                                                     answers={**ALL_YES, "patrolled": False}))
    assert len(view.followups) == 1
    fu = view.followups[0]
    town = b.removeprefix("p-")[:9]
    assert fu.town_id == town and fu.failed == ["patrolled"] and fu.responsible_id == people[f"{town}.head"]
    assert fu.due_at - fu.opened_at == timedelta(hours=24)
    # c: a duty officer asked by phone and records it on their behalf
    await h.execute_update(W.answer, AnswerIn(actor="p-duty_cadre", role="duty_cadre", person_id=c, answers=ALL_YES,
                                              channel="phone", note="电话抽查"))

    head = people[f"{town}.head"]
    sms = await wait_for(lambda: [m for m in outbox(cid, head) if m.channel == "sms"], what="town head told")
    assert "六问整改" in sms[0].body and "隐患点巡查了吗" in sms[0].body and sms[0].reply_code
    got = await answers.sms_reply(env.client, "simulator", sms[0].to, f"收到 {sms[0].reply_code}", provider_id="t-fu-1")
    assert got["handled"] == "ack"
    await wait_for(lambda: row(SpotCheckFollowup, 1) and row(SpotCheckFollowup, 1).status == "acknowledged",
                   what="follow-up acknowledged")

    # d and e never pick up: after the voice call, the SMS form (a signed link, no reply code)
    await env.sleep(timedelta(minutes=11))
    forms = await wait_for(lambda: [m for m in outbox(cid) if m.channel == "sms" and m.person_id in (d, e)],
                           what="sms forms")
    assert all("/a/" in m.body and "/spotcheck/" in (m.ack_url or "") and m.reply_code is None for m in forms)
    assert not [m for m in outbox(cid) if m.person_id in (a, b, c) and m.channel == "sms"], "no form after an answer"

    await refused(h.execute_update(W.resolve, ResolveIn(actor=d, role="person", key=fu.key, note="x")),
                  "forbidden", "may not resolve")
    await h.execute_update(W.resolve, ResolveIn(actor="p-duty_cadre", role="duty_cadre", key=fu.key,
                                                note="已组织巡查隐患点3处"))
    result = await h.result()  # d and e run out of the policy (the duty chief is told); then it closes
    assert result.status == "closed"
    states = {p.person_id: p.state for p in result.persons}
    assert states == {a: "answered", b: "answered", c: "answered", d: "unreachable", e: "unreachable"}
    assert any(m.person_id == people["duty_chief"] and "未接听" in m.body for m in outbox(cid))
    got = kinds(cid)
    for k in ("spotcheck.opened", "spotcheck.answered", "spotcheck.followup.opened", "spotcheck.followup.ack",
              "spotcheck.followup.resolved", "spotcheck.call.unreachable", "spotcheck.call.informed", "spotcheck.closed"):
        assert k in got, k
    answered = [ev for ev in events(cid, "spotcheck.answered")]
    assert len(answered) == 3 and answered[1].payload["no"] == ["patrolled"] and answered[2].payload["by_proxy"]
    assert row(SpotCheck, cid).status == "closed"
    stored = {x.person_id: x for x in rows(SpotCheckAnswer, check_id=cid)}
    assert stored[b].answers["patrolled"] is False and stored[c].channel == "phone"
    f = rows(SpotCheckFollowup, check_id=cid)[0]
    assert f.status == "resolved" and f.acknowledged_via == "sms" and f.resolution == "已组织巡查隐患点3处"
    with session_scope(write=False) as s:
        assert verify(s, cid).ok
    await replayer(W).replay_workflow(await h.fetch_history())


async def test_an_unacknowledged_followup_escalates_goes_overdue_and_closes_unresolved(env, tq, people):
    queue, started = tq
    settings = duty_settings().spotcheck.model_copy(update={"sample_size": 1})
    cid = check_id_for("C-real")
    started.append(cid)
    h = await env.client.start_workflow(W.run, SpotCheckInput(callout_id="C-real", settings=settings, started_by="test"),
                                        id=cid, task_queue=queue)
    await wait_for(lambda: row(SpotCheck, cid), what="opened")
    view = await h.query(W.state)
    p = view.persons[0].person_id
    await h.execute_update(W.answer, AnswerIn(actor=p, role="person", person_id=p, channel="voice",
                                              answers={**ALL_YES, "supplies": False, "evacuation": False}))
    town = p.removeprefix("p-")[:9]
    await env.sleep(timedelta(hours=2))  # nobody acknowledges: the town head's superior is called
    assert any(m.person_id == people["deputy_head"] for m in outbox(cid)), "escalated to the town head's superior"
    await env.sleep(timedelta(hours=23))  # past the 24 h deadline: overdue, the duty chief is told
    assert "spotcheck.followup.overdue" in kinds(cid)
    overdue = [m for m in outbox(cid, people["duty_chief"]) if "整改逾期" in m.body]
    assert overdue and "防汛物资到位了吗" in overdue[0].body and "需转移人员摸清了吗" in overdue[0].body
    result = await h.result()  # closes after close_after (7 days)
    assert result.followups[0].status == "unresolved" and result.followups[0].overdue
    assert result.followups[0].failed == ["evacuation", "supplies"]
    assert kinds(cid)[-2:] == ["spotcheck.followup.unresolved", "spotcheck.closed"]
    assert rows(SpotCheckFollowup, check_id=cid)[0].town_id == town


async def test_an_answer_after_the_followup_call_ended_is_recorded_late(env, tq, people):
    """Issue 15 #1: the follow-up's call ran out (the town head, then their superior, silent; the duty chief told);
    the town head answers afterwards while the check runs. Before: the ended follow-up was skipped, nothing
    recorded."""
    queue, started = tq
    settings = duty_settings().spotcheck.model_copy(update={"sample_size": 1})
    cid = check_id_for("C-real")
    started.append(cid)
    h = await env.client.start_workflow(W.run, SpotCheckInput(callout_id="C-real", settings=settings, started_by="test"),
                                        id=cid, task_queue=queue)
    await wait_for(lambda: row(SpotCheck, cid), what="opened")
    p = (await h.query(W.state)).persons[0].person_id
    await h.execute_update(W.answer, AnswerIn(actor=p, role="person", person_id=p, channel="voice",
                                              answers={**ALL_YES, "supplies": False}))
    head = people[f"{p.removeprefix('p-')[:9]}.head"]
    await env.sleep(timedelta(hours=2))  # nobody acknowledges: the superior, then nobody left to call
    await wait_for(lambda: events(cid, "spotcheck.followup.unreachable"), what="the follow-up's call ran out")
    await idle(h)  # the follow-up's call has ended (a barrier); the check runs on

    answered = await answers.acknowledge(env.client, cid, head, "sms", ref="t:head-late")
    assert answered.recorded == "late" and answered.told == 0
    [ev] = await wait_for(lambda: events(cid, "spotcheck.followup.ack.late"), what="late answer recorded")
    assert ev.actor == head and ev.step_id == late_step("-", head, "t:head-late")
    assert ev.payload["state_at_answer"] == "unreachable" and ev.payload["recorded_by"] == "workflow"
    assert (await h.query(W.state)).status == "running"
    with session_scope(write=False) as s:
        assert verify(s, cid).ok


async def test_the_sweep_starts_one_check_per_real_call_out_of_the_level(env, tq, people):
    queue, started = tq
    settings = duty_settings().spotcheck
    started.append(check_id_for("C-real"))
    with env.auto_time_skipping_disabled():  # the checks' own timers are not this test's business
        sweep = await run_sweep(env, queue, SweepInput(settings=settings, version="t"))
        assert sweep.started == ["C-real"], "drills and yellow call-outs are not spot-checked"
        again = await run_sweep(env, queue, SweepInput(settings=settings))
        assert again.started == [], "one spot check per call-out"
        desc = await env.client.get_workflow_handle(check_id_for("C-real")).describe()
        assert desc.workflow_type == "SpotCheckWorkflow"


async def test_a_drill_is_never_spot_checked(env, tq, people):
    queue, started = tq
    cid = check_id_for("C-drill")
    started.append(cid)
    result = await env.client.execute_workflow(
        W.run, SpotCheckInput(callout_id="C-drill", settings=duty_settings().spotcheck), id=cid, task_queue=queue)
    assert result.status == "skipped"
    assert "drill" in events(cid)[0].payload["reason"] and not outbox(cid)


class _Hold(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, gate: Hold) -> None:
        super().__init__(next)
        self.gate = gate

    async def execute_activity(self, input: ExecuteActivityInput):
        if self.gate.matches(activity.info().activity_type, input.args[0]):
            self.gate.reached.set()
            await self.gate.release.wait()
        return await super().execute_activity(input)


class Hold(Interceptor):
    """A barrier: the first activity `matches` picks (its type, its argument) waits until released."""

    def __init__(self, matches) -> None:
        self.matches, self.reached, self.release = matches, asyncio.Event(), asyncio.Event()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Hold(next, self)


def informing(kind: str, arg) -> bool:
    """The duty chief being told that a sampled person never answered (the calls' last flush)."""
    return kind == "duty.flush" and any(s.purpose == "inform" for s in arg.sends)


def recording(event_kind: str):
    return lambda kind, arg: kind == "duty.spotcheck_record" and any(e.kind == event_kind for e in arg.events)


@contextlib.asynccontextmanager
async def check_with(env, sample_size: int, hold: Hold | None = None):
    """A spot check of C-real on a worker of its own (with `hold` among its interceptors): (handle, check id,
    the sampled persons' ids), once it has opened."""
    queue = f"sc-{uuid.uuid4().hex[:8]}"
    settings = duty_settings().spotcheck.model_copy(update={"sample_size": sample_size})
    cid = check_id_for("C-real")
    async with Worker(env.client, task_queue=queue, workflows=all_workflows(), activities=all_activities(),
                      interceptors=[hold] if hold else []):
        try:
            h = await env.client.start_workflow(W.run, SpotCheckInput(callout_id="C-real", settings=settings,
                                                                      started_by="test"), id=cid, task_queue=queue)
            await wait_for(lambda: row(SpotCheck, cid), what="opened")
            yield h, cid, [p.person_id for p in (await h.query(W.state)).persons]
        finally:
            await terminate(env.client, [cid])


async def test_a_no_taken_as_the_calls_end_opens_its_followup_before_the_check_closes(env, db_url, people):
    """CI, 2026-12-03: a "no" arrived while the last call's policy was ending; the check saw its calls done and no
    follow-up yet (the answer's audit write still in flight) and closed; the follow-up opened into a closing check
    and the duty officer's next answer was refused. A barrier puts the answer exactly there: accepted while the
    duty chief is being told about the one person sampled, whose policy ends when that flush returns."""
    hold = Hold(informing)
    async with check_with(env, 1, hold) as (h, cid, [p]):
        # voice, 10 min, the form, 2 h: the duty chief is told (a second more: the server cannot skip time while
        # the held flush runs)
        await env.sleep(timedelta(hours=2, minutes=10, seconds=1))
        await asyncio.wait_for(hold.reached.wait(), 60)  # (anti-hang bound)
        update = await h.start_update(W.answer, AnswerIn(actor=p, role="person", person_id=p, channel="link",
                                                         ref="link:late-form", answers={**ALL_YES, "supplies": False}),
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        hold.release.set()
        view = await update.result()
        assert view.persons[0].answers["supplies"] is False and len(view.followups) == 1
        head = people[f"{p.removeprefix('p-')[:9]}.head"]
        await wait_for(lambda: [m for m in outbox(cid, head) if m.channel == "sms"], what="the town head told")
        await idle(h)
        view = await h.query(W.state)
        assert view.status == "running" and view.followups[0].status == "open", (view.status, view.followups)
        await h.execute_update(W.resolve, ResolveIn(actor="p-duty_cadre", role="duty_cadre",
                                                    key=view.followups[0].key, note="物资已补齐"))
        result = await h.result()
        assert result.status == "closed" and result.followups[0].status == "resolved"
        got = kinds(cid)
        assert got.index("spotcheck.followup.opened") < got.index("spotcheck.closed")


async def test_an_answer_while_the_check_closes_is_recorded_late(env, db_url, people):
    """The check closes at `close_after` with a follow-up still open; a sampled person who never picked up
    answers by the form while it writes the follow-up off. Before: refused ("nothing more is recorded")."""
    hold = Hold(recording("spotcheck.followup.unresolved"))
    async with check_with(env, 2, hold) as (h, cid, [a, b]):
        await h.execute_update(W.answer, AnswerIn(actor=a, role="person", person_id=a, channel="voice",
                                                  answers={**ALL_YES, "supplies": False}))
        # b never answers; nobody resolves a's follow-up (a second more: no time skips while the hold holds)
        await env.sleep(duty_settings().spotcheck.close_after + timedelta(seconds=1))
        await asyncio.wait_for(hold.reached.wait(), 60)  # (anti-hang bound) closing: the follow-up written off
        update = await h.start_update(W.answer, AnswerIn(actor=b, role="person", person_id=b, channel="link",
                                                         ref="link:b", answers={**ALL_YES, "patrolled": False}),
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        hold.release.set()  # (its audit write waits for the held one)
        view = await update.result()
        assert next(p for p in view.persons if p.person_id == b).state == "answered_late"
        result = await h.result()
        assert result.status == "closed" and len(result.followups) == 1, "a late 'no' opens no follow-up"
        [late] = events(cid, "spotcheck.answered.late")
        assert late.actor == b and late.payload["no"] == ["patrolled"] and late.payload["state_at_answer"] == "closing"
        stored = {x.person_id: x for x in rows(SpotCheckAnswer, check_id=cid)}
        assert stored[b].state == "answered_late" and stored[b].answers["patrolled"] is False
        with session_scope(write=False) as s:
            assert verify(s, cid).ok


async def test_answers_after_the_check_closed_are_recorded_late_by_the_store(env, db_url, people):
    """The form link still works after the check closed (it says the answer will be marked late), and a duty
    officer can still record what a person said on the phone; neither opens anything, both are in the chain."""
    import httpx

    from api.app import create_app
    from api.services import duty as svc

    async with check_with(env, 2) as (h, cid, [a, b]):
        result = await h.result()  # nobody answers: voice, the form, the duty chief told; closed
        assert result.status == "closed" and {p.state for p in result.persons} == {"unreachable"}
        await wait_for(lambda: row(SpotCheck, cid).status == "closed", what="closed in the store")

    form = next(m for m in outbox(cid, a) if m.channel == "sms")
    alias = httpx.URL(re.search(r"(https?://\S+/a/\S+)", form.body).group(1)).path  # the short alias in the text
    app = create_app(temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as web:
        path = (await web.get(alias)).headers["location"]
        assert path.startswith("/spotcheck/")
        page = await web.get(path)
        assert page.status_code == 200 and "本次抽查已结束" in page.text and "marked late" in page.text
        r = await web.post(path, data={**{k: "yes" for k in ALL_YES}, "supplies": "no"})
        assert r.status_code == 200 and "已记录您的回答(逾期)" in r.text, r.text
        assert (await web.get(path)).status_code == 409, "the form works once"

    got = await svc.spotcheck_answer(env.client, cid, AnswerIn(actor="p-duty_cadre", role="duty_cadre", person_id=b,
                                                               channel="phone", answers=ALL_YES, note="次日电话联系"))
    assert got["recorded"] == "late" and {p["person_id"]: p["state"] for p in got["persons"]} == {
        a: "answered_late", b: "answered_late"}
    with pytest.raises(svc.DutyError) as again:
        await svc.spotcheck_answer(env.client, cid, AnswerIn(actor="p-duty_cadre", role="duty_cadre", person_id=b,
                                                             channel="phone", answers=ALL_YES))
    assert again.value.status == 409 and "answered already" in str(again.value)
    with pytest.raises(svc.DutyError) as stranger:
        await svc.spotcheck_answer(env.client, cid, AnswerIn(actor="p-x", role="person", person_id="p-x",
                                                             channel="link", answers=ALL_YES))
    assert stranger.value.status == 422

    late = {e.actor: e for e in events(cid, "spotcheck.answered.late")}
    assert set(late) == {a, "p-duty_cadre"}
    assert late[a].payload["no"] == ["supplies"] and late[a].payload["recorded_by"] == "store"
    assert late[a].payload["state_at_answer"] == "closed" and late[a].payload["late_by_s"] is not None
    assert late["p-duty_cadre"].payload["by_proxy"] and late["p-duty_cadre"].payload["note"] == "次日电话联系"
    assert kinds(cid).index("spotcheck.closed") < kinds(cid).index("spotcheck.answered.late")
    assert not [f for f in rows(SpotCheckFollowup, check_id=cid)], "nothing opens after the check closed"
    with session_scope(write=False) as s:
        assert verify(s, cid).ok
