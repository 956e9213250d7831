"""What a duty officer does from a call-out board besides looking: call a person again (重新呼叫, an update of the
target's shard workflow, answered once the sends are recorded, once per request) and confirm several persons on their
behalf with one note (代为确认, each through api/services/answers as a single confirmation is)."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.services.answers import AnswerError, acknowledge
from api.services.board import plan_of
from api.services.errors import ServiceError
from definitions.loader import Library
from store.callouts import Callout, CalloutTarget
from store.db import session_scope
from workflows.callout import RECALL_ENDED, CalloutShardWorkflow, shard_id
from workflows.escalation import Recall

SETTLED = ("acknowledged", "canceled")
MAX_BULK = 200


class BoardActionError(ServiceError):
    """A board action refused (none such, settled, ended, bad channels)."""


def recall_channels(lib: Library, callout: Callout, target: CalloutTarget) -> list[str]:
    """The channels the target's policy notifies on (重新呼叫 offers these), in the policy's order."""
    plan = plan_of(lib, callout)
    policy = plan.policies.get((target.spec or {}).get("policy", "")) if plan is not None else None
    if policy is None:
        return []
    return list(dict.fromkeys(c.value for step in policy.steps for c in (step.notify or [])))


def _recall_target(s: Session, lib: Library, callout_id: str, target_id: int) -> tuple[CalloutTarget, list[str]]:
    c = s.get(Callout, callout_id)
    t = s.get(CalloutTarget, target_id)
    if c is None or t is None or t.callout_id != callout_id:
        raise BoardActionError(404, f"叫应 {callout_id} 中没有该对象 / no such target in {callout_id}")
    if c.status != "running":
        raise BoardActionError(409, "叫应已结束,无法重新呼叫;请直接电话联系后代为确认 / the call-out has ended")
    if t.state in SETTLED:
        raise BoardActionError(409, f"{t.name} 已应答或已取消,无需重新呼叫 / already {t.state}")
    return t, recall_channels(lib, c, t)


async def recall(client: Client, lib: Library, callout_id: str, target_id: int, channels: list[str], *, actor: str,
                 ref: str, note: str | None = None) -> dict[str, Any]:
    """Call a target's person again on `channels` (those of its policy), answered once the shard workflow has
    sent and recorded it: {"recalled", "name", "channels" sent, "keys" (the messages), "missing" (no address),
    "failed" (refused at once)}. Idempotent by `ref`: the same request twice sends once and gets the first
    answer. Raises BoardActionError 404 (no such target), 409 (settled, or the call-out or its shard has
    ended: nothing was sent), 422 (no channel of its policy, or a request the workflow refuses)."""
    def read() -> tuple[CalloutTarget, list[str]]:
        with session_scope(write=False) as s:
            return _recall_target(s, lib, callout_id, target_id)

    t, allowed = await asyncio.to_thread(read)
    chosen = [c for c in dict.fromkeys(channels) if c in allowed]
    if not chosen:
        raise BoardActionError(422, "请选择至少一个本方案的呼叫渠道(" + "、".join(allowed) + ")/ choose a channel")
    req = Recall(target_key=t.target_key, channels=chosen, actor=actor, ref=ref, at=datetime.now(UTC), note=note)
    handle = client.get_workflow_handle(shard_id(callout_id, t.shard))
    try:
        out = await handle.execute_update(CalloutShardWorkflow.recall, req, id=f"recall:{ref}")
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if not isinstance(cause, ApplicationError):
            raise
        raise BoardActionError(422 if cause.type == "RecallInvalid" else 409, cause.message) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise BoardActionError(409, RECALL_ENDED) from exc  # the shard's workflow has completed
    return {"recalled": t.person_id, "name": t.name, "channels": out.channels, "keys": out.keys,
            "missing": out.missing, "failed": out.failed}


async def confirm_many(client: Client, callout_id: str, target_ids: list[int], note: str, actor: str) -> dict[str, Any]:
    """代为确认 for several targets with one note: each through `acknowledge`, as a single confirmation is.
    Returns {"confirmed": [names], "skipped": [names already settled], "failed": [(name, reason)]}. Raises
    BoardActionError 404 (no such call-out), 422 (nothing chosen, too many, or ids of another call-out)."""
    ids = list(dict.fromkeys(target_ids))
    if not ids:
        raise BoardActionError(422, "请先勾选要代为确认的人员 / choose at least one person")
    if len(ids) > MAX_BULK:
        raise BoardActionError(422, f"一次最多代为确认 {MAX_BULK} 人 / at most {MAX_BULK} at once")

    def read() -> list[CalloutTarget]:
        with session_scope(write=False) as s:
            if s.get(Callout, callout_id) is None:
                raise BoardActionError(404, f"没有叫应 {callout_id} / no call-out {callout_id!r}")
            rows = list(s.exec(select(CalloutTarget).where(CalloutTarget.callout_id == callout_id,
                                                           col(CalloutTarget.id).in_(ids))))
            if len(rows) != len(ids):
                raise BoardActionError(422, "所选人员不属于本次叫应 / a chosen target is not in this call-out")
            return sorted(rows, key=lambda r: ids.index(r.id))

    out: dict[str, Any] = {"confirmed": [], "skipped": [], "failed": []}
    for t in await asyncio.to_thread(read):
        if t.state in SETTLED:
            out["skipped"].append(t.name)
            continue
        now = datetime.now(UTC)
        try:
            await acknowledge(client, callout_id, t.person_id, "proxy", actor=actor, note=note,
                              ref=f"proxy:{actor}:{t.person_id}:{now.timestamp()}", at=now)
            out["confirmed"].append(t.name)
        except AnswerError as exc:
            out["failed"].append((t.name, str(exc)))
    return out


def recall_offer(s: Session, lib: Library, callout_id: str, target_id: int) -> list[str]:
    """The channels 重新呼叫 offers for a target: its policy's, while the call-out runs and it is not settled."""
    try:
        _, allowed = _recall_target(s, lib, callout_id, target_id)
    except BoardActionError:
        return []
    return allowed
