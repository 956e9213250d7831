"""Every audit event kind has a Chinese name for the replay and the case file (store/replay/labels.py), and a
payload reads as words with names instead of ids."""
from __future__ import annotations

from store.replay.labels import event_name, summary, unnamed_kinds


def test_every_registered_kind_has_a_chinese_name():
    assert unnamed_kinds() == []
    assert event_name("callout.ack") == "叫应·应答"
    assert event_name("activation.reinforcement.request.escalated") == "增援请求·升级"
    assert event_name("report.written.omitted") == "书面报告漏报"
    assert event_name("callout.ack", "en") == "callout · ack"
    assert event_name("some.old.kind") == "some.old.kind"  # read back as written


def test_a_payload_in_words():
    names = {"p-1": "张三", "D01": "区应急管理局"}.get
    line = summary({"person_id": "p-1", "unit_id": "D01", "channel": "sms", "status": "no_answer", "late_by_s": 600,
                    "decision": "approve", "internal": {"x": 1}},
                   lambda v: names(v, v), lambda v: "12-04 08:00", {"sms": "短信"}, {"no_answer": "无人接听"}, {})
    assert line == "人员: 张三;单位: 区应急管理局;渠道: 短信;状态: 无人接听;决定: 同意;超时: 10分钟"


def test_replayed_episode_groups_in_words():
    from store.replay.labels import tier_name

    assert tier_name("activation", "convene/0", {}) == "指挥部召集"
    assert tier_name("activation", "notice/T-patrol", {"T-patrol": "巡堤查险"}) == "响应通知·巡堤查险"
    assert tier_name("reporting", "escalation/verbal", {}) == "报送催报"
