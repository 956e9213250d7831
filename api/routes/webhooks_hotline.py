"""The hotline platform's signed webhook: new tickets and 回访 satisfaction answers.

`POST /api/webhooks/hotline` with `X-Hotline-Timestamp` (seconds) and `X-Hotline-Signature` (hex HMAC-SHA256
with the shared secret `YINGJI_HOTLINE_SECRET` over `<timestamp>.<raw body>`). Unsigned, badly signed, outside
the window (`YINGJI_HOTLINE_WINDOW_S`, 300 s) or replayed (the same signature taken before): 403, reaching no
workflow. The body is `{"type": "ticket", ...the fields of POST /api/workorders}` or
`{"type": "satisfaction", "source", "ticket", "satisfaction": 满意|基本满意|不满意, "comment"}`.
"""
from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.deps import SettingsDep, TemporalDep
from api.services import signed_webhooks, workorders as svc
from definitions.loader import cached_library
from workflows.workorder import SatisfactionIn, WorkOrderWorkflow, workorder_workflow_id

router = APIRouter(prefix="/api/webhooks", tags=["gateway webhooks"])
ACTOR = "hotline-platform"


def _invalid(exc: ValidationError) -> svc.WorkOrderError:
    first = exc.errors()[0]
    return svc.WorkOrderError(422, f"{'.'.join(str(x) for x in first['loc'])}: {first['msg']}")


@router.post("/hotline", summary="The hotline platform: a new ticket, or the caller's satisfaction (signed)")
async def hotline(request: Request, client: TemporalDep, settings: SettingsDep):
    body = await request.body()
    signature = await svc.verify_webhook(settings, request.headers.get("x-hotline-timestamp"),
                                         request.headers.get("x-hotline-signature"), body)
    answer = await _act(client, settings, body)
    await asyncio.to_thread(signed_webhooks.remember, svc.HOTLINE, signature, settings.hotline_window_s)
    return answer


async def _act(client, settings, body: bytes):
    """The signed request's ticket or satisfaction answer (a failure, e.g. Temporal down, leaves the signature
    untaken: the platform's retry goes through)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise svc.WorkOrderError(422, "the body is not JSON") from None
    if not isinstance(data, dict) or data.get("type") not in ("ticket", "satisfaction"):
        raise svc.WorkOrderError(422, "type: 'ticket' or 'satisfaction'")
    kind = data.pop("type")
    if kind == "ticket":
        try:
            order = svc.WorkOrderIn.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc) from None
        view, existed = await svc.start(client, settings, cached_library(settings.definitions_dir), order, ACTOR)
        return JSONResponse(status_code=200 if existed else 201,
                            content={"id": view["id"], "status": view["status"], "duplicate": existed})
    try:
        answer = svc.SatisfactionHook.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    wid = workorder_workflow_id(answer.source, answer.ticket)
    view = await svc.step(client, wid, "satisfaction", WorkOrderWorkflow.satisfaction, SatisfactionIn(
        actor=ACTOR, role="hotline", satisfaction=answer.satisfaction, comment=answer.comment, version=answer.version))
    return {"id": view.id, "status": view.status}
