"""Migration 0026 moves the answers 0025 kept on their targets' rows (callout_target.answered_at) into rows of their
own (callout_answer) and drops the column: an answer shown before the upgrade is still shown after it."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect, text

from store.db import dispose_all, get_engine, migrate

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def upgrade_keeps_the_answers(url: str) -> None:
    migrate(url, to="0025_callout_target_answered")  # (and its ancestors only: other branches come with the head)
    with get_engine(url, write=True).begin() as c:
        c.execute(text("INSERT INTO callout (id, plan_id, plan_version, level, category, title, drill, status, "
                       "started_at) VALUES ('CO-m', 'p', '1', 'orange', 'heavy_rain', '', false, 'running', :at)"),
                  {"at": AT})
        for i, answered in enumerate((AT, None)):
            c.execute(text("INSERT INTO callout_target (callout_id, target_key, shard, tier, position_code, "
                           "org_unit_id, person_id, name, state, attempts, escalated_to, spec, updated_at, answered_at) "
                           "VALUES ('CO-m', :k, 0, 'villages', 'x', 'v', :p, '', 'notified', '[]', '[]', '{}', :at, "
                           ":answered)"), {"k": f"villages/p{i}", "p": f"p{i}", "at": AT,
                                                             "answered": answered})
    migrate(url)
    engine = get_engine(url)
    assert "answered_at" not in {c["name"] for c in inspect(engine).get_columns("callout_target")}
    with engine.connect() as c:
        rows = c.execute(text("SELECT a.callout_id, t.person_id, a.person_id, a.received_at FROM callout_answer a "
                              "JOIN callout_target t ON t.id = a.target_id")).all()
    assert [(cid, target, who) for cid, target, who, _ in rows] == [("CO-m", "p0", "p0")]
    assert datetime.fromisoformat(str(rows[0][3])).replace(tzinfo=UTC) == AT
    dispose_all()


def test_the_answers_on_targets_move_to_rows_of_their_own(tmp_path):
    upgrade_keeps_the_answers(f"sqlite:///{tmp_path / 'm.db'}")
