"""Security tests: an app with a token for every role, the real worker on a time-skipping server."""
from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest

from store.auth import ROLES

ADMIN_TOKEN = "security-admin-token-5f2c"


def console_sessions(settings, tokens: dict[str, str]) -> dict[str, dict[str, str]]:
    """A new console session for each role's token: {role: {cookie, csrf}}."""
    from api.console import auth
    from store.auth import lookup_token
    from store.db import session_scope

    sessions = {}
    with session_scope(write=False) as s:
        for role, token in tokens.items():
            cookie = auth.session_cookie(settings, {"m": "token", "t": lookup_token(s, token).id})
            csrf = auth._serializer(settings).loads(cookie)["c"]
            sessions[role] = {"cookie": f"{auth.COOKIE}={cookie}", "csrf": csrf}
    return sessions


@asynccontextmanager
async def secured_app(client, monkeypatch):
    """The FastAPI app (in this process) over a small district in the database the settings name, a token for each
    role, a console session for each role, and a worker on a task queue of its own."""
    from api.app import create_app
    from config import get_settings
    from store.auth import create_token
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
    sessions = console_sessions(settings, tokens)
    app = create_app(temporal_client=client)
    async with build_worker(client, task_queue=settings.task_queue):
        yield SimpleNamespace(app=app, tokens=tokens, sessions=sessions, people=people, settings=settings,
                              client=client)
        await terminate_callouts(client)


@pytest.fixture
async def secured(module_time_env, db_url, monkeypatch):
    """A test's own app, database and worker (secured_app)."""
    async with secured_app(module_time_env.client, monkeypatch) as env:
        yield env
