"""kill -9 the worker while it posts a work order's result to the hotline platform (回访).

A barrier, not luck: the fake platform stores the posted result and keeps its answer until the test has killed
the worker, so the platform holds the result and the worker never heard that it did. A fresh worker takes the
activity again (its heartbeat stops: noticed in seconds) and posts again with the same idempotency key.

Afterwards the platform holds the result once (it saw the key twice and answered the second as a duplicate), the
work order records the visit posted once, with the platform's receipt, and its audit chain verifies.
"""
from __future__ import annotations

import shutil
import time
from collections import Counter

import httpx
import pytest
from sqlmodel import select

from store.audit import AuditEvent, verify
from store.auth import create_token
from store.db import session_scope
from tests.factories import small_district
from tests.faults.harness import ROOT
from tests.fakes.hotline_platform import FakeHotline
from tests.helpers import poll


@pytest.mark.budget(120)  # a dev server, a worker started twice and one heartbeat timeout (estimated)
async def test_worker_killed_while_posting_the_result_to_the_hotline_platform(make_stack):
    with FakeHotline() as platform:
        stack = make_stack(["- notify: [sms]", "- wait_ack: 30s"], {"YINGJI_HOTLINE_PLATFORM_URL": platform.base_url})
        shutil.copytree(ROOT / "definitions" / "workorders", stack.workdir / "definitions" / "workorders",
                        dirs_exist_ok=True)  # the stack copies the folders, not their yaml
        from store.db import migrate

        migrate(stack.url)
        with session_scope() as s:
            people = small_district(s)
            tokens = {"duty": create_token(s, "duty_cadre", person_id=people["duty_cadre"], label="duty"),
                      "town": create_token(s, "duty_staff", person_id=people["330110001.head"], label="town")}
        await stack.start()
        await stack.worker_started()

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.app), base_url="http://faults",
                                     timeout=120) as api:
            async def step(path: str, who: str, body: dict | None = None, status: int = 200) -> dict:
                r = await api.post(path, headers={"Authorization": f"Bearer {tokens[who]}"}, json=body or {})
                assert r.status_code == status, f"{path}: {r.status_code} {r.text}"
                return r.json()

            async def order() -> dict | None:
                r = await api.get(f"/api/workorders/{wid}", headers={"Authorization": f"Bearer {tokens['duty']}"})
                return r.json() if r.status_code == 200 else None

            wid = (await step("/api/workorders", "duty", {
                "ticket": f"K-{time.time_ns()}", "source": "12345", "category": "积水内涝", "place": "河西街与青溪路口",
                "town_id": "330110001", "words": "路口积水没过膝盖", "caller_phone": "13900007777"}, 201))["id"]
            wo = f"/api/workorders/{wid}"
            await step(f"{wo}/assign", "duty", {"unit_id": "330110001"})
            await step(f"{wo}/sign", "town")
            await step(f"{wo}/feedback", "town", {"text": "已派泵车"})
            await step(f"{wo}/complete", "town", {"result": "积水已排除"})

            hold = platform.hold_answers()
            await step(f"{wo}/close", "duty", {"decision": "close"})
            try:
                await hold.wait(120)  # the platform has stored the result; its answer waits
                stack.kill_worker()
            finally:
                hold.release()
            stack.start_worker()

            done = await poll(order, lambda w: w and w["visits"] and w["visits"][-1]["posted_at"], timeout=120,
                              what="the result posted by a fresh worker")

    [key] = platform.results
    assert platform.results[key]["result"] == "积水已排除"
    assert Counter(platform.requests) == {key: 2}, platform.requests  # posted again after the kill, held once
    assert stack.kills == 1
    with session_scope(write=False) as s:
        events = list(s.exec(select(AuditEvent).where(AuditEvent.subject == wid)))
        chain = verify(s, wid)
    [posted] = [e for e in events if e.kind == "workorder.visit.posted"]
    assert posted.payload.get("receipt") == f"R-{key}" and posted.payload["duplicate"] is True, posted.payload
    assert len(done["visits"]) == 1 and chain.ok, chain.as_dict()
