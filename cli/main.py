"""The `yingji` command line.

    yingji run                      the embedded stack: Temporal dev server + worker + API
    yingji worker | yingji api      the pieces alone (the production layout)
    yingji config                   the effective configuration, secrets masked
    yingji definitions check [DIR]  validate the definitions library
    yingji audit verify             verify the audit hash chains
    yingji archive verify FILE      check a sealed case file 一事一档 offline (no database)
    yingji token create --role R    create an API bearer token (printed once)
    yingji migrate                  apply the database migrations
    yingji duty …                   schedules (list/sync/pause/unpause/trigger), drills, handovers, contacts

Imports are lazy so that `yingji --help` stays fast and `yingji api` does not
load the worker (and the other way round).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="yingji",
    help="yingji 应急: emergency-duty procedures as durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
definitions_app = typer.Typer(help="The definitions library (call-out plans, response plans, …).", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
token_app = typer.Typer(help="API bearer tokens.", no_args_is_help=True)
app.add_typer(definitions_app, name="definitions")
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")


def configure_logging(level: str = "info") -> None:
    """structlog, concise: `HH:MM:SS level event key=value` on stderr."""
    import logging

    import structlog

    from api.security import install_log_masking, structlog_masker

    colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog_masker(),  # phone numbers, tokens, signed links and secrets never reach the log
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=colors),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    install_log_masking()


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:  # piped: do not squeeze tables into 80 columns
        console = Console(width=160)
    return console


# ------------------------------------------------------------------ run, worker, api


@app.command("run")
def run_cmd() -> None:
    """Run the embedded stack: Temporal dev server (unless YINGJI_TEMPORAL_ADDRESS is set), worker and API.

    State lives in YINGJI_DATA_DIR (Temporal's SQLite file and yingji's database); Ctrl-C stops everything,
    the next `yingji run` carries on where it stopped.
    """
    configure_logging()
    from cli.stack import run_stack

    raise typer.Exit(run_stack())


@app.command("worker")
def worker_cmd() -> None:
    """Run the Temporal worker (every workflow and activity) until SIGINT/SIGTERM."""
    import asyncio
    import signal

    configure_logging()
    import structlog

    from config import get_settings
    from worker import run_worker

    log = structlog.get_logger("yingji.worker")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_signal() -> None:
            if stop.is_set():  # a second signal: do not wait for a graceful shutdown
                task.cancel()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        with contextlib.suppress(asyncio.CancelledError):
            await run_worker(stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:  # Temporal unreachable, namespace missing, …
        settings = get_settings()
        log.error("worker failed", error=str(exc),
                  temporal=settings.temporal_address or f"127.0.0.1:{settings.temporal_port}")
        raise typer.Exit(1) from None
    log.info("worker stopped")
    # The SDK's Rust threads can still call into Python while the interpreter finalizes
    # ("Fatal Python error: PyGILState_Release"); the worker has shut down, so skip finalization.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command("api")
def api_cmd(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default: YINGJI_API_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default: YINGJI_API_PORT).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Processes serving the API on the one port (uvicorn's "
                                                              "workers; each takes answers, README: how many).")] = 1,
) -> None:
    """Run the HTTP API and the web console (uvicorn)."""
    import uvicorn

    from config import get_settings

    from api.server import uvicorn_options

    configure_logging()
    settings = get_settings()
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run("api.app:create_app", factory=True, host=host or settings.api_host,
                    port=port or settings.api_port, log_level=log_level, access_log=access_log,
                    workers=workers, **uvicorn_options(settings))


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply the database migrations (the API, the worker and `yingji run` do it too)."""
    from config import get_settings
    from store.db import migrate

    migrate()
    url = get_settings().masked()["database (effective)"]
    typer.echo(f"database is up to date: {url}")


# ------------------------------------------------------------------ config


@app.command("config")
def config_cmd() -> None:
    """Print the effective configuration (environment variables YINGJI_*), secrets masked."""
    from rich.table import Table

    from config import Settings, get_settings

    settings = get_settings()
    table = Table(title="yingji configuration", title_justify="left")
    table.add_column("environment variable", style="bold", overflow="fold")
    table.add_column("value", overflow="fold", ratio=1)
    table.add_column("from")
    fields = Settings.model_fields
    for name, value in settings.masked().items():
        if name in fields:
            env = f"YINGJI_{name.upper()}"
            source = "env" if env in os.environ else "default"
        else:
            env, source = f"({name})", "derived"
        shown = "" if value is None else str(value)
        table.add_row(env, shown, source)
    _console().print(table)


# ------------------------------------------------------------------ definitions


@definitions_app.command("check")
def definitions_check(
    directory: Annotated[Optional[Path], typer.Argument(help="Definitions folder (default: YINGJI_DEFINITIONS_DIR).")] = None,
) -> None:
    """Validate every definition; print each error as `file:line: path: reason`; exit 1 on any."""
    from rich.table import Table

    from config import get_settings
    from definitions.loader import load_library, provider_errors

    settings = get_settings()
    root = directory or settings.definitions_dir
    lib = load_library(root)
    lib.errors.extend(provider_errors(lib, settings.sms_gateway, settings.voice_gateway))
    if lib.errors:
        for err in lib.errors:
            typer.echo(str(err))
        n = len(lib.errors)
        typer.echo(f"{n} error{'s' if n != 1 else ''} in {root}", err=True)
        raise typer.Exit(1)
    table = Table(title=f"definitions in {root}", title_justify="left")
    table.add_column("kind", no_wrap=True)
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("name")
    table.add_column("version", no_wrap=True)
    table.add_column("file", overflow="fold")
    if lib.positions is not None:
        table.add_row("positions", "-", f"{len(lib.positions.codes())} positions", "", "positions.yaml")
    count = 0
    for kind, items in sorted(lib.items.items()):
        for ident, loaded in sorted(items.items()):
            model = loaded.model
            name = getattr(model, "name_zh", None) or getattr(model, "name", None) or getattr(model, "name_en", "") or ""
            table.add_row(kind, ident, str(name), loaded.version, os.path.relpath(loaded.file, root))
            count += 1
    _console().print(table)
    typer.echo(f"ok: {count} definition{'s' if count != 1 else ''}, no errors")


# ------------------------------------------------------------------ audit


@audit_app.command("verify")
def audit_verify(
    subject: Annotated[Optional[str], typer.Option(help="Verify one subject's chain only.")] = None,
) -> None:
    """Verify the hash chains; exit 1 naming the first bad sequence number and the reason."""
    from store.audit import verify
    from store.db import migrate, session_scope

    migrate()
    with session_scope(write=False) as session:
        result = verify(session, subject)
    scope = f"subject {subject!r}" if subject else "all subjects"
    if result.ok:
        typer.echo(f"audit chain intact ({scope}): {result.events} events in {result.chains} chains "
                   f"({result.subjects} subjects)")
        return
    seq = result.first_bad_seq if result.first_bad_seq is not None else "-"
    typer.echo(f"audit chain BROKEN ({scope}): first bad sequence number {seq} "
               f"(subject {result.subject!r}, chain {result.chain!r}): {result.reason}")
    raise typer.Exit(1)


# ------------------------------------------------------------------ tokens


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(
        help="duty_staff, duty_cadre, duty_chief, leading_leader, commander, supervisor or admin.")],
    person: Annotated[Optional[str], typer.Option(help="Person id from the directory.")] = None,
    label: Annotated[str, typer.Option(help="A note: who or what uses the token.")] = "",
) -> None:
    """Create a bearer token and print it once (only its hash is stored)."""
    from sqlalchemy.exc import IntegrityError

    from store.auth import ROLES, create_token, lookup_token, record
    from store.db import migrate, session_scope
    from workflows.kit.events import Access

    if role not in ROLES:
        typer.echo(f"unknown role {role!r}; roles: {', '.join(ROLES)}", err=True)
        raise typer.Exit(2)
    migrate()
    try:
        with session_scope() as session:
            if person is not None:
                from store.directory import Person

                if session.get(Person, person) is None:
                    typer.echo(f"unknown person {person!r} (see `yingji directory` / GET /api/directory/persons)", err=True)
                    raise typer.Exit(2)
            token = create_token(session, role, person, label)
            session.flush()
            row = lookup_token(session, token)
            if row is not None:  # in the audit trail, as the console's users page records it
                record(session, Access.TOKEN_CREATED, f"cli:{os.environ.get('USER') or 'yingji'}", row, "cli")
    except IntegrityError as exc:
        typer.echo(f"could not store the token: {exc.orig}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"token for role {role}{f', person {person}' if person else ''} "
               "(shown once; only its hash is stored):", err=True)
    typer.echo(token)


# ------------------------------------------------------------------ sub-apps written in their own modules


def _optional_module(name: str) -> ModuleType | None:
    """The module if it exists; an ImportError *inside* it is not hidden."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


# `yingji directory import FILE` … (cli/directory.py); mounted once that module exists.
_directory = _optional_module("cli.directory")
if _directory is not None:
    app.add_typer(_directory.app, name="directory")

# `yingji warn …` and `yingji callout …` (cli/callout.py); mounted once that module exists.
_callout = _optional_module("cli.callout")
if _callout is not None:
    if hasattr(_callout, "warn"):
        app.command("warn")(_callout.warn)
    if hasattr(_callout, "app"):
        app.add_typer(_callout.app, name="callout")

# `yingji archive verify FILE` and `yingji archive export INCIDENT` (cli/archive.py): the sealed case files.
_archive = _optional_module("cli.archive")
if _archive is not None:
    app.add_typer(_archive.app, name="archive")

# `yingji duty …` (cli/duty.py): schedules, drills, handovers, spot checks, contact freshness.
_duty = _optional_module("cli.duty")
if _duty is not None:
    app.add_typer(_duty.app, name="duty")

# `yingji resources import FILE` and `yingji resources alerts` (cli/resources.py): the resource register.
_resources = _optional_module("cli.resources")
if _resources is not None:
    app.add_typer(_resources.app, name="resources")


if __name__ == "__main__":
    app()
