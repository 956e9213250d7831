"""Contact freshness 通讯录核实: confirmation rounds (started by the schedule yearly or by an admin), the
confirmation through a round's signed link, stale or failing contacts, and the warning a call-out
preview gives about them."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pydantic import Field
from sqlmodel import Session, col, select
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.services.answers import AnswerError, acknowledge
from api.services.duty.common import DutyError, duty_settings, use_link
from api.services.shapes import Out
from config import Settings
from definitions.loader import Library
from definitions.schema.common import Level
from store.audit import NewEvent, append
from store.db import session_scope
from store.directory import Person, mask_mobile
from store.duty import ContactCheck, FreshnessRound, confirm_contact, contact_status
from store.links import LinkError
from store.targets import resolve_targets
from workflows.freshness import FreshnessInput, FreshnessRoundWorkflow


async def start_round(client: Client, lib: Library, settings: Settings, deadline: datetime | None, actor: str) -> str:
    duty = duty_settings(lib)
    rid = f"freshness-{datetime.now(UTC):%Y%m%dT%H%M}"
    try:
        await client.start_workflow(FreshnessRoundWorkflow.run, FreshnessInput(
            settings=duty.freshness, version=duty.versions.get("freshness", ""), deadline=deadline, started_by=actor),
            id=rid, task_queue=settings.task_queue)
    except WorkflowAlreadyStartedError as exc:
        raise DutyError(409, f"a confirmation round was started this minute and is running ({rid}); "
                             "see GET /api/freshness/rounds") from exc
    return rid


def rounds() -> list[dict]:
    with session_scope(write=False) as s:
        return [r.model_dump(mode="json") for r in s.exec(select(FreshnessRound).order_by(col(FreshnessRound.started_at).desc()))]


def round_detail(round_id: str, state: str | None = None, limit: int = 5000) -> dict | None:
    with session_scope(write=False) as s:
        r = s.get(FreshnessRound, round_id)
        if r is None:
            return None
        stmt = select(ContactCheck).where(ContactCheck.round_id == round_id).order_by(col(ContactCheck.person_id))
        if state == "bounced":
            stmt = stmt.where(col(ContactCheck.bounced).is_(True))
        elif state:
            stmt = stmt.where(ContactCheck.state == state)
        checks = list(s.exec(stmt.limit(limit)))
        people = {p.id: p for p in s.exec(select(Person).where(col(Person.id).in_([c.person_id for c in checks])))}
        counts: dict[str, int] = {}
        for st, bounced in s.exec(select(ContactCheck.state, ContactCheck.bounced).where(ContactCheck.round_id == round_id)):
            counts[st] = counts.get(st, 0) + 1
            counts["bounced"] = counts.get("bounced", 0) + (1 if bounced else 0)
    return {**r.model_dump(mode="json"), "counts": counts, "persons": [
        {"person_id": c.person_id, "name": c.name, "state": c.state, "sends": c.sends, "bounced": c.bounced,
         "last_error": c.last_error, "confirmed_at": c.confirmed_at.isoformat() if c.confirmed_at else None,
         "confirmed_via": c.confirmed_via,
         "mobile": mask_mobile(people[c.person_id].mobile) if c.person_id in people else ""} for c in checks]}


def contact_list(lib: Library, which: str, limit: int = 5000) -> list[dict]:
    """Persons whose contact data is stale (not confirmed within the settings' time) or failing."""
    f = duty_settings(lib).freshness
    now = datetime.now(UTC)
    with session_scope(write=False) as s:
        people = {p.id: p for p in s.exec(select(Person).order_by(col(Person.id)))}
        status = contact_status(s, list(people), now, f.stale_after, f.failing_window)
    out = []
    for pid, st in status.items():
        if (which == "stale" and st["stale"]) or (which == "failing" and st["failing"]) or which == "all":
            p = people[pid]
            out.append({**st, "confirmed_at": st["confirmed_at"].isoformat() if st["confirmed_at"] else None,
                        "mobile": mask_mobile(p.mobile), "org_unit_id": p.org_unit_id})
    return out[:limit]


def target_warnings(s, lib: Library, targets: list[dict], now: datetime | None = None) -> list[dict]:
    """For a call-out preview: the targets whose contact data is stale or whose number is failing."""
    duty = lib.duty()
    if duty is None or not targets:
        return []
    now = now or datetime.now(UTC)
    f = duty.freshness
    ids = {t["person"]["person_id"]: t for t in targets}
    status = contact_status(s, list(ids), now, f.stale_after, f.failing_window)
    out = []
    for pid, st in status.items():
        if st["stale"] or st["failing"]:
            t = ids[pid]
            out.append({"person_id": pid, "name": st["name"], "label": t.get("label", ""), "tier": t.get("tier", ""),
                        "stale": st["stale"], "failing": st["failing"], "error": st["error"],
                        "confirmed_at": st["confirmed_at"].isoformat() if st["confirmed_at"] else None})
    return sorted(out, key=lambda w: (not w["failing"], w["tier"], w["label"]))


SECTION_ZH = {"teams": "救援队伍", "depots": "物资储备库", "experts": "专家", "shelters": "避难场所"}


def owned_records(person_id: str) -> list[dict]:
    """The register's records a person answers for, for the confirmation page (confirmed with their contact data)."""
    from store.resources import owned_by

    with session_scope(write=False) as s:
        return [{"section": sec, "section_zh": SECTION_ZH[sec], "id": r.id, "name": r.name}  # type: ignore[attr-defined]
                for sec, rows in owned_by(s, person_id).items() for r in rows]


def _confirm_directly(data: dict) -> None:
    """The round has closed (or never sent this link's message): the confirmation still counts."""

    now = datetime.now(UTC)
    with session_scope() as s:
        confirm_contact(s, data["s"], data["p"], now, "link")
        append(s, [NewEvent(subject=data["s"], kind="freshness.confirmed_late", step_id=f"late/{data['p']}/{data['j']}",
                            actor=data["p"], channel="link", at=now, payload={"person_id": data["p"]})])


async def confirm_by_link(client: Client | None, data: dict) -> None:
    """A person confirms their contact data through the round's signed link: the running round is told (as an
    answer); if none waits (or Temporal is away), the confirmation is recorded directly. Then the link is used."""
    told = 0
    if client is not None:
        try:
            told = (await acknowledge(client, data["s"], data["p"], "link", ref=f"link:{data['j']}")).told
        except AnswerError:
            told = 0
    if not told:
        await asyncio.to_thread(_confirm_directly, data)
    try:
        await asyncio.to_thread(use_link, data)
    except LinkError:
        pass


def freshness_preview(s: Session, lib: Library, event: str, level: str, towns: list[str]) -> dict:
    """Who a call-out of this event and level would reach whose contact data is stale or failing.
    Raises DutyError 422 (no plan matches and there is no default plan)."""
    loaded = lib.callout_plan_for(event, Level(level))
    if loaded is None:
        raise DutyError(422, "event: no call-out plan matches and there is no default plan")
    plan = loaded.model
    found, _gaps = resolve_targets(s, plan, towns, [t.id for t in plan.tiers_for(Level(level))], datetime.now(UTC))
    warnings = target_warnings(s, lib, found)
    return {"plan": plan.id, "total": len(found), "warnings": warnings,
            "stale": sum(1 for w in warnings if w["stale"]), "failing": sum(1 for w in warnings if w["failing"])}


class RoundStarted(Out):
    round_id: str = Field(description="the round's workflow id")
