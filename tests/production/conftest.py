"""The production shape: PostgreSQL (a throwaway cluster, tests/pg.py), several processes.

One cluster per pytest process (session scope: the files of one xdist worker share it), one
fresh database per test. The end-to-end, reporting-chain and worker-kill tests of tests/e2e and
tests/faults run here again with `db_url` and `stack_database` pointing at PostgreSQL.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.harness import make_stack  # noqa: F401 - the fault tests' fixture, on PostgreSQL here
from tests.helpers import migrated
from tests.pg import PgCluster, pg_bindir


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    if pg_bindir() is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql)")
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg: PgCluster) -> Iterator[str]:
    """A fresh, empty database of the test's own (not migrated)."""
    from store.db import dispose_all

    url = pg.create_database()
    yield url
    dispose_all()
    pg.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def db_url(pg_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """tests/conftest.py's `db_url` on PostgreSQL: migrated, the settings pointing at it."""
    yield from migrated(pg_url, tmp_path, monkeypatch)


@pytest.fixture
def stack_database(pg_url: str) -> str:
    """The fault tests' stacks (tests/faults/harness.py) on PostgreSQL."""
    return pg_url
