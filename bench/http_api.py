"""`yingji api` as a process of its own on a bench stack's settings, and Twilio's signature on the requests the
benches send it: answers go through HTTP, uvicorn, the signature check and the API, as a phone's would."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TOKEN = "bench-twilio-auth-token"
ADMIN = "bench-admin"


def signed(base: str, path: str, params: dict[str, str]) -> tuple[str, dict[str, str], dict[str, str]]:
    from twilio.request_validator import RequestValidator

    url = base + path
    return url, params, {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature(url, params)}


class Api:
    """`yingji api` as a subprocess on the bench stack's settings."""

    def __init__(self, stack, workers: int = 1) -> None:
        self.workers = workers
        from bench.callout import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **stack.env, "YINGJI_TWILIO_AUTH_TOKEN": TOKEN, "YINGJI_PUBLIC_BASE_URL": self.base,
                    "YINGJI_ADMIN_TOKEN": ADMIN, "YINGJI_RUN_SCHEDULER": "false", "NO_COLOR": "1",
                    "YINGJI_RATE_ACK_PER_MIN": "10000000"}  # every phone here comes from one address
        self.log = Path(stack.workdir) / "api.log"

    def pids(self) -> list[int]:
        """The process and its workers (uvicorn's, with --workers N)."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            children = []
        return [self.proc.pid, *map(int, children)]

    def cpu_s(self) -> float:
        from bench.callout import cpu_s

        return sum(cpu_s(p) for p in self.pids())

    def start(self) -> None:
        import httpx

        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(self.port),
                                          "--log-level", "warning", "--no-access-log",
                                          "--workers", str(self.workers)],
                                         cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.base + "/healthz", timeout=2)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the API did not start:\n" + self.log.read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def watch_board(cid: str, seen: dict[str, float], stop: asyncio.Event, every: float = 0.1) -> None:
    """When each person's acknowledgement is first visible on the board: their call-out target acknowledged, on
    time or late (逾时应答), in the read model the board shows; polled every `every` s until `stop` is set.

    The board is read by a duty officer's browser, not by the phones: the polls run on a thread of their own, each
    is stamped the moment its read returns, and each read is one row. (Stamped on the bench's event loop, which also
    sends the phones' 1,000 requests a second, a read's time waited for the loop: 0.35-0.45 s at p90-p99 from a
    row's write to its stamp, for a poll every 0.1 s.)"""
    from sqlalchemy import func
    from sqlmodel import col, select

    from store.callouts import CalloutTarget
    from store.db import session_scope

    def poll() -> list[str]:
        # one row per read (the ids joined by the database): a read of thousands of rows takes the GIL back once per
        # row, and each time waits its turn behind the client's loop, which stretched a read to ~0.3 s
        with session_scope(write=False) as s:
            joined = (func.string_agg if s.get_bind().dialect.name == "postgresql" else func.group_concat)
            ids = s.exec(select(joined(CalloutTarget.person_id, ",")).where(
                CalloutTarget.callout_id == cid, col(CalloutTarget.acknowledged_at).is_not(None))).one()
        return ids.split(",") if ids else []

    halt = threading.Event()

    def watch() -> None:
        while not halt.is_set():
            found = poll()
            now = time.monotonic()
            for person in found:
                seen.setdefault(person, now)
            halt.wait(every)

    thread = threading.Thread(target=watch, name="board-watcher", daemon=True)
    thread.start()
    try:
        await stop.wait()
    finally:
        halt.set()
        await asyncio.to_thread(thread.join)
