"""Response proposal 响应建议: who decides (the leading leader on duty), the read model, the messages with their
signed link, and the activation a proposal's acceptance starts (through the API's own start paths)."""
from __future__ import annotations

import asyncio
from datetime import datetime

from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.common import audit_events, aware, contact, duty_contacts, now, write
from activities.delivery import Outcome
from activities.escalation import Batch, send_and_record
from config import get_settings
from definitions.loader import load_library
from store.db import session_scope
from store.directory import Person, Post
from store.proposals import Proposal, make_link_token
from workflows.common import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND
from workflows.escalation import FlushResult, Send
from workflows.kit import names
from workflows.proposal import (
    LEVEL_ZH,
    WARNING_ZH,
    ActivateRequest,
    ActivateResult,
    Opened,
    OpenRequest,
    ProposalFlush,
    ProposalView,
    RecordRequest,
)
from workflows.subjects import proposal_workflow_id


def _save(s: Session, view: dict) -> Proposal:
    row = s.get(Proposal, view["proposal_id"])
    w = view["warning"]
    if row is None:
        row = Proposal(id=view["proposal_id"], workflow_id=view.get("workflow_id") or proposal_workflow_id(view["proposal_id"]),
                       warning_id=w["warning_id"], plan_id=view["plan_id"], level=view["level"])
        s.add(row)
    leader = view.get("leader") or {}
    row.callout_id, row.plan_name, row.level = w.get("callout_id"), view.get("plan_name", ""), view["level"]
    if view["status"] != "opening":
        row.status = view["status"]
    row.leader_id, row.leader_name = leader.get("person_id"), leader.get("name", "")
    row.decided_by, row.decided_at, row.reason = view.get("decided_by"), aware(view.get("decided_at")), view.get("reason") or ""
    row.incident_id = view.get("incident_id") or row.incident_id
    row.activation_id = view.get("activation_id") or row.activation_id
    row.view, row.updated_at = view, now()
    return row


@activity.defn(name=names.Proposal.OPEN)
async def open_proposal(req: OpenRequest) -> Opened:
    """The leading leader on duty now (the roster's 带班领导, as the reporting chain finds them), the other duty
    roles, and the holders of the positions the policy escalates to; the proposal's row."""
    def work() -> Opened:
        with session_scope() as s:
            others = duty_contacts(s, now())
            for code in req.positions:
                post = s.exec(select(Post).where(Post.position_code == code).order_by(Post.id)).first()
                if post is not None and (c := contact(s.get(Person, post.person_id))):
                    others[f"position:{code}"] = c
            if s.get(Proposal, req.proposal_id) is None:
                s.add(Proposal(id=req.proposal_id, workflow_id=req.workflow_id, warning_id=req.warning_id,
                               callout_id=req.callout_id, plan_id=req.plan_id, plan_name=req.plan_name,
                               level=req.level, status="opening"))
            return Opened(leader=others.get("leading_leader"), others=others)

    return await asyncio.to_thread(work)


@activity.defn(name=names.Proposal.RECORD)
async def record(req: RecordRequest) -> None:
    view = req.view.model_dump(mode="json")
    from workflows.subjects import proposal_subject

    await write(lambda s: _save(s, view), audit_events(proposal_subject(req.view.proposal_id), req.workflow_id,
                                                        req.run_id, req.events))


def render(v: ProposalView, send: Send, link: str | None) -> tuple[str, str | None]:
    """What the proposal's messages say (Chinese only, short)."""
    w = v.warning
    warning = f"{w.event or ''}{WARNING_ZH.get(w.level, w.level)}预警"
    level, plan = LEVEL_ZH[v.level.value], v.plan_name
    tap = f"同意请点击{link}" if link else "请登录值班台处理"
    if send.purpose == "notify":
        return (f"【响应建议】{warning}已发布,依《{plan}》建议启动{level}应急响应。{tap}",
                f"这里是区应急管理局值班室。{warning}已发布,依{plan}建议启动{level}应急响应,请查看短信链接或登录值班台决定。")
    if send.purpose == "escalate":
        leader = v.leader.name if v.leader else "带班领导"
        return (f"【响应建议】{warning}已发布,依《{plan}》建议启动{level}应急响应,{leader}尚未决定,请您决定。{tap}",
                f"这里是区应急管理局值班室。{warning}已发布,建议启动{level}应急响应,带班领导尚未决定,请查看短信。")
    if send.purpose == "inform":
        return (f"【告知】{warning}已发布,依《{plan}》建议启动{level}应急响应,带班领导尚未决定,请跟进。",
                f"这里是区应急管理局值班室。建议启动{level}应急响应,带班领导尚未决定,请跟进。")
    if send.purpose == "cancel":
        if v.status == "accepted":
            return f"【响应建议】已同意启动{level}应急响应,无需再处理。", None
        if v.status == "declined":
            return f"【响应建议】经研究暂不启动{level}应急响应,无需再处理。", None
        return f"【响应建议撤回】{warning}已解除或失效,启动{level}应急响应的建议撤回,无需再处理。", None
    return f"【响应建议】{warning}", None


@activity.defn(name=names.Proposal.FLUSH)
async def flush(req: ProposalFlush) -> FlushResult:
    settings = get_settings()
    key = settings.signing_key()
    view = req.view.model_dump(mode="json")

    def links(send: Send) -> tuple[str | None, str | None]:
        if send.purpose not in ("notify", "escalate") or send.channel not in ("sms", "im"):
            return None, None
        return None, f"{settings.base_url}/proposal/{make_link_token(key, req.view.proposal_id, send.person_id)}"

    def save(s: Session, outcomes: dict[str, Outcome], at: datetime) -> None:
        _save(s, view)

    batch = Batch(subject=req.subject, workflow_id=req.workflow_id, run_id=req.run_id, episode=req.episode,
                  kind="proposal", sends=req.sends, records=req.records, meta={"procedure": "proposal"})
    return FlushResult.model_validate(await send_and_record(
        batch, lambda send, code, link: render(req.view, send, link), links=links, save=save))


def _name(person_id: str) -> str:
    with session_scope(write=False) as s:
        p = s.get(Person, person_id)
        return p.name if p else person_id


def _incident_id(proposal_id: str, timezone: str) -> str:
    """The incident the acceptance receives: chosen once and kept on the proposal's row (a retry receives the same)."""
    from api.services.incidents import new_incident_id

    with session_scope() as s:
        row = s.get(Proposal, proposal_id)
        if row is None:
            raise ApplicationError(f"no proposal {proposal_id!r}", type=NOT_FOUND, non_retryable=True)
        if row.incident_id is None:
            row.incident_id = new_incident_id(now(), timezone)
        return row.incident_id


@activity.defn(name=names.Proposal.ACTIVATE)
async def activate(req: ActivateRequest) -> ActivateResult:
    """Receive an incident from the warning (title from its headline, source 预警, related: its call-out) and
    activate the plan at the level proposed, through the API's own start paths (api/services/incidents.py,
    activations.py): the reporting chain and the review follow as for any incident. The activation's info and its
    `activation.started` event name the warning and the proposal. A refusal of the activation (its role or person
    check) is not retried: the caller is told why."""
    from api.services import activations, incidents
    from api.services.errors import ServiceError

    settings = get_settings()
    lib = load_library(settings.definitions_dir)
    client = activity.client()
    w = req.warning
    iid = await asyncio.to_thread(_incident_id, req.proposal_id, settings.timezone)
    place = "、".join(w.area_descs) or "全区"
    title = w.headline or f"{WARNING_ZH.get(w.level, w.level)}{w.event}预警"
    related = [w.callout_id] if w.callout_id else []
    data = incidents.IncidentIn(
        id=iid, source="warning", category="natural_disaster", subtype=w.event[:100], severity=req.level,
        town_id=w.town_ids[0] if len(w.town_ids) == 1 else None, place=place[:500], title=title[:200],
        summary=(w.description or w.headline or title)[:10000], reporting_unit="区应急管理局值班室",
        reporter=(await asyncio.to_thread(_name, req.actor))[:100], related=related)
    statuses = {403: FORBIDDEN, 404: NOT_FOUND, 409: CONFLICT, 422: INVALID}
    try:
        await incidents.start(client, settings, lib, data, req.actor)
        view, _ = await activations.start(
            client, settings, lib, activations.ActivationIn(plan=req.plan_id, level=req.level, incident_id=iid,
                                                            reason=req.reason[:2000]),
            req.actor, req.role, warning_id=w.warning_id, proposal_id=req.proposal_id)
    except ServiceError as exc:
        raise ApplicationError(str(exc), type=statuses.get(exc.status, CONFLICT), non_retryable=True) from exc
    return ActivateResult(incident_id=iid, activation_id=view.activation_id)

