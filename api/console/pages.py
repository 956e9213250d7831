"""What every console page shares: the templates and their filters, `render`, the forbidden page, the
definitions (cached), running a function with a database session on a thread, form errors and the
Temporal UI's address. Console modules import these from here, never from one another.
"""
from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from markupsafe import Markup
from pydantic import ValidationError

from api.cap import CapError
from api.console import auth, roles
from api.console.i18n import COOKIE as LANG_COOKIE
from api.console.i18n import CHANNEL_NAMES, LEVEL_NAMES, MESSAGE_STATUS_NAMES, STATE_NAMES, lang_of, pick, translator
from api.deps import DUTY
from api.services import names
from api.security import masked_message
from config import Settings, get_settings
from definitions.loader import Library, cached_library
from store.db import session_scope
from store.replay.labels import event_name, summary
from store.directory import mask_mobile
from workflows.kit.roles import ROLE_NAMES, role_name

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def local_time(value: Any, fmt: str = "%m-%d %H:%M:%S") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


templates.env.filters["local"] = local_time
templates.env.filters["json"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)
templates.env.filters["hide_links"] = masked_message  # one-time links and login codes, for every role
templates.env.filters["who"] = pass_context(lambda ctx, v: names.who(v, ctx.get("lang", "zh")))  # ids → names


@pass_context
def _event_summary(ctx: Any, payload: Any) -> str:
    """An audit event's payload in words, in the page's language (store/replay/labels.py)."""
    lang = ctx.get("lang", "zh")
    i = pick(lang)
    words = {k: v[i] for k, v in {**STATE_NAMES, **MESSAGE_STATUS_NAMES}.items()}
    return summary(payload, lambda v: names.who(v, lang), local_time, {k: v[i] for k, v in CHANNEL_NAMES.items()},
                   words, {k: v[i] for k, v in LEVEL_NAMES.items()}, lang)


templates.env.globals["event_name"] = pass_context(lambda ctx, kind: event_name(kind, ctx.get("lang", "zh")))
templates.env.globals["event_summary"] = _event_summary


def _phone_for(user: auth.ConsoleUser | None):
    """The template's `phone(number)`: a tel: link for the roles that call people (roles.SEES_NUMBERS), the
    masked number for the others."""

    def phone(e164: str | None) -> Markup | str:
        if not e164:
            return ""
        if user is None or not user.may(*roles.SEES_NUMBERS):
            return mask_mobile(e164)
        return Markup('<a class="tel" href="tel:{0}">{0}</a>').format(e164)

    return phone


_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{3,}")


def in_language(message: Any, lang: str) -> Any:
    """A refusal written `中文 / English` (the services' and the workflows' way) in the page's language only."""
    if not isinstance(message, str) or " / " not in message:
        return message
    zh, _, en = message.partition(" / ")
    if not _CJK.search(zh) or not _LATIN.search(en):  # not written Chinese first, then English
        return message
    return en if lang == "en" else zh


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    query_lang = request.query_params.get("lang")
    lang = lang_of(query_lang, request.cookies.get(LANG_COOKIE))
    i = pick(lang)
    for key in ("error", "message", "refusal"):  # what a refused step says, in the page's language
        if key in ctx:
            ctx[key] = in_language(ctx[key], lang)
    user: auth.ConsoleUser | None = getattr(request.state, "console_user", None)
    settings = get_settings()
    base = {"t": translator(lang), "lang": lang, "user": user, "csrf": user.csrf if user else "",
            "states": {k: v[i] for k, v in STATE_NAMES.items()}, "levels": {k: v[i] for k, v in LEVEL_NAMES.items()},
            "channels": {k: v[i] for k, v in CHANNEL_NAMES.items()}, "i": i,
            "statuses": {k: v[i] for k, v in MESSAGE_STATUS_NAMES.items()}, "path": request.url.path,
            "simulator": settings.gateway == "simulator", "duty": DUTY, "supervisors": roles.SUPERVISORS,
            "log_readers": roles.LOG_READERS, "tz": settings.timezone, "role_name": lambda role: role_name(role, lang),
            "role_names_in": {k: v[i] for k, v in ROLE_NAMES.items()}, "demo": settings.demo_logins,
            "phone": _phone_for(user), "tier_labels": {k: v[i] for k, v in ctx.get("tier_names", {}).items()},
            "temporal_ok": bool(user and user.role in ("supervisor", "admin"))}  # the Temporal UI: workflow internals
    resp = templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)
    if query_lang in ("zh", "en"):
        resp.set_cookie(LANG_COOKIE, query_lang, max_age=365 * 86400, samesite="strict", path="/")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def t_of(request: Request):
    return translator(lang_of(request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)))


def forbidden(request: Request) -> HTMLResponse:
    return render(request, "message.html", status=403, kind="error", message=t_of(request)("forbidden"))


async def refused(request: Request, exc: Exception) -> HTMLResponse:
    """The console's answer to `roles.Refused` (a role dependency, an unknown action): the message page."""
    assert isinstance(exc, roles.Refused)
    if exc.message is None:
        return forbidden(request)
    return render(request, "message.html", status=exc.status, kind="error", message=exc.message)


def library() -> Library:
    """The definitions, parsed again only when a file changed (every page needs them)."""
    return cached_library(get_settings().definitions_dir)


async def db(fn, *args, write: bool = False, **kw):
    """Run a function with a session on a thread: no transaction is held across an await."""

    def work():
        with session_scope(write=write) as s:
            return fn(s, *args, **kw)

    return await asyncio.to_thread(work)


async def schedules_of(request: Request, kind: str) -> tuple[list[dict], str | None]:
    """The schedules of one procedure (drill, handover, spotcheck, freshness) as Temporal describes them, and
    why they could not be read (Temporal away, a server without schedules)."""
    from api.services.duty import DutyError, list_schedules

    client = await request.app.state.temporal()
    if client is None:
        return [], t_of(request)("temporal_away")
    from api.services.duty.schedules import reach

    try:
        lib = await asyncio.to_thread(library)
        schedules = await list_schedules(client, lib, get_settings(), kind)
    except DutyError as exc:
        return [], str(exc)
    what = await db(reach, lib)  # what running it now does, to how many: the confirmation before 立即执行 says it
    for s in schedules:
        s["reach_zh"], s["reach_en"] = what.get(s["id"], ("", ""))
    return schedules, None


CAP_REASONS_ZH = {"not_xml": "粘贴的内容不是 XML 文档", "too_deep": "CAP 文档嵌套层数过多", "too_large": "CAP 文档过大",
                  "spec_invalid": "CAP 文档内容不符合规范", "forbidden_dtd": "CAP 文档含有不允许的 DTD 或实体",
                  "wrong_namespace": "不是 CAP 1.2 预警文档", "schema_invalid": "CAP 文档未通过格式校验"}


def form_error(exc: Exception) -> str:
    """A refused form's first reason, as the page shows it."""
    if isinstance(exc, CapError):  # the Chinese of what is wrong, the parser's own words for where
        zh = CAP_REASONS_ZH.get(exc.reason, "CAP 文档有误")
        return f"{zh}({exc}) / CAP ({exc.reason}): {exc}"
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        ctx = err.get("ctx") or {}
        zh = {"missing": "必填", "string_too_short": "不能为空" if ctx.get("min_length") == 1 else "太短",
              "string_too_long": f"过长(最多{ctx.get('max_length')}字)", "int_parsing": "应为整数",
              "greater_than_equal": f"不能小于{ctx.get('ge')}", "less_than_equal": f"不能大于{ctx.get('le')}",
              "datetime_parsing": "时间格式不对", "datetime_from_date_parsing": "时间格式不对",
              "enum": "不是可选的值", "literal_error": "不是可选的值"}.get(err["type"], "填写有误")
        return f"{where}:{zh} / {where}: {err['msg']}"
    return str(exc)


def temporal_url(settings: Settings, workflow_id: str) -> str:
    """The workflow's page in the Temporal UI."""
    return (f"http://127.0.0.1:{settings.temporal_ui_port}/namespaces/{quote(settings.temporal_namespace, safe='')}"
            f"/workflows/{quote(workflow_id, safe='')}")
