"""The city platform's receipts (签收) of the duty office's reports upward (activities/upward.py).

`POST /api/webhooks/cityline`, JSON `{receipt_id, report_id, version, to, status, by, at}`, signed like our
requests to it (activities/gateways/cityline.py): `X-Cityline-Timestamp` within `YINGJI_CITYLINE_REPLAY_WINDOW_S`
of our clock, `X-Cityline-Signature` = hex HMAC-SHA256 of the timestamp and the body with
`YINGJI_CITYLINE_SECRET`. Unsigned, badly signed, late or replayed: 403, nothing recorded. A receipt for a report
version we never sent to that office: 404. The same receipt twice is one `report.city.receipt`.

The platform may sign within milliseconds of taking our POST, before the activity has recorded `report.city.sent`
(activities/upward.py): a receipt for a post begun and not yet settled (store/upward.py) is kept on it and answered
200 with `held`; the activity appends it right after `report.city.sent`, in that event's transaction. We keep it
rather than answer 503 with Retry-After: nothing documents that the city platform retries a refused receipt, and a
receipt it does not send again would be lost. A post that ended without `report.city.sent` (sent by SMS instead,
or failed) or never begun is 404, as before.
"""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from sqlmodel import select

from activities.gateways import hmac_scheme
from activities.upward import step_of
from api.deps import SettingsDep
from api.services import signed_webhooks
from store import upward as posts
from store.audit import AuditEvent, NewEvent, append
from store.db import session_scope
from workflows.kit.events import Reporting as Kinds
from workflows.subjects import incident_subject

log = structlog.get_logger("yingji.webhooks")
router = APIRouter(prefix="/api/webhooks", tags=["gateway webhooks"])
CITYLINE = signed_webhooks.Platform(name="cityline", scheme=hmac_scheme.CITYLINE, secret_setting="YINGJI_CITYLINE_SECRET")


class CityReceipt(BaseModel):
    receipt_id: str = Field(min_length=1, max_length=100)
    report_id: str = Field(min_length=3, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*/(verbal|\d+)$")
    version: int = Field(ge=1)
    to: str = Field(min_length=1, max_length=64)
    status: str = Field(default="signed", max_length=32)
    by: str = Field(default="", max_length=100, description="who signed for it at the city's duty office")
    at: datetime | None = None


@router.post("/cityline", summary="上报: the city platform's receipt (签收) of a report (HMAC-signed, replay window)")
async def cityline_receipt(request: Request, settings: SettingsDep) -> dict:
    secret = settings.cityline_secret.get_secret_value() if settings.cityline_secret else ""
    raw = await request.body()
    window = settings.cityline_replay_window_s
    try:
        sig = signed_webhooks.check(CITYLINE, secret, request.headers.get(CITYLINE.ts_header),
                                    request.headers.get(CITYLINE.sig_header), raw, window)
    except signed_webhooks.Unsigned as exc:
        log.warning("cityline webhook refused", reason=str(exc))
        raise
    try:
        r = CityReceipt.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        raise HTTPException(422, detail=f"{'.'.join(map(str, first['loc']))}: {first['msg']}" if first
                            else "the body is not JSON") from None
    if r.at is not None and r.at.tzinfo is None:
        raise HTTPException(422, detail="at: give a time zone")
    subject = incident_subject(r.report_id.rsplit("/", 1)[0])
    step = step_of(r.to, r.report_id, r.version)

    def record() -> dict:
        with session_scope() as s:
            # the post's row first, locked: the activity takes it before it records the post sent (store/upward.py),
            # so we find either the event or the post still open, never neither
            post = posts.locked(s, subject, step)
            sent = s.exec(select(AuditEvent).where(AuditEvent.subject == subject,
                                                   AuditEvent.step_id == f"{step}/sent")).first()
            if sent is None and (post is None or post.settled_at is not None):
                raise HTTPException(404, detail=f"no report {r.report_id} v{r.version} was sent to {r.to!r}")
            signed_webhooks.take(s, CITYLINE, sig, window)  # with the receipt: a replay is 403, nothing recorded
            if sent is None:  # being sent: kept, recorded right after report.city.sent
                posts.hold(post, f"cityline:{r.to}", r.at, {
                    "receipt_id": r.receipt_id, "status": r.status, "by": r.by,
                    "arrived_at": datetime.now(UTC).isoformat()})
                s.add(post)
                return {"held": Kinds.CITY_RECEIPT, "report_id": r.report_id, "version": r.version, "to": r.to}
            [ev] = append(s, [NewEvent(
                subject=subject, kind=Kinds.CITY_RECEIPT, step_id=f"{step}/receipt", workflow_id=sent.workflow_id,
                actor=f"cityline:{r.to}", channel="cityline", at=r.at or datetime.now(UTC),
                payload={**{k: sent.payload.get(k) for k in ("to", "name", "report_id", "version", "kind", "label")},
                         "receipt_id": r.receipt_id, "status": r.status, "by": r.by})])
            return {"recorded": ev.kind, "report_id": r.report_id, "version": r.version, "to": r.to}

    return await asyncio.to_thread(record)
