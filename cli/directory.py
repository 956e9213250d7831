"""`yingji directory import FILE` and `yingji directory show`."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The directory: org units, persons, positions, posts, the duty roster.", no_args_is_help=True)
console = Console()


@app.command("import")
def import_file(file: Path = typer.Argument(..., exists=True, readable=True, help="YAML or CSV (docs/directory-import.md)")) -> None:
    """Import a directory file, all or nothing; every problem is listed with its line."""
    from store.db import migrate, session_scope
    from store.directory_import import DirectoryImportError, import_directory

    migrate()
    try:
        with session_scope() as s:
            report = import_directory(s, file)
    except DirectoryImportError as exc:
        for line in exc.errors:
            console.print(f"[red]{line}[/red]", highlight=False)
        console.print(f"[red]{len(exc.errors)} problem(s); nothing was imported[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"imported {file.name}")
    for col in ("", "in file", "new or changed"):
        table.add_column(col)
    for key in ("org_units", "persons", "positions", "posts"):
        table.add_row(key, str(getattr(report, key)), str(report.changed.get(key, 0)))
    table.add_row("duty shifts", str(report.shifts), "")
    console.print(table)


@app.command("show")
def show() -> None:
    """Counts of the directory by kind."""
    from sqlmodel import func, select

    from store.db import migrate, session_scope
    from store.directory import OrgUnit, Person, Post
    from store.roster import DutyShift

    migrate()
    with session_scope(write=False) as s:
        table = Table(title="directory")
        table.add_column("what")
        table.add_column("count", justify="right")
        for kind, n in s.exec(select(OrgUnit.kind, func.count()).group_by(OrgUnit.kind)):
            table.add_row(kind, str(n))
        for label, model in (("persons", Person), ("posts", Post), ("duty shifts", DutyShift)):
            table.add_row(label, str(s.exec(select(func.count()).select_from(model)).one()))
    console.print(table)
