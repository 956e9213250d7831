"""Hostile-input benchmark: how long each refusal takes.

The tests (tests/unit/test_cap.py, tests/security/test_http_guards.py, tests/security/
test_definitions_refused.py) check that hostile input is refused, with the right reason, without
reading a file or opening a socket; they do not time it, because a busy machine would fail them.
This prints the times instead, so a refusal that got slow shows here:

- CAP documents (XXE, external DTDs, entity bombs, deep nesting, 60,000 elements, over 1 MB…)
  through `parse_cap`, the parser the API and the feed poller use;
- oversized request bodies through the security middleware (refused from Content-Length);
- bad call-out plans (YAML cycles, alias bombs, deep nesting, unknown positions…) through
  `load_library`, every shipped definition loaded alongside.

Run: `.venv/bin/python bench/hostile_input.py [--repeat 3]`. The table gives the median and
the slowest of the repeats, in milliseconds.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float, str]:
    times, outcome = [], ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        outcome = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times), outcome


def cap_rows(repeat: int) -> list[tuple[str, float, float, str]]:
    from api.cap import CapError, parse_cap
    from tests.security.test_http_guards import hostile

    def refuse(doc: bytes):
        def run() -> str:
            try:
                parse_cap(doc)
            except CapError as err:
                return f"refused: {err.reason}"
            return "accepted"
        return run

    docs = hostile("http://127.0.0.1:9")  # a port nothing listens on: a fetch would fail, not hang
    return [(f"CAP {name}", *timed(refuse(doc), repeat)) for name, doc in docs.items()]


def body_rows(repeat: int) -> list[tuple[str, float, float, str]]:
    from api.security import SecurityMiddleware
    from config import get_settings

    async def never(scope, receive, send):  # the route: must never be reached
        raise AssertionError("reached the route")

    app = SecurityMiddleware(never, get_settings())

    def post(path: str, size: int):
        body = b"x" * size

        def run() -> str:
            status = {}

            async def receive():
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]

            scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
                     "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")],
                     "client": ("127.0.0.1", 1), "server": ("test", 80), "scheme": "http", "root_path": ""}
            asyncio.run(app(scope, receive, send))
            return f"HTTP {status.get('code')}"
        return run

    return [(f"body {size // 1000} kB to {path}", *timed(post(path, size), repeat))
            for path, size in [("/api/incidents", 2_000_001), ("/api/webhooks/twilio/sms", 64_001), ("/ack/x", 16_001)]]


def definition_rows(repeat: int) -> list[tuple[str, float, float, str]]:
    from definitions.loader import load_library
    from tests.security.test_definitions_refused import CASES

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        defs = Path(tmp) / "definitions"
        shutil.copytree(ROOT / "definitions", defs, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))

        def load() -> str:
            lib = load_library(defs)
            return f"refused: {len(lib.errors)} error(s)" if lib.errors else "loaded"

        rows.append(("definitions: the shipped ones", *timed(load, repeat)))
        for name, (text, _) in CASES.items():
            (defs / "callout" / "bad.yaml").write_text(text, encoding="utf-8")
            rows.append((f"definitions: {name}", *timed(load, repeat)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("YINGJI_DATA_DIR", tmp)
        rows = cap_rows(args.repeat) + body_rows(args.repeat) + definition_rows(args.repeat)
    width = max(len(r[0]) for r in rows)
    print(machine)  # the table's own line: figures from two machines compare by it
    print(f"{'input':<{width}}  {'median ms':>10}  {'slowest ms':>10}  outcome")
    for name, median, slowest, outcome in rows:
        print(f"{name:<{width}}  {median:>10.1f}  {slowest:>10.1f}  {outcome}")


if __name__ == "__main__":
    main()
