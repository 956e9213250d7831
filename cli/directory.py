"""`yingji directory import FILE` and `yingji directory show`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The directory: org units, persons, positions, posts, the duty roster.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one problem per line, never wrapped


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or CSV (docs/directory-import.md)")],
) -> None:
    """Import a directory file, all or nothing; every problem is listed with its line."""
    from cli.imports import run_import
    from store.directory_import import DirectoryImportError, import_directory

    report = run_import(file, import_directory, DirectoryImportError, lambda r: [
        (key.replace("_", " ").replace("shifts", "duty shifts"), getattr(r, key), r.changed.get(key, 0))
        for key in ("org_units", "persons", "positions", "posts", "shifts")])
    for line in report.warnings:  # shared numbers: imported, but said out loud
        errors.print(line, style="yellow", highlight=False, markup=False)


@app.command("show")
def show() -> None:
    """Counts of the directory by kind."""
    from sqlmodel import func, select

    from store.db import migrate, session_scope
    from store.directory import ORG_KINDS, OrgUnit, Person, Position, Post
    from store.roster import DutyShift

    migrate()
    with session_scope(write=False) as s:
        table = Table(title="directory")
        table.add_column("what")
        table.add_column("count", justify="right")
        kinds = dict(s.exec(select(OrgUnit.kind, func.count()).group_by(OrgUnit.kind)).all())
        for kind in ORG_KINDS:
            table.add_row(kind, str(kinds.get(kind, 0)))
        for label, model in (("persons", Person), ("positions", Position), ("posts", Post), ("duty shifts", DutyShift)):
            table.add_row(label, str(s.exec(select(func.count()).select_from(model)).one()))
    console.print(table)
