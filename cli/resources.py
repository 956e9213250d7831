"""`yingji resources import FILE` and `yingji resources alerts`: the resource register 应急资源."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The resource register: teams, equipment, depots and stock, experts, shelters.",
                  no_args_is_help=True)
console = Console()


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or CSV (docs/resources-import.md)")],
) -> None:
    """Import a register file, all or nothing; every problem is listed with its line."""
    from cli.imports import run_import
    from store.resources_import import RegisterImportError, import_register

    run_import(file, import_register, RegisterImportError, lambda r: [
        (key, r.counts.get(key, 0), r.changed.get(key, 0))
        for key in ("teams", "equipment", "depots", "stock", "experts", "shelters")])


@app.command("alerts")
def alerts() -> None:
    """Stock lines below their minimum or past their expiry date."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from config import get_settings
    from store.db import migrate, session_scope
    from store.resources import stock_alerts

    migrate()
    today = datetime.now(ZoneInfo(get_settings().timezone)).date()
    with session_scope(write=False) as s:
        found = stock_alerts(s, today)
    table = Table(title=f"stock alerts on {today.isoformat()}")
    for col in ("depot", "item", "quantity", "minimum", "expiry", "flags"):
        table.add_column(col)
    for a in found:
        table.add_row(f"{a.depot_name} ({a.depot_id})", a.item, f"{a.quantity:g} {a.unit}", f"{a.minimum:g}",
                      a.expiry.isoformat() if a.expiry else "", ", ".join(a.flags))
    console.print(table)
