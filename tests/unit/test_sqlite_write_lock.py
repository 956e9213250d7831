"""SQLite's write lock as yingji's write sessions take it (store/db.py `begin_immediate`): a writer of another
process holding it is waited for, tried again every millisecond rather than in SQLite's growing sleeps, up to the
busy timeout; then "database is locked" as SQLAlchemy raises it, as before. Reads and the statements inside a write
transaction keep SQLite's busy timeout.

The other writer is a plain sqlite3 connection on the same file (another process as far as SQLite can tell: its
own connection, its own lock); the waiting writer is held at a barrier until it has found the lock taken."""
from __future__ import annotations

import sqlite3
import threading
import time
import types

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

import store.db as db
from config import get_settings
from store.db import dispose_all, session_scope


def other_writer(db_url: str) -> sqlite3.Connection:
    conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def counting_sleeps(monkeypatch) -> threading.Event:
    """`store.db`'s pauses between tries, noted: set once a writer has found the lock taken and waits."""
    waiting = threading.Event()

    def sleep(s: float) -> None:
        waiting.set()
        time.sleep(s)

    monkeypatch.setattr(db, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    return waiting


def write_row(n: int) -> None:
    with session_scope() as s:
        s.execute(text("INSERT INTO lock_probe VALUES (:n)"), {"n": n})


def test_a_writer_waits_for_another_process_writer_and_gets_in_once_it_commits(db_url, monkeypatch):
    with session_scope() as s:
        s.execute(text("CREATE TABLE lock_probe (n INTEGER)"))
    waiting = counting_sleeps(monkeypatch)
    holder = other_writer(db_url)
    holder.execute("INSERT INTO lock_probe VALUES (1)")
    done: list[BaseException | None] = []

    def writer() -> None:
        try:
            write_row(2)
            done.append(None)
        except BaseException as exc:  # noqa: BLE001 - asserted below
            done.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    assert waiting.wait(30), "the writer never found the lock taken"
    assert not done  # still waiting: the other writer holds the lock
    holder.execute("COMMIT")
    thread.join(30)
    assert done == [None]
    with session_scope(write=False) as s:
        assert sorted(s.execute(text("SELECT n FROM lock_probe")).scalars()) == [1, 2]
    with session_scope() as s:  # the busy timeout is back for what follows on the writer's connection
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == get_settings().db_busy_timeout_ms
    holder.close()


def test_past_the_busy_timeout_the_write_fails_as_database_is_locked(db_url, monkeypatch):
    with session_scope() as s:
        s.execute(text("CREATE TABLE lock_probe (n INTEGER)"))
    monkeypatch.setenv("YINGJI_DB_BUSY_TIMEOUT_MS", "200")
    get_settings.cache_clear()
    dispose_all()
    waiting = counting_sleeps(monkeypatch)
    holder = other_writer(db_url)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            write_row(3)
        assert waiting.is_set()  # it tried again before giving up
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    write_row(4)  # free again: the next write goes through, its connection unharmed
    with session_scope(write=False) as s:
        assert list(s.execute(text("SELECT n FROM lock_probe")).scalars()) == [4]
        assert s.execute(text("PRAGMA busy_timeout")).scalar() == 200
    get_settings.cache_clear()
    dispose_all()
