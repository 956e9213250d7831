"""Python's collector in the API and the worker (config.tune_gc): what start-up loaded is frozen out of the scans and
the young generation is collected less often; 0 leaves CPython's defaults. glibc's malloc arenas (config.tune_malloc):
at most two, so threads do not each keep freed memory in an arena of their own. The effects are a benchmark's
business (bench/api_load.py, bench/callout.py); here: that they are applied, once, and by the API's start-up."""
from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
import textwrap

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
    monkeypatch.setattr(api.app, "tune_malloc", lambda settings: called.append(settings.malloc_arenas))
    with TestClient(create_app(temporal_client=object())) as client:
        assert client.get("/healthz").status_code in (200, 503)
    assert called == [2, 20_000]


ARENAS = textwrap.dedent("""
    import ctypes, ctypes.util, os, sys, tempfile, threading
    import config
    applied = config.tune_malloc(config.Settings(malloc_arenas=int(sys.argv[1])))
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    together = threading.Barrier(16)
    kept = []

    def work():  # each thread's first malloc (above pymalloc's 512 bytes) while all sixteen are alive
        kept.append(bytearray(100_000))
        together.wait()

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with tempfile.TemporaryDirectory() as tmp:  # malloc_info writes an XML <heap> per arena
        path = os.path.join(tmp, "malloc.xml")
        fp = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, fp)
        libc.fclose(fp)
        print(applied, open(path).read().count("<heap nr="))
""")


def arenas_used(limit: int) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", ARENAS, str(limit)], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's arenas")
def test_at_most_two_malloc_arenas_however_many_threads():
    applied, heaps = arenas_used(2)
    assert applied == "True" and heaps <= 2, heaps
    applied, heaps = arenas_used(0)  # glibc's default: the same sixteen threads take more (the check can fail)
    assert applied == "False" and heaps > 2, heaps
