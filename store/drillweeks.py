"""The weekly drill count 演练周计数 (issue 22, item 2): drills actually run per ISO week against the programme's
weekly minimums (`weekly_minimum` in definitions/duty/drills.yaml; seed 000 任务17: ≥2 district drills, ≥3 town spot
checks a week).

A week starts on Monday 00:00 in the duty office's time zone (Asia/Shanghai). A drill counts as run when its trail
says it started with a sample (`drill.started` without a `gap`: a drill that found nobody to call was not run); it
counts towards the minimum its payload names (`counts_as`) or, for drills recorded before that key, the minimum its
drill id counts towards in the programme. Scheduled and manual runs count alike. Plain functions over audit events
(`drill_weeks`, unit-tested with hand-built events) and one that reads them from the database (`weeks_from_db`); the
desk, the handover note and the monthly bulletin read the same weeks.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from store.scorecards import replay_link
from workflows.kit.events import Drill

KIND_ZH = {"district": "区级连通性演练", "towns": "乡镇(街道)抽查演练"}


def week_start(at: datetime, tz: ZoneInfo) -> datetime:
    """Monday 00:00 local of the week `at` falls in (an aware datetime in `tz`)."""
    local = at.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    return datetime.combine(monday, time(0), tzinfo=tz)


def week_label(start: datetime) -> str:
    y, w, _ = start.date().isocalendar()
    return f"{y}-W{w:02d}"


def week_zh(start: datetime) -> str:
    """第49周(12月1日—12月7日)."""
    end = (start + timedelta(days=6)).date()
    return f"第{start.date().isocalendar()[1]}周({start.month}月{start.day}日—{end.month}月{end.day}日)"


def _counts_as(payload: Mapping[str, Any], programme: Mapping[str, str]) -> str | None:
    return payload.get("counts_as") or programme.get(payload.get("drill") or "")


def drill_weeks(events: Iterable[Any], minimum: Mapping[str, int], programme: Mapping[str, str],
                since: datetime, until: datetime, tz: ZoneInfo, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every week that overlaps [since, until), with the drills run in it per minimum.

    `events`: audit events (anything with kind, subject, chain_seq or seq, at, payload); only `drill.started` ones
    count. `programme`: drill id → the minimum it counts towards. Each week: `week` (2026-W49), `start`/`end` (local
    Monday 00:00, the next Monday), `complete` (ended by `now`), `kinds` {district|towns: run, minimum, below,
    short (how many missing), refs (the runs, each linking to its replay)}, `below` (any kind below its minimum).
    A week not yet complete is below only in the sense that it has not reached its minimum yet."""
    starts: list[datetime] = []
    s = week_start(since, tz)
    while s < until:
        starts.append(s)
        s = datetime.combine(s.date() + timedelta(days=7), time(0), tzinfo=tz)
    weeks = {st: {"week": week_label(st), "label_zh": week_zh(st), "start": st,
                  "end": datetime.combine(st.date() + timedelta(days=7), time(0), tzinfo=tz),
                  "kinds": {k: {"run": 0, "minimum": int(m), "refs": []} for k, m in minimum.items()}}
             for st in starts}
    seen: set[str] = set()
    for ev in events:
        if ev.kind != Drill.STARTED or ev.subject in seen:
            continue
        p = ev.payload or {}
        if p.get("gap"):
            continue  # nobody to draw: not run
        kind = _counts_as(p, programme)
        wk = weeks.get(week_start(ev.at, tz))
        if wk is None or kind not in wk["kinds"]:
            continue
        seen.add(ev.subject)
        k = wk["kinds"][kind]
        k["run"] += 1
        k["refs"].append({"subject": ev.subject, "seq": getattr(ev, "chain_seq", None) or getattr(ev, "seq", None),
                          "link": replay_link(ev.subject), "at": ev.at, "drill": p.get("drill"),
                          "name": p.get("name") or ""})
    out = []
    for st in starts:
        wk = weeks[st]
        for k in wk["kinds"].values():
            k["short"] = max(k["minimum"] - k["run"], 0)
            k["below"] = k["short"] > 0
        wk["below"] = any(k["below"] for k in wk["kinds"].values())
        wk["complete"] = now is not None and wk["end"] <= now
        out.append(wk)
    return out


def below_text(wk: dict[str, Any]) -> str:
    """What a week is short of, in Chinese: "区级连通性演练1次(每周至少2次)、乡镇(街道)抽查演练0次(至少3次)"."""
    parts = [f"{KIND_ZH.get(name, name)}{k['run']}次(每周至少{k['minimum']}次)"
             for name, k in wk["kinds"].items() if k["below"]]
    return "、".join(parts)


def programme_of(duty: Any) -> tuple[dict[str, int], dict[str, str]]:
    """(weekly minimum per kind, drill id → kind) of the duty definitions' drill programme."""
    drills = duty.drills
    return dict(drills.weekly_minimum), {d.id: d.counts_as for d in drills.programme}


def weeks_from_db(s: Any, minimum: Mapping[str, int], programme: Mapping[str, str], since: datetime,
                  until: datetime, tz: ZoneInfo, now: datetime | None = None) -> list[dict[str, Any]]:
    """`drill_weeks` over the `drill.started` events of the whole weeks overlapping [since, until)."""
    from sqlmodel import col, select

    from store.audit import AuditEvent

    first = week_start(since, tz)
    last = week_start(until - timedelta(microseconds=1), tz) + timedelta(days=7)
    rows = s.exec(select(AuditEvent).where(AuditEvent.kind == Drill.STARTED, col(AuditEvent.at) >= first,
                                           col(AuditEvent.at) < last).order_by(col(AuditEvent.seq)))
    return drill_weeks(rows, minimum, programme, since, until, tz, now)


def recent_weeks(s: Any, duty: Any, at: datetime, tz: ZoneInfo) -> dict[str, dict[str, Any]]:
    """This week (so far) and the last complete one: what the desk and the handover note show."""
    minimum, programme = programme_of(duty)
    this = week_start(at, tz)
    weeks = weeks_from_db(s, minimum, programme, this - timedelta(days=7), this + timedelta(days=1), tz, at)
    return {"last": weeks[0], "this": weeks[1]}
