"""Work a person waits on before the rest, in one worker process: its own threads (`urgently`), the database's
write turns first (`store.db.urgent_writes`), and no background step (`in_background`) starting while it runs
(`Precedence`), so that it shares Python's lock only with the steps already under way."""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from store.db import urgent_writes

T = TypeVar("T")

_URGENT_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="urgent")


async def urgently(fn: Callable[..., T], *args: Any) -> T:
    """`fn` on a thread of its own pool, its writes before the other writers of the process waiting
    (`store.db.urgent_writes`), and no background step starting while it runs (`in_background`): work a person
    waits on, such as an answer to record. The shared pool has a few threads and takes its jobs in turn: at
    100,000 persons an answer's write waited there, and for the database, behind every running batch's rendering
    and writing."""
    call = functools.partial(contextvars.copy_context().run, _urgently, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_URGENT_POOL, call)


def _urgently(fn: Callable[..., T], *args: Any) -> T:
    with urgent_writes(), _PRECEDENCE.urgent():
        return fn(*args)


class Precedence:
    """Urgent work first, for Python's lock as for the database: while urgent work runs, a background step waits
    to start (at most `most` seconds, so that a stream of urgent work cannot stop the background for good).

    A thread holds Python's lock in turns of 5 ms with every other thread that computes: at a district-wide
    escalation six threads rendering and writing batches of 500 sends took five turns in six from a burst's
    answers, and a group of answers that needed a few tenths of a second of CPU took seconds (issue 25). A step
    under way is not stopped; the steps that would start meanwhile wait for the answers to be written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._idle = threading.Event()
        self._idle.set()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        with self._lock:
            self._running += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if not self._running:
                    self._idle.set()

    def give_way(self, most: float) -> bool:
        """Wait until no urgent work runs, at most `most` s; whether it had ended."""
        return self._idle.wait(most)


_PRECEDENCE = Precedence()

GIVE_WAY_S = 2.0
"""The longest a background step waits for urgent work to end before it starts anyway."""


async def in_background(fn: Callable[..., T], *args: Any) -> T:
    """`fn` on the shared pool (`asyncio.to_thread`), started once no urgent work runs (`Precedence`): a step of
    background work, such as rendering or writing a batch of sends."""
    def step() -> T:
        _PRECEDENCE.give_way(GIVE_WAY_S)
        return fn(*args)

    return await asyncio.to_thread(step)
