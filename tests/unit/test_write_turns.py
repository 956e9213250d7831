"""The turns a process's writers take on a SQLite database (store/db.py `WriteTurns`): an urgent writer (an answer
being recorded while batches of sends are written) takes the next turn before the writers already waiting; a
thread inside its turn may open another write (reentrant, as the RLock it replaced)."""
from __future__ import annotations

import threading
from contextlib import nullcontext

from store.db import WriteTurns, urgent_writes


class _Probe(threading.Condition):
    """The turns' condition, noting each thread that starts waiting on it (the barrier the test waits for)."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: dict[str, threading.Event] = {}

    def wait(self, timeout=None):
        self.waiting[threading.current_thread().name].set()
        return super().wait(timeout)


def test_an_urgent_writer_goes_before_the_writers_waiting():
    turns, probe = WriteTurns(), _Probe()
    turns._free = probe
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with turns.turn():
            holding.set()
            release.wait(10)

    def writer(urgent: bool) -> None:
        with urgent_writes() if urgent else nullcontext(), turns.turn():
            order.append(threading.current_thread().name)

    threads = [threading.Thread(target=holder, name="holder")]
    threads[0].start()
    assert holding.wait(10)
    for name, urgent in [("batch-1", False), ("batch-2", False), ("answer", True)]:
        probe.waiting[name] = threading.Event()
        threads.append(threading.Thread(target=writer, args=(urgent,), name=name))
        threads[-1].start()
        assert probe.waiting[name].wait(10), f"{name} never waited for its turn"
    release.set()
    for t in threads:
        t.join(10)
    assert order[0] == "answer" and sorted(order[1:]) == ["batch-1", "batch-2"]


def test_a_turn_is_reentrant_and_passes_on():
    turns = WriteTurns()
    with turns.turn(), turns.turn():  # a write opened inside a write of the same thread
        pass
    done = threading.Event()

    def other() -> None:
        with turns.turn():
            done.set()

    t = threading.Thread(target=other)
    t.start()
    assert done.wait(10)
    t.join(10)
