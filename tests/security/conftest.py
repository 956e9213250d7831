"""Security tests: an app with a token for every role, the real worker on a time-skipping server."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from store.auth import ROLES

ADMIN_TOKEN = "security-admin-token-5f2c"


@pytest.fixture
async def secured(module_time_env, db_url, monkeypatch):
    """The FastAPI app (in this process) over a small district, a token for each role, a console
    session for each role, and a worker on a task queue of its own."""
    from api.app import create_app
    from api.console import auth
    from config import get_settings
    from store.auth import create_token, lookup_token
    from store.db import session_scope
    from tests.factories import small_district
    from tests.workflows.callout_helpers import terminate_callouts
    from worker import build_worker

    monkeypatch.setenv("YINGJI_RUN_SCHEDULER", "false")
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("YINGJI_TASK_QUEUE", f"sec-{uuid.uuid4().hex[:6]}")
    get_settings.cache_clear()
    settings = get_settings()
    with session_scope() as s:
        people = small_district(s)
        tokens = {role: create_token(s, role, label=role) for role in ROLES}
    sessions = {}
    with session_scope(write=False) as s:
        for role, token in tokens.items():
            cookie = auth.session_cookie(settings, {"m": "token", "t": lookup_token(s, token).id})
            csrf = auth._serializer(settings).loads(cookie)["c"]
            sessions[role] = {"cookie": f"{auth.COOKIE}={cookie}", "csrf": csrf}
    app = create_app(temporal_client=module_time_env.client)
    async with build_worker(module_time_env.client, task_queue=settings.task_queue):
        yield SimpleNamespace(app=app, tokens=tokens, sessions=sessions, people=people, settings=settings,
                              client=module_time_env.client)
        await terminate_callouts(module_time_env.client)
