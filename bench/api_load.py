"""API load through the gateway webhook path, on the embedded stack.

The API runs as its own process (`yingji api`, uvicorn, one process), the worker and the
Temporal dev server as theirs; this process is Twilio: it signs every request with the
account's auth token (`X-Twilio-Signature`) and sends it over HTTP. The messages themselves
go out through the simulator, which gives them the ids the callbacks name.

1. A call-out to N persons (default 10,000) is started; once every first SMS is out, a burst
   of 3 status callbacks per message (queued, sent, delivered: 30,000) is sent as fast as
   the client can, 256 at a time. Absorbed without loss: every callback answered 200, every
   message ends `delivered`, every delivery report reaches its shard's workflow (one
   `callout.delivery` event per message in the audit trail).
2. Answers at a fixed rate (default 500/s for 60 s: 30,000, each person answering three times, 20 s apart),
   open loop: latency counts from the moment a request was due, so a slow server cannot hide behind a slow
   client. A share of the persons (`--link-share`, 0.25) answer first by their signed link's confirm button
   (POST /ack/{token}), the rest by a signed SMS webhook ("1"). Then: the requests' p50/p99 and errors, every
   reply stored once, every person acknowledged, and from each person's first answer to the board showing it
   (answered or acknowledged, as the console's live board sends it to a browser: bench/http_api.py `watch_board`):
   p50/p99.

Run: `.venv/bin/python bench/api_load.py [--persons 10000] [--rate 500] [--seconds 60] [--link-share 0.25]
[--database-url postgresql+psycopg://user@host:port/db] [--board page|every-row] [--profile DIR]`.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp  # the set-up's JSON call; the webhooks go through bench/raw_http.py

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402

from bench.profiling import Profile  # noqa: E402
from bench.callout import (Stack, build_directory, drop_database, fresh_database, pct,  # noqa: E402
                           peak_rss_mb)
from bench.http_api import ADMIN, Api, signed, watch_board  # noqa: E402
from bench.phones import spread  # noqa: E402
from bench.raw_http import RawClient  # noqa: E402

STEPS = ["- notify: [sms]", "- wait_ack: 30m", "- inform: duty_chief"]


def db_counts(cid: str) -> dict[str, int]:
    from sqlmodel import func, select

    from store.audit import AuditEvent
    from store.callouts import CalloutTarget
    from store.db import session_scope
    from store.messages import InboundMessage, OutboxMessage

    with session_scope(write=False) as s:
        def count(stmt) -> int:
            return s.exec(stmt).one()

        return {
            "first_sent": count(select(func.count()).where(OutboxMessage.subject == cid, OutboxMessage.person_id.like("r%"),
                                                           OutboxMessage.status.in_(["sent", "delivered"]))),
            "delivered": count(select(func.count()).where(OutboxMessage.subject == cid,
                                                          OutboxMessage.status == "delivered")),
            "delivery_events": count(select(func.count()).where(AuditEvent.subject == cid,
                                                                AuditEvent.kind == "callout.delivery")),
            "acknowledged": count(select(func.count()).where(CalloutTarget.callout_id == cid,
                                                             CalloutTarget.state == "acknowledged")),
            "inbound": count(select(func.count()).select_from(InboundMessage)),
            "inbound_ack": count(select(func.count()).where(InboundMessage.handled == "ack")),
        }


def stamp_ack_writes() -> None:
    """SQLite only, the bench's own database: a trigger notes when each call-out target's acknowledgement is written
    (wall clock, ms), so that the time to the board can be split into the workflows' write and the board's turn."""
    from sqlalchemy import text

    from store.db import session_scope

    with session_scope() as s:
        s.execute(text("CREATE TABLE bench_ack_written (person_id TEXT PRIMARY KEY, at REAL NOT NULL)"))
        s.execute(text("CREATE TRIGGER bench_ack_written AFTER UPDATE OF acknowledged_at ON callout_target "
                       "WHEN NEW.acknowledged_at IS NOT NULL AND OLD.acknowledged_at IS NULL BEGIN "
                       "INSERT OR IGNORE INTO bench_ack_written VALUES "
                       "(NEW.person_id, (julianday('now') - 2440587.5) * 86400.0); END"))


def ack_writes() -> dict[str, float]:
    from sqlalchemy import text

    from store.db import session_scope

    with session_scope(write=False) as s:
        return dict(s.execute(text("SELECT person_id, at FROM bench_ack_written")).all())


async def until(predicate, timeout: float, what: str, every: float = 0.5) -> float:
    t0 = time.monotonic()
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


async def post(client: RawClient, request: bytes, errors: list[str]) -> None:
    """One webhook request (encoded ahead, bench/raw_http.py); anything but a 200 is counted as an error with its
    reason. A request that could not be written on a kept-alive connection the server had just closed is sent once
    more on a new one by the client, as Twilio does on a failed connection; only a second failure counts."""
    try:
        status, body = await client.send(request)
    except Exception as exc:  # noqa: BLE001 - counted
        errors.append(f"{type(exc).__name__}: {exc}"[:160])
        return
    if status != 200:
        errors.append(f"{status} {body[:100].decode(errors='replace')}")


def print_errors(console, client: RawClient, errors: list[str]) -> None:
    """A phase's errors and the requests it sent again, a few of each kind."""
    if errors:
        console.print(sorted(set(errors))[:5])
    if client.resent:
        console.print(f"{client.resent} sent again after a closed connection")
        client.resent = 0


async def send_all(client: RawClient, requests: list[bytes], concurrency: int) -> tuple[list[float], list[str]]:
    """As fast as possible, `concurrency` at a time; latencies from the start of the burst."""
    sem = asyncio.Semaphore(concurrency)
    lat: list[float] = []
    errors: list[str] = []
    t0 = time.monotonic()

    async def one(request: bytes):
        async with sem:
            start = time.monotonic()
            await post(client, request, errors)
            lat.append(time.monotonic() - start)

    await asyncio.gather(*(one(r) for r in requests))
    return [time.monotonic() - t0, *lat], errors


async def open_loop(client: RawClient, requests: list[bytes], rate: float,
                    t0: float | None = None) -> tuple[list[float], list[str], float]:
    """Each request sent when it is due (i / rate after the start); latency from that moment."""
    lat: list[float] = []
    errors: list[str] = []
    tasks = []
    t0 = t0 or time.monotonic()

    async def one(due: float, request: bytes):
        await post(client, request, errors)
        lat.append(time.monotonic() - due)

    for i, req in enumerate(requests):
        due = t0 + i / rate
        delay = due - time.monotonic()
        if delay > 0.002:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, req)))
    await asyncio.gather(*tasks)
    return lat, errors, time.monotonic() - t0


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--burst-concurrency", type=int, default=256)
    ap.add_argument("--api-workers", type=int, default=1, help="yingji api --workers N (default 1)")
    ap.add_argument("--link-share", type=float, default=0.25,
                    help="share of the persons who answer by their signed link's confirm button (the rest by SMS)")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server (postgresql+psycopg://user@host:port/db): the run gets a fresh database "
                         "there, dropped afterwards; default a SQLite file")
    ap.add_argument("--board", choices=("page", "every-row"), default="page",
                    help="the board watched: the console's first page, as a browser opens it (default: a full page is "
                         "sent only its own rows, and 'on the board' is its persons'), or one taking every row")
    ap.add_argument("--profile", type=Path, default=None,
                    help="a folder: profile the API process with py-spy in each phase (bench/profiling.py)")
    args = ap.parse_args()
    if args.rate * args.seconds < args.persons:  # the answers phase waits for every person to be acknowledged
        ap.error(f"--rate × --seconds ({args.rate * args.seconds:g} answers) must reach --persons ({args.persons}): "
                 "every person answers at least once")
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)
    from rich.console import Console
    from rich.table import Table

    from store.db import dispose_all

    n = args.persons
    console = Console(width=200)
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="yingji-load-") as tmp:
        dbname = f"yingji_load_{os.getpid()}"
        database = fresh_database(args.database_url, dbname) if args.database_url else None
        stack = Stack(Path(tmp), STEPS, database_url=database)
        stack.start()
        dispose_all()
        towns = build_directory(stack.env["YINGJI_DATABASE_URL"], n)
        await stack.connect()  # the worker subprocess (and an unused in-process app)
        api = Api(stack, args.api_workers)
        api.start()
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512),
                                             timeout=aiohttp.ClientTimeout(total=60)) as http:
                async with http.post(api.base + "/api/warnings", headers={"Authorization": f"Bearer {ADMIN}"},
                                     json={"identifier": f"load-{time.time_ns()}", "level": "orange", "event": "暴雨",
                                           "headline": "暴雨橙色预警", "areas": towns}) as r:
                    assert r.status == 201, await r.text()
                    cid = (await r.json())["callout_id"]
                took = await until(lambda: db_counts(cid)["first_sent"] >= n, 600, "the first notifications")
                console.print(f"{n:,} persons notified in {took:.1f} s; status-callback burst…")

                # 1. the burst of status callbacks: 3 per message, all at once
                from sqlmodel import select

                from store.db import session_scope
                from store.messages import OutboxMessage

                with session_scope(write=False) as s:
                    msgs = list(s.exec(select(OutboxMessage.id, OutboxMessage.provider_id, OutboxMessage.to).where(
                        OutboxMessage.subject == cid)))
                twilio = RawClient(api.base, limit=512)  # the phones' and Twilio's side, lean (bench/raw_http.py)
                burst = [twilio.encode(*signed(api.base, f"/api/webhooks/twilio/sms/status?o={mid}",
                                {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                                 "AccountSid": "AC" + "b" * 32, "To": to, "From": "+15005550006", "ApiVersion": "2010-04-01"}))
                         for status in ("queued", "sent", "delivered") for mid, sid, to in msgs]
                prof = args.profile and Profile(api.proc.pid, args.profile / "api-callbacks.txt")
                cpu0 = api.cpu_s()
                timing, errors = await send_all(twilio, burst, args.burst_concurrency)
                cpu = api.cpu_s() - cpu0
                if prof:
                    console.print(prof.stop())
                wall, lat = timing[0], timing[1:]
                absorbed = await until(lambda: (c := db_counts(cid))["delivered"] >= len(msgs)
                                       and c["delivery_events"] >= len(msgs), 300, "the delivery reports", 0.2)
                c = db_counts(cid)
                rows.append(("status callbacks (burst, 256 at a time)", f"{len(burst):,}", f"{wall:.1f} s",
                             f"{len(burst) / wall:.0f}/s", f"{statistics.median(lat):.3f}", f"{pct(lat, 99):.3f}",
                             f"{max(lat):.3f}", str(len(errors)), f"{1000 * cpu / len(burst):.2f}",
                             f"{len(msgs) - c['delivered']} not delivered, {len(msgs) - c['delivery_events']} reports "
                             f"missing; all in the workflows {absorbed:.1f} s after the last"))
                console.print(rows[-1])
                print_errors(console, twilio, errors)

                # 2. answers at a fixed rate: signed SMS webhooks, and a share by the signed link's confirm button
                total = int(args.rate * args.seconds)
                rounds = max(1, total // n)
                with session_scope(write=False) as s:
                    sent = list(s.exec(select(OutboxMessage.to, OutboxMessage.person_id, OutboxMessage.ack_url).where(
                        OutboxMessage.subject == cid, OutboxMessage.person_id.like("r%")).order_by(OutboxMessage.id)))
                # in an order spread evenly over the persons (the same on every run): the board page's persons (the
                # call-out's first targets) answer throughout each round, not at its head
                sent = spread(sent)
                per_round = total // rounds
                link_every = round(1 / args.link_share) if args.link_share > 0 else 0
                replies, first_due = [], {}
                for k in range(rounds):
                    for i in range(per_round):
                        to, person, ack_url = sent[i % len(sent)]
                        first_due.setdefault(person, (k * per_round + i) / args.rate)
                        if k == 0 and link_every and i % link_every == 0 and i < len(sent) and ack_url:
                            replies.append(twilio.encode(f"{api.base}/ack/{ack_url.rsplit('/ack/', 1)[1]}", {}))
                            continue
                        replies.append(twilio.encode(*signed(api.base, "/api/webhooks/twilio/sms",
                                              {"MessageSid": f"SMload{k}x{i}", "SmsSid": f"SMload{k}x{i}", "From": to,
                                               "To": "+15005550006", "Body": "1", "NumMedia": "0",
                                               "AccountSid": "AC" + "b" * 32, "SmsStatus": "received",
                                               "ApiVersion": "2010-04-01"})))
                links = sum(1 for r in replies if r.startswith(b"POST /ack/"))
                prof = args.profile and Profile(api.proc.pid, args.profile / "api-replies.txt")
                seen: dict[str, float] = {}
                watching = asyncio.Event()
                stamped = not args.database_url
                if stamped:
                    await asyncio.to_thread(stamp_ack_writes)
                ready = asyncio.Event()
                page = None if args.board == "every-row" else {"persons": None}
                watcher = asyncio.create_task(watch_board(api.base, cid, seen, watching, ready=ready, page=page))
                await ready.wait()
                showing = None if page is None or page["persons"] is None else set(page["persons"])
                t_start, wall_start = time.monotonic(), time.time()
                cpu0, own0 = api.cpu_s(), time.process_time()
                lat, errors, wall = await open_loop(twilio, replies, args.rate, t_start)
                cpu, own = api.cpu_s() - cpu0, time.process_time() - own0
                if prof:
                    console.print(prof.stop())
                visible = await until(lambda: len(seen) >= (n if showing is None else len(showing)), 300,
                                      "every acknowledgement the board shows", 0.2)
                watching.set()
                await watcher
                c = db_counts(cid)
                shown = [seen[p] - t_start - due for p, due in first_due.items() if p in seen]
                rows.append((f"answers at {args.rate:.0f}/s (open loop): {len(replies) - links:,} SMS webhooks, "
                             f"{links:,} link confirmations", f"{len(replies):,}", f"{wall:.1f} s",
                             f"{len(replies) / wall:.0f}/s", f"{statistics.median(lat):.3f}", f"{pct(lat, 99):.3f}",
                             f"{max(lat):.3f}", str(len(errors)), f"{1000 * cpu / len(replies):.2f}",
                             f"{len(replies) - links - c['inbound']} replies lost, {n - c['acknowledged']} not "
                             f"acknowledged; answer → on the board p50 {statistics.median(shown):.2f} s, p99 "
                             f"{pct(shown, 99):.2f} s; last visible {visible:.1f} s after the last answer"))
                console.print(rows[-1])
                console.print("the board watched: " + ("every row" if page is None else "the console's first page, as "
                              "a browser opens it, " + ("every row" if showing is None else f"{len(showing):,} persons")))
                console.print(f"the bench's own CPU while answering (its client and board watcher, on the same cores): "
                              f"{1000 * own / len(replies):.2f} ms per request")
                if stamped:  # where the time to the board goes: until the row is written, then until the watcher sees it
                    written = await asyncio.to_thread(ack_writes)
                    both = [(written[p] - wall_start - due, seen[p] - t_start - due) for p, due in first_due.items()
                            if p in written and p in seen]
                    to_row, row_to_seen = [w for w, _ in both], [v - w for w, v in both]
                    console.print(f"answer → its target's row written (stamped by a SQLite trigger): p50 {statistics.median(to_row):.2f} s, "
                                  f"p99 {pct(to_row, 99):.2f} s; row written → on the console's board: p50 "
                                  f"{statistics.median(row_to_seen):.2f} s, p99 {pct(row_to_seen, 99):.2f} s "
                                  f"({len(both):,} persons)")
                print_errors(console, twilio, errors)
                await twilio.close()
            mem = f"worker {max(peak_rss_mb(w.pid) for w in stack.workers):.0f} MB, API {max(peak_rss_mb(p) for p in api.pids()):.0f} MB, " \
                  f"Temporal {peak_rss_mb(stack.server.pid):.0f} MB"
        finally:
            api.stop()
            stack.stop()
            dispose_all()
            if args.database_url:
                drop_database(args.database_url, dbname)
    table = Table(title=f"API load through the Twilio webhook path: {n:,}-person call-out, {args.api_workers} API process(es), "
                        f"{'PostgreSQL' if args.database_url else 'SQLite'} "
                        f"(targets: replies p99 < 1 s, no errors; callbacks absorbed without loss)", caption=machine)
    for col in ("scenario", "requests", "wall", "rate", "p50 (s)", "p99 (s)", "max (s)", "errors",
                "API CPU-s per 1,000", "loss"):
        table.add_column(col, justify="right" if col not in ("scenario", "loss") else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"peak memory: {mem}")


if __name__ == "__main__":
    asyncio.run(main())
