"""Bulk insert benchmark on PostgreSQL: a shard flush's batch of audit events, and of outbox rows, written as
SQLAlchemy's batched `INSERT … VALUES … RETURNING`, as one JSON document taken apart a column at a time (`e->>'col'`,
store/bulk.py before `44becc8`), and as `store.bulk.insert_returning` (one JSON document as a record set).

A throwaway PostgreSQL cluster (tests/pg.py, Debian's `postgresql`) gets yingji's schema; each way writes the same
batches of rows (the columns `store.audit.append` and the outbox's claim write), one transaction per batch,
alternately. The table gives this process's CPU per batch (what the worker pays on the path of every send) and the
wall time (the server's share included: on this machine it runs on the same cores).

Run: `.venv/bin/python bench/bulk_insert.py [--batches 20] [--sizes 100,500,2000] [--tables audit,outbox]`.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402


def audit_rows(n: int) -> list[dict]:
    subject = f"callout-{uuid.uuid4().hex[:8]}"
    return [{"event_id": f"{subject}/{i}", "subject": subject, "chain": subject, "chain_seq": i + 1,
             "workflow_id": subject, "run_id": None, "step_id": f"send/r{i}/sms", "kind": "callout.sent",
             "actor": "system", "channel": "sms", "at": datetime.now(UTC),
             "payload": {"target": f"r{i}", "person_id": f"r{i}", "status": "sent", "to": "+86138****0000",
                         "text": "【应急】暴雨橙色预警，请回复1确认"},
             "prev_hash": "0" * 64, "hash": "f" * 64} for i in range(n)]


def outbox_rows(n: int) -> list[dict]:
    subject = f"callout-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    return [{"idempotency_key": f"{subject}/shard-1/notify/r{i}/sms", "gateway": "simulator", "channel": "sms",
             "to": f"+86138{i:08d}", "person_id": f"r{i}", "subject": subject, "workflow_id": f"{subject}/shard-1",
             "reply_code": f"{i % 10000:04d}", "body": "【叫应】暴雨橙色预警:全区将出现强降水,请立即落实防御措施。回复1或"
             f"{i % 10000:04d}确认,或点击 http://127.0.0.1:8000/s/Ab3dE{i}", "ack_url": f"http://127.0.0.1:8000/ack/{'x' * 80}{i}",
             "drill": False, "priority": 100, "status": "sending", "provider_id": None, "error": None, "created_at": now,
             "sent_at": None, "updated_at": None, "claim_by": f"{subject}/shard-1/run/act-5", "claim_attempt": 1,
             "gateway_at": None, "meta": {"target_key": f"town-3/post-{i}", "purpose": "notify", "kind": "callout.notify",
                                          "vars": {"event": "暴雨", "level": "橙色", "headline": "区气象台发布暴雨橙色预警",
                                                   "area": "全区", "name": ""}}} for i in range(n)]


@functools.cache
def per_column(table, names: tuple[str, ...], key: str, dialect):
    """The statement store/bulk.py used before `44becc8`: each column taken from the row's JSON with `->>`, which
    parses a `json` value's text again from its start for every column. Made once per table, as store/bulk.py makes
    its own: the batches time the statement, not building its text."""
    from sqlalchemy import JSON, text

    quote = dialect.identifier_preparer.quote
    values = [f"CAST(e->{'' if isinstance(table.c[n].type, JSON) else '>'}'{n}' AS {table.c[n].type.compile(dialect=dialect)})"
              for n in names]
    return text(f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(quote(n) for n in names)}) "
                f"SELECT {', '.join(values)} FROM json_array_elements(CAST(:rows AS JSON)) WITH ORDINALITY AS u(e, ord) "
                f"ORDER BY ord RETURNING {quote(key)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--sizes", default="100,500,2000")
    ap.add_argument("--tables", default="audit,outbox", help="audit, outbox or both (comma-separated)")
    args = ap.parse_args()
    from rich.console import Console
    from rich.table import Table

    from tests.pg import PgCluster, pg_bindir

    if pg_bindir() is None:
        sys.exit("PostgreSQL is not installed (make test installs Debian's postgresql)")
    cluster = PgCluster().start()
    try:
        os.environ["YINGJI_DATABASE_URL"] = cluster.create_database()
        from store.audit import AuditEvent
        from store.bulk import _document, insert_returning
        from store.db import migrate, session_scope
        from store.messages import OutboxMessage

        migrate()
        tables = {"audit": (AuditEvent.__table__, audit_rows), "outbox": (OutboxMessage.__table__, outbox_rows)}

        def ways(table) -> dict:
            key = table.autoincrement_column

            def batched(s, batch):
                return s.execute(table.insert().returning(key, sort_by_parameter_order=True), batch).scalars().all()

            def by_column(s, batch):
                statement = per_column(table, tuple(batch[0]), key.name, s.get_bind().dialect)
                return s.execute(statement, {"rows": _document(batch)}).scalars().all()

            def record_set(s, batch):
                return insert_returning(s, table, batch, key)

            return {"SQLAlchemy batched INSERT … VALUES": batched, "one JSON document, a column at a time": by_column,
                    "store.bulk (a JSON record set)": record_set}

        out = Table(title=f"Rows into PostgreSQL, {args.batches} batches per row, one transaction each",
                    caption=calibration.line())
        for col in ("table", "rows per batch", "way", "client CPU ms per batch", "wall ms per batch",
                    "client CPU µs per row"):
            out.add_column(col, justify="right")
        for name in [t for t in args.tables.split(",") if t]:
            table, make = tables[name]
            these = ways(table)
            for n in [int(x) for x in args.sizes.split(",") if x]:
                spent: dict[str, list[float]] = {w: [0.0, 0.0] for w in these}
                for _ in range(args.batches):
                    for way_name, way in these.items():  # alternately: the machine's drift falls on all
                        batch = make(n)
                        cpu, wall = time.process_time(), time.perf_counter()
                        with session_scope() as s:
                            assert len(way(s, batch)) == n
                        spent[way_name][0] += time.process_time() - cpu
                        spent[way_name][1] += time.perf_counter() - wall
                for way_name, (cpu, wall) in spent.items():
                    out.add_row(name, f"{n:,}", way_name, f"{1000 * cpu / args.batches:.1f}",
                                f"{1000 * wall / args.batches:.1f}", f"{1e6 * cpu / args.batches / n:.1f}")
        Console(width=160).print(out)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
