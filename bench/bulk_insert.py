"""Bulk insert benchmark on PostgreSQL: a shard flush's batch of audit events written as SQLAlchemy's batched
`INSERT … VALUES … RETURNING` and as `store.bulk.insert_returning` (the rows as one JSON document).

A throwaway PostgreSQL cluster (tests/pg.py, Debian's `postgresql`) gets yingji's schema; each way writes the same
batches of audit-event rows (the columns `store.audit.append` writes), one transaction per batch, alternately.
The table gives this process's CPU per batch (what the worker pays on the path of every send) and the wall time
(the server's share included: on this machine it runs on the same cores).

Run: `.venv/bin/python bench/bulk_insert.py [--batches 20] [--sizes 100,500,2000]`.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402


def rows(n: int) -> list[dict]:
    subject = f"callout-{uuid.uuid4().hex[:8]}"
    return [{"event_id": f"{subject}/{i}", "subject": subject, "chain": subject, "chain_seq": i + 1,
             "workflow_id": subject, "run_id": None, "step_id": f"send/r{i}/sms", "kind": "callout.sent",
             "actor": "system", "channel": "sms", "at": datetime.now(UTC),
             "payload": {"target": f"r{i}", "person_id": f"r{i}", "status": "sent", "to": "+86138****0000",
                         "text": "【应急】暴雨橙色预警，请回复1确认"},
             "prev_hash": "0" * 64, "hash": "f" * 64} for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--sizes", default="100,500,2000")
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
        from store.bulk import insert_returning
        from store.db import migrate, session_scope

        migrate()
        table = AuditEvent.__table__

        def batched(s, batch):
            return s.execute(table.insert().returning(table.c.seq, sort_by_parameter_order=True), batch).scalars().all()

        def as_json(s, batch):
            return insert_returning(s, table, batch, table.c.seq)

        ways = {"SQLAlchemy batched INSERT … VALUES": batched, "store.bulk (one JSON document)": as_json}
        out = Table(title=f"Audit events into PostgreSQL, {args.batches} batches per row, one transaction each",
                    caption=calibration.line())
        for col in ("rows per batch", "way", "client CPU ms per batch", "wall ms per batch", "client CPU µs per row"):
            out.add_column(col, justify="right")
        for n in [int(x) for x in args.sizes.split(",") if x]:
            spent: dict[str, list[float]] = {w: [0.0, 0.0] for w in ways}
            for _ in range(args.batches):
                for name, way in ways.items():  # alternately: the machine's drift falls on both
                    batch = rows(n)
                    cpu, wall = time.process_time(), time.perf_counter()
                    with session_scope() as s:
                        assert len(way(s, batch)) == n
                    spent[name][0] += time.process_time() - cpu
                    spent[name][1] += time.perf_counter() - wall
            for name, (cpu, wall) in spent.items():
                out.add_row(f"{n:,}", name, f"{1000 * cpu / args.batches:.1f}", f"{1000 * wall / args.batches:.1f}",
                            f"{1e6 * cpu / args.batches / n:.1f}")
        Console(width=160).print(out)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
