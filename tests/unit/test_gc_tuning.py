"""Python's collector in the API and the worker (config.tune_gc): what start-up loaded is frozen out of the scans and
the young generation is collected less often; 0 leaves CPython's defaults. The effect is a benchmark's business
(bench/api_load.py, bench/callout.py); here: that it is applied, once, and by the API's start-up."""
from __future__ import annotations

import gc

import pytest

import config


@pytest.fixture
def fresh_gc(monkeypatch):
    before = gc.get_threshold()
    monkeypatch.setattr(config, "_gc_tuned", False)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_the_young_generation_is_collected_less_often_and_start_up_is_frozen(fresh_gc):
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    config.tune_gc(config.Settings(gc_young_threshold=20_000))
    assert gc.get_threshold() == (20_000, 10, 10)  # the older generations keep their ratios
    assert gc.get_freeze_count() > 1000  # this test process's modules at least

    gc.set_threshold(700, 10, 10)
    config.tune_gc(config.Settings(gc_young_threshold=5_000))  # once per process: tests start many apps
    assert gc.get_threshold() == (700, 10, 10)


def test_zero_leaves_cpython_defaults(fresh_gc):
    gc.set_threshold(700, 10, 10)
    gc.unfreeze()
    config.tune_gc(config.Settings(gc_young_threshold=0))
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_the_api_tunes_it_when_it_starts(db_url, monkeypatch):
    from fastapi.testclient import TestClient

    import api.app
    from api.app import create_app

    called = []
    monkeypatch.setattr(api.app, "tune_gc", lambda settings: called.append(settings.gc_young_threshold))
    with TestClient(create_app(temporal_client=object())) as client:
        assert client.get("/healthz").status_code in (200, 503)
    assert called == [20_000]
