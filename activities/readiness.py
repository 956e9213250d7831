"""The monthly readiness check 每月调度 (workflows/readiness.py): the teams to call, each answer recorded with the
register's readiness in one transaction, the summary to the duty chief; the calls' texts (`render`, used by
`duty.flush` for the procedure "readiness")."""
from __future__ import annotations

import asyncio

from sqlmodel import Session, col, select
from temporalio import activity

from activities.common import audit_events, duty_contacts, on_duty_as, sms_each
from activities.common import aware as _aware
from activities.common import contact as _contact
from activities.common import now as _now
from activities.delivery import deliver
from activities.escalation import answer_text
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import Person
from store.resources import ReadinessAnswer, ReadinessRun, RescueTeam
from workflows.escalation import Contact, Send, Target
from workflows.kit import names
from workflows.kit.events import Readiness as Kinds
from workflows.readiness import (CloseRequest, Opened, OpenRequest, ReadinessSummary, ReadinessView, RecordRequest,
                                 TeamView, team_person)


def save_view(s: Session, view: dict | ReadinessView) -> None:
    """The read model of a check from the workflow's view (readiness_run, readiness_answer)."""
    v = view if isinstance(view, ReadinessView) else ReadinessView.model_validate(view)
    row = s.get(ReadinessRun, v.run_id)
    if row is None:
        row = ReadinessRun(id=v.run_id, started_at=v.opened_at or _now(), started_by=v.started_by)
        s.add(row)
    counts = v.counts()
    row.status = "closed" if v.status == "closed" else "running"
    row.closed_at = v.closed_at
    row.total, row.ready, row.not_ready, row.no_answer = (counts["total"], counts["ready"], counts["not_ready"],
                                                          counts["no_answer"])
    row.updated_at = _now()
    s.flush()
    have = {a.team_id: a for a in s.exec(select(ReadinessAnswer).where(ReadinessAnswer.run_id == v.run_id))}
    for t in v.teams:
        a = have.get(t.team_id)
        if a is None:
            a = ReadinessAnswer(run_id=v.run_id, team_id=t.team_id)
            s.add(a)
        a.team_name, a.duty_phone, a.leader_id, a.leader_name = t.name, t.duty_phone, t.leader_id, t.leader_name
        a.state, a.answered_by, a.channel, a.answered_at = t.state, t.answered_by, t.channel, _aware(t.answered_at)
        a.escalated, a.updated_at = t.escalated, _now()


@activity.defn(name=names.Resources.READINESS_OPEN)
async def readiness_open(req: OpenRequest) -> Opened:
    """Every team of the register: a target calling its duty phone (its leader as `superior`, the duty chief on
    duty as `duty_chief`); a team with neither a duty phone nor a leader is listed as skipped (no answer)."""
    info = activity.info()

    def work() -> Opened:
        with session_scope() as s:
            teams = list(s.exec(select(RescueTeam).order_by(col(RescueTeam.id))))
            leaders = {p.id: p for p in s.exec(select(Person).where(
                col(Person.id).in_([t.leader_id for t in teams if t.leader_id])))}
            duty = duty_contacts(s, req.at)
            out = Opened()
            for t in teams:
                leader = leaders.get(t.leader_id or "")
                view = TeamView(team_id=t.id, name=t.name, duty_phone=t.duty_phone, leader_id=t.leader_id,
                                leader_name=leader.name if leader else "")
                if not t.duty_phone and leader is None:
                    view.state = "no_answer"
                    out.skipped.append({"team": t.id, "name": t.name, "reason": "no duty phone and no leader"})
                    out.teams.append(view)
                    continue
                phone = Contact(person_id=team_person(t.id), name=f"{t.name}值班电话", mobile=t.duty_phone)
                if not t.duty_phone:  # no duty phone: its leader is called in its place
                    phone = _contact(leader)
                out.targets.append(Target(
                    key=f"team/{t.id}", tier="readiness", label=t.name, person=phone,
                    superior=_contact(leader) if t.duty_phone else None,
                    others={r: c for r, c in duty.items() if r == "duty_chief"}, policy="call"))
                out.teams.append(view)
            v = ReadinessView(run_id=req.run_id, status="running", started_by=req.started_by, opened_at=req.at,
                              teams=out.teams)
            save_view(s, v)
            marked = [NewEvent(subject=req.run_id, kind=Kinds.MARKED_UNREADY, step_id=f"team/{sk['team']}/marked_unready",
                               workflow_id=info.workflow_id, run_id=req.temporal_run_id, at=req.at,
                               payload={"team": sk["team"], "before": before, "after": "unready", "reason": sk["reason"]})
                      for sk in out.skipped if (before := _mark_unready(s, sk["team"])) is not None]
            append(s, [NewEvent(subject=req.run_id, kind=Kinds.OPENED, step_id="opened", workflow_id=info.workflow_id,
                                run_id=req.temporal_run_id, actor=req.started_by, at=req.at, payload={
                                    "teams": [{"team": t.team_id, "name": t.name, "duty_phone": t.duty_phone,
                                               "leader": t.leader_id} for t in out.teams],
                                    "skipped": out.skipped, "settings_version": req.version,
                                    "duty_chief": duty["duty_chief"].person_id if "duty_chief" in duty else None}),
                       *marked])
            return out

    return await asyncio.to_thread(work)


def _mark_unready(s: Session, team_id: str) -> str | None:
    """The register's team set to 不能出动; its readiness before (None: no such team, or unready already)."""
    t = s.get(RescueTeam, team_id)
    if t is None or t.readiness == "unready":
        return None
    before = t.readiness
    t.readiness, t.updated_at = "unready", _now()
    return before


def record_answers(s: Session, req: RecordRequest) -> list[NewEvent]:
    """The answers' events, and the register's readiness they change (不能出动 marked, or ready again), in the
    caller's transaction: the events to append. The check's view is the caller's to save."""
    events = audit_events(req.run_id, req.run_id, req.temporal_run_id, req.events)
    now = _now()
    for tid in req.unready:
        before = _mark_unready(s, tid)
        if before is not None:
            events.append(NewEvent(subject=req.run_id, kind=Kinds.MARKED_UNREADY,
                                   step_id=f"team/{tid}/marked_unready", workflow_id=req.run_id,
                                   run_id=req.temporal_run_id, at=now,
                                   payload={"team": tid, "before": before, "after": "unready"}))
    for tid in req.ready:
        t = s.get(RescueTeam, tid)
        if t is not None and t.readiness == "unready":  # it answered 1: on duty at full strength again
            t.readiness, t.updated_at = "ready", now
    s.flush()
    return events


@activity.defn(name=names.Resources.READINESS_RECORD)
async def readiness_record(req: RecordRequest) -> None:
    """The answers of a batch as the workflow recorded them before `readiness-answers-with-flush` (histories
    from before it): the view, the answers' events and the register, after the batch's own transaction."""
    def work() -> None:
        with session_scope() as s:
            save_view(s, req.view)
            append(s, record_answers(s, req))

    await asyncio.to_thread(work)


def summary_text(counts: dict[str, int], not_ready: list[str], no_answer: list[str]) -> str:
    """The duty chief's SMS (Chinese only)."""
    text = (f"【每月调度】本月救援力量值班值守调度已结束:共{counts['total']}支队伍,在岗满员{counts['ready']}支,"
            f"不能满员在岗{counts['not_ready']}支,无人应答{counts['no_answer']}支。")
    if not_ready:
        text += "不能满员在岗:" + "、".join(not_ready) + "。"
    if no_answer:
        text += "无人应答:" + "、".join(no_answer) + "。"
    if not_ready or no_answer:
        text += "以上队伍已在应急资源库中标为不能出动,请跟进。"
    return text


@activity.defn(name=names.Resources.READINESS_CLOSE)
async def readiness_close(req: CloseRequest) -> ReadinessSummary:
    v = req.view
    counts = v.counts()
    not_ready = [t.name for t in v.teams if t.state == "not_ready"]
    no_answer = [t.name for t in v.teams if t.state == "no_answer"]

    def chief() -> dict[str, Contact]:
        with session_scope(write=False) as s:
            return on_duty_as(s, _now(), ["duty_chief"])

    people = await asyncio.to_thread(chief)
    body = summary_text(counts, not_ready, no_answer)
    outcomes = await deliver(sms_each(people.values(), lambda c: f"{req.run_id}/summary/{c.person_id}", body,
                                      subject=req.run_id, meta={"purpose": "summary", "procedure": "readiness"}))

    def record() -> None:
        with session_scope() as s:
            save_view(s, v)
            append(s, [NewEvent(subject=req.run_id, kind=Kinds.CLOSED, step_id="closed", workflow_id=req.run_id,
                                run_id=req.temporal_run_id, at=_now(), payload={
                                    **counts, "not_ready": [t.team_id for t in v.teams if t.state == "not_ready"],
                                    "no_answer": [t.team_id for t in v.teams if t.state == "no_answer"],
                                    "sent_to": [c.person_id for c in people.values()],
                                    "statuses": [o.status for o in outcomes], "text": body})])

    await asyncio.to_thread(record)
    return ReadinessSummary(run_id=req.run_id, total=counts["total"], ready=counts["ready"],
                            not_ready=counts["not_ready"], no_answer=counts["no_answer"],
                            not_ready_teams=[t.team_id for t in v.teams if t.state == "not_ready"],
                            no_answer_teams=[t.team_id for t in v.teams if t.state == "no_answer"],
                            sent_to=[c.person_id for c in people.values()])


def render(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    """A readiness call's text (Chinese only): the duty phone, the leader, the duty chief told."""
    team = send.about
    if send.purpose == "notify":
        text = (f"这里是区应急管理局值班室,现进行每月应急救援力量值班值守调度。{team}:如在岗值守、人员满员,请按1;"
                "如不能满员在岗,请按2。")
        return text, text
    if send.purpose == "escalate":
        voice = (f"这里是区应急管理局值班室。{team}的24小时值班电话在每月调度中无人接听。如队伍在岗值守、人员满员,"
                 "请按1;如不能满员在岗,请按2。")
        body = f"【每月调度】{team}值班电话无人接听。队伍在岗满员请{answer_text(code, link)};不能满员在岗请致电值班室。"
        return body, voice
    if send.purpose == "inform":
        return f"【每月调度】{team}的值班电话和队长均未应答,已在应急资源库中标为不能出动,请跟进。", None
    if send.purpose == "cancel":
        return "【每月调度】本次调度已结束,无需再应答。", None
    return f"【每月调度】{team}", None


ALL = [readiness_open, readiness_record, readiness_close]
