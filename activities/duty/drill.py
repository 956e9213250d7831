"""Drills 演练: drawing the sample and the drill's call-out, the figures, the report to those on duty."""
from __future__ import annotations

import asyncio
import random
import statistics
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from temporalio import activity

from activities.common import on_duty_as, sms_each
from activities.common import now as _now
from activities.delivery import deliver
from definitions.schema.callout import CalloutPlan, Tier
from definitions.schema.common import Level, format_duration
from definitions.schema.duty import Drill
from store.audit import NewEvent, append
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from store.directory import OrgUnit, Post
from store.duty import DrillRun
from workflows.callout import CalloutInput, NightHours, WarningInfo
from workflows.kit import names
from workflows.drill import DRILL_MARK, DrillReport, PrepareRequest, Prepared, ReportRequest


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


DRILL_CANCEL = "【结束】本次演练已结束,无需再回复。"  # the call-out puts 【演练】 before it


def drill_texts(d: Drill) -> tuple[str, str, str]:
    """The drill's call-out wording (Chinese, English, voice) with its name and window filled in; the
    call-out fills the rest and puts the 【演练】 marker before every text."""
    fill = _Keep(name=d.name_zh, window=_zh_duration(d.window))
    return (d.message_zh.format_map(fill),
            d.message_en.format_map(_Keep(name=f"Drill: {d.name_en}", window=format_duration(d.window))),
            d.voice_zh.format_map(fill))


def report_text(d: Drill, fig: dict[str, Any], gap: str | None) -> str:
    """The drill's result as those on duty receive it (Chinese only)."""
    rate = f"{fig['rate']:.0%}" if fig["rate"] is not None else "—"
    names = "、".join(n["name"] for n in fig["never"][:5]) + (f"等{len(fig['never'])}人" if len(fig["never"]) > 5 else "")
    return (f"{DRILL_MARK}【演练小结】{d.name_zh}:抽取{fig['total']}人,{_zh_duration(d.window)}内应答{fig['responded']}人"
            f"(应答率{rate})" + (f";未应答:{names}" if fig["never"] else "") + (f";{gap}" if gap else ""))


@activity.defn(name=names.Duty.DRILL_PREPARE)
async def drill_prepare(req: PrepareRequest) -> Prepared:
    d = req.drill

    def work() -> Prepared:
        with session_scope() as s:
            sample = d.sample
            kind = {"district": "district", "departments": "department", "towns": "town"}[sample.scope]
            units = list(s.exec(select(OrgUnit).where(OrgUnit.kind == kind).order_by(col(OrgUnit.id))))
            if sample.org_units:
                units = [u for u in units if u.id in sample.org_units]
            filled = {p.org_unit_id for p in s.exec(select(Post).where(col(Post.position_code).in_(sample.positions)))}
            units = [u for u in units if u.id in filled]
            rng = random.Random(req.run_id)  # the same sample on a retry
            chosen = sorted(rng.sample(units, min(sample.size, len(units))), key=lambda u: u.id)
            info = {"scope": sample.scope, "positions": sample.positions, "org_units": [u.id for u in chosen],
                    "names": [u.name for u in chosen], "drawn_from": len(units)}
            row = s.get(DrillRun, req.run_id)
            if row is None:
                row = DrillRun(id=req.run_id, drill_id=d.id, name=d.name_zh, counts_as=d.counts_as,
                               callout_id=f"{req.run_id}/callout", trigger="schedule" if req.trigger == "schedule" else "manual",
                               window_s=int(d.window.total_seconds()), sample=info, started_at=req.at)
                s.add(row)
            gap = None if chosen else f"no {kind} with {', '.join(sample.positions)} to draw from"
            # a run that found nobody to draw ends here, but reads "reported" only with its `drill.reported` event,
            # which drill_report writes once its report has gone out (as for any run)
            append(s, [NewEvent(subject=req.run_id, kind="drill.started", step_id="started", workflow_id=req.run_id,
                                run_id=req.temporal_run_id, actor=req.trigger, at=req.at,
                                payload={"drill": d.id, "name": d.name_zh, "counts_as": d.counts_as, "drill_marker": True,
                                         "sample": info,
                                         "callout_id": f"{req.run_id}/callout", "window_s": int(d.window.total_seconds()),
                                         "version": req.version, "gap": gap})])
        if gap:
            return Prepared(sample=info, gap=gap)
        message_zh, message_en, voice_zh = drill_texts(d)
        tier = Tier(id="sample", name_zh=f"演练抽取:{'、'.join(info['names'])}"[:200], name_en="Drill sample",
                    scope="departments" if sample.scope == "departments" else
                    ("district" if sample.scope == "district" else "area_towns"),
                    positions=sample.positions, org_units=info["org_units"] if sample.scope == "departments" else None,
                    policy="drill", min_level=Level.blue)
        plan = CalloutPlan(id=f"drill_{d.id}", name_zh=d.name_zh, name_en=d.name_en, category="drill", events=["演练"],
                           min_level=Level.blue, message_zh=message_zh, message_en=message_en,
                           voice_zh=voice_zh, policies={"drill": d.policy}, tiers=[tier], summary_to=[],
                           cancel_message_zh=DRILL_CANCEL)
        warning = WarningInfo(warning_id=req.run_id, identifier=req.run_id, level=d.level, category="drill", event="演练",
                              headline=f"{DRILL_MARK}{d.name_zh}", area_descs=info["names"],
                              town_ids=info["org_units"] if sample.scope == "towns" else [])
        callout = CalloutInput(callout_id=f"{req.run_id}/callout", warning=warning, plan=plan, plan_version=req.version,
                               night=NightHours(start="00:00", end="00:00"), drill=True)
        return Prepared(callout=callout, sample=info)

    return await asyncio.to_thread(work)


def _zh_duration(td: timedelta) -> str:
    s = int(td.total_seconds())
    if s % 3600 == 0:
        return f"{s // 3600}小时"
    if s % 60 == 0:
        return f"{s // 60}分钟"
    return f"{s}秒"


def drill_figures(targets: list[CalloutTarget], started: datetime, window: timedelta) -> dict[str, Any]:
    """Who answered within the window, counted from each target's first message."""
    responded, never, late, delays = 0, [], [], []
    for t in targets:
        first = min((datetime.fromisoformat(a["at"]) for a in t.attempts if a.get("purpose") == "notify"), default=started)
        if t.acknowledged_at is None:
            never.append({"person_id": t.person_id, "name": t.name, "org_unit": t.org_unit_id, "state": t.state})
            continue
        delay = max((t.acknowledged_at - first).total_seconds(), 0.0)
        delays.append(delay)
        if delay <= window.total_seconds():
            responded += 1
        else:
            late.append({"person_id": t.person_id, "name": t.name, "org_unit": t.org_unit_id, "after_s": round(delay)})
    total = len(targets)
    return {"total": total, "responded": responded, "acknowledged": len(delays),
            "rate": round(responded / total, 4) if total else None,
            "median_ack_s": statistics.median(delays) if delays else None, "never": never, "late": late}


@activity.defn(name=names.Duty.DRILL_REPORT)
async def drill_report(req: ReportRequest) -> DrillReport:
    d = req.drill

    def compute() -> tuple[dict, dict]:
        with session_scope() as s:
            row = s.get(DrillRun, req.run_id)
            c = s.get(Callout, req.callout_id)
            targets = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == req.callout_id)))
            fig = drill_figures(targets, c.started_at if c else row.started_at, d.window)
            if req.gap:
                fig["gap"] = req.gap
            return fig, on_duty_as(s, _now(), d.report_to)

    fig, people = await asyncio.to_thread(compute)
    body = report_text(d, fig, req.gap)
    outcomes = await deliver(sms_each(people.values(), lambda c: f"{req.run_id}/report/{c.person_id}", body,
                                      subject=req.run_id, drill=True, meta={"purpose": "summary", "procedure": "drill"}))

    def record() -> None:
        # The run reads "reported" only once its report has gone out and its trail says so: one transaction.
        with session_scope() as s:
            row = s.get(DrillRun, req.run_id)
            row.total, row.responded, row.acknowledged, row.rate = (fig["total"], fig["responded"], fig["acknowledged"],
                                                                    fig["rate"])
            row.report, row.status, row.ended_at = fig, "reported", row.ended_at or _now()
            append(s, [NewEvent(subject=req.run_id, kind="drill.reported", step_id="reported", workflow_id=req.run_id,
                                run_id=req.temporal_run_id,
                                payload={**fig, "drill": d.id, "drill_marker": True, "window_s": int(d.window.total_seconds()),
                                         "callout_id": req.callout_id,
                                         "sent_to": [{"role": r, "person_id": c.person_id} for r, c in people.items()],
                                         "statuses": [o.status for o in outcomes]})])

    await asyncio.to_thread(record)
    return DrillReport(run_id=req.run_id, drill_id=d.id, callout_id=req.callout_id, total=fig["total"],
                       responded=fig["responded"], acknowledged=fig["acknowledged"], rate=fig["rate"],
                       window_s=int(d.window.total_seconds()), never=fig["never"], late=fig["late"])
