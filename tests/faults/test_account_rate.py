"""One send rate per provider account, whatever the number of worker processes (issue 15, finding 7).

Two worker processes (real subprocesses, each with its own priority gate, as two `yingji worker`
replicas have) send 24 SMS each through the real delivery path to one fake Twilio account limited
to 5 per second, on one database. The fake records when each request arrived: in no one-second
window may there be more than the limit plus jitter (half the limit, rounded up: requests that left
late next to ones on time, on a loaded machine), which stays under two accounts' worth. With a limit
per process the two together sent 11 in a second.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.twilio_server import FakeTwilio, use_fake_twilio

ROOT = Path(__file__).resolve().parents[2]
LIMIT, EACH = 5, 24
JITTER = (LIMIT + 1) // 2  # 3: at most 8 in a second, where two limits gave 11

SCRIPT = """
import asyncio, os, sys, time
sys.path.insert(0, {root!r})
from activities.delivery import Delivery, deliver
go = {go!r}
while not os.path.exists(go):
    time.sleep(0.01)
asyncio.run(deliver([Delivery(key=f"{name}/{{i}}/sms", channel="sms", to=f"+86138{{i:08d}}", body=f"{name} {{i}}",
                              person_id=f"{name}{{i}}", subject="rate") for i in range({each})]))
"""


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.fixture
def fake(db_url, monkeypatch):
    with FakeTwilio() as f:
        use_fake_twilio(monkeypatch, f, sms_per_s=LIMIT)
        yield f


def test_two_worker_processes_keep_to_one_account_rate(fake, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT), go=str(go), name=name, each=EACH)],
                              env=os.environ.copy(), cwd=ROOT) for name in ("w1", "w2")]
    try:
        time.sleep(1.0)  # both imported and waiting (the barrier below starts them together)
        go.write_text("go")
        for p in procs:
            assert p.wait(300) == 0  # anti-hang bound: 48 sends at 5/s take ~10 s
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    created = fake.created("sms")
    assert len(created) == 2 * EACH
    bodies = [r.one("Body") for r in created]
    assert len(set(bodies)) == 2 * EACH  # each once
    # both sent at once (interleaved), not one after the other
    first_w2, last_w1 = bodies.index(next(b for b in bodies if b.startswith("w2"))), \
        max(i for i, b in enumerate(bodies) if b.startswith("w1"))
    assert first_w2 < last_w1, bodies
    peak = max_in_any_second([r.at for r in created])
    print(f"\n{2 * EACH} SMS from 2 processes, limit {LIMIT}/s: at most {peak} in any second")
    assert peak <= LIMIT + JITTER, f"{peak} requests in one second; the account allows {LIMIT}"
