"""Four processes started at once on an empty database all come up (issue 15, finding 6).

The API, the worker and the CLI each migrate at start. Each process here is what they do
(`store.db.migrate()`), with a barrier inside Alembic's run: every process waits, after it
opened its migration transaction and before it reads the version table, until all four are
there (or 5 s passed: a process that holds the migration lock waits alone). Without a lock
around the migrations all four meet at the barrier and then create the same tables at once
(`UniqueViolation … alembic_version`, "table already exists"); with the lock they take turns.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
N = 4

PROCESS = r"""
import os, sys, time
from pathlib import Path
from alembic.runtime.migration import MigrationContext

gate, me, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
run = MigrationContext.run_migrations

def run_after_barrier(self, **kw):
    (gate / f"ready-{me}").touch()
    deadline = time.monotonic() + 5
    while len(list(gate.glob("ready-*"))) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return run(self, **kw)

MigrationContext.run_migrations = run_after_barrier
from store.db import migrate   # the imports done, wait for the start signal
(gate / f"loaded-{me}").touch()
while not (gate / "go").exists():
    time.sleep(0.01)
migrate()
print("up")
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/fresh.db"
    return request.getfixturevalue("pg_url")


def test_four_processes_started_at_once_on_an_empty_database_all_come_up(empty_database, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "YINGJI_DATABASE_URL": empty_database, "YINGJI_DATA_DIR": str(tmp_path / "data")}
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS, str(gate), str(i), str(N)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(N)]
    try:
        deadline = time.monotonic() + 120  # anti-hang bound: imports take a few seconds on a busy machine
        while len(list(gate.glob("loaded-*"))) < N:
            assert all(p.poll() is None for p in procs), [p.communicate()[0][-2000:] for p in procs]
            assert time.monotonic() < deadline, "the processes did not load"
            time.sleep(0.05)
        (gate / "go").touch()
        outputs = [p.communicate(timeout=180)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    failed = [(i, out[-1500:]) for i, (p, out) in enumerate(zip(procs, outputs)) if p.returncode != 0]
    assert not failed, f"{len(failed)} of {N} processes did not come up:\n" + "\n".join(f"--- {i}\n{o}" for i, o in failed)
    assert all(out.strip().endswith("up") for out in outputs)
    from alembic.script import ScriptDirectory
    from alembic.config import Config

    from store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    heads = set(ScriptDirectory.from_config(cfg).get_heads())
    engine = create_engine(empty_database)
    try:
        with engine.connect() as conn:
            versions = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()
    assert sorted(versions) == sorted(heads), f"alembic_version {versions}, heads {heads}"
