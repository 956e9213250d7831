"""Browser-test fixtures: an API server of its own (console included) under uvicorn on the session's Temporal
dev server, and the small district."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.browser.common import ADMIN
from tests.helpers import free_port


@pytest.fixture
def stack_env(dev_env, db_url, monkeypatch):
    """Settings for an API server of its own: the dev server's address, a task queue, the base URL of links."""
    from config import get_settings

    port = free_port()
    tq = f"browser-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("YINGJI_TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("YINGJI_TASK_QUEUE", tq)
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_API_PORT", str(port))
    monkeypatch.setenv("YINGJI_NIGHT_START", "00:00")  # no night hours: a text first, whatever the hour
    monkeypatch.setenv("YINGJI_NIGHT_END", "00:00")
    get_settings.cache_clear()
    return {"port": port, "task_queue": tq, "base": f"http://127.0.0.1:{port}"}


@pytest.fixture
def server(stack_env):
    """The API (console included) under uvicorn in a thread, connecting to Temporal by itself."""
    import uvicorn

    from api.app import create_app

    config = uvicorn.Config(create_app(), host="127.0.0.1", port=stack_env["port"], log_level="warning",
                            timeout_graceful_shutdown=2)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield stack_env["base"]
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def people(db_url):
    from store.db import session_scope
    from tests.factories import small_district

    with session_scope() as s:
        return small_district(s)
