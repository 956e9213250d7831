"""Scorecards benchmark: every town's and department's 考核 figures over a month holding 10 call-outs of 10,000
persons each (the events of bench/replay.py's call-out, about 50,000 per call-out), computed as
`GET /api/scorecards` computes them (store/scorecards.py). Issue 22 asks for under 2 s on this machine.

Run: `.venv/bin/python bench/scorecards.py [--persons 10000] [--callouts 10] [--repeat 3]`.
"""
from __future__ import annotations

import argparse
import os
import statistics
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
    ap.add_argument("--callouts", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)

    tmp = tempfile.mkdtemp(prefix="yingji-bench-scorecards-")
    url = f"sqlite:///{tmp}/bench.db"
    os.environ.update(YINGJI_DATABASE_URL=url, YINGJI_DATA_DIR=tmp, YINGJI_RUN_SCHEDULER="false")

    from sqlalchemy import insert

    from bench.replay import CID, build
    from config import get_settings
    from store.audit import append
    from store.callouts import Callout, CalloutTarget
    from store.db import get_engine, migrate, session_scope
    from store.directory import OrgUnit, Person, Position, Post
    from store.messages import OutboxMessage
    from store.scorecards import scorecards

    get_settings.cache_clear()
    migrate(url)
    started = time.perf_counter()
    # the directory: 10 towns, a village per person (bench/replay.py's targets are p1…pN, tiers by number)
    units = [dict(id="330110", name="青溪区", kind="district", parent_id=None, area_code="330110", vertical_line=False)]
    units += [dict(id=f"330110{t:03d}", name=f"第{t}镇", kind="town", parent_id="330110", area_code=f"330110{t:03d}",
                   vertical_line=False) for t in range(1, 11)]
    units += [dict(id=f"D{d:02d}", name=f"部门{d}", kind="department", parent_id="330110", area_code="330110",
                   vertical_line=False) for d in range(1, 21)]
    village = {n: f"330110{n % 10 + 1:03d}{n // 10 + 1:04d}" for n in range(1, args.persons + 1)}
    units += [dict(id=v, name=f"村{n}", kind="village", parent_id=v[:9], area_code=v, vertical_line=False)
              for n, v in village.items()]
    persons = [dict(id=f"p{n}", name=f"责任人{n}", mobile=f"+8613{n:09d}", org_unit_id=village[n],
                    contact_confirmed_at=datetime(2026, 1, 1, tzinfo=UTC) if n % 3 else None)
               for n in range(1, args.persons + 1)]
    posts = [dict(position_code="village_flood_resp", org_unit_id=village[n], person_id=f"p{n}")
             for n in range(1, args.persons + 1)]
    with get_engine(url, write=True).begin() as conn:
        conn.execute(insert(Position), [dict(code="village_flood_resp", name_zh="村(社区)防汛责任人",
                                             name_en="Village flood-control person", leader=False)])
        conn.execute(insert(OrgUnit), units)
        conn.execute(insert(Person), persons)
        conn.execute(insert(Post), posts)

    t0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)
    total_events = 0
    for i in range(args.callouts):
        cid = f"callout-bench-{i:02d}"
        at = t0 + timedelta(days=2 * i)
        events, _ = build(args.persons, at)
        for e in events:
            e.subject = cid
            e.workflow_id = e.workflow_id.replace(CID, cid) if e.workflow_id else e.workflow_id
        with session_scope(url) as s:
            s.add(Callout(id=cid, plan_id="heavy_rain", plan_version="bench", level="orange", category="heavy_rain",
                          title="暴雨橙色预警叫应", status="completed", started_at=at, ended_at=at + timedelta(hours=1)))
        with get_engine(url, write=True).begin() as conn:
            conn.execute(insert(CalloutTarget), [
                dict(callout_id=cid, target_key=f"{tier}/{n}", tier=tier, position_code="village_flood_resp",
                     org_unit_id=village[n], person_id=f"p{n}", state="acknowledged", attempts=[], escalated_to=[],
                     spec={}, updated_at=at)
                for n, tier in _tiers(args.persons)])
        with get_engine(url, write=True).begin() as conn:  # the outbox a real call-out leaves: a text to everyone
            conn.execute(insert(OutboxMessage), [
                dict(idempotency_key=f"{cid}/{n}", channel="sms", to=f"+8613{n:09d}", person_id=f"p{n}", subject=cid,
                     body="【叫应】", status="undelivered" if n % 50 == 0 else "delivered", created_at=at, meta={},
                     gateway="simulator", drill=False, priority=100)
                for n in range(1, args.persons + 1)])
        with session_scope(url) as s:
            for j in range(0, len(events), 5000):
                append(s, events[j:j + 5000])
        total_events += len(events)
        print(f"  call-out {i + 1}/{args.callouts}: {len(events):,} events", flush=True)
    print(f"{total_events:,} events of {args.callouts} call-outs of {args.persons:,} persons built in "
          f"{time.perf_counter() - started:.0f} s ({tmp})\n")

    since, until = datetime(2026, 6, 30, 16, tzinfo=UTC), datetime(2026, 7, 31, 16, tzinfo=UTC)  # July, Beijing
    with session_scope(url, write=False) as s:  # the first request folds each call-out once and keeps the folds
        t = time.perf_counter()
        scorecards(s, since, until, refs=False)
        first = time.perf_counter() - t
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        with session_scope(url, write=False) as s:
            rows = scorecards(s, since, until, refs=False)  # as GET /api/scorecards lists them
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    with session_scope(url, write=False) as s:  # as GET /api/scorecards/{unit} gives one, with its events
        [one] = scorecards(s, since, until, unit_id="330110001")
    one_s = time.perf_counter() - t
    one_refs = len(one["callouts"]["called"]["refs"])
    called = sum((r["callouts"] or {}).get("called", {}).get("value", 0) for r in rows)
    assert called == args.callouts * args.persons, called
    best, med = min(times), statistics.median(times)
    print(machine)  # the table's own line: figures from two machines compare by it
    print(f"{'what':<44} {'result':>12}")
    print(f"{'-' * 44} {'-' * 12}")
    print(f"{'units scored (towns and departments)':<44} {len(rows):>12,}")
    print(f"{'targets counted (persons x call-outs)':<44} {called:>12,}")
    print(f"{'audit events in the month':<44} {total_events:>12,}")
    failing = sum((r["contacts"] or {}).get("failing", {}).get("value", 0) for r in rows)
    print(f"{'numbers failing (contacts)':<44} {failing:>12,}")
    print(f"{'first request (folds every call-out, keeps it)':<44} {first:>11.2f}s")
    print(f"{'scorecards, all units, best of ' + str(args.repeat):<44} {best:>11.2f}s")
    print(f"{'scorecards, all units, median':<44} {med:>11.2f}s")
    print(f"{'target (issue 22)':<44} {'< 2 s':>12}")
    print(f"{'one town with its events (' + format(one_refs, ',') + ' called)':<44} {one_s:>11.2f}s")


def _tiers(persons: int):
    """The target keys of bench/replay.py's call-out: (number, tier) in its order."""
    tiers = {"departments": persons // 100, "towns": persons // 10}
    tiers["villages"] = persons - sum(tiers.values())
    n = 0
    for tier, count in tiers.items():
        for _ in range(count):
            n += 1
            yield n, tier


if __name__ == "__main__":
    main()
