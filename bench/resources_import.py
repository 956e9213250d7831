"""Resource register import benchmark: a register of N records (teams, equipment, depots with two stock lines
each, experts, shelters, over the demo district's towns) imported into a fresh SQLite database, then again
(nothing changes: the upsert's compare path), and the stock alerts computed.

Issue 23 asks that 2,000 records import in under 5 s; the test (tests/unit/test_resources_register.py) checks
that they import, this prints how long it took. Run: `.venv/bin/python bench/resources_import.py [--records 2000]`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench import calibration  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=2000)
    args = ap.parse_args()
    machine = calibration.line()  # how fast this machine is, to compare tables across machines
    print(machine, flush=True)
    from store.db import dispose_all, migrate, session_scope
    from store.directory_import import load_demo_if_empty
    from store.resources import stock_alerts
    from store.resources_import import import_register
    from tests.unit.test_resources_register import big_register

    rows = []
    for records in sorted({200, args.records}):
        tmp = Path(tempfile.mkdtemp(prefix="yingji-bench-resources-"))
        url = f"sqlite:///{tmp}/bench.db"
        migrate(url)
        with session_scope(url) as s:
            load_demo_if_empty(s, today=date(2026, 7, 1))
        f = tmp / "register.yaml"
        f.write_text(big_register(records), encoding="utf-8")
        t = time.perf_counter()
        with session_scope(url) as s:
            report = import_register(s, f)
        first = time.perf_counter() - t
        t = time.perf_counter()
        with session_scope(url) as s:
            import_register(s, f)
        again = time.perf_counter() - t
        t = time.perf_counter()
        with session_scope(url) as s:
            alerts = len(stock_alerts(s, date(2026, 12, 5)))
        alert_s = time.perf_counter() - t
        rows.append((records, report.counts.get("stock", 0), first, again, alerts, alert_s))
        dispose_all()
    print(machine)  # the table's own line: figures from two machines compare by it
    print(f"\n{'records':>8} | {'stock lines':>11} | {'import s':>8} | {'again s':>7} | {'alerts':>6} | {'alerts s':>8}")
    print("-" * 8 + "-+-" + "-" * 11 + "-+-" + "-" * 8 + "-+-" + "-" * 7 + "-+-" + "-" * 6 + "-+-" + "-" * 8)
    for records, stock, first, again, alerts, alert_s in rows:
        print(f"{records:>8,} | {stock:>11,} | {first:>8.2f} | {again:>7.2f} | {alerts:>6,} | {alert_s:>8.3f}")


if __name__ == "__main__":
    main()
