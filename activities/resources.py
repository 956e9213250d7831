"""The resource register's side of a dispatch (store/resources.py): mark register teams busy for a dispatch plan,
or refuse it, in one transaction with the audit events under the activation's subject; release them.

A team is busy with a *holder*, `<activation workflow id>/dispatch/<seq>/v<version>`: an activity retry finds
the teams busy with its own holder and answers the same; a second plan naming a busy team is refused (409)."""
from __future__ import annotations

import asyncio

from sqlmodel import col, select
from temporalio import activity

from activities.common import now as _now
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import Person
from store.resources import RescueTeam
from workflows.activation import DispatchedTeam, ReleaseRequest, ReserveRequest, ReserveResult
from workflows.common import CONFLICT, NOT_FOUND
from workflows.kit import names
from workflows.kit.events import Activation as Kinds

READINESS_ZH = {"partial": "部分到岗", "unready": "不能出动"}


def reserve_teams(req: ReserveRequest) -> ReserveResult:
    with session_scope() as s:
        rows = {t.id: t for t in s.exec(select(RescueTeam).where(col(RescueTeam.id).in_(req.teams)).with_for_update())}
        unknown = [t for t in req.teams if t not in rows]
        if unknown:
            return ReserveResult(refusal=(NOT_FOUND, f"应急资源库中没有这些队伍:{'、'.join(unknown)} / "
                                                     f"teams: unknown {', '.join(unknown)}"))
        busy = [t for t in rows.values() if t.status == "busy" and t.busy_with != req.holder]
        if busy:
            return ReserveResult(refusal=(CONFLICT, "队伍已出动,不能重复调度:" + "、".join(
                f"{t.name}({t.id})" for t in busy) + " / teams busy with another dispatch: " + ", ".join(
                f"{t.id} ({t.busy_with or 'marked busy'})" for t in busy)))
        unready = [t for t in rows.values() if t.readiness == "unready"]
        if unready:
            return ReserveResult(refusal=(CONFLICT, "队伍不能出动:" + "、".join(f"{t.name}({t.id})" for t in unready)
                                          + " / teams not ready: " + ", ".join(t.id for t in unready)))
        leaders = {p.id: p for p in s.exec(select(Person).where(
            col(Person.id).in_([t.leader_id for t in rows.values() if t.leader_id])))}
        now, out, events = _now(), [], []
        for tid in req.teams:
            t = rows[tid]
            leader = leaders.get(t.leader_id or "")
            mobile = t.duty_phone or (leader.mobile if leader else None)
            contact = f"{t.name}值班电话" if t.duty_phone else (f"{t.name} {leader.name}" if leader else t.name)
            out.append(DispatchedTeam(id=t.id, name=t.name, kind=t.kind, strength=t.strength, town_id=t.town_id,
                                      contact=contact, mobile=mobile))
            if t.busy_with == req.holder:
                continue  # a retry: marked already
            t.status, t.busy_with, t.busy_since, t.updated_at = "busy", req.holder, now, now
            events.append(NewEvent(subject=req.subject, kind=Kinds.TEAM_BUSY, step_id=f"{req.step_id}/{tid}/busy",
                                   workflow_id=req.workflow_id, run_id=req.run_id, actor=req.actor, at=now, payload={
                                       "team": t.id, "name": t.name, "kind": t.kind, "strength": t.strength,
                                       "town_id": t.town_id, "holder": req.holder,
                                       **({"readiness": READINESS_ZH[t.readiness]} if t.readiness in READINESS_ZH else {})}))
        s.flush()
        append(s, events)
        return ReserveResult(teams=out)


def release_teams(req: ReleaseRequest) -> list[str]:
    with session_scope() as s:
        rows = list(s.exec(select(RescueTeam).where(RescueTeam.status == "busy",
                                                    col(RescueTeam.busy_with).startswith(req.holder, autoescape=True))))
        now, events = _now(), []
        for t in sorted(rows, key=lambda t: t.id):
            events.append(NewEvent(subject=req.subject, kind=Kinds.TEAM_RELEASED, step_id=f"{req.step_id}/{t.id}",
                                   workflow_id=req.workflow_id, run_id=req.run_id, at=now, payload={
                                       "team": t.id, "name": t.name, "holder": t.busy_with, "reason": req.reason,
                                       "busy_s": int((now - t.busy_since).total_seconds()) if t.busy_since else None}))
            t.status, t.busy_with, t.busy_since, t.updated_at = "available", None, None, now
        s.flush()
        append(s, events)
        return [t.id for t in rows]


@activity.defn(name=names.Resources.RESERVE)
async def reserve(req: ReserveRequest) -> ReserveResult:
    return await asyncio.to_thread(reserve_teams, req)


@activity.defn(name=names.Resources.RELEASE)
async def release(req: ReleaseRequest) -> list[str]:
    return await asyncio.to_thread(release_teams, req)


ALL = [reserve, release]
