"""Where a bench's processes spend their CPU: py-spy (a sampling profiler, the `test`/`dev` extras) attached to
a running process, its samples summarised as the top frames by share of the samples.

`bench/api_load.py --profile DIR` profiles the API process, `bench/callout.py --profile DIR` the worker; each
writes DIR/<name>.txt (py-spy's raw collapsed stacks, one line per stack: frames `;`-separated, then a count)
and prints the summary. `python bench/profiling.py FILE [--top N] [--under SUBSTRING]` summarises a file again
(`--under`: only the samples whose stack passes through a frame containing SUBSTRING, e.g. `inbound_sms`).
"""
from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path


def py_spy() -> str:
    exe = Path(sys.executable).parent / "py-spy"
    found = str(exe) if exe.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy (it is in the test/dev extras)")
    return found


class Profile:
    """py-spy attached to `pid` until `stop()`; samples written to `out` (raw collapsed stacks). Only the thread
    holding the GIL is sampled (`--gil`): the samples are where the process's Python CPU goes, not threads
    waiting on a lock, a socket or the database."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([py_spy(), "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
                                      "--output", str(out), "--gil"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return summary(self.out) if self.out.exists() else f"(no samples in {self.out})"


def _frame(f: str) -> str:
    # py-spy raw frames read "function (path/to/file.py:line)"; keep the function and the file's last two parts
    name, _, where = f.partition(" (")
    where = where.rstrip(")")
    path, _, _line = where.rpartition(":")
    short = "/".join(Path(path).parts[-2:]) if path else where
    return f"{name} ({short})"


SCAFFOLDING = ("threading.py", "runpy", "typer/", "_click/", "asyncio/base_events.py", "asyncio/runners.py",
               "asyncio/events.py", "futures/thread.py", "uvicorn/main.py", "uvicorn/server.py", "uvicorn/_compat.py",
               "cli/main.py", "worker.py", "<module>", "anyio/_backends", "anyio/to_thread.py")
"""Frames every sample passes through (the loop, the thread pool, the command line): left out of the inclusive list."""


def summary(path: Path, top: int = 25, under: str | None = None) -> str:
    """Top frames by inclusive share (the frame or anything it called) and by own share (the frame itself)."""
    incl: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if under and not any(under in f for f in stack.split(";")):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return f"{path}: no samples" + (f" under {under!r}" if under else "")
    lines = [f"{path}: {total:,} samples" + (f" under {under!r}" if under else "") + " (100 per second the GIL is held)",
             "inclusive (the frame and what it called):"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in
              [(f, n) for f, n in incl.most_common() if not any(x in f for x in SCAFFOLDING)][:top]]
    lines.append("own (the frame itself):")
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--under", default=None)
    a = ap.parse_args()
    print(summary(Path(a.file), a.top, a.under))
