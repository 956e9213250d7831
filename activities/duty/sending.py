"""The flush of every duty procedure: a batch of the escalation interpreter's actions sent and recorded,
each message rendered per procedure (Chinese only), with the procedure's read model in the same transaction.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session
from temporalio import activity

from activities.common import local
from activities.delivery import Outcome
from activities.duty.freshness import _freshness_progress
from activities.duty.handover import _save_handover
from activities.duty.spotcheck import _save_spotcheck, _spotcheck_attempts
from activities.escalation import Batch, Links, ack_links, answer_text, send_and_record
from config import get_settings
from store.directory import mask_mobile
from store.duty import make_confirm_token, make_form_token
from store.links import reply_code
from workflows.duty import DutyFlush, FlushResult
from workflows.kit import names
from workflows.escalation import Send


AUDIT_PREFIX = {"handover": "handover", "spotcheck": "spotcheck.call", "followup": "spotcheck.followup",
                "freshness": "freshness", "readiness": "readiness.call"}


def _round_of(key: str) -> int:
    m = re.search(r"/\d+\.(\d+)/", key)
    return int(m.group(1)) if m else 0


# ================================================================== rendering, per procedure


def _render_handover(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    inc, out = (ctx.get("incoming") or {}).get("name", ""), (ctx.get("outgoing") or {}).get("name", "")
    due = local(ctx.get("due_at"), "%H:%M")
    answer = answer_text(code, link)
    if send.purpose == "notify":
        body = (f"【交接班】{inc}:请于{due}前确认接班(交班值班长{out or '—'},交班记录{ctx.get('items', 0)}项,"
                f"请在值班台查看)。{answer_text(code, link, '确认接班')}")
        return body, f"这里是区应急管理局值班室。{inc},请您于{due}前确认接班。确认接班请按1。"
    if send.purpose == "escalate":
        body = f"【交接班升级】接班值班长{inc}未在{due}前确认接班,请您协调落实。{answer}"
        return body, f"这里是区应急管理局值班室。接班值班长{inc}未确认接班,请您协调落实。收到请按1。"
    if send.purpose == "inform":
        return f"【告知】接班值班长{inc}未确认接班({due}),请跟进。", None
    if send.purpose == "cancel":
        return f"【交接班】{inc}已接班,无需再处理。", None
    return f"【交接班】{send.about}", None


def _render_spotcheck(send: Send, ctx: dict, form: str | None) -> tuple[str, str | None]:
    title = ctx.get("title", "")
    if send.purpose == "notify" and send.channel == "voice":
        text = f"这里是区应急管理局值班室,现对“{title}”的落实情况进行六问抽查,每个问题请按1表示是,按2表示否。"
        return text, text
    if send.purpose == "notify":
        return f"【六问抽查】{send.name}您好:针对“{title}”,请点击链接回答六个问题(约1分钟):{form}", None
    if send.purpose == "inform":
        return f"【六问抽查】{send.about}未接听、未作答,请电话抽查并在值班台代为记录。", None
    if send.purpose == "cancel":
        return "【六问抽查】本次抽查已结束,无需再作答。", None
    return f"【六问抽查】{title}", None


def _render_followup(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    f = ctx.get("followup") or {}
    q = {x["id"]: x["zh"] for x in ctx.get("questions", [])}
    failed = "、".join(q.get(i, i).rstrip("??") for i in f.get("failed", []))
    town, about, due = f.get("town_name", ""), f.get("about_name", ""), local(f.get("due_at"))
    answer = answer_text(code, link, "确认收到")
    if ctx.get("overdue"):
        return f"【整改逾期】{town}六问整改已过时限({due})仍未完成:{about}({failed}),请督办。", None
    if send.purpose in ("notify", "escalate"):
        prefix = f"【升级】{f.get('responsible_name', '')}未确认,请您督促。" if send.purpose == "escalate" else ""
        text = (f"{prefix}【六问整改】{town}:{about}在六问抽查中回答“否”:{failed}。请于{due}前落实整改。")
        return text + answer, text + "收到请按1。"
    if send.purpose == "inform":
        return f"【告知】{town}六问整改未确认:{about}({failed}),请跟进。", None
    if send.purpose == "cancel":
        return f"【六问整改】{town}:{about}已整改,无需再处理。", None
    return f"【六问整改】{town}", None


def _render_freshness(send: Send, ctx: dict, code: str | None, link: str | None) -> tuple[str, str | None]:
    deadline = ctx.get("deadline")
    due = local(deadline, "%m月%d日") if deadline else "—"  # due before this day (e.g. 04月20日)
    again = "【提醒】" if _round_of(send.key) > 0 else ""
    body = (f"{again}【通讯录核实】{send.name}您好:区应急值守通讯录登记您的手机为{mask_mobile(send.to)}。请于{due}前"
            f"点击链接确认:{link} ,或用本机回复1(确认码{code})。号码有变请联系区应急管理局。")
    return body, None


# ================================================================== flush (every procedure)


def _links(req: DutyFlush) -> Links:
    """(reply code, link) of a send that wants an answer: spot checks and confirmations have forms of their own."""
    settings = get_settings()
    key = settings.signing_key()
    usual = ack_links(req.subject)

    def links(send: Send) -> tuple[str | None, str | None]:
        if send.purpose not in ("notify", "escalate"):
            return None, None
        if req.procedure == "spotcheck":  # the six answers come by the form or the voice menu, never as "1"
            token = make_form_token(key, req.subject, send.person_id)
            return None, f"{settings.base_url}/spotcheck/{token}" if send.channel in ("sms", "im") else None
        if req.procedure == "freshness":
            token = make_confirm_token(key, req.subject, send.person_id)
            return reply_code(req.subject, send.person_id), f"{settings.base_url}/confirm/{token}"
        return usual(send)

    return links


def render(req: DutyFlush, send: Send, code: str | None, link: str | None) -> tuple[str, str | None]:
    if req.procedure == "handover":
        return _render_handover(send, req.context, code, link)
    if req.procedure == "spotcheck":
        return _render_spotcheck(send, req.context, link)
    if req.procedure == "followup":
        return _render_followup(send, req.context, code, link)
    if req.procedure == "readiness":
        from activities.readiness import render as render_readiness
        return render_readiness(send, req.context, code, link)
    return _render_freshness(send, req.context, code, link)


@activity.defn(name=names.Duty.FLUSH)
async def flush(req: DutyFlush) -> FlushResult:
    def save(s: Session, outcomes: dict[str, Outcome], now: datetime) -> None:
        view = req.context.get("view")
        if req.procedure == "handover" and view:
            _save_handover(s, view)
        elif req.procedure in ("spotcheck", "followup") and view:
            _save_spotcheck(s, view)
            _spotcheck_attempts(s, req, outcomes, now)
        elif req.procedure == "freshness":
            _freshness_progress(s, req, outcomes, now)
        elif req.procedure == "readiness" and view:
            from activities.readiness import save_view
            save_view(s, view)

    after = None
    if req.procedure == "readiness" and req.after:  # the teams' answers, with the view that shows them
        from activities.readiness import record_answers
        from workflows.readiness import RecordRequest as ReadinessRecord

        answers = ReadinessRecord.model_validate(req.after)

        def after(s: Session) -> list:
            return record_answers(s, answers)

    batch = Batch(subject=req.subject, workflow_id=req.workflow_id, run_id=req.run_id, episode=req.episode,
                  kind=AUDIT_PREFIX[req.procedure], sends=req.sends, records=req.records,
                  meta={"procedure": req.procedure})
    return FlushResult.model_validate(await send_and_record(
        batch, lambda send, code, link: render(req, send, code, link),
        links=_links(req), save=save, after=after))
