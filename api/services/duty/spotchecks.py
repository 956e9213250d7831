"""六问 spot checks of real call-outs: started (by the sweep or a duty officer), answered (by phone, by the SMS
form's signed link, by the voice menu's keys; after the check closed, recorded late by the store), their
follow-ups resolved; the list, one check, and what the SMS form shows."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import Field
from sqlmodel import col, select
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.services.duty.common import STATUS, DutyError, duty_settings, get_row, update_step, use_link
from api.services.shapes import Out
from config import Settings
from definitions.loader import Library
from store.answers import record_late_spot_answer
from store.callouts import Callout
from store.db import session_scope
from store.duty import SpotCheck, SpotCheckAnswer, SpotCheckFollowup
from store.links import LinkError
from store.messages import OutboxMessage
from workflows.spotcheck import AnswerIn, SpotCheckInput, SpotCheckView, SpotCheckWorkflow, check_id_for


async def start_spotcheck(client: Client, lib: Library, settings: Settings, callout_id: str, actor: str) -> str:
    duty = duty_settings(lib)
    c = await asyncio.to_thread(get_row, Callout, callout_id)
    if c is None:
        raise DutyError(404, f"no call-out {callout_id!r}")
    if c.drill:
        raise DutyError(409, "a drill is not spot-checked: 六问 spot checks follow real call-outs")
    cid = check_id_for(callout_id)
    try:
        await client.start_workflow(SpotCheckWorkflow.run, SpotCheckInput(
            callout_id=callout_id, settings=duty.spotcheck, version=duty.versions.get("spotcheck", ""), started_by=actor),
            id=cid, task_queue=settings.task_queue, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError as exc:
        raise DutyError(409, f"the call-out {callout_id!r} has been spot-checked already ({cid})") from exc
    return cid


async def spotcheck_answer(client: Client, check_id: str, req) -> dict:
    """The person's six answers, taken by the running check (`recorded`: taken, or late while it closes), or
    recorded late by the store once it has closed. Returns the check with `recorded`."""
    row = await asyncio.to_thread(get_row, SpotCheck, check_id)
    if row is None:
        raise DutyError(404, f"no spot check {check_id!r}")
    if row.status not in ("closed", "skipped"):
        try:
            view = await update_step(client, check_id, check_id, SpotCheckWorkflow.answer, req, SpotCheckView, "spotcheck")
            p = next(x for x in view.persons if x.person_id == req.person_id)
            return {**view.model_dump(mode="json"), "recorded": "late" if p.state == "answered_late" else "taken"}
        except DutyError as exc:  # closed meanwhile: the store records it below
            if exc.status != 409 or (await asyncio.to_thread(get_row, SpotCheck, check_id)).status != "closed":
                raise

    def record() -> tuple[str, str] | dict:
        with session_scope() as s:
            return record_late_spot_answer(s, check_id, req, datetime.now(UTC))

    got = await asyncio.to_thread(record)
    if isinstance(got, tuple):
        raise DutyError(STATUS.get(got[0], 409), got[1])
    return {**(await asyncio.to_thread(spotcheck_detail, check_id)), "recorded": "late"}


async def spotcheck_resolve(client: Client, check_id: str, req) -> SpotCheckView:
    if await asyncio.to_thread(get_row, SpotCheck, check_id) is None:
        raise DutyError(404, f"no spot check {check_id!r}")
    return await update_step(client, check_id, check_id, SpotCheckWorkflow.resolve, req, SpotCheckView, "spotcheck")


def spotcheck_list(limit: int = 100) -> list[dict]:
    with session_scope(write=False) as s:
        rows = list(s.exec(select(SpotCheck).order_by(col(SpotCheck.opened_at).desc()).limit(limit)))
        out = []
        for r in rows:
            answers = list(s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == r.id)))
            fus = list(s.exec(select(SpotCheckFollowup).where(SpotCheckFollowup.check_id == r.id)))
            out.append({**r.model_dump(mode="json", exclude={"questions"}), "sampled": len(answers),
                        "answered": sum(1 for a in answers if a.answers is not None),
                        "followups_open": sum(1 for f in fus if f.status in ("open", "acknowledged"))})
        return out


def spotcheck_detail(check_id: str) -> dict | None:
    with session_scope(write=False) as s:
        r = s.get(SpotCheck, check_id)
        if r is None:
            return None
        answers = list(s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == check_id)
                              .order_by(col(SpotCheckAnswer.id))))
        fus = list(s.exec(select(SpotCheckFollowup).where(SpotCheckFollowup.check_id == check_id)
                          .order_by(col(SpotCheckFollowup.id))))
    return {**r.model_dump(mode="json"),
            "persons": [a.model_dump(mode="json", exclude={"id", "check_id", "attempts"}) for a in answers],
            "followups": [f.model_dump(mode="json", exclude={"id", "check_id"}) for f in fus]}


def form_context(check_id: str, person_id: str) -> dict | None:
    """What the SMS form page shows: the questions and whether this person answered already."""
    with session_scope(write=False) as s:
        r = s.get(SpotCheck, check_id)
        a = s.exec(select(SpotCheckAnswer).where(SpotCheckAnswer.check_id == check_id,
                                                 SpotCheckAnswer.person_id == person_id)).first()
        if r is None or a is None:
            return None
        return {"title": r.title, "questions": r.questions, "name": a.name, "answered": a.answers is not None,
                "check_status": r.status}


async def answer_by_link(client: Client, data: dict, answers: dict[str, bool]) -> bool:
    """The person's answers from the SMS form (its signed link's data), then the link is used.
    True if recorded late. Raises DutyError as spotcheck_answer does."""
    req = AnswerIn(actor=data["p"], role="person", person_id=data["p"], answers=answers, channel="link",
                   ref=f"link:{data['j']}")
    late = (await spotcheck_answer(client, data["s"], req))["recorded"] == "late"
    try:
        await asyncio.to_thread(use_link, data)
    except LinkError:
        pass  # answered twice at once: the answer stands
    return late


def ivr_call(outbox_id: str | None, call_sid: str | None) -> dict | None:
    """The spot-check call a voice-menu callback is about (its outbox id from the signed URL, bound to the
    call's sid on first use): its id, its spoken introduction and the questions; None if it is not one."""
    with session_scope() as s:
        msg = s.get(OutboxMessage, int(outbox_id)) if outbox_id and outbox_id.isdigit() else None
        if msg is None or (msg.provider_id not in (None, call_sid)):
            return None
        if msg.provider_id is None:
            msg.provider_id = call_sid
        check = s.get(SpotCheck, msg.subject or "")
        if check is None:
            return None
        return {"id": msg.id, "intro": (msg.meta or {}).get("voice_text") or msg.body, "questions": check.questions}


async def record_keys(client: Client, outbox_id: int, keys: str, ref: str) -> dict:
    """Keys pressed on a spot-check call, one per question (1 yes, 2 no): the person's answers.
    Raises DutyError 404 (not a spot-check call), 422 (not one key 1 or 2 per question)."""
    def read():
        with session_scope(write=False) as s:
            msg = s.get(OutboxMessage, outbox_id)
            check = s.get(SpotCheck, msg.subject) if msg and msg.subject else None
            return msg, check

    msg, check = await asyncio.to_thread(read)
    if msg is None or check is None or (msg.meta or {}).get("procedure") != "spotcheck" or msg.channel != "voice":
        raise DutyError(404, f"message {outbox_id} is not a spot-check call")
    ids = [q["id"] for q in check.questions]
    if len(keys) != len(ids) or set(keys) - {"1", "2"}:
        raise DutyError(422, f"keys: one key per question ({len(ids)}), 1 yes or 2 no; got {keys!r}")
    req = AnswerIn(actor=msg.person_id or "", role="person", person_id=msg.person_id or "", channel="voice", ref=ref,
                   answers={i: k == "1" for i, k in zip(ids, keys)})
    view = await spotcheck_answer(client, check.id, req)
    return {"handled": "answers", "check_id": check.id, "person_id": msg.person_id, "recorded": view["recorded"],
            "answers": next(p["answers"] for p in view["persons"] if p["person_id"] == msg.person_id)}


class CheckStarted(Out):
    check_id: str = Field(description="the spot check's id")


class KeysOut(Out):
    """A spot-check call's keys taken as the person's answers."""

    handled: str = Field(description="answers")
    check_id: str
    person_id: str | None
    recorded: str = Field(description="taken | late")
    answers: dict[str, bool] | None
