"""Case file benchmark: the event report and the sealed archive of a case with a 10,000-person call-out
(about 50,000 audit events, the same events as bench/replay.py).

Times what the review's activities do: read the events, compute the statistics and the timeline
(store/review/), render the report (HTML, PDF), read every event with its hashes and build the
archive (store/casefile/), and verify it offline (every file's hash, every event's hash and link,
every byte of the layout).

Run: `.venv/bin/python bench/casefile.py [--persons 10000]`.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=10_000)
    args = ap.parse_args()
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)

    tmp = tempfile.mkdtemp(prefix="yingji-bench-casefile-")
    url = f"sqlite:///{tmp}/bench.db"
    os.environ.update(YINGJI_DATABASE_URL=url, YINGJI_DATA_DIR=tmp, YINGJI_RUN_SCHEDULER="false")

    from bench.replay import CID, build
    from config import get_settings
    from store import casefile
    from store.audit import append, list_events
    from store.db import migrate, session_scope
    from store.replay import load_events
    from store.report import render
    from store.review import statistics, timeline

    get_settings.cache_clear()
    migrate(url)
    t0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)
    events, _ = build(args.persons, t0)
    with session_scope(url) as s:
        for i in range(0, len(events), 5000):
            append(s, events[i:i + 5000])
    rows: list[tuple[str, float, str]] = []

    def timed(label: str, fn, note=lambda v: ""):
        t = time.perf_counter()
        value = fn()
        rows.append((label, time.perf_counter() - t, note(value)))
        return value

    with session_scope(url, write=False) as s:
        loaded = timed("read events (report)", lambda: {CID: load_events(s, CID)},
                       lambda v: f"{len(v[CID]):,} events")
    stats = timed("statistics + timeline", lambda: (statistics(loaded), timeline(loaded)),
                  lambda v: f"{v[0]['callouts'][0]['acknowledged']:,} of {v[0]['callouts'][0]['targets']:,} acknowledged")
    data = {"incident_id": "INC-BENCH", "title": "基准", "version": 1, "final": True, "compiled_at": t0.isoformat(),
            "incident": {}, "timeline": stats[1], "statistics": stats[0], "units": [],
            "lessons": {"shortcomings": [], "suggestions": []}, "signoff": None, "returns": [], "names": {}}
    text, html, pdf = timed("render JSON + HTML + PDF", lambda: render(data), lambda v: f"PDF {len(v[2]) / 1e3:.0f} kB")
    with session_scope(url, write=False) as s:
        full = timed("read events with hashes (seal)", lambda: {CID: list_events(s, subject=CID)},
                     lambda v: f"{len(v[CID]):,} rows")
    contents = casefile.CaseContents(incident_id="INC-BENCH", title="基准", sealed_at=t0 + timedelta(days=8),
                                     sealed_by="bench", report_json=text.encode(), report_html=html.encode(),
                                     report_pdf=pdf, events=full)
    archive, _ = timed("build the archive", lambda: casefile.build(contents), lambda v: f"{len(v[0]) / 1e6:.1f} MB")
    result = timed("verify offline", lambda: casefile.verify_bytes(archive),
                   lambda v: f"ok={v.ok}, {v.events:,} events re-hashed")
    assert result.ok, result.problems
    print(f"{len(events):,} events, {args.persons:,} persons ({tmp})\n")
    print(machine)  # the table's own line: figures from two machines compare by it
    print(f"{'step':<34} | {'s':>7} | note")
    print("-" * 34 + "-+-" + "-" * 7 + "-+-" + "-" * 40)
    for label, secs, note in rows:
        print(f"{label:<34} | {secs:>7.2f} | {note}")


if __name__ == "__main__":
    main()
