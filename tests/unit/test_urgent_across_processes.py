"""The writers a person waits on go first across processes too (store/db.py `UrgentWaiters`): when SQLite's write
lock comes free, another process's writer that nobody waits on (the worker's batch of sends) lets an urgent one
(the API storing an answer) have it; and it does so for a bounded time only, so an urgent writer that never gets
the lock does not starve it.

The other process is a real one (a Python subprocess writing through `session_scope`); the lock's holder a plain
sqlite3 connection. Barriers: the urgent writer is seen waiting (its flock), the other process says it is letting
it go first."""
from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import text

from store.db import session_scope, urgent_writes

ROOT = Path(__file__).resolve().parents[2]

BATCH = """
import sys
import store.db as db
from sqlalchemy import text

url = sys.argv[1]
others = db.UrgentWaiters.others
told = False


def noting(self):
    global told
    found = others(self)
    if found and not told:
        told = True
        print("deferring", flush=True)
    return found


db.UrgentWaiters.others = noting
with db.session_scope(url) as s:
    s.execute(text("INSERT INTO probe (who) VALUES ('batch')"))
print("written", flush=True)
"""


def _database(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "turns.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE probe (seq INTEGER PRIMARY KEY AUTOINCREMENT, who TEXT)")
    conn.commit()
    conn.close()
    return f"sqlite:///{path}", path


def _batch(url: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", BATCH, url], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _announced(path: Path) -> bool:
    """Whether an urgent writer holds its flock (an exclusive one cannot be had)."""
    fd = os.open(f"{path}-urgent", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [who for (who,) in conn.execute("SELECT who FROM probe ORDER BY seq")]
    finally:
        conn.close()


def test_another_process_lets_an_urgent_writer_have_the_lock_first(tmp_path):
    url, path = _database(tmp_path)
    holder = sqlite3.connect(path, isolation_level=None, timeout=30)
    holder.execute("BEGIN IMMEDIATE")
    errors: list[BaseException] = []

    def answer() -> None:
        try:
            with urgent_writes(), session_scope(url) as s:
                s.execute(text("INSERT INTO probe (who) VALUES ('answer')"))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    urgent = threading.Thread(target=answer)
    urgent.start()
    give_up = time.monotonic() + 60  # (safety nets for a hung test, not measures)
    while not _announced(path) and time.monotonic() < give_up:
        time.sleep(0.01)
    assert _announced(path), "the urgent writer never said it was waiting"

    batch = _batch(url)
    try:
        line = batch.stdout.readline()  # barrier: the batch found the urgent writer waiting and lets it go first
        assert line.strip() == "deferring", (line, batch.stderr.read() if batch.poll() is not None else "")
        holder.execute("COMMIT")  # the lock is free: both try for it
        urgent.join(60)
        out, err = batch.communicate(timeout=60)
    finally:
        if batch.poll() is None:
            batch.kill()
        holder.close()
    assert not errors, errors
    assert batch.returncode == 0 and "written" in out, err
    assert _rows(path) == ["answer", "batch"]


def test_it_lets_them_go_first_for_a_bounded_time_only(tmp_path):
    """An urgent writer that says it waits and never takes the lock (here: the test holding its flock) does not
    keep the other process from writing."""
    url, path = _database(tmp_path)
    fd = os.open(f"{path}-urgent", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        batch = _batch(url)
        out, err = batch.communicate(timeout=120)
        assert batch.returncode == 0, err
        assert out.split() == ["deferring", "written"]  # it did defer, then wrote, while the flock was still held
        assert _announced(path)
    finally:
        os.close(fd)
    assert _rows(path) == ["batch"]


def test_it_does_not_hold_back_an_urgent_writer_of_its_own_process(tmp_path, monkeypatch):
    """A writer letting another process's urgent one go first holds its own process's turn (store/db.py
    `WriteTurns`): once an urgent writer of its own process waits behind it, it stops deferring and writes, so that
    its own urgent writer is not held back (here the bound is made an hour: only that can end the deferring)."""
    import store.db as db

    from config import get_settings

    url, path = _database(tmp_path)
    monkeypatch.setattr(db, "URGENT_FIRST_MAX_S", 3600.0)
    monkeypatch.setenv("YINGJI_DB_BUSY_TIMEOUT_MS", "3600000")  # (the busy timeout ends a wait for the lock too)
    get_settings.cache_clear()
    db.dispose_all()
    deferring = threading.Event()
    others = db.UrgentWaiters.others

    def noting(self):
        found = others(self)
        if found:
            deferring.set()
        return found

    monkeypatch.setattr(db.UrgentWaiters, "others", noting)
    fd = os.open(f"{path}-urgent", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)  # another process's urgent writer, waiting
    errors: list[BaseException] = []

    def write(who: str, urgent: bool) -> None:
        try:
            with urgent_writes() if urgent else nullcontext(), session_scope(url) as s:
                s.execute(text("INSERT INTO probe (who) VALUES (:who)"), {"who": who})
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    try:
        batch = threading.Thread(target=write, args=("batch", False))
        batch.start()
        assert deferring.wait(60), "the batch never deferred"
        answer = threading.Thread(target=write, args=("answer", True))
        answer.start()
        batch.join(120)  # (safety nets for a hung test, not measures)
        answer.join(120)
        assert not batch.is_alive() and not answer.is_alive(), "held back until the hour-long bound"
    finally:
        os.close(fd)
        get_settings.cache_clear()
        db.dispose_all()
    assert not errors, errors
    assert _rows(path) == ["batch", "answer"]
