"""Exactly one feed poller, also after the lock holder's connection died (issue 15, finding 4).

Two API processes each ask `SchedulerLock.acquire()` before every scheduled job (api/feeds.py).
The holder's PostgreSQL session is ended with `pg_terminate_backend`, as a restart or a
failover would end it: its advisory lock goes with it. Whichever process asks first afterwards
becomes the poller, and the other stands down: never both, never none.
"""
from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from api.feeds import SchedulerLock
from config import get_settings


def _admin(url: str):
    """A connection to the server's `postgres` database (the test's database may refuse connections)."""
    u = make_url(url)
    return psycopg.connect(host=u.host, port=u.port, user=u.username, dbname="postgres", autocommit=True)


def lock_sessions(url: str) -> list[tuple[int, str]]:
    """(pid, state) of the sessions that hold the scheduler's advisory lock."""
    with _admin(url) as conn:
        return conn.execute(
            "SELECT a.pid, a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = %s", [make_url(url).database]).fetchall()


def terminate(url: str, pid: int) -> None:
    with _admin(url) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        conn.execute("SELECT pg_sleep(0.1)")  # the backend exits and drops its locks
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]:
            conn.execute("SELECT pg_sleep(0.05)")


@pytest.mark.parametrize("first_to_ask", ["standby", "old holder"])
def test_one_poller_after_the_holders_connection_is_terminated(db_url, first_to_ask):
    settings = get_settings()
    holder, standby = SchedulerLock(settings), SchedulerLock(settings)
    try:
        assert holder.acquire() and not standby.acquire()
        assert holder.acquire() and not standby.acquire()  # checked again before every job: still so
        [(pid, _)] = lock_sessions(db_url)

        terminate(db_url, pid)
        assert lock_sessions(db_url) == []

        order = [standby, holder] if first_to_ask == "standby" else [holder, standby]
        for _ in range(3):  # the next jobs of both processes, in turn
            pollers = [lock.acquire() for lock in order]
            assert pollers == [True, False], f"{first_to_ask} asked first; pollers: {pollers}"
        assert len(lock_sessions(db_url)) == 1
    finally:
        holder.release()
        standby.release()
    assert lock_sessions(db_url) == []


def test_the_locks_connection_is_not_left_idle_in_transaction(db_url):
    """An open transaction holds back vacuum and hides a dead connection; the lock's session has none."""
    lock = SchedulerLock(get_settings())
    try:
        assert lock.acquire() and lock.acquire()
        [(_, state)] = lock_sessions(db_url)
        assert state == "idle", f"the lock's connection is {state!r}"
    finally:
        lock.release()


def test_a_process_whose_database_is_away_does_not_poll(db_url):
    """The holder's connection dies and no new one can be opened: it stands down (no poller rather than two)."""
    settings = get_settings()
    holder = SchedulerLock(settings)
    try:
        assert holder.acquire()
        [(pid, _)] = lock_sessions(db_url)
        with _admin(db_url) as conn:  # no new connections to this database for a moment
            conn.execute(f'ALTER DATABASE "{make_url(db_url).database}" ALLOW_CONNECTIONS false')
        terminate(db_url, pid)
        assert holder.acquire() is False
        with _admin(db_url) as conn:
            conn.execute(f'ALTER DATABASE "{make_url(db_url).database}" ALLOW_CONNECTIONS true')
        assert holder.acquire() is True
    finally:
        holder.release()
