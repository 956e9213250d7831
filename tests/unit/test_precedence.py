"""Urgent work first for Python's lock (activities/precedence.py): while an answer is being written (`urgently`),
a background step (`in_background`: a batch's rendering, writing, claiming) waits to start, and starts once the
answer is written; a stream of urgent work holds a step back for `GIVE_WAY_S` at most."""
from __future__ import annotations

import asyncio
import threading

import pytest

from activities import precedence
from activities.precedence import in_background, urgently


class _Seen:
    """Precedence.give_way, noting when a background step starts waiting (the barrier the tests wait for)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.waiting = threading.Event()
        real = precedence._PRECEDENCE.give_way

        def give_way(most: float) -> bool:
            self.waiting.set()
            return real(most)

        monkeypatch.setattr(precedence._PRECEDENCE, "give_way", give_way)


async def _urgent_until(release: threading.Event) -> asyncio.Future:
    """Urgent work under way (on its own pool) until `release` is set."""
    running = threading.Event()

    def answer() -> str:
        running.set()
        release.wait(60)
        return "answered"

    task = asyncio.ensure_future(urgently(answer))
    await asyncio.to_thread(running.wait, 60)
    return task


async def test_a_background_step_starts_only_once_the_urgent_work_is_over(monkeypatch):
    seen = _Seen(monkeypatch)
    release, ran = threading.Event(), threading.Event()
    answer = await _urgent_until(release)
    step = asyncio.ensure_future(in_background(ran.set))
    await asyncio.to_thread(seen.waiting.wait, 60)
    assert not ran.is_set() and not step.done()  # waiting for the answer, not computing beside it
    release.set()
    assert await answer == "answered"
    await step
    assert ran.is_set()


async def test_urgent_work_that_does_not_end_holds_a_step_back_only_so_long(monkeypatch):
    monkeypatch.setattr(precedence, "GIVE_WAY_S", 0.05)
    release = threading.Event()
    answer = await _urgent_until(release)
    try:
        assert await in_background(lambda: "sent") == "sent"
        assert not answer.done()  # the step ran while the urgent work still ran
    finally:
        release.set()
        await answer


async def test_with_no_urgent_work_a_step_does_not_wait(monkeypatch):
    monkeypatch.setattr(precedence, "GIVE_WAY_S", 3600)
    assert await in_background(lambda x: x * 2, 21) == 42  # (a wait of an hour would time the test out)
