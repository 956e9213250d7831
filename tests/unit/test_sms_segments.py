"""Every text a person can receive, rendered by the real renderers with realistic values, counted in SMS
segments the way carriers count UCS-2 text (up to 70 characters: one segment; longer: ceil(n / 67)).

The ordinary case of each template may take at most two segments, and it is Chinese only (a person whose
directory language is "en" gets the definitions' English wording where they give one). The templates are
found where they live: every call-out plan, drill, reporting trigger and review template in definitions/,
every activation message of `ActivationMessages`, every purpose a procedure's renderer answers for
(`Send.purpose`), every duty procedure (`workflows.duty.Procedure`): a new one is rendered here, or this
test names it as missing.

Texts carry the short alias of a signed link (`/a/` and 12 characters, store/links.py `shorten`): the signed
links themselves are about 150 characters with a real host, three segments on their own (`test_signed_links_
would_not_fit` shows it).

Run with `-s` to see the table of template -> characters -> segments.
"""
from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import get_args


import activities.activation as activation
import activities.callout as callout
import activities.duty.sending as duty
import activities.proposal as proposal
import activities.publication as publication
import activities.relay as relay
import activities.reporting as reporting
import activities.review.asking as review
from activities.duty.drill import DRILL_CANCEL, drill_texts, report_text
from api.console.auth import login_code_text
from definitions.loader import load_or_raise
from definitions.schema.activation_messages import ActivationMessages
from definitions.schema.common import Level
from store.callouts import Callout
from store.publications import Publication
from store.duty import make_confirm_token, make_form_token
from store.links import SHORT_PREFIX, make_ack_token, new_short_code, reply_code
from workflows.callout import WarningInfo
from workflows.drill import DRILL_MARK
from workflows.duty import Procedure
from workflows.escalation import Contact, Send
from workflows.proposal import ProposalView, WarningRef
from workflows.publication import PublicationInput
from workflows.reporting.models import overdue_text

LIB = load_or_raise(Path(__file__).resolve().parents[2] / "definitions")
PURPOSES = get_args(Send.__pydantic_fields__["purpose"].annotation)  # a pydantic dataclass

# realistic values: a production host, a warning headline as the 气象台 writes it, Chinese names, the app's own links
BASE = "https://yjj.qingxi.gov.cn"
KEY = "k" * 64
WARNING_ID = "W3f9a1c2b7d04"
HEADLINE = "青溪区气象台2026年7月15日10时发布{event}{level}预警信号"
AREA = ["青溪街道", "东山镇"]
INCIDENT = "东山镇东山村山体滑坡致2人被困"
PERSON = "qx0123"
NAMES = ["张建国", "李秀英", "王志强", "刘海燕", "陈伟", "杨帆"]
DUE = datetime(2026, 7, 15, 4, 30, tzinfo=UTC)  # 12:30 in Asia/Shanghai
CODE = reply_code(f"callout-{WARNING_ID}", PERSON)
LOGIN_CODE = "048213"


def segments(text: str) -> int:
    n = len(text.encode("utf-16-le")) // 2  # UCS-2 code units: a character beyond the BMP counts twice
    return 1 if n <= 70 else math.ceil(n / 67)


def ack_link(subject: str = f"callout-{WARNING_ID}") -> str:
    return f"{BASE}/ack/{make_ack_token(KEY, subject, PERSON)}"


SHORT_LINK = f"{BASE}{SHORT_PREFIX}{new_short_code(KEY)}"  # what a text carries, as the app makes it


def send(purpose: str, channel: str = "sms", about: str = "东山镇 防汛责任人") -> Send:
    return Send(key=f"callout-{WARNING_ID}/0/t/{purpose}", target_key="t", person_id=PERSON, name=NAMES[0],
                to="+8613901234567", channel=channel, purpose=purpose, about=about)


# ------------------------------------------------------------------ every template, rendered


def callout_texts(link: str) -> dict[str, tuple[str, str | None]]:
    """Every call-out plan x purpose (and the drills, which are call-outs), in Chinese and, where the plan has
    English wording, in English; the summary to those on duty."""
    out: dict[str, tuple[str, str | None]] = {}
    for pid, loaded in LIB.of("callout").items():
        plan = loaded.model
        event = (plan.events or ["大风"])[0]
        level = max(plan.min_level, Level.orange)
        w = WarningInfo(warning_id=WARNING_ID, identifier="QX-20260715-1000", level=level, event=event,
                        headline=HEADLINE.format(event=event, level=level.zh), area_descs=AREA)
        req = SimpleNamespace(warning=w, plan=plan, drill=False)
        for purpose in PURPOSES:
            if purpose == "summary":
                continue  # the summary is summary_text, below
            wants = purpose in ("notify", "escalate")
            out[f"callout/{pid}/{purpose}"] = callout.render(send(purpose), req, link if wants else None,
                                                             CODE if wants else None)
            if purpose == "notify" and plan.message_en:
                out[f"callout/{pid}/{purpose} (en)"] = callout.render(send(purpose), req, link, CODE, english=True)
    for d in LIB.duty().drills.programme:
        message_zh, message_en, voice_zh = drill_texts(d)
        plan = SimpleNamespace(message_zh=message_zh, message_en=message_en, voice_zh=voice_zh, name_zh=d.name_zh,
                               cancel_message_zh=DRILL_CANCEL)
        w = WarningInfo(warning_id="drill", identifier="drill", level=d.level, event="演练",
                        headline=f"{DRILL_MARK}{d.name_zh}", area_descs=["区水利局", "区气象局", "区住建局"])
        req = SimpleNamespace(warning=w, plan=plan, drill=True)
        out[f"drill/{d.id}/notify"] = callout.render(send("notify", about="区水利局 局长"), req, link, CODE)
        out[f"drill/{d.id}/escalate"] = callout.render(send("escalate", about="区水利局 局长"), req, link, CODE)
        out[f"drill/{d.id}/cancel"] = callout.render(send("cancel"), req, None, None)
        if d.message_en:
            out[f"drill/{d.id}/notify (en)"] = callout.render(send("notify"), req, link, CODE, english=True)
        fig = {"total": 4, "responded": 3, "rate": 0.75, "never": [{"name": NAMES[1]}]}
        out[f"drill/{d.id}/report"] = report_text(d, fig, None), None
    c = Callout(id=f"callout-{WARNING_ID}", warning_id=WARNING_ID, plan_id="heavy_rain", plan_version="1",
                level="orange", category="heavy_rain", title=HEADLINE.format(event="暴雨", level="橙色"), drill=False)
    summary = {"total": 24, "acknowledged": 21, "rate": 0.875, "median_ack_s": 240.0, "max_ack_s": 900.0,
               "answered_late": 1, "late": [{"name": NAMES[2]}], "never_answered": [{"name": n} for n in NAMES[3:5]]}
    out["callout/summary"] = callout.summary_text(c, summary, "completed"), None
    out["callout/summary (drill)"] = callout.summary_text(c.model_copy(update={"drill": True,
                                                          "title": f"[演练]{c.title}"}), summary, "completed"), None
    return out


def reporting_texts(link: str) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    out["reporting/reminder"] = reporting.reminder_text(INCIDENT, "首报", DUE, 18), None
    record = SimpleNamespace(incident=SimpleNamespace(title=INCIDENT), view=SimpleNamespace(received_at=DUE))
    rules = LIB.reporting_rules().model
    texts = {"overdue": [("首报", overdue_text(INCIDENT, "首报"))]}
    texts["trigger"] = [(t.name_zh, t.message_zh.format(title=INCIDENT, place="东山镇东山村3组", deaths=3, injured=2,
                                                        missing=1, trapped=2, severity="较大"))
                        for loaded in LIB.of("reporting").values() for t in loaded.model.triggers]
    assert rules.triggers, "the default rules have triggers"
    for kind, items in texts.items():
        for n, (label, text) in enumerate(items):
            req = SimpleNamespace(record=record, kind=kind, text=text, label=label, report=None, due_at=DUE)
            for purpose in PURPOSES:
                if purpose in ("update", "summary"):
                    continue  # the reporting chain sends neither
                wants = purpose in ("notify", "escalate")
                out[f"reporting/{kind}{n or ''}/{purpose}"] = reporting.render(
                    send(purpose, about=NAMES[1]), req, CODE if wants else None, link if wants else None)
    return out


def activation_texts(link: str) -> dict[str, tuple[str, str | None]]:
    """Every message of ActivationMessages (the defaults and each plan's own), filled as the workflow and the
    activity fill them; the plans' tasks as notices; the escalation's wording around them."""
    values = {"title": INCIDENT, "plan": "青溪区防汛防台应急预案", "level": "Ⅲ级应急响应", "roles": "抢险救灾组组长",
              "word": "任务", "id": "T-patrol", "prefix": "抢险救灾组:", "text": "组织对河道堤防巡查,发现险情及时处置并报告。",
              "old": "Ⅲ级", "new": "Ⅳ级", "posts": "抢险救灾组组长", "reason": "险情已排除", "season": "汛期",
              "forces": "消防救援大队2个中队", "task": "东山村被困人员搜救", "ask": "请审批。", "place": "东山镇东山村3组",
              "comments": "请补充转移人数。", "district": "青溪区", "kind": "救援队伍", "detail": "冲锋舟4艘及操作人员",
              "quantity": "(4艘)", "to": "市应急管理局", "fields": "防汛抗旱、地质灾害", "when": "{due}",
              "topic": "(研判东山村山洪地质灾害风险及群众转移)"}
    out: dict[str, tuple[str, str | None]] = {}
    wordings = {"default": ActivationMessages()} | {pid: loaded.model.messages for pid, loaded in LIB.of("plans").items()
                                                    if getattr(loaded.model, "messages", None) is not None}
    for who, says in wordings.items():
        for name, allowed in ActivationMessages.FIELDS.items():
            text = says.render(name, **{k: v for k, v in values.items() if k in allowed})
            out[f"activation/{who}/{name}"] = activation._fill(text, due=DUE, label="区消防救援大队", roles="抢险救灾组组长"), None
    for pid, loaded in LIB.of("plans").items():
        for task in loaded.model.tasks:
            text = ActivationMessages().render("notice", word="任务", id=f"T-{task.id}", prefix="工作组:", title=task.name_zh,
                                               text=task.text_zh)
            req = SimpleNamespace(text=text, due_at=DUE, roles={}, label=f"任务T-{task.id} {task.name_zh}", kind="notice")
            out[f"activation/task/{pid}/{task.id}"] = activation.render(send("notify", about=NAMES[2]), req, CODE, link)
    base = ActivationMessages().render("remind", id="D3", title="加密巡查东山村滑坡隐患点")
    for kind in ("notice", "overdue"):
        req = SimpleNamespace(text=base, due_at=DUE, roles={}, label="指令D3 加密巡查东山村滑坡隐患点", kind=kind)
        for purpose in PURPOSES:
            if purpose == "summary":
                continue
            wants = purpose in ("notify", "escalate")
            out[f"activation/{kind}/{purpose}"] = activation.render(send(purpose, about=NAMES[2]), req,
                                                                    CODE if wants else None, link if wants else None)
    return out


def review_texts(link: str) -> dict[str, tuple[str, str | None]]:
    out: dict[str, tuple[str, str | None]] = {}
    title = f"{INCIDENT}应急处置"
    for tid, loaded in LIB.of("review").items():
        t = loaded.model
        for purpose in ("request", "remind"):
            out[f"review/{tid}/{purpose}"] = review.request_text(t, purpose, title, "东山镇人民政府", DUE), None
        unit = SimpleNamespace(unit_id="330110002", name="东山镇人民政府", due_at=DUE)
        req = SimpleNamespace(record=SimpleNamespace(view=SimpleNamespace(title=title, units=[unit])),
                              unit_id="330110002", text_zh=t.overdue_zh)
        for purpose in PURPOSES:
            if purpose in ("update", "summary"):
                continue
            wants = purpose in ("notify", "escalate")
            out[f"review/{tid}/overdue/{purpose}"] = review.render_send(send(purpose), req, CODE if wants else None,
                                                                        link if wants else None)
    return out


def duty_texts(link: str, form: str, confirm: str) -> dict[str, tuple[str, str | None]]:
    questions = [q.model_dump() for q in LIB.duty().spotcheck.questions]
    contexts = {
        "handover": {"incoming": {"name": NAMES[0]}, "outgoing": {"name": NAMES[1]}, "due_at": DUE.isoformat(), "items": 5},
        "spotcheck": {"title": HEADLINE.format(event="暴雨", level="橙色"), "questions": questions},
        "followup": {"questions": questions, "followup": {
            "town_name": "东山镇", "about_name": NAMES[3], "failed": ["patrolled", "supplies"],
            "responsible_name": NAMES[4], "due_at": DUE.isoformat()}},
        "freshness": {"deadline": DUE.isoformat()},
        "readiness": {"view": {}},  # 每月调度: the team's name is the send's `about`
    }
    assert set(contexts) == set(get_args(Procedure)), "a duty procedure without a rendered text here"
    out: dict[str, tuple[str, str | None]] = {}
    for procedure, ctx in contexts.items():
        for purpose in PURPOSES:
            if purpose in ("update", "summary") or (procedure == "freshness" and purpose != "notify"):
                continue  # freshness only asks: it has no escalation, inform or cancel
            wants = purpose in ("notify", "escalate")
            the_link = {"spotcheck": form, "freshness": confirm}.get(procedure, link) if wants else None
            req = SimpleNamespace(procedure=procedure, context=ctx)
            out[f"duty/{procedure}/{purpose}"] = duty.render(req, send(purpose, about=NAMES[3]),
                                                             CODE if wants and procedure != "spotcheck" else None,
                                                             the_link)
            if procedure == "spotcheck" and purpose == "notify":
                out["duty/spotcheck/notify (voice)"] = duty.render(req, send(purpose, channel="voice"), None, None)
    from activities.readiness import summary_text
    out["duty/readiness/summary"] = summary_text({"total": 24, "ready": 20, "not_ready": 2, "no_answer": 2},
                                                 ["第1街道民兵应急分队", "西山镇抢险突击队"],
                                                 ["区急救中心救护队", "东山镇森林消防半专业队"]), None
    out["duty/followup/overdue"] = duty.render(SimpleNamespace(procedure="followup", context={
        **contexts["followup"], "overdue": True}), send("notify"), None, None)
    return out


def publication_texts() -> dict[str, tuple[str, str | None]]:
    """精准发布 below orange: every plan's publish section, each purpose, at each level it publishes, and the
    summary to those on duty (activities/publication.py)."""
    out: dict[str, tuple[str, str | None]] = {}
    for pid, loaded in LIB.of("callout").items():
        plan = loaded.model
        if plan.publish is None:
            continue
        event = (plan.events or ["大风"])[0]
        for level in (Level.blue, Level.yellow):
            if plan.publish.for_level(level) is None:
                continue
            w = WarningInfo(warning_id=WARNING_ID, identifier="QX-20260715-1000", level=level, event=event,
                            headline=HEADLINE.format(event=event, level=level.zh), area_descs=AREA)
            for purpose in ("publish", "update", "cancel"):
                for drill in (False, True):
                    inp = PublicationInput(publication_id=f"publication-{WARNING_ID}", warning=w, plan=plan,
                                           plan_version="1", purpose=purpose, drill=drill)
                    name = f"publication/{pid}/{level.value}/{purpose}" + (" (drill)" if drill else "")
                    out[name] = publication.render(inp), None
    row = Publication(id=f"publication-{WARNING_ID}", warning_id=WARNING_ID, plan_id="heavy_rain", plan_version="1",
                      level="yellow", title=HEADLINE.format(event="暴雨", level="黄色"), drill=False)
    out["publication/summary"] = publication.summary_text(row, {"persons": 128, "sent": 256, "delivered": 250,
                                                                "failed": 6, "rate": 250 / 256}), None
    return out


def relay_texts(link: str) -> dict[str, tuple[str, str | None]]:
    """到户到人: each plan's relay request, its escalation to the town head and the duty chief's notice
    (activities/relay.py), drill or not."""
    out: dict[str, tuple[str, str | None]] = {}
    for pid, loaded in LIB.of("callout").items():
        if loaded.model.relay is None:
            continue
        for drill in (False, True):
            text = relay.render(SimpleNamespace(relay=loaded.model.relay, drill=drill), {"t": "东山镇东山村"})
            for purpose in ("notify", "escalate", "inform"):
                wants = purpose in ("notify", "escalate")
                out[f"relay/{pid}/{purpose}" + (" (drill)" if drill else "")] = text(
                    send(purpose), None, link if wants else None)
    return out


def proposal_texts(link: str) -> dict[str, tuple[str, str | None]]:
    """响应建议: every plan's warning start condition, each purpose, each decision told (activities/proposal.py)."""
    out: dict[str, tuple[str, str | None]] = {}
    for pid, loaded in LIB.of("plans").items():
        for rule in loaded.model.on_warnings:
            event = rule.events[0]
            view = ProposalView(proposal_id=f"proposal-{WARNING_ID}-{pid}", plan_id=pid, plan_name=loaded.model.name_zh,
                                level=rule.response_level, leader=Contact(person_id=PERSON, name=NAMES[0], mobile="+8613900000000"),
                                warning=WarningRef(warning_id=WARNING_ID, level=rule.level.value, event=event,
                                                   headline=HEADLINE.format(event=event, level=rule.level.zh)))
            for purpose in ("notify", "escalate", "inform"):
                out[f"proposal/{pid}/{rule.response_level.value}/{purpose}"] = proposal.render(
                    view, send(purpose), link if purpose != "inform" else None)
            for status in ("accepted", "declined", "expired"):
                out[f"proposal/{pid}/{rule.response_level.value}/cancel ({status})"] = proposal.render(
                    view.model_copy(update={"status": status}), send("cancel"), None)
    return out


def all_texts(link: str, form: str, confirm: str) -> dict[str, tuple[str, str | None]]:
    return {**callout_texts(link), **publication_texts(), **relay_texts(link), **proposal_texts(link), **reporting_texts(link), **activation_texts(link),
            **review_texts(link),
            **duty_texts(link, form, confirm), "console/login_code": (login_code_text(LOGIN_CODE), None)}


SIGNED = dict(link=ack_link(), form=f"{BASE}/spotcheck/{make_form_token(KEY, 'spotcheck-' + WARNING_ID, PERSON)}",
            confirm=f"{BASE}/confirm/{make_confirm_token(KEY, 'freshness-2026-07', PERSON)}")
SHORT = dict(link=SHORT_LINK, form=SHORT_LINK, confirm=SHORT_LINK)
# Not here: the 信息报送 receipt, which carries the written report itself to those who must sign for it (its
# length is the report's).


def _table(texts: dict[str, tuple[str, str | None]]) -> str:
    width = max(len(k) for k in texts)
    rows = [f"{'template':<{width}}  chars  segments"]
    for name, (body, _) in texts.items():
        rows.append(f"{name:<{width}}  {len(body):>5}  {segments(body):>8}")
    return "\n".join(rows)


# ------------------------------------------------------------------ the checks


def test_segments_are_counted_as_carriers_count_them():
    assert [segments("预" * n) for n in (1, 70, 71, 134, 135, 201, 202)] == [1, 1, 2, 2, 3, 3, 4]
    assert segments("😀" * 35) == 1 and segments("😀" * 36) == 2  # beyond the BMP: two code units each


def ordinary(texts: dict[str, tuple[str, str | None]]) -> dict[str, tuple[str, str | None]]:
    """The texts whose ordinary case must fit: a plan's task notices are its own wording, of every length, so
    the task of median length stands for each plan (every task is in the table)."""
    out = {k: v for k, v in texts.items() if not k.startswith("activation/task/") and "(voice)" not in k}
    plans = {k.split("/")[2] for k in texts if k.startswith("activation/task/")}
    for plan in sorted(plans):
        tasks = sorted((v for k, v in texts.items() if k.startswith(f"activation/task/{plan}/")), key=lambda v: len(v[0]))
        out[f"activation/task/{plan} (median)"] = tasks[len(tasks) // 2]
    return out


def test_every_template_fits_two_segments():
    texts = all_texts(**SHORT)
    print("\n" + _table(texts))
    assert len(texts) > 150, "templates went missing"
    over = {k: (len(b), segments(b), b) for k, (b, _) in ordinary(texts).items() if segments(b) > 2}
    assert not over, over


def test_texts_are_chinese_only_and_the_drill_marker_is_new():
    """No English tail anywhere (English only in the "(en)" variants a person with language "en" receives);
    voice texts Chinese; every drill text starts with 【演练】, never with the old [演练]."""
    latin = re.compile(r"[A-Za-z]{2,}[ ,.;:/]+[A-Za-z]{2,}")  # English words; an id like T-patrol is not English
    for name, (body, voice) in all_texts(**SHORT).items():
        plain = body.replace(SHORT_LINK, "")
        if "(en)" not in name:
            assert not latin.search(plain), (name, body)
        assert voice is None or not latin.search(voice), (name, voice)
        assert "[演练]" not in body and (voice is None or "[演练]" not in voice), (name, body)
        if name.startswith("drill/") or "(drill)" in name:
            assert body.startswith(DRILL_MARK) and body.count(DRILL_MARK) == 1, (name, body)
            assert voice is None or voice.startswith(DRILL_MARK), (name, voice)


def test_english_readers_get_the_plans_english_wording():
    texts = callout_texts(SHORT_LINK)
    zh, _ = texts["callout/heavy_rain/notify"]
    en, voice = texts["callout/heavy_rain/notify (en)"]
    assert zh.startswith("【叫应】青溪区气象台") and CODE in zh and SHORT_LINK in zh
    assert en.startswith("Alert: 青溪区气象台") and "Reply 1" in en and CODE in en and SHORT_LINK in en
    assert voice.startswith("这里是区应急管理局值班室")  # voice stays Chinese
    # a text the definitions give no English for is Chinese for everyone
    w = WarningInfo(warning_id="w", identifier="w", level=Level.red, event="暴雨", headline="", area_descs=[])
    req = SimpleNamespace(warning=w, plan=LIB.of("callout")["heavy_rain"].model, drill=False)
    for purpose in ("escalate", "inform", "cancel", "update"):
        assert (callout.render(send(purpose), req, SHORT_LINK, CODE, english=True)
                == callout.render(send(purpose), req, SHORT_LINK, CODE)), purpose
    assert "暴雨红色预警" in callout.render(send("notify"), req, SHORT_LINK, CODE)[0]  # no headline: event and level


def test_signed_links_would_not_fit():
    """Why texts carry short aliases: with the signed links themselves, most texts that ask for an answer would
    take three or four segments."""
    assert len(SHORT_LINK) == len(BASE) + 15 and min(len(v) for v in SIGNED.values()) > 140
    texts = ordinary(all_texts(**SIGNED))
    print("\n" + _table(texts))
    assert sum(1 for b, _ in texts.values() if segments(b) > 2) > 30


def test_a_persons_language_in_the_directory_chooses_the_text(db_url):
    """The call-out's flush reads each recipient's language: "en" gets the plan's English notice, everyone else
    (and every voice call, and any text the plan gives no English for) Chinese."""
    import httpx

    from config import get_settings
    from store.db import session_scope
    from store.directory import Person
    from store.links import resolve_short
    from workflows.callout import FlushRequest

    with session_scope() as s:
        s.add(Person(id="en1", name="Anna Weber", mobile="+8613900000001", language="en"))
        s.add(Person(id="zh1", name="张建国", mobile="+8613900000002"))
    w = WarningInfo(warning_id=WARNING_ID, identifier="x", level=Level.orange, event="暴雨",
                    headline=HEADLINE.format(event="暴雨", level="橙色"), area_descs=AREA)

    def one(pid: str, channel: str, purpose: str) -> Send:
        return Send(key=f"k/{pid}/{channel}/{purpose}", target_key="t", person_id=pid, to="+8613900000001",
                    channel=channel, purpose=purpose, about="东山镇 防汛责任人")

    req = FlushRequest(callout_id=f"callout-{WARNING_ID}", workflow_id=f"callout-{WARNING_ID}", run_id="r",
                       plan=LIB.of("callout")["heavy_rain"].model, warning=w,
                       sends=[one("en1", "sms", "notify"), one("zh1", "sms", "notify"), one("en1", "voice", "notify"),
                              one("en1", "sms", "escalate")])
    got = {d.key: d for d in callout._deliveries(req)}
    en, zh = got["k/en1/sms/notify"], got["k/zh1/sms/notify"]
    assert en.body.startswith("Alert: 青溪区气象台") and en.reply_code in en.body
    assert zh.body.startswith("【叫应】青溪区气象台")
    for d in (en, zh):  # the text carries the short alias of the signed link, which the outbox keeps as ack_url
        alias = re.search(r"http://\S+/a/[A-Za-z0-9_-]{12}$", d.body).group(0)
        assert "/ack/" in d.ack_url and d.ack_url not in d.body and segments(d.body) <= 2
        with session_scope() as s:
            assert resolve_short(s, get_settings().signing_key(), alias.rsplit("/", 1)[1]) == httpx.URL(d.ack_url).path
    assert got["k/en1/voice/notify"].voice_text.startswith("这里是区应急管理局值班室")
    assert got["k/en1/sms/escalate"].body.startswith("【升级】东山镇 防汛责任人未应答")
