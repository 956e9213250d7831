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
        if getattr(self, "proc", None) is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def watch_board(cid: str, seen: dict[str, float], stop: asyncio.Event, every: float = 0.1,
                      stamped: dict[str, float] | None = None, recorded: dict[str, float] | None = None,
                      committed: dict[str, float] | None = None, ready: asyncio.Event | None = None
                      ) -> dict[str, float]:
    """When each person's answer is first visible on the board: their call-out target shown answered (the API
    stored the answer: a `CalloutAnswer` row) or acknowledged, on time or late (逾时应答), in the read model the
    board shows; polled every `every` s until `stop` is set. `seen` gets the monotonic second (the machine's clock, the
    same in every process) it was first seen; `stamped` each such row's stamp (epoch seconds: an answer's
    `stored_at`, a target's `updated_at`) as first seen; `recorded` when the row was first seen acknowledged (the
    workflow, or for an ended shard the API's store, recorded the acknowledgement).

    Each poll reads the rows a live board's poll reads (api/services/board.py `changed_rows`): the call-out's
    answers stored and targets updated since the newest of each seen, less `OVERLAP_S` for a row stamped before its
    transaction committed, through the indexes on (callout_id, stored_at) and (callout_id, updated_at). It once
    read every acknowledged target of the call-out each time: ~60 ms of PostgreSQL's CPU per poll at 100,000, a
    third of a core taken from the system under test at 20 polls a second. The board is read by a duty officer's
    browser, not by the phones: the polls run in a process of their own (`_watch`; on a thread of the bench's they
    waited for the interpreter the phones of 100,000 persons kept busy, and added up to 1.3 s at p99 to what they
    saw: docs/performance.md, "The watch in a process of its own"), each stamped the moment its read returns, and the
    firsts come back through a pipe. `missed_by_watch` says afterwards whether the overlap was enough. Only answers and
    acknowledged targets are read (a send's update is not the watch's business).

    `committed` (PostgreSQL with `track_commit_timestamp = on`) gets, for each person, the commit time (epoch seconds)
    of the transaction whose row the watch first saw answered: where the system's part ends (from then on any reader
    of the board sees it) and the watch's own lag begins. Returns the watch's cost: polls, rows read, seconds spent
    reading (on the same cores as the system measured). `ready` is set once the watch has polled (its process takes
    a second or two to start): answers sent before would read as seen late."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # (not forked from a process with threads and open connections)
    receiving, sending = ctx.Pipe(duplex=False)
    halt = ctx.Event()
    process = ctx.Process(target=_watch, args=(cid, every, committed is not None, sending, halt),
                          name="board-watcher", daemon=True)
    process.start()
    sending.close()
    cost: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    def receive() -> None:  # the firsts as the watch finds them (the bench reads `seen` while it runs)
        while True:
            try:
                message = receiving.recv()
            except EOFError:  # the watch died (its error on stderr): nothing more will be seen, the bench goes on
                message = None
            if ready is not None and not ready.is_set():
                loop.call_soon_threadsafe(ready.set)
            if message is None:
                return
            if isinstance(message, dict):
                cost.update(message)
                return
            for kind, person, at, value in message:
                if kind == "seen":
                    seen[person] = at
                    if stamped is not None:
                        stamped[person] = value[0]
                    if committed is not None and value[1] is not None:
                        committed[person] = value[1]
                elif recorded is not None:
                    recorded[person] = at

    reader = threading.Thread(target=receive, name="board-watch-reader", daemon=True)
    reader.start()
    try:
        await stop.wait()
    finally:
        halt.set()
        await asyncio.to_thread(reader.join)
        await asyncio.to_thread(process.join, 30)
    return cost


def _watch(cid: str, every: float, want_commits: bool, out, halt) -> None:
    """`watch_board`'s polls, in a process of their own: each poll's firsts (seen, recorded) sent on `out`, then the
    cost when `halt` is set."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import false, literal_column, true
    from sqlmodel import col, select

    from api.services.board import answered_since, changed_since
    from store.callouts import CalloutAnswer, CalloutTarget
    from store.db import session_scope

    cursors = {"answers": datetime(2000, 1, 1, tzinfo=UTC), "targets": datetime(2000, 1, 1, tzinfo=UTC)}
    cost = {"polls": 0, "rows": 0, "seconds": 0.0}
    with session_scope(write=False) as s:
        commits = want_commits and commit_times_kept(s)

    def commit_of(table: str):
        return literal_column(f"pg_xact_commit_timestamp({table}.xmin)" if commits else "NULL")

    def poll() -> list[tuple[str, datetime, bool, datetime | None]]:
        began = time.perf_counter()
        back = timedelta(seconds=OVERLAP_S)
        with session_scope(write=False) as s:
            answers = s.exec(select(CalloutTarget.person_id, CalloutAnswer.stored_at, false(),
                                    commit_of("callout_answer"))
                             .join(CalloutTarget, col(CalloutTarget.id) == CalloutAnswer.target_id)
                             .where(*answered_since(cid, cursors["answers"] - back))).all()
            acked = s.exec(select(CalloutTarget.person_id, CalloutTarget.updated_at, true(),
                                  commit_of("callout_target"))
                           .where(*changed_since(cid, cursors["targets"] - back),
                                  col(CalloutTarget.acknowledged_at).is_not(None))).all()
        cursors["answers"] = max([cursors["answers"], *(row[1] for row in answers)])
        cursors["targets"] = max([cursors["targets"], *(row[1] for row in acked)])
        cost["polls"] += 1
        cost["rows"] += len(answers) + len(acked)
        cost["seconds"] += time.perf_counter() - began
        return [*answers, *acked]  # (person, stamp, acknowledged, commit): a row shown answered comes first

    seen: set[str] = set()
    recorded: set[str] = set()
    while not halt.is_set():
        found = poll()
        now = time.monotonic()
        firsts = []
        for person, at, acked, commit in found:
            if person not in seen:
                seen.add(person)
                firsts.append(("seen", person, now, (at.timestamp(), commit.timestamp() if commit else None)))
            if acked and person not in recorded:
                recorded.add(person)
                firsts.append(("recorded", person, now, None))
        if firsts or cost["polls"] == 1:  # (the first poll's, even empty: the watch is ready)
            out.send(firsts)
        halt.wait(every)
    out.send(cost)
    out.close()


OVERLAP_S = 2.0
"""How far before the newest change seen the watch reads again: the console's board's (api/console/board.py
`OVERLAP`), so that `missed_by_watch` says whether the board's is enough. It was 5 s; at 100,000 the watch then read
~3,600 rows a poll, 162 ms of the two cores it shares with the system it measures (docs/performance.md, "Answers in rows
of their own")."""


def missed_by_watch(cid: str, seen: dict[str, float]) -> int:
    """Acknowledged targets of the call-out that the watch never saw: rows whose stamp fell behind the poll's cursor
    by more than `OVERLAP_S` before they committed (0 is the expected answer)."""
    from sqlmodel import col, select

    from store.callouts import CalloutTarget
    from store.db import session_scope

    with session_scope(write=False) as s:
        acked = s.exec(select(CalloutTarget.person_id).where(CalloutTarget.callout_id == cid,
                                                             col(CalloutTarget.acknowledged_at).is_not(None))).all()
    return len(set(acked) - set(seen))


def answered_late(cid: str) -> int:
    """Acknowledged targets of the call-out answered only after they were settled (given up) or their shard ended
    (`ack_late`): recorded as 逾时应答, by the shard or, for an ended one, by the API's store (store/answers.py)."""
    from sqlmodel import col, func, select

    from store.callouts import CalloutTarget
    from store.db import session_scope

    with session_scope(write=False) as s:
        return s.exec(select(func.count()).where(CalloutTarget.callout_id == cid, col(CalloutTarget.ack_late))).one()


def commit_times_kept(s) -> bool:
    """Does the database keep each transaction's commit time (PostgreSQL with `track_commit_timestamp = on`)?"""
    from sqlalchemy import text

    return s.get_bind().dialect.name == "postgresql" and s.execute(text("SHOW track_commit_timestamp")).scalar() == "on"


def commit_lag(cid: str) -> list[float] | None:
    """For each acknowledged target of the call-out, seconds from its row's `updated_at` stamp to the commit of the
    transaction that wrote it (PostgreSQL's commit timestamps: `track_commit_timestamp = on` in the server), the
    writers' part of what a board's overlap must cover; None on SQLite or with the setting off."""
    from sqlalchemy import text

    from store.db import session_scope

    with session_scope(write=False) as s:
        if not commit_times_kept(s):
            return None
        lags = s.execute(text("SELECT EXTRACT(EPOCH FROM pg_xact_commit_timestamp(xmin) - updated_at) FROM "
                              "callout_target WHERE callout_id = :c AND acknowledged_at IS NOT NULL"), {"c": cid})
        return [float(v) for v in lags.scalars() if v is not None]
