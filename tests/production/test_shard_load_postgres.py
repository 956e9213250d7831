"""A shard's load on PostgreSQL reads the shard's own targets, not the whole call-out's (migration 0027).

With only the index on callout_id, each of a 100,000-person call-out's 200 shards read all 100,000 rows to keep its
500 (132 ms a shard, 26 s of PostgreSQL in a run: issue 25). Here 20,000 targets in 40 shards, never analyzed (a
call-out's shards load seconds after its targets are written) and analyzed: the plan reads 500 rows, none filtered.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from activities.callout import shard_specs
from store.callouts import Callout
from store.db import get_engine, session_scope


@pytest.mark.parametrize("analyzed", [False, True])
def test_a_shard_reads_its_own_rows_only(db_url: str, analyzed: bool) -> None:
    with session_scope() as s:
        s.execute(text("ALTER TABLE callout_target SET (autovacuum_enabled = false)"))
        s.add(Callout(id="CO-shards", plan_id="p", plan_version="1", level="red", category="heavy_rain"))
        s.flush()
        s.execute(text("INSERT INTO callout_target (callout_id, target_key, shard, tier, position_code, org_unit_id, "
                       "person_id, name, state, attempts, ack_late, escalated_to, spec, updated_at) SELECT 'CO-shards', "
                       "'t/' || g, g % 40, 'v', 'x', 'u', 'p' || g, '', 'pending', '[]', false, '[]', '{}', now() "
                       "FROM generate_series(1, 20000) g"))
    if analyzed:
        with get_engine(write=True).connect() as conn:
            conn.execute(text("ANALYZE callout_target"))
            conn.commit()
    query = shard_specs("CO-shards", 7)
    sql = str(query.compile(get_engine(), compile_kwargs={"literal_binds": True}))
    with session_scope(write=False) as s:
        plan = "\n".join(r[0] for r in s.execute(text("EXPLAIN (ANALYZE) " + sql)))
        assert len(s.execute(query).all()) == 500
    assert "Rows Removed by Filter" not in plan and "Seq Scan" not in plan, plan
