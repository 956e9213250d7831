"""A warning's age (api/services/staleness.py): old after the set hours, expired when `expires` passed, in words."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.services.staleness import age_words, expired_refusal, freshness

NOW = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


def test_old_and_expired():
    fresh = freshness(NOW - timedelta(hours=1), None, NOW, 6)
    assert (fresh.old, fresh.expired, fresh.stale, fresh.age_s) == (False, False, False, 3600)
    old = freshness(NOW - timedelta(hours=7), None, NOW, 6)
    assert old.old and not old.expired and old.stale
    expired = freshness(NOW - timedelta(hours=2), NOW - timedelta(minutes=1), NOW, 6)
    assert expired.expired and not expired.old and expired.stale
    naive = freshness(datetime(2026, 12, 4, 15, 0), None, NOW, 6)  # a JSON time without a zone: UTC
    assert naive.age_s == 3600
    unknown = freshness(None, None, NOW, 6)
    assert unknown.age_s is None and not unknown.stale
    assert freshness(NOW, NOW + timedelta(hours=1), NOW, 6).payload()["expires"] == "2026-12-04T17:00:00+00:00"


def test_age_in_words():
    assert age_words(157 * 86400 + 3600) == "5个月7天前"
    assert age_words(2 * 3600 + 15 * 60) == "2小时15分钟前"
    assert age_words(30) == "不到1分钟前"
    assert age_words(None) == "发布时间不详"
    assert age_words(3 * 86400, "en") == "3 days ago"
    assert age_words(-3600, "en") == "in 1 hour"


def test_the_refusal_names_sent_and_expires_in_local_time():
    text = expired_refusal(freshness(NOW - timedelta(days=1), NOW - timedelta(hours=1), NOW, 6), "Asia/Shanghai")
    assert "发布时间 2026-12-04 00:00" in text and "失效时间 2026-12-04 23:00" in text and "accept_stale" in text
