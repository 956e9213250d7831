"""The labels of the lists' pages (message log, search, date filters, Excel exports), Chinese first: added to
i18n.STRINGS on import (as the duty pages add theirs); a message's status by i18n.MESSAGE_STATUS_NAMES, the
name of a subject's kind and why a message failed."""
from __future__ import annotations

import re

from api.console.i18n import MESSAGE_STATUS_NAMES, STRINGS

LIST_STRINGS: dict[str, tuple[str, str]] = {
    "message_log": ("消息记录", "Message log"),
    "msg_intro": ("所有已发出的短信、语音、即时消息等,最新在前。号码按当前角色的权限显示。",
                  "Every message sent (SMS, voice, IM…), newest first. Numbers as your role may see them."),
    "msg_time": ("时间", "Time"), "msg_person": ("接收人", "Recipient"), "msg_number": ("号码", "Number"),
    "msg_channel": ("渠道", "Channel"), "msg_status": ("状态", "Status"), "msg_subject": ("事由", "Subject"),
    "msg_reason": ("送达情况/失败原因", "Delivery / failure reason"), "msg_body": ("内容", "Text"),
    "msg_who": ("姓名或电话", "Name or number"), "msg_subject_q": ("事由编号", "Subject id"),
    "msg_total": ("共 {n} 条", "{n} messages"), "msg_none": ("没有符合条件的消息。", "No message matches."),
    "page_of": ("第 {p} / {n} 页", "page {p} of {n}"), "prev_page": ("上一页", "Previous"),
    "next_page": ("下一页", "Next"), "date_from": ("开始日期", "From"), "date_to": ("结束日期", "To"),
    "apply": ("筛选", "Filter"), "clear": ("清除", "Clear"), "export_xlsx": ("导出 Excel", "Export to Excel"),
    "search": ("查找", "Search"), "search_ph": ("姓名、电话、事件…", "Name, number, incident…"),
    "search_title": ("查找结果", "Search results"), "search_none": ("没有找到。", "Nothing found."),
    "search_persons": ("人员", "Persons"), "search_incidents": ("事件", "Incidents"),
    "search_callouts": ("叫应", "Call-outs"), "search_activations": ("应急响应", "Responses"),
    "search_count": ("找到 {n} 项", "{n} found"), "unit": ("单位", "Unit"), "post": ("岗位", "Post"),
    "inc_place_short": ("地点", "Place"), "any": ("全部", "any"), "drill_mark": ("演练", "drill"),
    "person_name": ("姓名", "Name"),
    # the directory's kinds of unit (store.directory.ORG_KINDS)
    "unit_kind_district": ("区", "district"), "unit_kind_department": ("部门", "departments"),
    "unit_kind_town": ("乡镇(街道)", "towns and streets"), "unit_kind_village": ("村(社区)", "villages and communities"),
}

SUBJECT_KINDS: dict[str, tuple[str, str]] = {
    "callout": ("叫应", "call-out"), "incident": ("信息报送", "incident"), "activation": ("应急响应", "response"),
    "review": ("复盘", "review"), "drill": ("演练", "drill"), "handover": ("交接班", "handover"),
    "spotcheck": ("六问抽查", "spot check"), "freshness": ("通讯录核实", "contact check"),
    "readiness": ("每月调度", "readiness check"), "resources": ("应急资源", "resources"), "login": ("登录验证码", "login code"), "warning": ("预警", "warning"), "gateway": ("网关", "gateway"),
    "audit": ("审计", "audit"), "workflow": ("流程", "workflow"), "workorder": ("工单", "work order"),
    "publication": ("预警发布", "publication"), "proposal": ("响应建议", "response proposal"),
    "bulletin": ("月度通报", "monthly bulletin"),
}  # every kind workflows.subjects.kind_of names (tests/unit/test_lists.py)

MESSAGE_CHANNELS: dict[str, tuple[str, str]] = {
    "sms": ("短信", "SMS"), "voice": ("语音", "voice"), "im": ("即时消息", "IM"), "email": ("电子邮件", "email"),
}

# what a gateway's error says, in Chinese (the first that matches; the status says the rest)
_ERRORS = ((re.compile(r"simulated failure"), ("模拟网关:发送失败", "simulated failure")),
           (re.compile(r"interrupted while sending"), ("发送中断,未重发", "interrupted while sending; not sent again")),
           (re.compile(r"throttled"), ("网关限流,多次重试后失败", "throttled; failed after retries")),
           (re.compile(r"IM robot unreachable"), ("无法连接即时消息机器人", "IM robot unreachable")),
           (re.compile(r"IM robot HTTP"), ("即时消息机器人拒绝发送", "the IM robot refused")),
           (re.compile(r"Twilio unreachable|could not be asked"), ("无法连接短信/语音网关", "gateway unreachable")),
           (re.compile(r"Twilio (busy|no-answer|failed|canceled|undelivered)"), ("运营商回报未接通", "not connected (carrier)")),
           (re.compile(r"Aliyun unreachable|Aliyun could not be asked|Aliyun: no answer"),
            ("无法连接阿里云短信/语音", "Aliyun unreachable")),
           (re.compile(r"Aliyun 2000(10|11)"), ("对方关机或停机", "the phone is off or out of service")),
           (re.compile(r"Aliyun 2\d{5}"), ("运营商回报未接通", "not connected (carrier)")),
           (re.compile(r"BUSINESS_LIMIT_CONTROL"), ("该号码触发短信频次限制", "the number's SMS limit was reached")),
           (re.compile(r"Aliyun isv\.|template code"), ("阿里云拒绝发送(模板或号码)", "Aliyun refused (template or number)")),
           (re.compile(r"no DingTalk userid"), ("通讯录中无钉钉账号", "no DingTalk userid in the directory")),
           (re.compile(r"DingTalk"), ("钉钉工作通知发送失败", "the DingTalk work notification failed")))
_BY_STATUS = {"delivered": ("已送达本人手机", "delivered to the handset"), "answered": ("本人已应答", "answered"),
              "sent": ("已交网关,等待回执", "handed to the gateway; awaiting the receipt"),
              "failed": ("发送失败", "sending failed"), "undelivered": ("运营商未能送达", "not delivered by the carrier"),
              "busy": ("对方占线", "the line was busy"), "no_answer": ("无人接听", "nobody answered"),
              "machine": ("转入语音信箱,未确认本人接听", "voicemail answered; no person confirmed"),
              "opted_out": ("对方已退订短信", "the person opted out of SMS"), "canceled": ("发送前已取消", "canceled before sending"),
              "pending": ("等待发送", "waiting to be sent")}


def message_status(status: str, i: int = 0) -> str:
    pair = MESSAGE_STATUS_NAMES.get(status)
    return pair[i] if pair else status


def message_reason(status: str, error: str | None, i: int = 0) -> str:
    """Why a message stands as it does, in the page's language (the gateway's own words stay in the row's
    tooltip and the export)."""
    for pattern, pair in _ERRORS:
        if error and pattern.search(error):
            return pair[i]
    if error:
        return ("发送失败(网关错误)", "sending failed (gateway error)")[i]
    pair = _BY_STATUS.get(status)
    return pair[i] if pair else ""


def subject_kind(kind: str, i: int = 0) -> str:
    pair = SUBJECT_KINDS.get(kind)
    return pair[i] if pair else kind


STRINGS.update({k: v for k, v in LIST_STRINGS.items() if k not in STRINGS})  # a key twice: the strings test says
