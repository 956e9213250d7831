"""Excel exports of the lists (the "导出 Excel" links): the incidents, a call-out's targets, the message log
(with the page's filters) and the directory 通讯录. Chinese headers, local times as Excel datetimes, the file
named with the local date (叫应-callout-…-20261204.xlsx) in an RFC 6266 Content-Disposition."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console import auth, roles
from api.console.i18n import CHANNEL_NAMES, STATE_NAMES
from api.console.i18n_lists import MESSAGE_CHANNELS, message_reason, message_status, subject_kind
from api.console.pages import db, library, render
from api.services import exports as svc
from api.services import incidents, messagelog
from api.services.dates import local_range, local_today
from api.services.errors import ServiceError
from api.services.xlsx import workbook
from definitions.schema.reporting import CATEGORY_ZH

router = APIRouter(prefix="/console/export", tags=["console"], include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SEVERITY_ZH = {"I": "Ⅰ级(特别重大)", "II": "Ⅱ级(重大)", "III": "Ⅲ级(较大)", "IV": "Ⅳ级(一般)"}
SOURCE_ZH = {"110": "110", "119": "119", "120": "120", "12345": "12345", "department": "部门报告",
             "town": "乡镇(街道)报告", "field": "现场报告", "media": "媒体",
             "warning": "预警"}
KIND_ZH = {"district": "区", "department": "部门", "town": "乡镇(街道)", "village": "村(社区)"}


def xlsx_response(data: bytes, label: str, stem: str) -> Response:
    """The workbook as a download named `<label>-<stem>-<local date>.xlsx` (an ASCII name for old clients)."""
    day = local_today().strftime("%Y%m%d")
    name = f"{label}-{stem}-{day}.xlsx"
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{stem}-{day}.xlsx").strip("_") or f"export-{day}.xlsx"
    return Response(data, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}",
        "Cache-Control": "no-store"})


def _refused(request: Request, exc: ServiceError) -> HTMLResponse:
    return render(request, "message.html", status=exc.status, kind="error", message=str(exc))


def _sheet(title: str, columns: Sequence[tuple[str, Any]], rows: Sequence[dict[str, Any]]) -> bytes:
    """A sheet of these (header, key or function of the row) columns."""
    return workbook(title, [h for h, _ in columns],
                    ([get(r) if callable(get) else r.get(get) for _, get in columns] for r in rows))


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else value or None


INCIDENT_COLUMNS = (
    ("事件编号", "id"), ("标题", "title"), ("接报时间", lambda r: _when(r["received_at"])),
    ("来源", lambda r: SOURCE_ZH.get(r["source"], r["source"])),
    ("类别", lambda r: CATEGORY_ZH.get(r["category"], r["category"])), ("子类", "subtype"),
    ("等级", lambda r: SEVERITY_ZH.get(r["severity"], r["severity"])), ("地点", "place"),
    ("状态", lambda r: {"open": "进行中", "closed": "已终报"}.get(r["status"], r["status"])),
    ("死亡", lambda r: r["casualties"]["deaths"]), ("受伤", lambda r: r["casualties"]["injured"]),
    ("失踪", lambda r: r["casualties"]["missing"]), ("被困", lambda r: r["casualties"]["trapped"]),
    ("迟报(次)", "late"), ("超时未报(项)", "overdue"))


@router.get("/incidents.xlsx")
async def incidents_xlsx(request: Request, user: auth.Viewer, status: str | None = None,
                         date_from: str | None = None, date_to: str | None = None) -> Response:
    try:
        dates = local_range((date_from or "")[:10], (date_to or "")[:10])
    except ServiceError as exc:
        return _refused(request, exc)
    rows = await asyncio.to_thread(incidents.incident_list, svc.MAX_ROWS, status if status in ("open", "closed") else None,
                                   None, dates=dates)
    return xlsx_response(await asyncio.to_thread(_sheet, "事件", INCIDENT_COLUMNS, rows), "事件", "incidents")


TARGET_COLUMNS = (
    ("层级", "tier"), ("姓名", "name"), ("单位", "unit"), ("岗位", "position"),
    ("状态", lambda r: STATE_NAMES.get(r["state"], (r["state"],))[0]), ("发送次数", "sends"),
    ("首次通知时间", "first_at"), ("最后通知时间", "last_at"), ("收到回复时间", "answered_at"),
    ("应答时间", "ack_at"),
    ("应答方式", lambda r: CHANNEL_NAMES.get(r["ack_channel"], (r["ack_channel"],))[0]), ("应答人", "ack_by"),
    ("超时后应答", lambda r: "是" if r["late"] else ""), ("升级至", "escalated"))


@router.get("/callouts/{callout_id}.xlsx")
async def callout_xlsx(request: Request, callout_id: str, user: auth.Viewer) -> Response:
    data = await db(svc.callout_targets, await asyncio.to_thread(library), callout_id)
    if data is None:
        return render(request, "message.html", status=404, kind="error", message=f"无此叫应 / no call-out {callout_id!r}")
    body = await asyncio.to_thread(_sheet, "叫应对象", TARGET_COLUMNS, data["rows"])
    return xlsx_response(body, "叫应", callout_id)


MESSAGE_COLUMNS = (
    ("时间", "at"), ("接收人", "name"), ("号码", "to"),
    ("渠道", lambda r: MESSAGE_CHANNELS.get(r["channel"], (r["channel"],))[0]),
    ("状态", lambda r: message_status(r["status"])), ("事由类型", lambda r: subject_kind(r["kind"])),
    ("事由", "title"), ("事由编号", "subject"), ("送达情况/失败原因", lambda r: message_reason(r["status"], r["error"])),
    ("网关原文", "error"), ("发送时间", "sent_at"), ("状态更新时间", "updated_at"))


@router.get("/messages.xlsx")
async def messages_xlsx(request: Request, user: roles.LogReader) -> Response:
    try:
        f, _ = messagelog.filter_from(request.query_params)
    except ServiceError as exc:
        return _refused(request, exc)
    data = await db(messagelog.message_log, f, 1, svc.MAX_ROWS)
    return xlsx_response(await asyncio.to_thread(_sheet, "消息记录", MESSAGE_COLUMNS, data["rows"]), "消息记录", "messages")


DIRECTORY_COLUMNS = (
    ("单位", "unit"), ("单位编码", "unit_id"), ("类型", lambda r: KIND_ZH.get(r["kind"], r["kind"])),
    ("上级单位", "parent"), ("岗位", "position"), ("姓名", "name"), ("手机", "mobile"), ("备用手机", "mobile2"),
    ("AB角(副职)", "deputy"), ("上级", "superior"), ("最近核实时间", "confirmed_at"))


@router.get("/directory.xlsx")
async def directory_xlsx(request: Request, user: auth.Viewer) -> Response:
    rows = await db(svc.directory_rows)
    return xlsx_response(await asyncio.to_thread(_sheet, "通讯录", DIRECTORY_COLUMNS, rows), "通讯录", "directory")
