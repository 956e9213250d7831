"""Collecting a case's contents from the database: the definition versions its events name, their files,
its messages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from store.casefile.build import redact
from store.casefile.layout import sha256
from workflows.kit.events import (
    Activation,
    ActivationStarted,
    Callout,
    IncidentReceived,
    PlanChosen,
    Reporting,
    Review,
    ReviewStarted,
    WorkOrder,
)

def _definition_used(k: str, payload: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """(definition kind, id, version) an event says was used, or None."""
    if k == Reporting.RECEIVED:
        r = IncidentReceived.read(payload)
        return ("reporting", r.rules, r.rules_version) if r.rules_version else None
    if k == Callout.PLAN_CHOSEN:
        c = PlanChosen.read(payload)
        return ("callout", c.plan, c.version) if c.version else None
    if k == Review.STARTED:
        t = ReviewStarted.read(payload)
        return ("review", t.template, t.template_version) if t.template_version else None
    if k == WorkOrder.RECEIVED:
        return ("workorders", payload.get("rules"), payload.get("rules_version")) if payload.get("rules_version") else None
    if k == Activation.STARTED:  # (a dispatch plan's "version" is its draft's)
        a = ActivationStarted.read(payload)
        return ("plans", a.plan, a.plan_version) if a.plan_version else None
    return None


def definition_versions(events: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """(kind, id, version) of every definition the case's events say was used."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for evs in events.values():
        for ev in evs:
            found = _definition_used(ev.kind, ev.payload)
            if found is not None and found[2]:
                seen.setdefault((found[0], str(found[2])), {"kind": found[0], "id": found[1], "version": str(found[2])})
    return sorted(seen.values(), key=lambda d: (d["kind"], str(d["id"]), d["version"]))


def attach_definition_files(defs: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """Find each version's file under the definitions folder by its hash (a version is the file's SHA-256)."""
    index: dict[str, Path] = {}
    if root.is_dir():
        for path in sorted(root.rglob("*.y*ml")):
            index.setdefault(sha256(path.read_bytes())[:16], path)
    for d in defs:
        path = index.get(d["version"])
        d["path"] = path.relative_to(root).as_posix() if path else None
        d["content"] = path.read_bytes() if path else None
    return defs


def collect_messages(session: Any, subjects: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every message sent for the case's subjects and every reply to them (numbers masked, links redacted)."""
    from sqlmodel import col, select

    from store.directory import mask_mobile
    from store.messages import InboundMessage, OutboxMessage

    out_rows = list(session.exec(select(OutboxMessage).where(col(OutboxMessage.subject).in_(subjects))
                                 .order_by(OutboxMessage.id))) if subjects else []
    ids = [m.id for m in out_rows]
    in_rows = list(session.exec(select(InboundMessage).where(col(InboundMessage.outbox_id).in_(ids))
                                .order_by(InboundMessage.id))) if ids else []
    outbox = []
    for m in out_rows:
        d = m.model_dump(mode="json")
        d["to"] = d["to"] if m.channel == "im" else mask_mobile(m.to)
        d["body"], d["ack_url"] = redact(m.body), "[redacted]" if m.ack_url else None
        outbox.append(d)
    inbox = []
    for m in in_rows:
        d = m.model_dump(mode="json")
        d["from_number"] = mask_mobile(m.from_number) if m.channel != "im" else m.from_number
        inbox.append(d)
    return outbox, inbox
