"""What `yingji directory import` and `yingji resources import` share: an all-or-nothing import of a file in one
transaction, its problems listed one per line, or a table of what was in the file and what was new or changed."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one problem per line, never wrapped


def run_import(file: Path, importer: Callable[[Any, Path], Any], refused: type[Exception],
               rows: Callable[[Any], list[tuple[str, int, int]]]) -> Any:
    """`importer(session, file)` in one transaction; `refused` (with `.errors`) lists every problem and exits 1;
    otherwise `rows(report)` (label, in file, new or changed) printed as a table. Returns the report."""
    from store.db import migrate, session_scope

    migrate()
    try:
        with session_scope() as s:
            report = importer(s, file)
    except refused as exc:
        for line in exc.errors:  # type: ignore[attr-defined]
            errors.print(line, style="red", highlight=False, markup=False)
        errors.print(f"{len(exc.errors)} problem(s) in {file.name}; nothing was imported",  # type: ignore[attr-defined]
                     style="bold red")
        raise typer.Exit(1) from None
    table = Table(title=f"imported {file.name}")
    table.add_column("")
    for col in ("in file", "new or changed"):
        table.add_column(col, justify="right")
    for label, total, changed in rows(report):
        table.add_row(label, str(total), str(changed))
    console.print(table)
    return report
