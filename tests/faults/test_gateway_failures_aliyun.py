"""Aliyun refuses 30% of sends and throttles 10% more during a 500-person call-out (test_gateway_failures.py with
the Aliyun SMS and voice fakes through the real SDKs).

A refused send (isv.BUSINESS_LIMIT_CONTROL) ends the wait at once and the policy moves on (the other channel, then
another round), so everyone is still reached; a throttled one (Throttling.User) waits out a backoff, queues at the
account's rate gate again and goes through, created once. Every failure is in the outbox and in the audit trail with
Aliyun's code.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest
from sqlmodel import select

from store.audit import AuditEvent
from store.db import session_scope
from tests.faults.harness import People, build_directory, check_callout, start_callout, wait_until_ended
from tests.fakes.aliyun_server import FakeAliyun, aliyun_env, write_templates

N = 500
STEPS = ["- notify: [sms]", "- wait_ack: 30s", "- notify: [voice]", "- wait_ack: 30s", "- repeat: 6",
         "- escalate: deputy", "- wait_ack: 30s", "- inform: duty_chief"]


@pytest.mark.budget(150)  # like test_gateway_failures.py, and the SDK's requests
async def test_aliyun_refusing_30_percent_and_throttling_10_percent_of_sends(make_stack):
    with FakeAliyun(webhook_base="http://faults") as fake:
        stack = make_stack(STEPS, aliyun_env(fake, public_base_url="http://yingji.test", sms_per_s=1000,
                                             voice_per_s=1000))
        write_templates(stack.workdir / "definitions" / "gateways" / "aliyun.yaml")
        towns = build_directory(stack.url, N)
        fake.fail_randomly(0.3, 0.1, seed=20261205)
        await stack.start()
        t0 = time.monotonic()
        cid = await start_callout(stack, towns)
        people = People(stack, cid, N, spread_s=10, late_share=0.0)
        stop = asyncio.Event()
        answering = asyncio.create_task(people.run(stop))
        try:
            ended = await wait_until_ended(stack, cid, timeout=200)  # anti-hang bound
        finally:
            stop.set()
            await answering
        creates = Counter(r.params["OutId"] for r in fake.created())
        codes = Counter(r.code for r in fake.requests if r.kind)
        refused = list(fake.refused)
    figures = check_callout(cid, N, ended, creates, people=people)  # every message created at most once, all acknowledged
    assert not refused, f"requests refused at the door: {refused[:5]}"
    rows = [m for m in figures["rows"] if (m.meta or {}).get("purpose") != "summary"]
    failed = {m.id for m in rows if m.status == "failed"}
    share = len(failed) / len(rows)
    assert 0.2 < share < 0.4, f"{share:.0%} of sends failed"
    assert codes["Throttling.User"] > 0 and codes["isv.BUSINESS_LIMIT_CONTROL"] == len(failed)
    with session_scope(write=False) as s:
        events = list(s.exec(select(AuditEvent).where(AuditEvent.subject == cid, AuditEvent.kind == "callout.sent")))
    recorded = {e.payload["outbox_id"] for e in events if e.payload["status"] == "failed"}
    assert recorded == failed, "every failure is in the audit trail, and only the failures"
    assert all("isv.BUSINESS_LIMIT_CONTROL" in e.payload["error"] for e in events if e.payload["status"] == "failed")
    by_person: dict[str, list] = {}
    for m in sorted(rows, key=lambda m: m.id):
        by_person.setdefault(m.person_id, []).append(m)
    first_failed = [p for p, ms in by_person.items() if ms[0].status == "failed"]
    saved_by = Counter(next(m.channel for m in by_person[p] if m.status == "sent") for p in first_failed)
    assert first_failed and sum(saved_by.values()) == len(first_failed)
    assert all(p.startswith("r") for p in by_person)  # nobody needed their deputy
    print(f"\n{len(rows)} sends, {len(failed)} refused ({share:.0%}), {codes['Throttling.User']} throttled and retried; "
          f"{len(first_failed)} persons whose first message failed were reached by {dict(saved_by)}; everyone "
          f"acknowledged after {time.monotonic() - t0:.0f} s")
