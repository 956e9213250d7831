"""Warning call-out 叫应: reach everyone on the plan, make them answer, escalate.

`WarningCalloutWorkflow` coordinates: it opens the call-out, resolves the targets
into shards (an activity writes them to the store), starts one
`CalloutShardWorkflow` per SHARD_SIZE persons (larger ones rather than more than
MOST_SHARDS: `shard_size_for`; leaders' shard first), passes warning
updates and a cancel on, and writes the summary when every shard has ended.
Each shard runs the shared escalation interpreter for its persons.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():  # data and pure code: not run anew for every workflow instance
    from workflows.callout_models import (
        RECALL_ENDED, RECALL_SETTLED, SHARD_SIZE, CalloutEnd, CalloutInput, CalloutSummary, FlushBody, FlushRequest,
        NightHours, ResolveRequest, ResolveResult, SendRef, ShardEvents, ShardInfo, ShardInput, ShardResult,
        StopRequest, WarningInfo)
    from workflows.kit.shards import shard_id
    from workflows.common import ACTIVITY, LOCAL
    from workflows.escalation import (
        Ack, Actions, Escalation, FlushResult, Inbox, Recall, RecallResult, Target, drive, record_late)
    from workflows.kit import broadcast as bc
    from workflows.kit.names import Broadcast, Callout
    from workflows.relay import RELAY, RelayFlush, Relays

__all__ = ["RECALL_ENDED", "SHARD_SIZE", "CalloutEnd", "CalloutInput", "CalloutShardWorkflow", "CalloutSummary",
           "FlushBody", "FlushRequest", "FlushResult", "NightHours", "ResolveRequest", "ResolveResult", "SendRef",
           "ShardEvents", "ShardInfo", "ShardInput", "ShardResult", "StopRequest", "WarningCalloutWorkflow",
           "WarningInfo", "shard_id"]
"""The call-out's data lives in workflows/callout_models.py; it is imported from here as before."""

SHARD_TASK_TIMEOUT = timedelta(seconds=30)
"""A shard's workflow task timeout (Temporal's default is 10 s). At a district-wide burst on a starved machine a
shard's task (its answers applied, their local activity awaited) took 10-52 s; at 10 s Temporal timed 632 of them
out, threw their work away (the local activity's result with it) and gave them to the worker again, each retry
slower than the last (issue 25). Within 30 s they finish once. The cost: a task on a worker killed mid-task is
retried after 30 s rather than 10 s (a task not yet started moves on within 5 s: the sticky queue's timeout)."""


@workflow.defn
class CalloutShardWorkflow:
    """Escalation for a shard's persons (SHARD_SIZE, more in the largest call-outs: `shard_size_for`), with one timer
    at the earliest deadline."""

    def __init__(self) -> None:
        self.inbox = Inbox()
        self.esc: Escalation | None = None
        self.recalls_asked: set[str] = set()
        self.relays: Relays | None = None  # 到户到人 (workflows/relay.py), when the plan asks for it
        self.early: list[Ack] = []  # answers that came before the shard had loaded its targets

    @workflow.run
    async def run(self, inp: ShardInput) -> ShardResult:
        targets: list[Target] = await workflow.execute_activity(
            Callout.LOAD_SHARD, args=[inp.callout_id, inp.shard], result_type=list[Target], **ACTIVITY)
        self.esc = Escalation.start(workflow.info().workflow_id, inp.plan.policies, targets,
                                    night=inp.night.contains(workflow.now()))
        relay_task = None
        if inp.plan.relay is not None and any(t.tier == inp.plan.relay.tier for t in targets) \
                and workflow.patched(RELAY):
            relays = self.relays = Relays(workflow.info().workflow_id, inp.plan.relay, inp.warning.level, targets)
            relays.take(self.early)  # (their call-out share is in the inbox already)

            async def relay_flush(actions: Actions) -> FlushResult:
                return await workflow.execute_activity(
                    Callout.RELAY_FLUSH,
                    RelayFlush(callout_id=inp.callout_id, workflow_id=workflow.info().workflow_id,
                               run_id=workflow.info().run_id, relay=relays.relay, drill=inp.drill,
                               sends=actions.sends, records=actions.records),
                    result_type=FlushResult, **ACTIVITY)

            relay_task = asyncio.create_task(relays.run(relay_flush))
        self.early = []

        async def flush(actions: Actions, local: bool = False) -> FlushResult:
            req = FlushRequest(callout_id=inp.callout_id, workflow_id=workflow.info().workflow_id,
                               run_id=workflow.info().run_id, plan=inp.plan, warning=inp.warning, drill=inp.drill,
                               packed=FlushBody(refs=[SendRef.of(s) for s in actions.sends],
                                                records=actions.records).pack())
            result: FlushResult = await (
                workflow.execute_local_activity(Callout.FLUSH, req, result_type=FlushResult, **LOCAL) if local
                else workflow.execute_activity(Callout.FLUSH, req, result_type=FlushResult, **ACTIVITY))
            self.inbox.put(result.reports)  # failures the gateway reported at once
            if self.relays is not None:  # a village acknowledged: its relay opens
                self.relays.acknowledged(actions.records, workflow.now())
            return result

        async def stored(keys: list[str]) -> list[str]:  # answers on the board that no signal has brought yet
            return await workflow.execute_local_activity(Callout.STORED, args=[inp.callout_id, inp.shard, keys],
                                                         result_type=list[str], **LOCAL)

        await drive(self.esc, self.inbox, flush, until=lambda: self.inbox.stopped is not None,
                    answers=lambda actions: flush(actions, local=True),  # answers: at once, by a local activity
                    stored=stored)
        self.inbox.closed = True  # a recall not applied by now never will be: its update is refused
        if self.inbox.stopped is not None:
            reason, purpose = self.inbox.stopped.split("|", 1)
            actions = self.esc.cancel(workflow.now(), reason, purpose)  # type: ignore[arg-type]
            if actions:
                await flush(actions)
        # answers that came in while the last batch was written: recorded (late), not dropped with the workflow.
        # Temporal refuses to complete a workflow that has unhandled signals, so none arrives unseen after this.
        while leftovers := [a for a in self.inbox.drain() if isinstance(a, Ack)]:
            if not record_late():
                break
            actions = Actions()
            for ack in leftovers:
                actions.extend(self.esc.acknowledge(ack, record_late))
            if actions:
                await flush(actions)
        if relay_task is not None and self.relays is not None:
            await self._until_relays_end(self.relays, relay_task, flush, relay_flush)
        await workflow.wait_condition(workflow.all_handlers_finished)  # every recall answered before the end
        return ShardResult(counts=self.esc.counts())

    async def _until_relays_end(self, relays: Relays, task: asyncio.Task,
                                flush: Callable[[Actions], Awaitable[FlushResult]],
                                relay_flush: Callable[[Actions], Awaitable[FlushResult]]) -> None:
        """The call-out's own escalation has ended; the relays run on (a relay asked at the last acknowledgement
        waits its deadline and escalation out): answers to the call-out meanwhile are recorded (late) as they come,
        and a village acknowledged now (after it was given up) still opens its relay."""
        if self.inbox.stopped is not None:
            relays.stopped = self.inbox.stopped.split("|", 1)[0]
        relays.main_done = True
        while True:
            await workflow.wait_condition(lambda: task.done() or bool(self.inbox.items))
            actions = Actions()
            for ack in [a for a in self.inbox.drain() if isinstance(a, Ack)]:
                actions.extend(self.esc.acknowledge(ack, record_late))  # type: ignore[union-attr]
            if actions:
                await flush(actions)
            if task.done() and relays.fresh:  # a relay opened after the others had ended
                task = asyncio.create_task(relays.run(relay_flush))
            if task.done() and not self.inbox.items:
                break
        await task

    @workflow.signal
    def events(self, batch: ShardEvents) -> None:
        acks, reports = batch.acks, batch.reports
        if self.relays is not None:  # relay answers and the relay's reports go to the relay episode
            acks = self.relays.take(acks)
            self.relays.inbox.put([r for r in reports if self.relays.mine(r)])
            reports = [r for r in reports if not self.relays.mine(r)]
        elif self.esc is None:
            self.early.extend(a for a in acks if a.households is not None)
        self.inbox.put([*acks, *reports])

    @workflow.update
    async def recall(self, req: Recall) -> RecallResult:
        """重新呼叫: a duty officer calls a target's person again. Answered once drive() has applied it and its
        batch was flushed (sent and recorded), with what was sent; refused (ApplicationError) when the target
        was settled by then, or when the shard's escalation ended before applying it. Once per ref: the same
        request again waits for, and returns, the first one's answer."""
        if req.ref not in self.recalls_asked:
            self.recalls_asked.add(req.ref)
            self.inbox.put([req])
        await workflow.wait_condition(lambda: req.ref in self.inbox.recalled or self.inbox.closed)
        out = self.inbox.recalled.get(req.ref)
        if out is None:
            raise ApplicationError(RECALL_ENDED, type="RecallEnded", non_retryable=True)
        if not out.applied:
            raise ApplicationError(RECALL_SETTLED, type="RecallSettled", non_retryable=True)
        return out

    @recall.validator
    def check_recall(self, req: Recall) -> None:
        """Malformed requests are refused before they enter the history."""
        problem = None
        if not req.channels or len(req.channels) > 5 or len(req.note or "") > 1000:
            problem = "请求不完整 / channels missing or request too long"
        elif self.esc is not None:
            ts = self.esc.targets.get(req.target_key)
            policy = self.esc.policies.get(ts.target.policy) if ts is not None else None
            allowed = {c.value for step in (policy.steps if policy else []) for c in (step.notify or [])}
            if ts is None:
                problem = "本批次没有该对象 / no such target in this shard"
            elif not set(req.channels) <= allowed:
                problem = "渠道不在本方案内 / a channel outside the target's policy"
        if problem:
            raise ApplicationError(problem, type="RecallInvalid", non_retryable=True)

    @workflow.signal(name="recall")
    def recall_signal(self, req: Recall) -> None:
        """重新呼叫 as it was first built (a signal, unanswered): kept for workflows that received one;
        nothing sends it any more (the update `recall` answers once the sends are recorded)."""
        self.inbox.put([req])

    @workflow.signal
    def stop(self, req: StopRequest) -> None:
        if self.inbox.stopped is None:
            self.inbox.stopped = f"{req.reason}|{req.purpose}"
        if self.relays is not None and self.relays.stopped is None:  # open relays end too (silently)
            self.relays.stopped = req.reason

    @workflow.query
    def counts(self) -> dict[str, int]:
        return self.esc.counts() if self.esc else {}


@workflow.defn
class WarningCalloutWorkflow:
    def __init__(self) -> None:
        self.updates: list[WarningInfo] = []
        self.seen_updates: list[str] = []
        self.cancel_reason: str | None = None
        self.status = "starting"
        self.children: dict[int, workflow.ChildWorkflowHandle] = {}
        self.broadcast_on = False  # 应急广播 (patch callout-broadcast): the plan's broadcast section applies
        self.broadcast_towns: list[str] = []  # towns whose terminals were asked to play the warning
        self.heard: list[str] = []  # towns where the platform accepted the warning (a 解除 goes to these)
        self.broadcasts: list[asyncio.Task] = []  # each plays after the one before it; awaited before the end

    @workflow.run
    async def run(self, inp: CalloutInput) -> CalloutSummary:
        warning, plan = inp.warning, inp.plan
        await workflow.execute_activity(Callout.OPEN, inp, **ACTIVITY)
        self.status = "running"
        self.broadcast_on = workflow.patched("callout-broadcast") and plan.broadcast is not None
        if self.broadcast_on and plan.broadcast.covers(warning.level):  # type: ignore[union-attr]
            self._broadcast(inp, warning, "alert", warning.town_ids)
        await self._call_tiers(inp, warning, [t.id for t in plan.tiers_for(warning.level)])

        while True:
            # only what this loop would act on: once canceled or downgraded, a cancel or an update already
            # seen would hold the condition true and the loop would spin without yielding until the shards end
            await workflow.wait_condition(
                lambda: self._all_done() or (self.status == "running" and (bool(self.updates)
                                                                            or self.cancel_reason is not None)))
            if self.cancel_reason is not None and self.status == "running":
                self.status = "canceled"
                await self._stop_all(StopRequest(reason=self.cancel_reason, purpose="cancel"))
                if self.broadcast_towns:  # 解除: the towns that heard the warning hear it is over
                    self._broadcast(inp, warning, "cancel", self.broadcast_towns)
            while self.updates and self.status == "running":
                new = self.updates.pop(0)
                await self._apply_update(inp, warning, new)
                warning = new
            if self._all_done():
                break
        await asyncio.gather(*self.children.values())
        await asyncio.gather(*self.broadcasts)  # bounded tries, each records its own failure: none holds the end
        if self.status == "running":
            self.status = "completed"
        return await workflow.execute_activity(
            Callout.FINISH, CalloutEnd(callout_id=inp.callout_id, workflow_id=workflow.info().workflow_id, status=self.status,
                       reason=self.cancel_reason or "", summary_to=plan.summary_to, drill=inp.drill),
            result_type=CalloutSummary, **ACTIVITY)

    async def _apply_update(self, inp: CalloutInput, old: WarningInfo, new: WarningInfo) -> None:
        await workflow.execute_activity(Callout.RECORD_UPDATE, args=[inp.callout_id, old, new], **ACTIVITY)
        if new.level < inp.plan.min_level:
            self.status = "downgraded"
            await self._stop_all(StopRequest(reason=f"lowered to {new.level.value}", purpose="update"))
            return
        if self.broadcast_on and inp.plan.broadcast.covers(new.level):  # type: ignore[union-attr]
            # raised to a broadcast level: every town hears the new level; else the towns that have not heard it
            towns = new.town_ids if new.level > old.level else [t for t in new.town_ids if t not in self.broadcast_towns]
            if towns:
                self._broadcast(inp, new, "update", towns)
        before = {t.id for t in inp.plan.tiers_for(old.level)}
        added = [t.id for t in inp.plan.tiers_for(new.level) if t.id not in before]
        towns_added = [t for t in new.town_ids if t not in old.town_ids]
        if added:
            await self._call_tiers(inp, new, added)
        if towns_added:  # the warning area grew: call the area tiers for the new towns
            area = [t.id for t in inp.plan.tiers_for(new.level) if t.scope.startswith("area_") and t.id not in added]
            grown = new.model_copy(update={"town_ids": towns_added})
            if area:
                await self._call_tiers(inp, grown, area)

    def _broadcast(self, inp: CalloutInput, warning: WarningInfo, purpose: str, towns: list[str]) -> None:
        """Start playing the warning (or its 解除) on the towns' broadcast terminals; awaited before the end."""
        if purpose != "cancel":
            self.broadcast_towns += [t for t in towns if t not in self.broadcast_towns]
        before = self.broadcasts[-1] if self.broadcasts else None
        self.broadcasts.append(asyncio.create_task(
            self._play(inp, warning, purpose, list(towns), len(self.broadcasts), before)))

    async def _play(self, inp: CalloutInput, warning: WarningInfo, purpose: str, towns: list[str], n: int,
                    before: asyncio.Task | None) -> None:
        """One broadcast, after the one before it has ended (the platform plays them in order: a 解除 never
        before its warning, red never before orange). A 解除 goes to the towns that the platform accepted."""
        if before is not None:
            await before
        if purpose == "cancel":
            towns = list(self.heard)
            if not towns:
                return
        b = inp.plan.broadcast
        assert b is not None
        text = bc.render(b.cancel_text_zh if purpose == "cancel" else b.text_zh, level_zh=warning.level.zh,
                         event=warning.event, headline=warning.headline, area="、".join(warning.area_descs) or "全区",
                         drill=inp.drill)
        order = bc.BroadcastOrder(
            request_id=f"{inp.callout_id}/broadcast-{n}-{purpose}", subject=inp.callout_id,
            warning_id=warning.warning_id, town_ids=towns, text=text[:500], level=warning.level.value,
            repeat=b.repeat, drill=inp.drill, purpose=purpose)
        try:
            out: bc.BroadcastOutcome = await workflow.execute_activity(
                Broadcast.PLAY, order, result_type=bc.BroadcastOutcome, **bc.OPTIONS)
        except ActivityError:  # (its last try recorded broadcast.failed; an error beyond that ends here)
            return
        if purpose != "cancel" and out.status == "accepted":
            self.heard += [t for t in out.towns if t not in self.heard]

    async def _call_tiers(self, inp: CalloutInput, warning: WarningInfo, tiers: list[str]) -> None:
        resolved: ResolveResult = await workflow.execute_activity(
            Callout.RESOLVE,
            ResolveRequest(callout_id=inp.callout_id, plan=inp.plan, warning=warning, tiers=tiers,
                           first_shard=len(self.children), shard_size=inp.shard_size),
            result_type=ResolveResult, **ACTIVITY)
        for shard in resolved.shards:  # shard 0 holds the leaders: started first
            self.children[shard.index] = await workflow.start_child_workflow(
                CalloutShardWorkflow.run,
                ShardInput(callout_id=inp.callout_id, shard=shard.index, plan=inp.plan, plan_version=inp.plan_version,
                           warning=warning, night=inp.night, drill=inp.drill),
                id=shard_id(inp.callout_id, shard.index), task_timeout=SHARD_TASK_TIMEOUT)

    async def _stop_all(self, req: StopRequest) -> None:
        for handle in self.children.values():
            if not handle.done():
                await handle.signal(CalloutShardWorkflow.stop, req)

    def _all_done(self) -> bool:
        return bool(self.children) and all(h.done() for h in self.children.values()) or (
            not self.children and self.status == "running" and not self.updates)

    @workflow.signal
    def update(self, warning: WarningInfo) -> None:
        if warning.identifier not in self.seen_updates:  # an Update delivered twice changes nothing
            self.seen_updates.append(warning.identifier)
            self.updates.append(warning)

    @workflow.signal
    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason or "canceled"

    @workflow.query
    def state(self) -> str:
        return self.status
