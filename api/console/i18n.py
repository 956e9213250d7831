"""Chinese first, English on request (`?lang=en`, kept in a cookie): one table of UI strings."""
from __future__ import annotations

from collections.abc import Callable

LANGS = ("zh", "en")
COOKIE = "yj_lang"

STRINGS: dict[str, tuple[str, str]] = {
    "app": ("应急值守", "yingji duty console"),
    "skip": ("跳到正文", "Skip to content"),
    "desk": ("值班台", "Duty desk"),
    "new_callout": ("发起叫应", "New call-out"),
    "callouts": ("叫应", "Call-outs"),
    "replay": ("督查回放", "Replay"),
    "directory": ("通讯录", "Directory"),
    "definitions": ("流程定义", "Definitions"),
    "logout": ("退出", "Log out"),
    "login": ("登录", "Log in"),
    "language": ("English", "中文"),
    "signed_in_as": ("当前用户", "Signed in as"),
    "token": ("访问令牌", "Access token"),
    "token_help": ("粘贴管理员发放的令牌(yj_…)", "Paste the token you were given (yj_…)"),
    "login_token": ("用令牌登录", "Log in with a token"),
    "login_sms": ("短信验证码登录", "Log in with an SMS code"),
    "mobile": ("手机号码", "Mobile number"),
    "send_code": ("发送验证码", "Send code"),
    "code": ("验证码(6位)", "Code (6 digits)"),
    "verify": ("登录", "Log in"),
    "code_sent": ("如该号码有权登录,验证码已发送,5分钟内有效。", "If this number may log in, a code has been sent; it is valid for 5 minutes."),
    "bad_token": ("令牌无效、已吊销或已过期。", "The token is unknown, revoked or expired."),
    "bad_code": ("验证码错误或已失效。", "The code is wrong or no longer valid."),
    "too_many": ("请求过于频繁,请稍后再试。", "Too many requests; try again later."),
    "forbidden": ("您的角色无权进行此操作。", "Your role may not do this."),
    "on_duty": ("今日值班(1+1+X+X)", "On duty now (1+1+X+X)"),
    "nobody": ("无", "nobody"),
    "open_warnings": ("预警", "Warnings"),
    "running_callouts": ("进行中的叫应", "Running call-outs"),
    "recent_callouts": ("最近结束的叫应", "Recently ended call-outs"),
    "none": ("暂无", "None"),
    "received": ("收到", "Received"),
    "expires": ("失效", "Expires"),
    "next_deadline": ("最近时限", "Next deadline"),
    "overdue": ("已超时", "overdue"),
    "left": ("剩余", "left"),
    "level": ("级别", "Level"),
    "event": ("灾种/事件", "Event"),
    "headline": ("标题", "Headline"),
    "towns": ("乡镇(街道)", "Towns / streets"),
    "status": ("状态", "Status"),
    "started": ("开始", "Started"),
    "ended": ("结束", "Ended"),
    "progress": ("应答", "Answered"),
    "open": ("打开", "Open"),
    "board": ("叫应看板", "Call-out board"),
    "starting_callout": ("叫应正在启动,页面将自动刷新…", "The call-out is starting; this page refreshes itself…"),
    "temporal": ("工作流(Temporal)", "Workflow in Temporal UI"),
    "paste_cap": ("粘贴 CAP 1.2 预警", "Paste a CAP 1.2 alert"),
    "cap_xml": ("CAP XML 文档", "CAP XML document"),
    "or_form": ("或填写表单", "or fill in the form"),
    "drill": ("演练", "Drill"),
    "preview": ("预览叫应对象", "Preview who will be called"),
    "start": ("发起叫应", "Start the call-out"),
    "plan": ("叫应方案", "Call-out plan"),
    "will_call": ("将叫应", "Will call"),
    "persons": ("人", "persons"),
    "no_callout": ("不会发起叫应", "No call-out would start"),
    "gaps": ("缺岗", "Vacant posts"),
    "tier": ("层级", "Tier"),
    "by_tier": ("各层级进度", "Progress by tier"),
    "name": ("姓名/岗位", "Name / post"),
    "state": ("状态", "State"),
    "attempts": ("尝试", "Attempts"),
    "answered": ("应答", "Answered"),
    "escalated_to": ("已升级至", "Escalated to"),
    "details": ("消息与操作", "Messages & actions"),
    "all": ("全部", "All"),
    "filter": ("筛选", "Filter"),
    "shown": ("显示", "Showing"),
    "of": ("共", "of"),
    "more": ("更多", "More"),
    "live": ("实时更新", "Live"),
    "disconnected": ("连接中断,重连中…", "Disconnected, reconnecting…"),
    "proxy_ack": ("代为确认", "Acknowledge on their behalf"),
    "note": ("说明(如:已电话确认)", "Note (e.g. confirmed by phone)"),
    "confirm": ("确认", "Confirm"),
    "messages": ("已发消息", "Messages sent"),
    "simulator": ("模拟器操作", "Simulator"),
    "sim_reply": ("回复“收到”", "Reply 收到"),
    "sim_key1": ("按键1", "Keypress 1"),
    "sim_key2": ("按键2(无法到岗)", "Keypress 2 (cannot)"),
    "sim_failed": ("发送失败", "Failed"),
    "sim_busy": ("占线", "Busy"),
    "sim_no_answer": ("无人接听", "No answer"),
    "sim_machine": ("语音信箱", "Machine"),
    "done": ("已完成", "Done"),
    "cancel_callout": ("终止叫应", "Cancel the call-out"),
    "reason": ("原因", "Reason"),
    "timeline": ("时间线", "Timeline"),
    "instant": ("回放时刻", "Instant"),
    "chain": ("审计链校验", "Audit chain"),
    "chain_ok": ("完整,未被篡改", "intact"),
    "chain_bad": ("校验失败", "broken"),
    "kind": ("类型", "Kind"),
    "actor": ("操作者", "Actor"),
    "time": ("时间", "Time"),
    "payload": ("内容", "Details"),
    "replay_here": ("回放到此", "Replay to here"),
    "state_at": ("该时刻状态", "State at this instant"),
    "deadlines": ("未到期时限", "Open deadlines"),
    "deadlines_unknown": ("方案版本已变更,无法推算时限", "The plan has changed since; deadlines cannot be derived"),
    "subject": ("对象编号", "Subject"),
    "go": ("查看", "Go"),
    "events": ("事件", "events"),
    "org_units": ("组织机构", "Org units"),
    "posts": ("岗位", "Posts"),
    "deputy": ("副职/替补", "Deputy"),
    "superior": ("上级", "Superior"),
    "positions": ("岗位目录", "Positions"),
    "valid": ("校验通过", "Valid"),
    "invalid": ("校验失败", "Invalid"),
    "version": ("版本", "Version"),
    "file": ("文件", "File"),
    "policies": ("升级策略", "Escalation policies"),
    "min_level": ("起始级别", "From level"),
    "back": ("返回", "Back"),
    "error": ("出错了", "Something went wrong"),
    "ack_title": ("确认收到", "Confirm"),
    "ack_ask": ("请确认您已收到预警并落实防范措施。", "Please confirm that you received the warning."),
    "ack_done": ("已确认,谢谢。", "Confirmed. Thank you."),
}

STATE_NAMES = {
    "pending": ("待发送", "pending"), "notified": ("已通知", "notified"), "acknowledged": ("已应答", "acknowledged"),
    "escalated": ("已升级", "escalated"), "unreachable": ("未叫应", "unreachable"), "canceled": ("已取消", "canceled"),
    "running": ("进行中", "running"), "completed": ("已完成", "completed"), "downgraded": ("已降级结束", "downgraded"),
    "starting": ("启动中", "starting"), "not started": ("未开始", "not started"),
}
LEVEL_NAMES = {"blue": ("蓝色", "blue"), "yellow": ("黄色", "yellow"), "orange": ("橙色", "orange"), "red": ("红色", "red")}
CHANNEL_NAMES = {"sms": ("短信", "SMS"), "voice": ("语音", "voice"), "im": ("即时消息", "IM"), "link": ("链接", "link"),
                 "proxy": ("代确认", "proxy")}


def pick(lang: str) -> int:
    return 1 if lang == "en" else 0


def translator(lang: str) -> Callable[[str], str]:
    i = pick(lang)

    def t(key: str) -> str:
        pair = STRINGS.get(key) or STATE_NAMES.get(key) or LEVEL_NAMES.get(key) or CHANNEL_NAMES.get(key)
        return pair[i] if pair else key

    return t


def lang_of(query_lang: str | None, cookie_lang: str | None) -> str:
    for value in (query_lang, cookie_lang):
        if value in LANGS:
            return value
    return "zh"
