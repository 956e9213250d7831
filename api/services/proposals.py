"""Response proposals 响应建议 (预警和响应一体化): a warning that is a plan's start condition proposes the level.

`propose_for_warning` is what the warning's intake calls once it has recorded the warning (api/services/warnings.py):
an Alert or Update that meets a plan's `on_warnings` (definitions/plans/, matched through the call-out plan
choice) starts `ResponseProposalWorkflow` (id `proposal-<warning id>-<plan id>`: a resend proposes nothing twice);
a Cancel withdraws the proposals of the warnings it cancels. The leading leader on duty accepts or declines
(`accept`, `decline`: workflow updates whose validators check the caller; refusals 403/409 with the reason).
"""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.services.errors import ServiceError
from api.services.steps import Refused, run_step
from config import Settings
from definitions.loader import Library
from definitions.schema.common import Level
from store.db import session_scope
from store.proposals import OPEN, Proposal
from store.warnings import Warning
from workflows.common import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND
from workflows.proposal import (DecideIn, DeclineIn, ProposalInput, ProposalView, RaiseIn, ResponseProposalWorkflow as W,
                                WarningRef)
from workflows.subjects import proposal_id_of, proposal_subject, proposal_workflow_id

log = logging.getLogger("yingji.proposals")
STATUS = {FORBIDDEN: 403, CONFLICT: 409, INVALID: 422, NOT_FOUND: 404}


class ProposalError(ServiceError):
    """A proposal step refused."""


def _root_warning(row: Warning, callout_id: str | None) -> str:
    """The warning a proposal is keyed on: an Update belongs to the warning its call-out follows (callout-<id>)."""
    if callout_id and callout_id.startswith("callout-"):
        return callout_id.removeprefix("callout-")
    return row.id


def _cancelled(refs: list[str]) -> list[tuple[str, str]]:
    """(workflow id, proposal id) of the open proposals of the warnings a Cancel names (and of their updates)."""
    with session_scope(write=False) as s:
        rows = s.exec(select(Proposal).where(col(Proposal.warning_id).in_(refs), col(Proposal.status).in_(
            [*OPEN, "opening"]))).all()
        return [(r.workflow_id, r.id) for r in rows]


async def propose_for_warning(client: Client | None, settings: Settings, lib: Library, msg: Any, row: Warning,
                              plan: Any, result: Any) -> list[str]:
    """After intake recorded the warning `row` (from message `msg`, call-out plan `plan`, intake's `result`): start
    a proposal per response plan whose warning start condition it meets, or withdraw the proposals a Cancel ends.
    Drills propose nothing. Returns the proposal ids started or withdrawn. A failure here never undoes the intake:
    the warning is recorded and its call-out runs; it is logged."""
    if client is None or getattr(msg, "drill", False) or row.meta.get("drill"):
        return []
    try:
        if row.msg_type == "Cancel":
            refs = [r.warning_id for r in getattr(msg, "refs", [])]
            if row.callout_id:
                refs.append(row.callout_id.removeprefix("callout-"))
            return await _withdraw(client, refs, f"预警已解除({row.identifier})")
        if row.msg_type not in ("Alert", "Update") or not row.level or plan is None:
            return []
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            return []  # an expired warning (from a feed, or accepted stale): recorded, nothing proposed
        found = lib.response_proposals(plan.model.id, Level(row.level))
        started = []
        for loaded, rule in found:
            started.append(await _start(client, settings, row, loaded, rule, getattr(result, "callout_id", None)))
        return started
    except (RPCError, ServiceError) as exc:  # Temporal unreachable: the warning stands, the proposal is not made
        log.warning("response proposal for warning %s not started: %s", row.id, exc)
        return []
    except Exception:  # never a 500 for a warning already recorded and called out
        log.exception("response proposal for warning %s failed", row.id)
        return []


async def _withdraw(client: Client, refs: list[str], reason: str) -> list[str]:
    out = []
    for wid, pid in await asyncio.to_thread(_cancelled, list(dict.fromkeys(refs))):
        try:
            await client.get_workflow_handle(wid).signal(W.withdraw, reason)
            out.append(pid)
        except RPCError:
            pass  # ended meanwhile
    return out


async def _start(client: Client, settings: Settings, row: Warning, loaded: Any, rule: Any, callout_id: str | None) -> str:
    plan = loaded.model
    root = _root_warning(row, callout_id or row.callout_id)
    pid = proposal_id_of(root, plan.id)
    lv = plan.level(rule.response_level)
    inp = ProposalInput(
        proposal_id=pid, warning=WarningRef(
            warning_id=root, identifier=row.identifier, level=row.level or "", event=row.event or "",
            headline=row.headline or "", description=row.description or "", area_descs=list(row.area_descs or []),
            town_ids=list(row.town_ids or []), callout_id=callout_id or row.callout_id, expires_at=row.expires_at),
        plan_id=plan.id, plan_name=plan.name_zh, plan_version=loaded.version, level=rule.response_level,
        level_name=lv.name_zh, start_condition=lv.start_condition_zh, activate_roles=list(lv.activate),
        policy=plan.proposal.policy, lapse_after=plan.proposal.lapse_after)
    try:
        await client.start_workflow(W.run, inp, id=proposal_workflow_id(pid), task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError:  # the same warning again, or an Update: raised if it meets a higher level
        try:
            await client.get_workflow_handle(proposal_workflow_id(pid)).signal(W.raise_level, RaiseIn(
                level=rule.response_level, level_name=lv.name_zh, start_condition=lv.start_condition_zh,
                activate_roles=list(lv.activate), warning_level=row.level or "", headline=row.headline or ""))
        except RPCError:
            pass  # it has ended: decided, withdrawn or lapsed; a new proposal is not made for the same warning
    return pid


# ------------------------------------------------------------------ reading and deciding


def find(proposal_id: str) -> Proposal | None:
    with session_scope(write=False) as s:
        return s.get(Proposal, proposal_id)


def detail(proposal_id: str) -> dict | None:
    row = find(proposal_id)
    if row is None:
        return None
    view = dict(row.view or {})
    view.update({"proposal_id": row.id, "status": row.status if row.status != "opening" else view.get("status", "opening"),
                 "subject": proposal_subject(row.id), "incident_id": row.incident_id, "activation_id": row.activation_id})
    return view


def open_for(person_id: str | None = None, limit: int = 50) -> list[Proposal]:
    """Proposals waiting for a decision (for one leader, or all)."""
    with session_scope(write=False) as s:
        stmt = select(Proposal).where(col(Proposal.status).in_(OPEN))
        if person_id is not None:
            stmt = stmt.where(Proposal.leader_id == person_id)
        return list(s.exec(stmt.order_by(col(Proposal.created_at).desc()).limit(limit)))


def for_callout(callout_id: str) -> list[Proposal]:
    """The response proposals of a call-out's warning (its board shows them)."""
    with session_scope(write=False) as s:
        return list(s.exec(select(Proposal).where(Proposal.callout_id == callout_id).order_by(col(Proposal.created_at))))


async def decide(client: Client, proposal_id: str, action: str, actor: str, role: str, via: str = "api",
                 reason: str | None = None) -> ProposalView:
    """Accept (the activation starts) or decline (with a reason) as `actor` in `role`; ProposalError on refusal."""
    row = await asyncio.to_thread(find, proposal_id)
    if row is None:
        raise ProposalError(404, f"无此响应建议 / no proposal {proposal_id!r}")
    if action == "decline":
        if not (reason or "").strip():
            raise ProposalError(422, "reason: 不同意须说明理由 / a reason is required to decline")
        req: DecideIn = DeclineIn(actor=actor, role=role, via=via, reason=reason.strip())
    else:
        req = DecideIn(actor=actor, role=role, via=via)
    try:
        return await run_step(client, workflow_id=row.workflow_id, subject=proposal_subject(row.id),
                              refused_kind="proposal.refused", action=action,
                              update=W.accept if action == "accept" else W.decline, req=req, result_type=ProposalView,
                              statuses=STATUS, ended=f"该响应建议已结束({row.status}) / the proposal has ended ({row.status})")
    except Refused as r:
        raise ProposalError(r.status, r.why) from r
