"""`yingji archive …`: the sealed case files 一事一档.

    yingji archive verify FILE            check an archive offline (no database): every file against the
                                          manifest, the seal, every audit event's hash and link, every byte
    yingji archive export INCIDENT [-o F] write the sealed archive of an incident from the database, after
                                          checking it against the review.sealed audit event
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Sealed case files 一事一档: verify offline, export.", no_args_is_help=True)


@app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="The archive (casefile-….zip).", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    expect: Annotated[Optional[str], typer.Option(
        help="The archive's SHA-256 as recorded in the audit event review.sealed (checked too).")] = None,
) -> None:
    """Verify a sealed case file offline; exit 1 naming each file that was changed."""
    from store.casefile import Problem, verify_file

    result = verify_file(file)
    if expect is not None and expect.lower() != result.sha256:
        result.problems.append(Problem("(archive)", f"SHA-256 {result.sha256} is not the sealed {expect.lower()}"))
        result.ok = False
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=1))
    elif result.ok:
        m = result.manifest or {}
        typer.echo(f"case file intact: {file.name}\n  incident {m.get('incident_id')} ({m.get('title')}), sealed "
                   f"{m.get('sealed_at')} by {m.get('sealed_by')}\n  {result.files} files, {result.events} audit events "
                   f"in {len(m.get('subjects') or {})} chains\n  SHA-256 {result.sha256} "
                   "(compare with the audit event review.sealed)")
    else:
        typer.echo(f"case file BROKEN: {file.name}", err=True)
        for p in result.problems:
            typer.echo(f"  {p.file}: {p.reason}", err=True)
    if not result.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    incident: Annotated[str, typer.Argument(help="The incident id.")],
    out: Annotated[Optional[Path], typer.Option("-o", "--out", help="File to write (default: its own name).")] = None,
) -> None:
    """Write an incident's sealed case file; checks it against the audit trail first."""
    from sqlmodel import select

    from store.audit import AuditEvent
    from store.db import migrate, session_scope
    from store.review import CaseFile
    from workflows.subjects import review_subject

    migrate()
    with session_scope(write=False) as s:
        row = s.get(CaseFile, incident)
        if row is None:
            typer.echo(f"no sealed case file for incident {incident!r}", err=True)
            raise typer.Exit(2)
        sealed = s.exec(select(AuditEvent).where(AuditEvent.subject == review_subject(incident),
                                                 AuditEvent.kind == "review.sealed")).first()
        data, name = row.data, row.filename
    from store.casefile import sha256

    digest = sha256(data)
    if sealed is None or sealed.payload.get("sha256") != digest:
        typer.echo(f"the stored archive ({digest}) does not match the audit event review.sealed "
                   f"({sealed.payload.get('sha256') if sealed else 'missing'})", err=True)
        raise typer.Exit(1)
    path = out or Path(name)
    path.write_bytes(data)
    typer.echo(f"{path}: {len(data)} bytes, SHA-256 {digest} (matches review.sealed)")
