"""The handover note lists what is open at the change, responses and reviews included."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.duty import handover_items
from store.activations import Activation, ActivationItem
from store.db import session_scope
from store.review import Review, ReviewUnit


def test_open_responses_their_items_and_reviews_are_in_the_note(db_url):
    at = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    with session_scope() as s:
        s.add(Activation(id="INC-1-flood_control", workflow_id="activation-INC-1-flood_control", incident_id="INC-1",
                         plan_id="flood_control", plan_version="v", plan_name="防汛应急预案", level="III", reason="r",
                         activated_by="chief", activated_at=at - timedelta(hours=3), view={"level_name": "Ⅲ级"}))
        s.add(Activation(id="INC-0-flood_control", workflow_id="w0", incident_id="INC-0", plan_id="flood_control",
                         plan_version="v", plan_name="已终止的预案", level="IV", reason="r", activated_by="chief",
                         activated_at=at - timedelta(days=2), status="terminated"))
        s.flush()
        s.add(ActivationItem(activation_id="INC-1-flood_control", item_id="D1", kind="directive", title="转移群众",
                             assignee="第1街道", due_at=at - timedelta(minutes=5), state="acknowledged"))
        s.add(ActivationItem(activation_id="INC-1-flood_control", item_id="T1", kind="task", title="已办结的任务",
                             assignee="水务局", due_at=at + timedelta(hours=1), state="accepted"))
        s.add(Review(incident_id="INC-2", workflow_id="review-INC-2", subject="review/INC-2", title="山洪复盘",
                     started_at=at - timedelta(days=1)))
        s.flush()
        s.add(ReviewUnit(incident_id="INC-2", unit_id="D01", requested_at=at - timedelta(days=1),
                         due_at=at + timedelta(days=6)))
    with session_scope(write=False) as s:
        items = handover_items(s, at)
    texts = [i.text for i in items]
    assert any("应急响应中:防汛应急预案Ⅲ级" in t for t in texts)
    assert not any("已终止的预案" in t for t in texts)
    directive = next(i for i in items if i.ref == "INC-1-flood_control/D1")
    assert directive.kind == "deadline" and "转移群众" in directive.text and "已超时" in directive.text
    assert not any("已办结的任务" in t for t in texts)
    review = next(i for i in items if i.ref == "review/INC-2")
    assert "待交总结1份" in review.text and review.due_at == at + timedelta(days=6)
