"""One line that says how fast this machine is, printed above every benchmark's table, so that figures taken
on two machines can be compared (one of ours runs Python ~2.5x slower than another).

- cpu: a fixed pure-Python loop (hashing and dict work, like the API's and the worker's own code), in
  thousands of rounds per second on one core, best of three;
- fsync: appends of 4 KiB followed by fsync in the folder the benchmark writes to (SQLite's commit cost),
  per second;
- the cores the process may use and the load average when it started (a busy machine reads slower).
"""
from __future__ import annotations

import hashlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def cpu_krounds_per_s(seconds: float = 0.3) -> float:
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (took := time.perf_counter() - start) < seconds:
            for i in range(200):
                d = {"k": i, "v": hashlib.sha256(str(i).encode()).hexdigest()}
                n += len(d["v"]) > 0
        best = max(best, n / took / 1000)
    return best


def fsyncs_per_s(folder: str | Path | None = None, count: int = 50) -> float:
    with tempfile.NamedTemporaryFile(dir=folder, prefix="calibration-") as f:
        block = b"\0" * 4096
        start = time.perf_counter()
        for _ in range(count):
            f.write(block)
            f.flush()
            os.fsync(f.fileno())
        return count / (time.perf_counter() - start)


def line(folder: str | Path | None = None) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: cpu {cpu_krounds_per_s():,.0f} k rounds/s (bench/calibration.py loop), "
            f"fsync {fsyncs_per_s(folder):,.0f}/s, {cores} cores, load {load:.1f}, "
            f"Python {platform.python_version()} ({sys.implementation.name}), {platform.machine()}")


if __name__ == "__main__":
    print(line())
