"""`yingji duty …`: the duty day from the command line (a client of a running stack's API).

    yingji duty schedules                      the schedules: when, paused or not, next run
    yingji duty schedules sync                 install or update them from definitions/duty (admin)
    yingji duty schedules pause ID [--note …] [--reason …]  pause one (a drill during an emergency, say; below the
                                               weekly drill minimum only with a reason, and the duty chief is told)
    yingji duty schedules unpause ID
    yingji duty schedules trigger ID           run it now
    yingji duty drills                         drill runs and their response rates
    yingji duty handovers                      shift handovers
    yingji duty spotchecks                     六问 spot checks
    yingji duty contacts [--which stale|failing]  persons whose contact data needs checking
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The duty day 值班日常: schedules, drills, handovers, spot checks, contact freshness.",
                  no_args_is_help=True)
schedules_app = typer.Typer(help="Temporal Schedules of the duty day (drills, handover, spot-check sweep, "
                                 "confirmation round).", invoke_without_command=True)
app.add_typer(schedules_app, name="schedules")
console = Console(width=160)


def _client():
    from cli.callout import _client as client

    return client()


def _call(method: str, path: str, **kw):
    from cli.callout import _fail

    with _client() as http:
        resp = getattr(http, method)(path, **kw)
    if resp.status_code >= 400:
        _fail(resp)
    return resp.json()


def _local(iso: str | None, fmt: str = "%m-%d %H:%M") -> str:
    if not iso:
        return "—"
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from config import get_settings

    return datetime.fromisoformat(iso).astimezone(ZoneInfo(get_settings().timezone)).strftime(fmt)


@schedules_app.callback()
def schedules(ctx: typer.Context) -> None:
    """List the schedules (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _call("get", "/api/schedules")
    table = Table(title="schedules 定时任务", title_justify="left")
    for col in ("id", "name", "when", "state", "next run", "runs", "version"):
        table.add_column(col)
    for s in rows:
        if not s["installed"]:
            state = "[yellow]not installed[/yellow]"
        elif s["paused"]:
            state = f"[red]paused[/red] {s.get('note') or ''}"
        else:
            state = "[green]active[/green]"
        version = s["version"] + ("" if not s["installed"] or s.get("up_to_date") else " [yellow](sync!)[/yellow]")
        table.add_row(s["id"], s["name_zh"], s["when_zh"], state,
                      _local(s["next_runs"][0]) if s.get("next_runs") and not s.get("paused") else "—",
                      str(s.get("runs", "")), version)
    console.print(table)


@schedules_app.command("sync")
def sync() -> None:
    """Install or update every schedule from definitions/duty (paused ones stay paused)."""
    out = _call("post", "/api/schedules/sync")
    typer.echo(f"created: {', '.join(out['created']) or '-'}; updated: {', '.join(out['updated']) or '-'}")


def _control(schedule_id: str, action: str, note: str, reason: str = "") -> None:
    out = _call("post", f"/api/schedules/{schedule_id}/{action}", json={"note": note, "reason": reason})
    state = "paused" if out["paused"] else "active"
    nxt = _local(out["next_runs"][0]) if out.get("next_runs") and not out["paused"] else "—"
    typer.echo(f"{schedule_id}: {action} ok; now {state}; next run {nxt}")


@schedules_app.command("pause")
def pause(schedule_id: str, note: Annotated[str, typer.Option(help="why (kept on the schedule, audited)")] = "",
          reason: Annotated[str, typer.Option(help="why a drill is paused: required when the pause leaves the drills "
                                                   "below the weekly minimum (the duty chief is told)")] = "") -> None:
    """Pause a schedule."""
    _control(schedule_id, "pause", note, reason)


@schedules_app.command("unpause")
def unpause(schedule_id: str, note: Annotated[str, typer.Option(help="why")] = "") -> None:
    """Resume a paused schedule."""
    _control(schedule_id, "unpause", note)


@schedules_app.command("trigger")
def trigger(schedule_id: str) -> None:
    """Run a schedule's action now (a drill outside its time, say)."""
    _control(schedule_id, "trigger", "")


@app.command("drills")
def drills(drill_id: Annotated[Optional[str], typer.Option("--drill", help="only this drill")] = None,
           limit: int = 20) -> None:
    """Drill runs, newest first: the sample, who answered within the window, the rate."""
    out = _call("get", "/api/drills", params={"limit": limit, **({"drill_id": drill_id} if drill_id else {})})
    table = Table(title="drills 演练 (never counted as call-outs)", title_justify="left")
    for col in ("started", "drill", "sample", "answered in window", "rate", "status"):
        table.add_column(col)
    for r in out["runs"]:
        rate = f"{r['rate']:.0%}" if r["rate"] is not None else "—"
        table.add_row(_local(r["started_at"]), f"【演练】{r['name']}", "、".join(r["sample"].get("names", [])),
                      f"{r['responded']}/{r['total']} in {r['window_s'] // 60} min", rate, r["status"])
    console.print(table)


@app.command("handovers")
def handovers(limit: int = 10) -> None:
    """Shift handovers 交接班, newest first."""
    rows = _call("get", "/api/handovers", params={"limit": limit})
    table = Table(title="handovers 交接班", title_justify="left")
    for col in ("shift", "outgoing", "incoming", "status", "take over by", "taken over", "items"):
        table.add_column(col)
    for h in rows:
        table.add_row(_local(h["shift_at"]), h["outgoing_name"] or "—", h["incoming_name"] or "—", h["status"],
                      _local(h["due_at"], "%H:%M"), _local(h["taken_over_at"], "%H:%M"), str(h["items"]))
    console.print(table)


@app.command("spotchecks")
def spotchecks(limit: int = 10) -> None:
    """六问 spot checks, newest first."""
    rows = _call("get", "/api/spotchecks", params={"limit": limit})
    table = Table(title="六问 spot checks", title_justify="left")
    for col in ("opened", "call-out", "status", "answered", "open follow-ups"):
        table.add_column(col)
    for r in rows:
        table.add_row(_local(r["opened_at"]), r["title"] or r["callout_id"], r["status"], f"{r['answered']}/{r['sampled']}",
                      str(r["followups_open"]))
    console.print(table)


@app.command("contacts")
def contacts(which: Annotated[str, typer.Option(help="stale | failing")] = "stale") -> None:
    """Persons whose contact data is stale (not confirmed within a year) or whose number fails (admin)."""
    if which not in ("stale", "failing"):
        typer.echo("--which: stale or failing", err=True)
        raise typer.Exit(2)
    rows = _call("get", "/api/freshness/contacts", params={"which": which})
    table = Table(title=f"contacts: {which} ({len(rows)})", title_justify="left")
    for col in ("person", "name", "mobile", "last confirmed", "failing"):
        table.add_column(col)
    for p in rows[:500]:
        table.add_row(p["person_id"], p["name"], p["mobile"], _local(p["confirmed_at"], "%Y-%m-%d"),
                      p["error"] or ("yes" if p["failing"] else ""))
    console.print(table)
