"""The settings' cache: after `get_settings.cache_clear()`, the settings are those of the environment then, even when a
read that began before the clear (a thread left from the test before) ends after it."""
from __future__ import annotations

import threading

import pytest

import config


@pytest.fixture
def fresh_settings(monkeypatch):
    config.get_settings.cache_clear()
    yield
    monkeypatch.undo()
    config.get_settings.cache_clear()


def test_a_read_begun_before_a_clear_is_neither_kept_nor_returned(monkeypatch, fresh_settings):
    real = config.Settings
    read_once, let_go = threading.Event(), threading.Event()

    def held_in_the_old_thread():
        read = real()
        if threading.current_thread().name == "left-over" and not read_once.is_set():
            read_once.set()  # the environment read: hold it until the main thread has changed it and cleared
            assert let_go.wait(30)
        return read

    monkeypatch.setattr(config, "Settings", held_in_the_old_thread)
    monkeypatch.delenv("YINGJI_ADMIN_TOKEN", raising=False)
    got: dict[str, config.Settings] = {}
    old = threading.Thread(target=lambda: got.setdefault("old", config.get_settings()), name="left-over")
    old.start()
    assert read_once.wait(30)
    monkeypatch.setenv("YINGJI_ADMIN_TOKEN", "set-after-the-read")
    config.get_settings.cache_clear()
    let_go.set()
    old.join(30)
    assert not old.is_alive()

    now = config.get_settings()
    assert now.admin_token is not None, "the read begun before the clear was kept (an API's admin token lost)"
    assert now.admin_token.get_secret_value() == "set-after-the-read"
    assert got["old"] is now  # the old thread read again rather than return what it read before the clear


def test_the_settings_are_read_once_until_cleared(monkeypatch, fresh_settings):
    first = config.get_settings()
    monkeypatch.setenv("YINGJI_TASK_QUEUE", "changed-without-a-clear")
    assert config.get_settings() is first
    config.get_settings.cache_clear()
    assert config.get_settings().task_queue == "changed-without-a-clear"
