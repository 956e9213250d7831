"""The monthly bulletin 通报 (issue 22, item 3): its read model and what it compiles.

`compile_data` gathers a month (its drill weeks: those whose Thursday is in the month) (the previous one, from the first working day's schedule) from store/scorecards.py,
store/drillweeks.py and the thresholds and weights of definitions/assessment/ (store/assessment.py): the ranking,
the units below a threshold, the late and missing reports, the unanswered call-outs and the drill weeks; every figure
keeps the records it came from. `render` makes its HTML (inline SVG charts) and PDF through store/report.py's
renderer (WeasyPrint, Noto CJK). The `Bulletin` row is the console's and the API's view; the workflow
(workflows/bulletin.py) is the truth while it runs and the audit chain `bulletin/<YYYY-MM>` the record that lasts:
`bulletin.compiled` (each version with its hashes), `bulletin.returned`, `bulletin.approved`, `bulletin.sent`,
`bulletin.sealed` (the approved version's PDF hash and the seal over the canonical JSON and the PDF).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, LargeBinary, Text
from sqlmodel import Field, SQLModel

from definitions.schema.calendar import WEEKDAYS_ONLY, WorkCalendar
from store.types import json_column, now_utc, utc_column

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
STATUS_ZH = {"compiling": "汇编中", "awaiting": "待审定", "returned": "已退回", "approved": "已审定",
             "sealed": "已印发封存"}


class Bulletin(SQLModel, table=True):
    __tablename__ = "bulletin"
    id: str = Field(primary_key=True, description="the month, YYYY-MM")
    workflow_id: str = Field(index=True)
    subject: str
    status: str = Field(default="compiling", index=True, description="compiling | awaiting | returned | approved | sealed")
    version: int = 0
    since: datetime = Field(sa_column=utc_column(nullable=False))
    until: datetime = Field(sa_column=utc_column(nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=json_column(nullable=False))
    html: str = Field(default="", sa_column=Column(Text, nullable=False))
    pdf: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    sha256_json: str = ""
    sha256_pdf: str = ""
    returns: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    compiled_at: datetime | None = Field(default=None, sa_column=utc_column())
    approved_at: datetime | None = Field(default=None, sa_column=utc_column())
    approved_by: str | None = None
    sent: list[dict[str, Any]] = Field(default_factory=list, sa_column=json_column(nullable=False))
    sealed_at: datetime | None = Field(default=None, sa_column=utc_column())
    seal_sha256: str | None = None
    updated_at: datetime = Field(default_factory=now_utc, sa_column=utc_column(nullable=False))


def bulletin_subject(month: str) -> str:
    return f"bulletin/{month}"


def bulletin_workflow_id(month: str) -> str:
    return f"bulletin-{month}"


def month_range(month: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[first day 00:00, next month's first day 00:00) local, as aware datetimes."""
    m = MONTH.match(month)
    if m is None:
        raise ValueError(f"{month!r} is not a month: write it like 2026-11")
    y, mo = int(m.group(1)), int(m.group(2))
    nxt = date(y + (mo == 12), 1 if mo == 12 else mo + 1, 1)
    return datetime.combine(date(y, mo, 1), time(0), tzinfo=tz), datetime.combine(nxt, time(0), tzinfo=tz)


def previous_month(at: datetime, tz: ZoneInfo) -> str:
    local = at.astimezone(tz)
    y, m = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{y}-{m:02d}"


def first_working_day(year: int, month: int, calendar: WorkCalendar = WEEKDAYS_ONLY) -> date:
    """The month's first working day by the working calendar (national holidays and moved working days where it
    knows the year; Monday to Friday otherwise): when the schedule (api/services/duty/schedules.py
    first_working_day_spec) compiles the bulletin of the month before."""
    return calendar.first_working_day(date(year, month, 1))


def month_zh(month: str) -> str:
    y, m = month.split("-")
    return f"{y}年{int(m)}月"


# ------------------------------------------------------------------ what a bulletin compiles


def _refs(refs: list[dict[str, Any]], n: int = 20) -> list[dict[str, Any]]:
    return [{k: r.get(k) for k in ("subject", "seq", "link", "what", "state", "late_by_s") if r.get(k) is not None}
            for r in refs[:n]]


def compile_data(s: Any, month: str, tz: ZoneInfo, rules: Any, duty: Any, now: datetime) -> dict[str, Any]:
    """The month's bulletin content (JSON-able): period, ranking per kind, units below thresholds, late and missing
    reports, unanswered call-outs, drill weeks; every unit links to its scorecard page for the month."""
    from store.assessment import ranking
    from store.drillweeks import programme_of, weeks_from_db
    from store.scorecards import contact_limits, scorecards

    since, until = month_range(month, tz)
    cards = scorecards(s, since, until, freshness=contact_limits(duty))  # the limits the scorecard pages use
    ranked = [r for kind in ("town", "department") for r in ranking([c for c in cards if c["kind"] == kind], rules)]
    by_id = {c["unit_id"]: c for c in cards}
    first, last = since.date().isoformat(), (until.date().toordinal() - 1)
    last_day = date.fromordinal(last).isoformat()

    def card_link(uid: str) -> str:
        return f"/console/scorecards/{uid}?date_from={first}&date_to={last_day}"

    for r in ranked:
        r["link"] = card_link(r["unit_id"])
        for b in r["breaches"]:
            b["refs"] = _refs(b["refs"])
    late, missing, unanswered = [], [], []
    for c in cards:
        rep = c.get("reporting") or {}
        for ref in (rep.get("late") or {}).get("refs", []):
            late.append({"unit_id": c["unit_id"], "name": c["name"], "link": card_link(c["unit_id"]),
                         "what": ref.get("what"), "late_by_s": ref.get("late_by_s"), "subject": ref["subject"],
                         "replay": ref["link"]})
        for ref in (rep.get("missing") or {}).get("refs", []):
            missing.append({"unit_id": c["unit_id"], "name": c["name"], "link": card_link(c["unit_id"]),
                            "what": ref.get("what"), "state": ref.get("state"), "subject": ref["subject"],
                            "replay": ref["link"]})
        co = c.get("callouts") or {}
        never = (co.get("never") or {}).get("value", 0)
        if never:
            unanswered.append({"unit_id": c["unit_id"], "name": c["name"], "link": card_link(c["unit_id"]),
                               "never": never, "called": co["called"]["value"],
                               "subjects": sorted({r["subject"] for r in co["never"]["refs"]}),
                               "replays": sorted({r["link"] for r in co["never"]["refs"]})})
    minimum, programme = programme_of(duty)
    # the weeks whose Thursday falls in the month (as ISO weeks belong to years): each week in one bulletin only
    weeks = [w for w in weeks_from_db(s, minimum, programme, since, until, tz, now)
             if since <= w["start"] + timedelta(days=3) < until]
    drill_weeks = [{"week": w["week"], "label_zh": w["label_zh"], "complete": w["complete"], "below": w["below"],
                    "kinds": {k: {"run": v["run"], "minimum": v["minimum"], "short": v["short"], "below": v["below"],
                                  "refs": [{"subject": r["subject"], "link": r["link"]} for r in v["refs"]]}
                              for k, v in w["kinds"].items()}} for w in weeks]
    weeks_below = sum(1 for w in drill_weeks if w["below"])
    return {
        "month": month, "month_zh": month_zh(month), "since": since.isoformat(), "until": until.isoformat(),
        "date_from": first, "date_to": last_day,
        "rules": {"id": rules.id, "thresholds": [t.describe_zh() for t in rules.thresholds],
                  "weights": [{"figure": w.figure, "label_zh": w.label_zh, "weight": w.weight} for w in rules.weights],
                  "drill_weeks_below_max": rules.drills.weeks_below_max},
        "ranking": {kind: [r for r in ranked if r["kind"] == kind] for kind in ("town", "department")},
        "below": [{"unit_id": r["unit_id"], "name": r["name"], "kind": r["kind"], "link": r["link"],
                   "breaches": r["breaches"]} for r in ranked if r["breaches"]],
        "late_reports": late, "missing_reports": missing, "unanswered": unanswered,
        "drill_weeks": drill_weeks, "drill_weeks_below": weeks_below,
        "drills_ok": weeks_below <= rules.drills.weeks_below_max,
        "units": len(by_id),
    }


# ------------------------------------------------------------------ HTML and PDF


def charts(data: dict[str, Any]) -> dict[str, Any]:
    """Inline SVG: the ranking score per unit (each kind) and the drills run per week against the minimum."""
    from store.report import bar_chart

    out = {}
    for kind, title in (("town", "乡镇(街道)综合得分"), ("department", "区级部门综合得分")):
        rows = [(r["name"], r["score"], "—" if r["score"] is None else f"{r['score']:.1f}")
                for r in data["ranking"].get(kind, [])]
        out[f"score_{kind}"] = bar_chart(title, rows, max_value=100.0)
    for kind, title in (("district", "区级连通性演练(每周)"), ("towns", "乡镇(街道)抽查演练(每周)")):
        rows = [(w["label_zh"].split("(")[0], float(w["kinds"][kind]["run"]),
                 f"{w['kinds'][kind]['run']}/{w['kinds'][kind]['minimum']}次")
                for w in data["drill_weeks"] if kind in w["kinds"]]
        top = max([w["kinds"][kind]["minimum"] for w in data["drill_weeks"] if kind in w["kinds"]] + [1])
        out[f"drills_{kind}"] = bar_chart(title, rows, max_value=float(max(top, *(r[1] for r in rows))) if rows else None,
                                          color="#16a085")
    return out


def render_html(data: dict[str, Any], view: dict[str, Any], timezone: str) -> str:
    from store.report import FONT_STACK, report_env

    return report_env(timezone).get_template("bulletin.html").render(d=data, v=view, charts=charts(data), font_stack=FONT_STACK)
