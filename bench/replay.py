"""Replay benchmark: a 10,000-person call-out's audit trail (about 50,000 events) replayed at several instants.

The events are the ones a heavy-rain call-out writes (sent, delivery, timeout, ack,
escalated, unreachable…), appended with `store.audit.append` into a temporary SQLite
database; the timed function is the replay route's own (`api.routes.replay.replay_subject`:
load the events up to the instant, replay them, join the names), plus the whole HTTP
route through the ASGI app (JSON of every target).

Run: `.venv/bin/python bench/replay.py [--persons 10000]`.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402

CID = "callout-bench-replay"
WID = CID


def build(persons: int, t0: datetime) -> tuple[list, datetime]:
    """The events of a call-out: everyone texted; 60 % answer the text, 25 % the voice call,
    10 % through their deputy, 5 % never (unreachable)."""
    from store.audit import NewEvent

    rnd = random.Random(7)
    ev: list[NewEvent] = []

    def add(kind: str, step_id: str, at: datetime, workflow: str = WID, channel: str | None = None, actor: str = "system",
            **payload) -> None:
        ev.append(NewEvent(subject=CID, kind=kind, step_id=step_id, workflow_id=workflow, at=at, channel=channel,
                           actor=actor, payload=payload))

    add("callout.started", "started", t0, level="orange", towns=["330110001"], warning_id="Wbench", drill=False)
    shards = (persons + 499) // 500
    tiers = {"departments": persons // 100, "towns": persons // 10}
    tiers["villages"] = persons - sum(tiers.values())
    version = hashlib.sha256((ROOT / "definitions" / "callout" / "heavy_rain.yaml").read_bytes()).hexdigest()[:16]
    add("callout.plan_chosen", "plan", t0, plan="heavy_rain", version=version, category="heavy_rain",
        tiers=list(tiers))  # the shipped plan's version: the replay derives the open deadlines too
    add("callout.targets_resolved", "resolve/0", t0 + timedelta(seconds=1), tiers=list(tiers), towns=["330110001"],
        total=persons, per_tier=tiers, shards=[{"index": i, "count": 500} for i in range(shards)], gaps=[])
    n = 0
    end = t0
    for tier, count in tiers.items():
        for _ in range(count):
            n += 1
            shard = f"{CID}/shard-{n // 500}"
            key, pid, dep = f"{tier}/{n}", f"p{n}", f"d{n}"
            sent = t0 + timedelta(seconds=2 + n / 2000)

            def send(step: str, who: str, channel: str, at: datetime, purpose: str = "notify") -> str:
                skey = f"{key}/{step}/{who}/{channel}"
                add("callout.sent", f"send/{skey}", at, shard, channel, target=key, person_id=who, purpose=purpose,
                    status="sent", to="+86139****0000", error=None, outbox_id=n, drill=False)
                return f"{shard}/{skey}"

            def rec(kind: str, at: datetime, state: str, who: str = pid, channel: str | None = None, **extra) -> None:
                add(f"callout.{kind}", f"{key}/{kind}/{len(ev)}", at, shard, channel, actor=who if kind == "ack" else "system",
                    target=key, person_id=who, state=state, **extra)

            for channel in ("sms", "im") if tier != "villages" else ("sms",):
                k = send("0.0", pid, channel, sent)
                rec("delivery", sent + timedelta(seconds=3), "notified", send=k, status="delivered", detail=None)
            fate = rnd.random()
            if fate < 0.60:
                rec("ack", sent + timedelta(seconds=rnd.uniform(20, 500)), "acknowledged", channel="sms", note=None,
                    late=False, by_deputy=False, ref=f"sms:{n}")
            else:
                voice = sent + timedelta(minutes=10)
                rec("timeout", voice, "notified", step=1)
                k = send("2.0", pid, "voice", voice)
                if fate < 0.85:
                    rec("ack", voice + timedelta(seconds=rnd.uniform(10, 60)), "acknowledged", channel="voice",
                        note=None, late=False, by_deputy=False, ref=f"kp:{n}")
                else:
                    esc = voice + timedelta(minutes=5)
                    rec("delivery", voice + timedelta(seconds=40), "notified", send=k, status="no_answer", detail=None)
                    rec("timeout", esc, "notified", step=3)
                    rec("escalated", esc, "escalated", who=dep, to="deputy", name="副职", channels=["voice"])
                    k = send("5.0", dep, "voice", esc, "escalate")
                    rec("delivery", esc + timedelta(seconds=5), "escalated", send=k, status="answered", detail=None)
                    if fate < 0.95:
                        rec("ack", esc + timedelta(seconds=rnd.uniform(10, 120)), "acknowledged", who=dep,
                            channel="voice", note=None, late=False, by_deputy=True, ref=f"dep:{n}")
                    else:
                        rec("timeout", esc + timedelta(minutes=5), "escalated", step=6)
                        rec("unreachable", esc + timedelta(minutes=5), "unreachable", recipients=[pid, dep])
            end = max(end, ev[-1].at)
    add("callout.ended", "ended", end + timedelta(seconds=5), status="completed", reason="")
    return ev, end + timedelta(seconds=5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--persons", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)

    tmp = tempfile.mkdtemp(prefix="yingji-bench-replay-")
    url = f"sqlite:///{tmp}/bench.db"
    os.environ.update(YINGJI_DATABASE_URL=url, YINGJI_DATA_DIR=tmp, YINGJI_ADMIN_TOKEN="bench", YINGJI_RUN_SCHEDULER="false")

    from fastapi.testclient import TestClient
    from sqlmodel import Session

    from api.app import create_app
    from api.services.replay import replay_subject
    from config import get_settings
    from store.audit import append
    from store.db import get_engine, migrate, session_scope
    from store.directory import Person
    from store.replay import load_events, replay_callout

    get_settings.cache_clear()
    migrate(url)
    t0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)
    events, t_end = build(args.persons, t0)
    started = time.perf_counter()
    with session_scope(url) as s:
        for i in range(0, len(events), 5000):
            append(s, events[i:i + 5000])
        s.add_all(Person(id=f"p{n}", name=f"责任人{n}", mobile=f"+8613900{n:06d}") for n in range(1, args.persons + 1))
    build_s = time.perf_counter() - started
    print(f"{len(events):,} events for {args.persons:,} persons appended in {build_s:.1f} s ({tmp})\n")

    instants = [("5 min in", t0 + timedelta(minutes=5)), ("12 min in", t0 + timedelta(minutes=12)),
                ("the end", t_end)]
    rows = []
    engine = get_engine(url)
    app = create_app()
    with TestClient(app) as client:
        for label, at in instants:
            best: dict[str, float] = {}

            def timed(name: str, fn):
                times = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    value = fn()
                    times.append(time.perf_counter() - t)
                best[name] = min(times)
                return value

            with Session(engine) as s:
                loaded = timed("load", lambda: load_events(s, CID, until=at))
                state = timed("replay", lambda: replay_callout(loaded, at))
                timed("route fn", lambda: replay_subject(s, CID, at, get_settings().definitions_dir, cache=None))
                timed("warm", lambda: replay_subject(s, CID, at, get_settings().definitions_dir))
            resp = timed("HTTP", lambda: client.get(f"/api/audit/{CID}/replay", params={"at": at.isoformat()},
                                                    headers={"Authorization": "Bearer bench"}))
            assert resp.status_code == 200, resp.text
            assert resp.json()["deadlines_known"]
            rows.append((label, len(loaded), state["counts"]["acknowledged"], state["open"], best["load"],
                         best["replay"], best["route fn"], best["warm"], best["HTTP"], len(resp.content)))

    head = ("instant", "events", "acked", "open", "load s", "replay s", "route fn s", "cached s", "HTTP s", "JSON MB")
    print(machine)  # the table's own line: figures from two machines compare by it
    print(" | ".join(f"{h:>10}" for h in head))
    print("-+-".join("-" * 10 for _ in head))
    for r in rows:
        print(" | ".join([f"{r[0]:>10}", f"{r[1]:>10,}", f"{r[2]:>10,}", f"{r[3]:>10,}",
                          *(f"{x:>10.3f}" for x in r[4:9]), f"{r[9] / 1e6:>10.2f}"]))
    print(f"\nbest of {args.repeat}; 'route fn' = load up to the instant + replay + names "
          "(api.routes.replay.replay_subject, no cache); 'cached' = the same with the subject's events cached "
          "(the slider's second and later instants); 'HTTP' = GET /api/audit/{subject}/replay, every target as JSON")


if __name__ == "__main__":
    main()
