"""Answers just shown on their call-outs' boards, told to this process's live boards the moment they commit.

The API shows an answer on its call-out's board as it stores it (store/answers.py `mark_answered`: a `CalloutAnswer`
row). A live board polls every 0.5 s (api/console/board.py), which was up to half a second of what a duty officer
waited to see an answer (issue 25: 0.98–1.68 s p99 under a 5,000-reply burst on the slower machines, against 1 s).
The writer therefore tells the boards of its own process which targets it has just shown (`tell`, after the commit,
from whatever thread committed), and each board sends those rows at once (api/console/streams.py `Broadcaster.nudge`),
reading only them. The poll stays: it carries everything else (the workflows' records, other API processes' answers)
and anything a telling missed.

Only this process's boards hear it: with `yingji api --workers N`, a board held by another process shows the answer
at its next poll, as before."""
from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable

Shown = list[tuple[str, int]]
"""(call-out id, target id) of each target just shown answered."""

_lock = threading.Lock()
_boards: list[tuple[asyncio.AbstractEventLoop, weakref.WeakMethod]] = []


def listen(callback: Callable[[Shown], None]) -> None:
    """`callback` (a bound method, held weakly: a board's broadcaster) hears each `tell` on the running loop."""
    with _lock:
        _boards.append((asyncio.get_running_loop(), weakref.WeakMethod(callback)))


def tell(shown: Shown) -> None:
    """After the commit that showed them: the live boards of this process hear of these targets (any thread)."""
    if not shown:
        return
    with _lock:
        listening = list(_boards)
    for loop, ref in listening:
        callback = ref()
        try:
            if callback is None:
                raise RuntimeError("the board is gone")
            loop.call_soon_threadsafe(callback, shown)
        except RuntimeError:  # its loop closed, or its broadcaster collected: nobody listens there any more
            with _lock:
                if (loop, ref) in _boards:
                    _boards.remove((loop, ref))
