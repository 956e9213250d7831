"""`yingji warn FILE` and `yingji callout show ID`: clients of a running stack's API."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx
import typer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from config import get_settings

app = typer.Typer(help="Call-outs 叫应")
console = Console()
STATES = ("acknowledged", "notified", "escalated", "pending", "unreachable", "canceled")


def _client() -> httpx.Client:
    settings = get_settings()
    token = os.environ.get("YINGJI_TOKEN") or (settings.admin_token.get_secret_value() if settings.admin_token else None)
    token_file = settings.data_dir / "admin.token"
    if not token and token_file.exists():
        token = token_file.read_text().strip()
    if not token:
        console.print("[red]no token: set YINGJI_TOKEN (or run `yingji run` once to create the admin token)[/red]")
        raise typer.Exit(2)
    base = f"http://{settings.api_host}:{settings.api_port}"
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _fail(resp: httpx.Response) -> None:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = resp.text
    console.print(f"[red]{resp.status_code}: {detail}[/red]")
    raise typer.Exit(1)


def warn(file: Path = typer.Argument(..., exists=True, readable=True, help="a CAP 1.2 XML document or a JSON warning")) -> None:
    """Send a warning to the API (CAP XML or JSON)."""
    data = file.read_bytes()
    ctype = "application/json" if data.lstrip()[:1] in (b"{", b"[") else "application/cap+xml"
    with _client() as http:
        resp = http.post("/api/warnings", content=data, headers={"Content-Type": ctype})
    if resp.status_code >= 400:
        _fail(resp)
    body = resp.json()
    console.print_json(json.dumps(body, ensure_ascii=False))
    if body.get("callout_id"):
        console.print(f"follow it: [bold]yingji callout show {body['callout_id']}[/bold]")


def _view(c: dict) -> Group:
    total = c.get("total") or 0
    counts = c.get("counts", {})
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"))
    progress.add_task("已应答 acknowledged", total=total or 1, completed=counts.get("acknowledged", 0))
    table = Table(title=f"{c['id']} · {c.get('title', '')} · {c['level']} · {c['status']}")
    for col in ("tier", "name", "state", "attempts", "acknowledged_at", "channel"):
        table.add_column(col)
    for t in c.get("targets", [])[:40]:
        table.add_row(t["tier"], t["name"], t["state"], str(len(t["attempts"])), t["acknowledged_at"] or "",
                      t["ack_channel"] or "")
    summary = Table.grid(padding=(0, 2))
    summary.add_row(*[f"{s}: {counts.get(s, 0)}" for s in STATES])
    if relay := (c.get("relay") or {}).get("counts"):  # 到户到人
        summary.add_row(f"到户 relayed: {relay['confirmed'] + relay['late']}/{relay['requested']}",
                        f"households: {relay['households']}", f"overdue: {relay['overdue']}", f"late: {relay['late']}")
    return Group(progress, summary, table)


@app.command("show")
def show(callout_id: str,
         follow: bool | None = typer.Option(None, "--follow/--no-follow",
                                            help="keep updating until the call-out ends (default: on a terminal "
                                                 "only; piped, the current state is printed at once)")) -> None:
    """Progress of one call-out: live on a terminal; piped, the state at once (or a line per change with --follow)."""
    tty = sys.stdout.isatty()
    with _client() as http:
        def fetch() -> dict:
            resp = http.get(f"/api/callouts/{callout_id}")
            if resp.status_code >= 400:
                _fail(resp)
            return resp.json()

        c = fetch()
        if follow is None:
            follow = tty
        if not follow or c["status"] != "running":
            console.print(_view(c))
            return
        if not tty:  # a pipe: one line per change, flushed, never a screen redrawn in place
            _stream(c, fetch)
            return
        with Live(_view(c), console=console, refresh_per_second=4) as live:
            while c["status"] == "running":
                time.sleep(1)
                c = fetch()
                live.update(_view(c))


def _line(c: dict) -> str:
    counts = c.get("counts", {})
    return (f"{c['id']} {c['status']} total={c.get('total') or 0} "
            + " ".join(f"{s}={counts.get(s, 0)}" for s in STATES))


def _stream(c: dict, fetch) -> None:
    last = _line(c)
    print(last, flush=True)
    while c["status"] == "running":
        time.sleep(1)
        c = fetch()
        line = _line(c)
        if line != last:
            print(line, flush=True)
            last = line
