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


async def watch_board(base: str, cid: str, seen: dict[str, float], stop: asyncio.Event,
                      recorded: dict[str, float] | None = None, ready: asyncio.Event | None = None,
                      page: dict | None = None) -> dict[str, float]:
    """When each person's answer is first visible on the console's live board of call-out `cid`, as a duty officer's
    browser sees it: the board's own server-sent events (`GET /console/callouts/{cid}/stream` of the API at `base`,
    logged in with the bench's admin token), read from the moment the watch starts until `stop` is set. With `page`
    (a dict), the watch opens the board's page first and follows the stream the page names, as a browser does: a
    full page (500 rows of a larger call-out) is sent only its own rows, and `page["persons"]` gets the persons on it
    (None: every row, a page with room for more); without, it takes every row (the costliest board: every answer
    seen). Visible: the target's row came answered (the API stored the answer: `answered_at`) or acknowledged, on
    time or late (逾时应答). `seen` gets the monotonic second (the machine's clock, the same in every process) each person was first seen, `recorded` when their row
    first came acknowledged (the workflow, or for an ended shard the API's store, recorded it).

    The board polls every 0.5 s and is sent at once the answers its own process stores (api/services/answers/shown.py),
    so this is what the console shows, its cost to the API included. (Until 8 Dec the watch re-created the board's
    poll against the database, every 0.5 s in bench/callout.py and every 0.1 s in bench/api_load.py.) The stream is
    read in a process of its own, as a browser is (on a thread of the bench's it waited for the interpreter the
    phones of 100,000 persons kept busy: docs/performance.md, "The watch in a process of its own"), each event stamped
    as it arrives, and the firsts come back through a pipe. Returns the stream's cost: events, rows, bytes. `ready` is
    set once the board's first tick has come (the watch's process takes a second or two to start): answers sent
    before it would read as seen late."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # (not forked from a process with threads and open connections)
    receiving, sending = ctx.Pipe(duplex=False)
    halt = ctx.Event()
    process = ctx.Process(target=_watch, args=(base, cid, sending, halt, page is not None), name="board-watcher",
                          daemon=True)
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
            if isinstance(message, tuple):  # ("page", the persons on it or None), before the stream's first tick
                if page is not None:
                    page["persons"] = message[1]
                continue
            if ready is not None and not ready.is_set():
                loop.call_soon_threadsafe(ready.set)
            if message is None:
                return
            if isinstance(message, dict):
                cost.update(message)
                return
            for kind, person, at in message:
                if kind == "seen":
                    seen[person] = at
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


def _watch(base: str, cid: str, out, halt, as_page: bool) -> None:
    """`watch_board`'s stream, in a process of its own: logged in to the console (and the board's page opened, `as_page`:
    its persons sent on `out` first), each event's firsts (seen, recorded) sent on `out` as they come (an empty list
    with the first tick: the watch is ready), then the cost when `halt` is set."""
    import html
    import json
    import re
    from datetime import UTC, datetime
    from urllib.parse import quote

    import httpx

    cost = {"events": 0, "rows": 0, "bytes": 0}
    lock = threading.Lock()
    web = httpx.Client(base_url=base, timeout=httpx.Timeout(60, read=None))
    page = web.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    login = web.post("/console/login/token", data={"token": ADMIN, "csrf": csrf})
    if login.status_code != 303:
        raise RuntimeError(f"the board watch could not log in: {login.status_code} {login.text[:300]}")
    url = f"/console/callouts/{cid}/stream?since={quote(datetime.now(UTC).isoformat())}"
    if as_page:
        url = html.unescape(re.search(r'data-stream="([^"]+)"', web.get(f"/console/callouts/{cid}").text).group(1))
        named = re.search(r"[?&]rows=([0-9,]+)", url)
        out.send(("page", _persons_of([int(i) for i in named.group(1).split(",")]) if named else None))

    def read() -> None:
        seen: set[str] = set()
        recorded: set[str] = set()
        ready = False
        with web.stream("GET", url) as stream:
            if stream.status_code != 200:
                raise RuntimeError(f"the board's stream: {stream.status_code} {stream.read()[:300]!r}")
            event, data = "", ""
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line and event:
                    now = time.monotonic()
                    firsts = []
                    rows = json.loads(data) if event == "rows" else []
                    for r in rows:
                        person = r["person_id"]
                        if (r["answered_at"] or r["ack_at"]) and person not in seen:
                            seen.add(person)
                            firsts.append(("seen", person, now))
                        if r["ack_at"] and person not in recorded:
                            recorded.add(person)
                            firsts.append(("recorded", person, now))
                    with lock:
                        cost["events"] += 1
                        cost["rows"] += len(rows)
                        cost["bytes"] += len(data)
                        if firsts or (event == "status" and not ready):  # (the first tick's, even empty: ready)
                            ready = True
                            out.send(firsts)
                    event, data = "", ""

    threading.Thread(target=read, name="board-stream", daemon=True).start()
    halt.wait()
    with lock:  # (the stream's thread ends with the process)
        out.send(cost)
        out.close()


def _persons_of(target_ids: list[int]) -> list[str]:
    from sqlmodel import col, select

    from store.callouts import CalloutTarget
    from store.db import session_scope

    with session_scope(write=False) as s:
        return sorted(s.exec(select(CalloutTarget.person_id).where(col(CalloutTarget.id).in_(target_ids))))


def shown_stamps(cid: str) -> dict[str, tuple[float, float | None]]:
    """For each person whose target the API showed answered: when the answer's row was stamped (`stored_at`, epoch
    seconds, just before its commit) and, on PostgreSQL with `track_commit_timestamp = on`, when its transaction
    committed (from then on any reader of the board could see it: where the system's part ends and the board's
    begins); a target's first answer row."""
    from sqlalchemy import literal_column
    from sqlmodel import col, select

    from store.callouts import CalloutAnswer, CalloutTarget
    from store.db import session_scope

    with session_scope(write=False) as s:
        commit = literal_column("pg_xact_commit_timestamp(callout_answer.xmin)" if commit_times_kept(s) else "NULL")
        rows = s.exec(select(CalloutTarget.person_id, CalloutAnswer.stored_at, commit)
                      .join(CalloutTarget, col(CalloutTarget.id) == CalloutAnswer.target_id)
                      .where(CalloutAnswer.callout_id == cid).order_by(CalloutAnswer.stored_at)).all()
    out: dict[str, tuple[float, float | None]] = {}
    for person, stored, committed in rows:
        out.setdefault(person, (stored.timestamp(), committed.timestamp() if committed else None))
    return out


def missed_by_watch(cid: str, seen: dict[str, float], among: set[str] | None = None) -> int:
    """Acknowledged targets of the call-out that the board's stream never sent answered: rows whose stamp fell behind
    the board poll's cursor by more than its overlap (api/console/board.py `OVERLAP`) before they committed, and that
    no answer's writer told the board of (0 is the expected answer); of the persons `among` (those the board shows)."""
    from sqlmodel import col, select

    from store.callouts import CalloutTarget
    from store.db import session_scope

    with session_scope(write=False) as s:
        acked = s.exec(select(CalloutTarget.person_id).where(CalloutTarget.callout_id == cid,
                                                             col(CalloutTarget.acknowledged_at).is_not(None))).all()
    return len(set(acked) & (among if among is not None else set(acked)) - set(seen))


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
