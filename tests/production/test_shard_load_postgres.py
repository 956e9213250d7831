"""A shard's load on PostgreSQL reads the shard's own targets, not the whole call-out's (migration 0027).

With only the index on callout_id, each of a 100,000-person call-out's 200 shards read all 100,000 rows to keep its
500 (132 ms a shard, 26 s of PostgreSQL in a run: issue 25). Here 20,000 targets in 40 shards, never analyzed (a
call-out's shards load seconds after its targets are written) and analyzed: the plan reads 500 rows, none filtered.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from activities.callout import shard_specs
from store.db import get_engine, session_scope
from tests.factories import unanalyzed_targets


@pytest.mark.parametrize("analyzed", [False, True])
def test_a_shard_reads_its_own_rows_only(db_url: str, analyzed: bool) -> None:
    with session_scope() as s:
        unanalyzed_targets(s, "CO-shards", 20000, shards=40)
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
