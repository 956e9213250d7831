"""Engine, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout so that the
worker and the API can write at once (a writer waits for another's lock, tried every
millisecond: `begin_immediate`); PostgreSQL is the production database.
"""
from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

_engines: dict[tuple[str, bool], Engine] = {}
MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
    from config import get_settings

    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={int(get_settings().db_busy_timeout_ms)}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def get_engine(url: str | None = None, *, write: bool = False) -> Engine:
    """The engine for a database URL.

    On SQLite a *write* engine opens its transactions with ``BEGIN IMMEDIATE``,
    so that a transaction that reads and then writes waits for the lock
    (busy timeout) instead of failing with "database is locked".
    """
    if url is None:
        from config import get_settings

        url = get_settings().database
    sqlite = url.startswith("sqlite")
    key = (url, write and sqlite)
    engine = _engines.get(key)
    if engine is None:
        if sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            from config import get_settings

            timeout = get_settings().db_busy_timeout_ms / 1000
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": timeout})

            def on_connect(dbapi_connection, record):
                _sqlite_pragmas(dbapi_connection, record)
                dbapi_connection.isolation_level = None  # we emit BEGIN ourselves

            event.listen(engine, "connect", on_connect)
            if write:
                event.listen(engine, "begin", lambda conn: begin_immediate(conn, timeout))
            else:
                event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        else:
            from config import get_settings

            settings = get_settings()  # sized so that every process of a deployment fits max_connections (README)
            engine = create_engine(url, pool_pre_ping=True, pool_size=settings.db_pool_size,
                                   max_overflow=settings.db_max_overflow)
        _engines[key] = engine
    return engine


class WriteTurns:
    """The turns a process's writers to one SQLite database take (reentrant, like an RLock): a writer that a person
    waits on (`urgent_writes`: an answer being recorded) takes the next turn before the others waiting. At 100,000
    persons an answer's write queued behind a dozen batches of escalation sends writing 500 rows each."""

    def __init__(self) -> None:
        self._free = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        me, urgent = threading.get_ident(), _URGENT.get()
        with self._free:
            if self._owner != me:
                self._urgent_waiting += urgent
                try:
                    while self._owner is not None or (self._urgent_waiting and not urgent):
                        self._free.wait()
                finally:
                    self._urgent_waiting -= urgent
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._free:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._free.notify_all()


_URGENT: ContextVar[bool] = ContextVar("urgent_writes", default=False)


@contextmanager
def urgent_writes() -> Iterator[None]:
    """The write transactions opened inside take their turn before the other writers of this process waiting
    (`WriteTurns`)."""
    token = _URGENT.set(True)
    try:
        yield
    finally:
        _URGENT.reset(token)


_write_locks: dict[str, WriteTurns] = {}

WRITE_LOCK_POLL_S = 0.001


def begin_immediate(conn: Connection, timeout: float) -> None:
    """BEGIN IMMEDIATE (SQLite's write lock, taken at once), waiting for another process's writer in steps of 1 ms
    up to `timeout` s, then "database is locked" as before (SQLAlchemy's OperationalError).

    SQLite's own busy handler sleeps in growing steps (1, 2, 5, 10, 15, 20, 25, … 100 ms) between tries. Under a
    burst of answers the API's write transactions follow one another within the process (they take turns on
    `_write_locks` and start the moment the previous one commits), while the worker, in another process, slept
    in those steps and kept missing the moment the lock was free: its flushes waited up to 0.54 s for the lock
    where the API's waited at most 0.1 s, and the answers behind those flushes reached the board up to a second
    late (bench/api_load.py). Tried every millisecond, a writer of any process gets in at the first gap.
    Only the BEGIN waits here: once it holds the write lock, nothing else in the transaction waits for a writer
    (WAL: commits append, readers never block), and reads keep SQLite's busy timeout."""
    raw = conn.connection.driver_connection
    deadline = time.monotonic() + timeout
    raw.execute("PRAGMA busy_timeout=0")
    try:
        while time.monotonic() < deadline:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    break  # not the lock: raised by the last try below
            time.sleep(WRITE_LOCK_POLL_S)
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the last try, its failure raised as SQLAlchemy raises it
    finally:
        raw.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")


@contextmanager
def session_scope(url: str | None = None, *, write: bool = True) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    On SQLite the write transactions of one process take turns (`WriteTurns`, urgent ones first): a
    thread waiting for SQLite's lock sleeps in growing steps (up to 100 ms) and retries, so
    under a burst of webhooks most of the wall time went to sleeping; taking turns, each
    starts the moment the previous one commits. (Other processes' writers meet SQLite's lock,
    tried every millisecond: `begin_immediate`.)"""
    engine = get_engine(url, write=write)
    lock = _write_locks.setdefault(str(engine.url), WriteTurns()).turn() \
        if write and engine.dialect.name == "sqlite" else nullcontext()
    with lock, Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


MIGRATION_LOCK_KEY = 0x79696E676A6D  # "yingjm": the advisory lock around migrations (PostgreSQL)


@contextmanager
def _migration_lock(url: str, engine: Engine) -> Iterator[None]:
    """One process migrates at a time: the API, the worker and the CLI all migrate at start, and
    replicas started together on an empty database raced each other (`UniqueViolation …
    alembic_version`, "table already exists"). PostgreSQL: a session advisory lock on a connection
    of its own (autocommit, so it never sits idle in a transaction); SQLite: an exclusive file lock
    next to the database file. Both go away with the process if it dies."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
        return
    path = url.split("///", 1)[-1] if engine.dialect.name == "sqlite" else ""
    if not path or path == ":memory:" or path.startswith("file:"):
        yield  # in memory (one process) or another database: nothing to share
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # blocks until the process that migrates is done
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def migrate(url: str | None = None, to: str = "heads") -> None:
    """Apply every Alembic migration (idempotent; run at start of api, worker and CLI), one process at a time; `to`:
    only up to that revision (a migration's test starts from the one before it)."""
    from alembic import command
    from alembic.config import Config

    from config import get_settings

    url = url or get_settings().database
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # SQLite: the write engine (BEGIN IMMEDIATE): the migration holds the write lock from its first statement. A
    # deferred transaction that read the schema and then writes fails at once ("database is locked", no busy
    # wait) if anyone wrote in between, e.g. a connection switching a fresh file to WAL
    engine = cfg.attributes["engine"] = get_engine(url, write=True)
    with _migration_lock(url, engine):
        command.upgrade(cfg, to)  # feature migrations may branch from 0001


def dispose_all() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
