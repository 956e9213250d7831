"""What people read in Chinese: every audit event kind named (store/replay/labels.py), payloads in words with
names instead of ids, a refusal in the page's language, local dates in incident ids and case-file names."""
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


def test_a_refusal_shows_in_the_pages_language():
    from api.console.pages import in_language

    both = "管理员不能登记口头报告;可由:值班长办理 / role 'admin' may not verbal here; allowed: duty_chief"
    assert in_language(both, "zh") == "管理员不能登记口头报告;可由:值班长办理"
    assert in_language(both, "en") == "role 'admin' may not verbal here; allowed: duty_chief"
    assert in_language("no incident 'X' / 无此事件", "zh") == "no incident 'X' / 无此事件"  # not zh first: as it is
    assert in_language("date: 2026 / 12", "zh") == "date: 2026 / 12"
    labelled = "书面报告第1版待审核 / 书面报告 v1 is with the reviewer"  # the English may name things in Chinese
    assert in_language(labelled, "zh") == "书面报告第1版待审核"


def test_incident_ids_and_case_files_carry_the_local_date():
    from datetime import UTC, datetime

    from api.services.incidents import new_incident_id
    from store.casefile import filename_for

    late_at_night = datetime(2026, 12, 4, 17, 30, tzinfo=UTC)  # 01:30 on the 5th in Beijing
    assert new_incident_id(late_at_night, "Asia/Shanghai").startswith("INC-20261205-")
    assert filename_for("INC-1", late_at_night, "Asia/Shanghai") == "casefile-INC-1-20261205-013000.zip"
