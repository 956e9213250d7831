"""Two attempts of one send activity never both ask the gateway for a message (issue 15, finding 3).

On a starved machine Temporal may give up on an attempt whose heartbeats stopped coming while it is
still alive and sending. Here the first attempt of a call-out shard's flush loses every heartbeat (a
worker interceptor drops them, as a blocked event loop would) and the fake Twilio holds its first
request; Temporal starts attempt 2 after the heartbeat timeout while attempt 1 still sends at the
account's rate. Once attempt 2 has taken over, the held request goes through. Then: every message
was created at Twilio exactly once, every outbox row is `sent` with the sid Twilio gave it, the
audit trail holds each send once, the workflow got attempt 2's answer.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select
from temporalio import activity, workflow
from temporalio.worker import ActivityInboundInterceptor, ActivityOutboundInterceptor, Interceptor, Worker

from activities import all_activities
from activities.heartbeat import HeartbeatInterceptor

from store.audit import AuditEvent
from store.db import session_scope
from store.messages import OutboxMessage
from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio
from tests.workflows.callout_helpers import callout_input

with workflow.unsafe.imports_passed_through():
    from workflows.callout import FlushRequest, FlushResult
    from workflows.common import ACTIVITY
    from workflows.escalation import Send

N = 24


@workflow.defn(sandboxed=False)
class OneFlush:
    @workflow.run
    async def run(self, req: FlushRequest) -> FlushResult:
        return await workflow.execute_activity("callout.flush", req, result_type=FlushResult, **ACTIVITY)


class _Mute(ActivityOutboundInterceptor):
    def heartbeat(self, *details) -> None:
        if activity.info().attempt == 1:  # the first attempt's heartbeats never reach Temporal
            return
        super().heartbeat(*details)


class _MuteIn(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_Mute(outbound))


class MuteFirstAttempt(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _MuteIn(next)


@pytest.fixture
def fake(db_url, monkeypatch):
    with FakeTwilio() as f:
        use_fake_twilio(monkeypatch, f, sms_per_s=1.0)  # attempt 1 is still sending when attempt 2 starts
        yield f


def rows() -> list[OutboxMessage]:
    with session_scope(write=False) as s:
        return list(s.exec(select(OutboxMessage).order_by(OutboxMessage.id)))


async def attempt_two_claimed(handle, fake: FakeTwilio) -> bool:
    pending = (await handle.describe()).raw_description.pending_activities
    if not pending or pending[0].attempt < 2:
        return False
    return any(r.claim_attempt == 2 for r in rows()) or any(r.method == "GET" for r in fake.requests)


async def test_a_stalled_attempt_and_its_retry_create_each_message_once(dev_env, fake):
    inp = callout_input()
    wid = f"overlap-{uuid.uuid4().hex[:8]}"
    sends = [Send(key=f"{wid}/t{i}/0.0/p{i}/sms", target_key=f"t{i}", person_id=f"p{i}", name=f"甲{i}",
                  to=f"+8613900{i:06d}", channel="sms") for i in range(N)]
    req = FlushRequest(callout_id=inp.callout_id, workflow_id=wid, run_id="r", plan=inp.plan, warning=inp.warning,
                       sends=sends, records=[])
    arrived, release = fake.hold_next()
    tq = f"overlap-{uuid.uuid4().hex[:8]}"
    worker = Worker(dev_env.client, task_queue=tq, workflows=[OneFlush], activities=all_activities(),
                    activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=8),
                    interceptors=[MuteFirstAttempt(), HeartbeatInterceptor()])
    async with worker:
        handle = await dev_env.client.start_workflow(OneFlush.run, req, id=wid, task_queue=tq,
                                                     execution_timeout=timedelta(minutes=5))
        assert await asyncio.to_thread(arrived.wait, 120), "attempt 1 never reached Twilio"
        # barrier: attempt 2 has started and has claimed (or, without fencing, asked Twilio what it holds)
        for _ in range(1200):  # anti-hang bound
            if await attempt_two_claimed(handle, fake):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("attempt 2 never started")
        release.set()  # the held request reaches Twilio now, while attempt 2 runs
        result = await handle.result()
    created = Counter(parse_qs(urlsplit(r.one("StatusCallback") or "").query)["o"][0] for r in fake.created())
    final = rows()
    twice = [o for o, c in created.items() if c > 1]
    assert not twice, f"created at Twilio more than once: {twice}"
    assert set(created) == {str(r.id) for r in final} and len(final) == N
    sids = {m["sid"]: m for m in fake.messages.values()}
    assert all(r.status == "sent" and r.provider_id in sids for r in final), \
        Counter((r.status, r.provider_id in sids) for r in final)
    assert len({r.provider_id for r in final}) == N
    assert {r.claim_attempt for r in final} <= {1, 2} and any(r.claim_attempt == 2 for r in final)
    with session_scope(write=False) as s:
        sent = Counter(e.step_id for e in s.exec(select(AuditEvent).where(AuditEvent.subject == inp.callout_id,
                                                                        AuditEvent.kind == "callout.sent")))
    assert len(sent) == N and max(sent.values()) == 1
    assert result.reports == [] and len(result.accepted) == N
    desc = await handle.describe()
    assert desc.status.name == "COMPLETED"
    by_attempt = Counter(r.claim_attempt for r in final)
    print(f"\nattempt 1 sent {by_attempt[1]}, attempt 2 took over and sent {by_attempt[2]}; "
          f"{sum(created.values())} creates at Twilio for {N} messages")
