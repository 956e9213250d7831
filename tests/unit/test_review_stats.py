"""Statistics of the event report, computed from audit events alone (store/review/), and the report rendered."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store.replay import Row
from tests.activation_trail import CMD_III, SUBJECT, at, trail
from store.report import canonical_json, cjk_font_available, render
from store.review import activation_stats, callout_stats, durations, reporting_stats, statistics, timeline

T0 = datetime(2026, 7, 1, 3, 10, tzinfo=UTC)


class Events:
    def __init__(self, workflow: str) -> None:
        self.rows: list[Row] = []
        self.workflow = workflow

    def add(self, kind: str, minutes: float, step: str, channel: str | None = None, actor: str = "system",
            workflow: str | None = None, **payload) -> None:
        self.rows.append(Row(len(self.rows) + 1, kind, T0 + timedelta(minutes=minutes), actor, channel, step,
                             workflow or self.workflow, payload))


def callout() -> list[Row]:
    """Four targets: A answers the text after 2 min, B the voice call after 12 min, C (text failed) is
    escalated to the deputy and is unreachable, D was resolved but never sent to (pending)."""
    e = Events("callout-x/shard-0")
    e.add("callout.started", 0, "started", workflow="callout-x", level="orange")
    e.add("callout.plan_chosen", 0, "plan", workflow="callout-x", plan="heavy_rain", version="v1", category="heavy_rain")
    e.add("callout.targets_resolved", 0.1, "resolve/0", workflow="callout-x",
          per_tier={"departments": 1, "towns": 1, "villages": 2})
    a, b, c = "departments/1", "towns/2", "villages/3"
    for t, p in ((a, "pA"), (b, "pB"), (c, "pC")):
        e.add("callout.sent", 0.2, f"send/{t}/0.0/{p}/sms", "sms", target=t, person_id=p, purpose="notify", status="sent")
    e.add("callout.sent", 0.2, f"send/{a}/0.0/pA/im", "im", target=a, person_id="pA", purpose="notify", status="sent")
    e.add("callout.delivery", 0.3, "delivery/c", target=c, person_id="pC", state="notified",
          send=f"callout-x/shard-0/{c}/0.0/pC/sms", status="undelivered")
    e.add("callout.ack", 2.2, f"{a}/ack", "sms", "pA", target=a, person_id="pA", state="acknowledged")
    e.add("callout.sent", 10.2, f"send/{b}/2.0/pB/voice", "voice", target=b, person_id="pB", purpose="notify",
          status="sent")
    e.add("callout.ack", 12.2, f"{b}/ack", "voice", "pB", target=b, person_id="pB", state="acknowledged")
    e.add("callout.updated", 15, "update/u1", workflow="callout-x", from_level="orange", to_level="red")
    e.add("callout.escalated", 20, f"{c}/escalated", target=c, person_id="dC", state="escalated", to="deputy")
    e.add("callout.sent", 20, f"send/{c}/4.0/dC/voice", "voice", target=c, person_id="dC", purpose="escalate",
          status="sent")
    e.add("callout.delivery", 21, "delivery/c2", target=c, person_id="pC", state="escalated",
          send=f"callout-x/shard-0/{c}/4.0/dC/voice", status="no_answer")
    e.add("callout.unreachable", 30, f"{c}/unreachable", target=c, person_id="pC", state="unreachable")
    e.add("callout.ended", 31, "ended", workflow="callout-x", status="completed")
    return e.rows


def reporting() -> list[Row]:
    """Verbal report 10 min late; written report on time; 续报一 never made, overdue; two receipts, one confirmed."""
    e = Events("incident-INC-1")
    e.add("incident.received", 0, "received", "", "p-cadre", title="脚手架坍塌", severity="IV",
          deadlines={"verbal": (T0 + timedelta(minutes=30)).isoformat(), "written": (T0 + timedelta(hours=1)).isoformat()})
    e.add("report.verbal.made", 40, "verbal", actor="p-cadre", to_whom="区政府总值班室", on_time=False)
    e.add("report.verbal.late", 40, "deadline/verbal/late", actor="p-cadre", deadline="verbal", label="口头报告",
          late_by_s=600, late_by_min=10, due_at=(T0 + timedelta(minutes=30)).isoformat(), mark="迟报10分钟")
    e.add("report.written.submitted", 55, "report/0/submitted", actor="p-cadre", seq=0, label="书面报告",
          approved_by="p-leader", on_time=True)
    for rid in ("committee_office", "government_office"):
        e.add("report.receipt.sent", 55, f"send/receipts/0/rcpt/{rid}/0.0/rcpt:{rid}/sms", "sms", episode="receipts/0",
              target=f"rcpt/{rid}", purpose="notify", status="failed" if rid == "government_office" else "sent")
    e.add("report.receipt.ack", 58, "receipts/0/ack", "sms", episode="receipts/0", target="rcpt/committee_office",
          state="acknowledged")
    e.add("report.followup.overdue", 60 * 25, "deadline/followup_1/overdue", deadline="followup_1", label="续报一",
          due_at=(T0 + timedelta(minutes=55, hours=24)).isoformat())
    e.add("report.escalation.escalated", 60 * 25 + 10, "overdue/followup_1/x", target="overdue", state="escalated")
    return e.rows


def activation() -> list[Row]:
    """A plan activation's trail as the workflow writes it (tests/activation_trail.py)."""
    return trail()


def test_callout_figures_match_a_direct_count():
    rows = callout()
    st = callout_stats("callout-x", rows)
    acked = {r.payload["target"] for r in rows if r.kind == "callout.ack"}
    assert st["acknowledged"] == len(acked) == 2
    assert st["targets"] == 4  # D was resolved, never sent to: still a target
    assert st["ack_rate"] == 0.5
    assert st["per_tier"]["departments"]["time_to_ack"]["median_s"] == 120.0
    assert st["per_tier"]["towns"]["time_to_ack"]["median_s"] == 720.0
    assert st["per_tier"]["villages"] == {**st["per_tier"]["villages"], "targets": 2, "acknowledged": 0,
                                          "unreachable": 1, "escalated": 1}
    assert st["unreachable"] == [{"target": "villages/3", "tier": "villages", "person_id": "pC"}]
    assert st["per_ack_channel"]["sms"]["n"] == 1 and st["per_ack_channel"]["voice"]["median_s"] == 720.0
    # sends: sms 3 (1 undelivered), im 1, voice 2 (1 no answer)
    assert st["channels"] == {"im": {"sends": 1, "failed": 0, "failure_rate": 0.0},
                              "sms": {"sends": 3, "failed": 1, "failure_rate": 0.3333},
                              "voice": {"sends": 2, "failed": 1, "failure_rate": 0.5}}
    assert st["escalations"] == 1 and st["level"] == "red"
    assert st["level_changes"] == [{"at": (T0 + timedelta(minutes=15)).isoformat(), "from": "orange", "to": "red"}]


def test_reporting_compliance_from_the_events():
    st = reporting_stats("INC-1", reporting())
    by = {d["key"]: d for d in st["deadlines"]}
    assert by["verbal"]["state"] == "late" and by["verbal"]["late_by_s"] == 600 and by["verbal"]["late_by_min"] == 10
    assert by["written"]["state"] == "on_time" and by["written"]["late_by_s"] is None
    assert by["followup_1"]["state"] == "overdue" and by["followup_1"]["label"] == "续报一"
    assert st["compliance"] == {"deadlines": 3, "on_time": 1, "late": 1, "omitted": 0, "overdue": 1, "open": 0,
                                "on_time_rate": 0.3333}
    assert st["receipts"] == {"asked": 2, "confirmed": 1}
    assert st["escalations"] == 1
    assert st["channels"]["sms"] == {"sends": 2, "failed": 1, "failure_rate": 0.5}


def test_activation_levels_tasks_directives():
    st = activation_stats(SUBJECT, activation())
    assert st["plan"] == "flood_control" and st["plan_name"] == "青溪区防汛应急预案"
    assert [(lv["from"], lv["to"], lv["direction"]) for lv in st["levels"]] == [(None, "IV", None), ("IV", "III", "up")]
    assert [(lv["at"], lv["by"], lv["reason"]) for lv in st["level_changes"]] == [(at(40).isoformat(), CMD_III, "险情扩大")]
    assert [lv["duration_s"] for lv in st["levels"]] == [40 * 60, 50 * 60]  # Ⅳ级 40 min, Ⅲ级 until terminated
    assert st["terminated_at"] == at(90).isoformat() and st["terminated_by"] == CMD_III and st["level"] == "III"
    tasks = {t["id"]: t for t in st["tasks"]["items"]}
    # reported done 20 min after its limit, accepted: late as the workflow measured it (its .late event)
    assert tasks["T-patrol"]["state"] == "late" and tasks["T-patrol"]["late_by_s"] == 1200
    assert tasks["T-patrol"]["done_at"] == at(50).isoformat() and tasks["T-patrol"]["escalations"] == 1
    assert tasks["T-stock"]["state"] == "on_time" and tasks["T-stock"]["done_at"] == at(45).isoformat()  # no feedback
    assert tasks["T-road"]["state"] == "closed" and tasks["T-road"]["done_at"] is None  # closed by the termination
    assert {k: st["tasks"][k] for k in ("total", "on_time", "late", "overdue", "closed", "completed")} == \
        {"total": 3, "on_time": 1, "late": 1, "overdue": 0, "closed": 1, "completed": 2}
    assert st["tasks"]["completion_rate"] == 0.6667 and st["tasks"]["on_time_rate"] == 0.3333
    [d1] = st["directives"]["items"]
    assert d1["state"] == "late" and d1["late_by_s"] == 300 and d1["returns"] == 1 and d1["done_at"] == at(25).isoformat()
    assert d1["escalations"] == 0 and st["directives"]["late"] == 1
    assert st["escalations"] == sum(1 for r in activation() if r.kind.endswith(".escalated")) == 1
    assert st["reinforcements"] == {"total": 1, "on_time": 1, "late": 0, "overdue": 0, "open": 0, "closed": 0}
    assert st["channels"] == {"sms": {"sends": 4, "failed": 0, "failure_rate": 0.0},
                              "voice": {"sends": 2, "failed": 0, "failure_rate": 0.0}}


def test_activation_items_overdue_when_closed_past_their_limit():
    rows = [r for r in activation() if not (r.kind.startswith("activation.task.") and r.payload.get("item") == "T-patrol"
                                            and r.kind.rsplit(".", 1)[1] in ("feedback", "accepted", "late"))]
    rows.append(rows[-1]._replace(seq=99, kind="activation.task.closed", step_id="item/T-patrol/closed",
                                  payload={"item": "T-patrol", "title": "巡堤查险", "reason": "响应终止"}))
    st = activation_stats(SUBJECT, rows)
    tasks = {t["id"]: t for t in st["tasks"]["items"]}
    assert tasks["T-patrol"]["state"] == "overdue" and st["tasks"]["overdue"] == 1 and st["tasks"]["completed"] == 1


def test_statistics_of_a_case_without_activation_report_none():
    st = statistics({"callout-x": callout(), "INC-1": reporting()})
    assert st["activations"] == []
    assert st["channels"]["sms"] == {"sends": 5, "failed": 2, "failure_rate": 0.4}
    assert st["escalations"] == {"total": 2, "by_subject": {"callout-x": 1, "INC-1": 1}}
    with_act = statistics({"callout-x": callout(), "INC-1": reporting(), SUBJECT: activation()})
    assert len(with_act["activations"]) == 1 and with_act["escalations"]["total"] == 3
    assert with_act["channels"]["voice"] == {"sends": 4, "failed": 1, "failure_rate": 0.25}


def test_durations():
    assert durations([]) == {"n": 0, "median_s": None, "p90_s": None, "max_s": None}
    assert durations(range(1, 11)) == {"n": 10, "median_s": 5.5, "p90_s": 9, "max_s": 10}


def test_timeline_keeps_the_significant_events_in_order():
    tl = timeline({"callout-x": callout(), "INC-1": reporting(), SUBJECT: activation()})
    texts = [t["text"] for t in tl]
    assert {"启动叫应(橙色预警)", "接报:脚手架坍塌(来源—)"} <= set(texts)
    assert "启动Ⅳ级应急响应(青溪区防汛应急预案)" in texts
    assert "口头报告迟报10分钟" in texts and "响应提升:由Ⅳ级调整为Ⅲ级(险情扩大)" in texts
    assert "终止应急响应(险情解除)" in texts and "响应终止,启动复盘总结" in texts
    assert "指令D1完成反馈被退回:缺照片" in texts and "指令D1超过时限未完成,督办:加密巡查" in texts
    assert "指令D1逾期5分钟办结:加密巡查" in texts and "任务T-patrol办结:巡堤查险" in texts
    assert any(t.startswith("任务T-road下达:积水路段交通管制(时限") for t in texts)
    assert [t["at"] for t in tl] == sorted(t["at"] for t in tl)
    assert not any("sent" in t["kind"] for t in tl)  # the many sends are counted, not listed


def _data() -> dict:
    st = statistics({"callout-x": callout(), "INC-1": reporting(), SUBJECT: activation()})
    return {"incident_id": "INC-1", "title": "第1街道脚手架坍塌", "version": 2, "final": True,
            "compiled_at": T0.isoformat(), "activation_id": "A1", "incident": {"title": "第1街道脚手架坍塌",
                                                                              "received_at": T0.isoformat()},
            "timeline": timeline({"INC-1": reporting()}), "statistics": st,
            "units": [{"unit_id": "D01", "name": "区应急管理局", "due_at": T0.isoformat(), "submitted_at": T0.isoformat(),
                       "late_by_s": 7200, "late_text": "2小时",
                       "summary": {"what_worked": "叫应及时", "shortcomings": "村级回执慢", "suggestions": "增加语音",
                                   "author": "张三"}},
                      {"unit_id": "330110001", "name": "第1街道", "due_at": T0.isoformat(), "summary": None}],
            "lessons": {"shortcomings": [{"unit": "区应急管理局", "text": "村级回执慢"}], "suggestions": []},
            "signoff": {"by": "p-leader", "by_name": "副区长丙", "at": T0.isoformat(), "version": 1,
                        "lessons": "夜间叫应先打电话", "comments": ""},
            "returns": [], "names": {CMD_III: "副区长乙"}}


def test_report_html_has_the_statistics_the_summaries_and_the_signature():
    text, html, pdf = render(_data(), pdf=False)
    assert pdf is None
    for words in ("应答2人,应答率50.0%", "25.0%(1/4)", "迟报 10分钟", "区应急管理局", "村级回执慢", "迟交2小时", "未报送",
                  "带班领导 副区长丙", "夜间叫应先打电话", "<svg", "响应等级变化", "<td>Ⅲ级</td><td>Ⅳ级</td><td>副区长乙</td>",
                  "逾期办结(20分钟)", "未完成即关闭", "完成率66.7%", "增援请求1次(按时答复1次"):
        assert words in html, words
    assert "<script" not in html and "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert canonical_json(_data()) == text


@pytest.mark.skipif(not cjk_font_available(), reason="no CJK font (Debian: fonts-noto-cjk)")
def test_report_pdf_embeds_a_cjk_font():
    import re

    from weasyprint import HTML

    _, html, pdf = render(_data())
    assert pdf is not None and pdf.startswith(b"%PDF-") and len(pdf) > 20_000
    plain = HTML(string=html).write_pdf(uncompressed_pdf=True)
    fonts = set(re.findall(rb"/BaseFont\s*/[A-Z]{6}\+([A-Za-z0-9_-]+)", plain))
    assert any(b"CJK" in f for f in fonts), fonts  # Chinese is drawn with a CJK font, not as boxes


def test_timeline_names_people_not_ids():
    texts = [t["text"] for t in timeline({"INC-1": reporting()}, names={"p-leader": "副区长丙"})]
    assert any("审核签发:副区长丙" in t for t in texts)
    assert not any("p-leader" in t for t in texts)
