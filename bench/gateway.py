"""Gateway benchmark: the Twilio adapter (real twilio SDK) against the local fake Twilio server,
through the real delivery path (outbox claim, priority gates, results in SQLite).

For each channel a crowd of ordinary targets is queued first and a handful of leaders a
moment later; the table shows the configured limit, the rate the queue actually drained at,
where the leaders landed in the send order and how long they waited, and what a burst of
HTTP 429 (Twilio error 20429) cost. Every message must reach Twilio exactly once.

Run: `.venv/bin/python bench/gateway.py [--sms-rate 20] [--sms 300] [--voice 20] [--leaders 5]`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402


def configure(fake, workdir: str, sms_rate: float, voice_rate: float) -> None:
    env = {"GATEWAY": "twilio", "TWILIO_ACCOUNT_SID": fake.account_sid, "TWILIO_AUTH_TOKEN": fake.auth_token,
           "TWILIO_FROM_NUMBER": fake.from_number, "TWILIO_API_BASE": fake.base_url,
           "PUBLIC_BASE_URL": "https://yingji.example.gov.cn", "RATE_SMS_PER_S": str(sms_rate),
           "RATE_VOICE_PER_S": str(voice_rate), "RUN_SCHEDULER": "false", "DATA_DIR": workdir,
           "DATABASE_URL": f"sqlite:///{workdir}/bench.db"}
    for name, value in env.items():
        os.environ[f"YINGJI_{name}"] = value
    from config import get_settings
    from store.db import migrate

    get_settings.cache_clear()
    migrate()


def batch(channel: str, prefix: str, n: int, priority: int):
    from activities.delivery import Delivery

    return [Delivery(key=f"{prefix}/{i}/{channel}", channel=channel, to=f"+86{139 if channel == 'voice' else 138}{1 if 'leader' in prefix else 0}{i:07d}",
                     body=f"【叫应】基准 {prefix} {i}", voice_text=f"暴雨橙色预警 {i}" if channel == "voice" else None,
                     person_id=f"{prefix}{i}", subject="bench", priority=priority) for i in range(n)]


async def run_channel(fake, channel: str, crowd: int, leaders: int, rate: float, throttled: int = 0) -> dict:
    from activities.delivery import deliver, reset_gates
    from activities.gateways import reset_gateways

    reset_gateways()
    reset_gates()
    fake.reset()
    if throttled:
        fake.fail_next(throttled, 20429, kind=channel)
    started = time.monotonic()
    crowd_task = asyncio.create_task(deliver(batch(channel, f"{channel}-{throttled}-crowd", crowd, priority=100)))
    await asyncio.sleep(min(2.0, crowd / rate / 4))  # the crowd is queued and draining
    leaders_queued = time.monotonic()
    lead_out = await deliver(batch(channel, f"{channel}-{throttled}-leader", leaders, priority=0))
    crowd_out = await crowd_task
    created = fake.created(channel)
    def is_leader(r) -> bool:  # leaders' numbers have a 1 after the prefix
        return r.one("To")[6] == "1"

    times = [r.at for r in created]
    leader_at = [r.at for r in created if is_leader(r)]
    to = [r.one("To") for r in created]
    ok = sum(o.status == "sent" for o in lead_out + crowd_out)
    return {
        "channel": channel, "limit": rate, "messages": crowd + leaders,
        "drain": (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan"),
        "leader_pos": max(i for i, r in enumerate(created) if is_leader(r)) + 1,
        "queued_before": sum(1 for r in created if not is_leader(r) and r.at < leaders_queued),
        "leader_wait": max(leader_at) - leaders_queued,
        "throttled": throttled, "rejected_429": sum(1 for r in fake.creates(channel) if r.status == 429),
        "sent": ok, "duplicates": len(to) - len(set(to)), "elapsed": time.monotonic() - started,
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sms-rate", type=float, default=20.0)
    ap.add_argument("--voice-rate", type=float, default=1.0)
    ap.add_argument("--sms", type=int, default=300)
    ap.add_argument("--voice", type=int, default=20)
    ap.add_argument("--leaders", type=int, default=5)
    args = ap.parse_args()
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)

    from rich.console import Console
    from rich.table import Table

    from tests.fakes.twilio_server import FakeTwilio

    rows = []
    with tempfile.TemporaryDirectory(prefix="yingji-bench-gw-") as workdir, FakeTwilio() as fake:
        configure(fake, workdir, args.sms_rate, args.voice_rate)
        rows.append(await run_channel(fake, "sms", args.sms, args.leaders, args.sms_rate))
        rows.append(await run_channel(fake, "voice", args.voice, args.leaders, args.voice_rate))
        rows.append(await run_channel(fake, "sms", args.sms, args.leaders, args.sms_rate, throttled=10))
    table = Table(title="Gateway: Twilio SDK → fake Twilio, queue drain and priority", caption=machine)
    for col in ("channel", "limit /s", "messages", "drained /s", "crowd sent before leaders queued",
                "last leader's place", "leaders' wait", "429s injected → retried", "sent once", "duplicates"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["channel"], f"{r['limit']:g}", str(r["messages"]), f"{r['drain']:.2f}",
                      str(r["queued_before"]), f"{r['leader_pos']} of {r['messages']}", f"{r['leader_wait']:.2f} s",
                      f"{r['throttled']} → {r['rejected_429']}", f"{r['sent']}/{r['messages']}", str(r["duplicates"]))
    Console(width=160).print(table)


if __name__ == "__main__":
    asyncio.run(main())
