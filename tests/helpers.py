"""Small things several end-to-end tests share."""
from __future__ import annotations

import asyncio
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_of_local_midnight(margin_s: float = 120.0) -> None:
    """Wait past the next local midnight (settings.timezone, Beijing by default) when it is less than `margin_s`
    away: for a test that takes "today" or "this week" in one place while the code takes it again in another,
    seconds later (CI runs at any hour). A week begins at a midnight too."""
    from config import get_settings

    now = datetime.now(UTC).astimezone(ZoneInfo(get_settings().timezone))
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    left = (midnight - now).total_seconds()
    if left < margin_s:
        time.sleep(left + 1)


def as_delivered(message_id: int):
    """A message as its person's phone got it: the outbox row, one-time links whole. Every view of
    the API masks them for everyone else (issue 16.1); a test that opens a link plays the person."""
    from types import SimpleNamespace

    from store.db import session_scope
    from store.messages import OutboxMessage

    with session_scope(write=False) as s:
        m = s.get(OutboxMessage, message_id)
        return SimpleNamespace(body=m.body, ack_url=m.ack_url)


# An orange heavy-rain CAP 1.2 alert for towns 330110001 and 330110002 (made up); fill in {ident}.
CAP = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{ident}</identifier>
  <sender>qingxi-meteo@example.cn</sender>
  <sent>2026-07-01T03:10:00+08:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <senderName>青溪区气象台</senderName>
    <headline>青溪区气象台发布暴雨橙色预警信号</headline>
    <description>预计未来3小时第1街道、第2街道降雨量将达50毫米以上。</description>
    <parameter><valueName>预警级别</valueName><value>橙色</value></parameter>
    <area>
      <areaDesc>第1街道、第2街道</areaDesc>
      <geocode><valueName>GB/T 2260</valueName><value>330110001</value></geocode>
      <geocode><valueName>GB/T 2260</valueName><value>330110002</value></geocode>
    </area>
  </info>
</alert>
"""


CAP_SENT = "2026-07-01T03:10:00+08:00"  # the alert's <sent> above


def cap_at(ident: str, sent, expires=None) -> str:
    """The alert above (made up) sent at `sent` (an aware datetime), expiring at `expires` if given."""
    text = CAP.format(ident=ident).replace(CAP_SENT, sent.isoformat(timespec="seconds"))
    if expires is not None:
        text = text.replace("    <senderName>", f"    <expires>{expires.isoformat(timespec='seconds')}</expires>\n"
                                                 "    <senderName>")
    return text


def cap_followup(kind: str, ident: str, of_ident: str, of_sent, sent) -> str:
    """A CAP Update (orange raised to red) or Cancel of the alert above with identifier `of_ident` sent at
    `of_sent`: tests/fixtures/cap/made/rain_update_to_red.xml or rain_cancel.xml (made up; see PROVENANCE.md),
    re-addressed and re-dated."""
    name, own = {"Update": ("rain_update_to_red.xml", "qx-rain-orange-1-u1"),
                 "Cancel": ("rain_cancel.xml", "qx-rain-orange-1-c1")}[kind]
    text = (ROOT / "tests" / "fixtures" / "cap" / "made" / name).read_text()
    text = text.replace(f"qingxi-meteo@example.cn,qx-rain-orange-1,{CAP_SENT}",
                        f"qingxi-meteo@example.cn,{of_ident},{of_sent.isoformat(timespec='seconds')}")
    text = text.replace(f"<identifier>{own}</identifier>", f"<identifier>{ident}</identifier>")
    return re.sub(r"<sent>[^<]*</sent>", f"<sent>{sent.isoformat(timespec='seconds')}</sent>", text, count=1)


async def poll(fetch, until, timeout=60.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if until(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {value!r}"[:2000])
        await asyncio.sleep(0.2)


async def console_login(app, token: str):
    """An httpx client logged in to the console of `app` with a bearer token; `.csrf` holds its CSRF token."""
    import re

    import httpx

    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console.test")
    page = await web.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    resp = await web.post("/console/login/token", data={"token": token, "csrf": csrf})
    assert resp.status_code == 303, resp.text
    desk = await web.get("/console/desk")
    web.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', desk.text).group(1)  # type: ignore[attr-defined]
    return web


async def console_page(app, token: str, path: str):
    """One console page as the holder of `token` sees it (logged in for it, then logged out)."""
    web = await console_login(app, token)
    try:
        return await web.get(path)
    finally:
        await web.aclose()


async def console_post(web, path: str, data: dict):
    """A console form POST with the session's CSRF token."""
    return await web.post(path, data={**data, "csrf": web.csrf})


def use_definitions(tmp_path: Path, monkeypatch, edit: Callable[[Path, str], str], **env: str) -> Path:
    """A copy of the shipped definitions for one test, and the settings pointing at it.

    Each YAML file's text goes through `edit(path relative to definitions/, text)`: waits
    shortened to seconds, special periods moved… The scheduler is off; `env` sets YINGJI_<key>."""
    from config import get_settings

    defs = tmp_path / "definitions"
    shutil.copytree(ROOT / "definitions", defs, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schema"))
    for f in defs.rglob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        if (new := edit(f.relative_to(defs), text)) != text:
            f.write_text(new, encoding="utf-8")
    for key, value in {"DEFINITIONS_DIR": str(defs), "RUN_SCHEDULER": "false", **env}.items():
        monkeypatch.setenv(f"YINGJI_{key}", value)
    get_settings.cache_clear()
    return defs


def relay_in_seconds(text: str, to: str = "3s") -> str:
    """A call-out plan's relay deadlines (`relay: deadline: {orange: 60m, red: 30m}`, 到户到人) in seconds."""
    return re.sub(r"(?<=deadline: \{)[^}\n]*(?=\})", lambda m: re.sub(r"\d+[mhd]", to, m.group(0)), text)


def in_seconds(path: Path, text: str) -> str:
    """Every wait of the call-out plans (their relay deadlines too), response plans, district reporting rules and review template in
    seconds: escalation waits 3 s; the verbal report due in 4 s; task limits an hour -> 10 s; reminders
    2-4 s before; a summary due 20 s after it is asked for, reminded 8 s before; the city answers in 30 s."""
    if path.parts[0] not in ("callout", "plans") and path.as_posix() not in ("reporting/district.yaml",
                                                                             "review/default.yaml"):
        return text
    text = relay_in_seconds(re.sub(r"wait_ack: \d+[mhd]", "wait_ack: 3s", text))
    text = text.replace("deadlines: {verbal: 30m, written: 1h}", "deadlines: {verbal: 4s, written: 1h}")
    text = text.replace("reminder_before: 10m", "reminder_before: 2s").replace("remind_before: 30m", "remind_before: 4s")
    text = text.replace("summary_deadline: 7d", "summary_deadline: 20s").replace("reminders: [2d, 12h]", "reminders: [8s]")
    if path.parts[0] == "plans":
        text = re.sub(r"due: (\d+)h", lambda m: f"due: {int(m.group(1)) * 10}s", text)
        text = re.sub(r"answer_within: \d+h", "answer_within: 30s", text)
    return text


def migrated(url: str, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """The body of the `db_url` fixtures (SQLite in tests/conftest.py, PostgreSQL in tests/production/): the
    database at `url` migrated, the settings pointing at it for the test (worker activities included)."""
    from config import get_settings
    from store.db import dispose_all, migrate

    monkeypatch.setenv("YINGJI_DATABASE_URL", url)
    monkeypatch.setenv("YINGJI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("YINGJI_SECRET_KEY", "test-secret")
    get_settings.cache_clear()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        _copy_of_migrated(Path(url.removeprefix("sqlite:///")))
    else:
        migrate(url)
    yield url
    dispose_all()
    get_settings.cache_clear()


_template: list[Path] = []  # this process's migrated empty SQLite database


def _copy_of_migrated(path: Path) -> None:
    """A fresh SQLite database at `path`, as `migrate` leaves it: a copy (SQLite's backup API) of one migrated once
    per test process. Alembic reads every migration script at each upgrade, a good part of a second a test."""
    import sqlite3
    import tempfile

    from store.db import migrate

    if not _template:
        template = Path(tempfile.mkdtemp(prefix="yingji-migrated-")) / "template.db"
        migrate(f"sqlite:///{template}")
        _template.append(template)
    src, dst = sqlite3.connect(_template[0]), sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def replayer(*workflows: type, **kw):
    """A Replayer as worker.py's build_worker registers the workflows: the client's pydantic converter, the
    heartbeat interceptor. Without the 2-second deadlock detector (debug_mode): replay tests ask whether the
    code gives the recorded commands; on a busy machine a first sandboxed activation (imports, input
    validation) can take over 2 s, which is speed, not a replay failure (it failed make stress once)."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from activities.heartbeat import HeartbeatInterceptor

    return Replayer(workflows=list(workflows), data_converter=pydantic_data_converter,
                    interceptors=[HeartbeatInterceptor()], debug_mode=True, **kw)


class EveryCommit:
    """What a reader sees at each moment one transaction has committed and the next one of that thread has not begun:
    `look()` runs right after every commit of this process's sessions, in the committing thread, before it goes on
    (a barrier at every commit). Each result is kept in `seen`; `when(predicate)` gives an asyncio event set from there.
    `look` reads through sessions of its own (their commits do not call it again); an error in it is kept, not
    raised into the transaction that committed."""

    def __init__(self, look: Callable[[], object]) -> None:
        import threading

        self.look, self.seen, self.errors = look, [], []
        self._busy = threading.local()
        self._waiters: list[tuple[Callable[[object], bool], asyncio.AbstractEventLoop, asyncio.Event]] = []

    def when(self, predicate: Callable[[object], bool]) -> asyncio.Event:
        """An event set (on the caller's loop) at the first commit after which `look()` satisfies `predicate`."""
        event = asyncio.Event()
        self._waiters.append((predicate, asyncio.get_running_loop(), event))
        if predicate(self.look()):  # so already
            event.set()
        return event

    def _after_commit(self, _session) -> None:
        if getattr(self._busy, "on", False):
            return
        self._busy.on = True
        try:
            value = self.look()
            self.seen.append(value)
            for predicate, loop, event in list(self._waiters):
                if predicate(value):
                    loop.call_soon_threadsafe(event.set)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            self.errors.append(exc)
        finally:
            self._busy.on = False

    def __enter__(self) -> "EveryCommit":
        _listen_to_commits()
        _WATCHES.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _WATCHES.remove(self)


_WATCHES: list[EveryCommit] = []
_listening = False


def _listen_to_commits() -> None:
    """One listener for the process, left in place: removing a listener while another thread's commit calls the
    listeners (a worker still writing as the test ends) breaks that commit."""
    global _listening
    if _listening:
        return
    from sqlalchemy import event
    from sqlmodel import Session

    def after_commit(session) -> None:
        for watch in tuple(_WATCHES):
            watch._after_commit(session)

    event.listen(Session, "after_commit", after_commit)
    _listening = True
