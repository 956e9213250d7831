"""`yingji callout show ID` piped (stdout not a terminal): the current state at once, then it exits; with
--follow, a line per change. The command runs as a subprocess against a small local stand-in for the API's
`GET /api/callouts/{id}` (the command only reads that), answering a running call-out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CALLOUT = {"id": "callout-20260701-0001", "title": "暴雨橙色预警", "level": "orange", "status": "running", "total": 11,
           "counts": {"notified": 8, "acknowledged": 3},
           "targets": [{"tier": "towns", "name": "街道1主任", "state": "acknowledged", "attempts": [{}],
                        "acknowledged_at": "2026-07-01T03:12:00+00:00", "ack_channel": "sms"}]}


@pytest.fixture
def api():
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            if self.path != f"/api/callouts/{CALLOUT['id']}" or self.headers.get("Authorization") != "Bearer t0k":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps(CALLOUT, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()


def _env(port: int) -> dict[str, str]:
    return {**os.environ, "YINGJI_API_HOST": "127.0.0.1", "YINGJI_API_PORT": str(port), "YINGJI_TOKEN": "t0k",
            "PYTHONPATH": str(ROOT), "COLUMNS": "120"}


def test_show_piped_prints_the_state_and_exits(api):
    port, seen = api
    done = subprocess.run([sys.executable, "-m", "cli.main", "callout", "show", CALLOUT["id"]], cwd=ROOT,
                          env=_env(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert CALLOUT["id"] in done.stdout and "running" in done.stdout
    assert "acknowledged: 3" in done.stdout and "notified: 8" in done.stdout
    assert "街道1主任" in done.stdout
    assert seen == [f"/api/callouts/{CALLOUT['id']}"]  # read once: no waiting for the call-out to end


def test_show_piped_with_follow_streams_lines(api):
    port, _ = api
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "callout", "show", CALLOUT["id"], "--follow"],
                            cwd=ROOT, env=_env(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # a line as soon as it is known, not a screen at the end
        assert first.startswith(CALLOUT["id"]) and "running" in first
        assert "acknowledged=3" in first and "notified=8" in first and "total=11" in first
    finally:
        proc.kill()
        proc.wait(timeout=10)
