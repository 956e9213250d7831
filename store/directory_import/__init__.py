"""Directory import: YAML or CSV, validated as a whole, written all-or-nothing.

Every problem is reported as `file:line: path: problem`, and nothing is written while
any problem remains. Import is an upsert by id: importing the same file twice changes
nothing; the posts of an org unit in the file replace its posts. The formats are
described in docs/directory-import.md.

Modules: model.py (the file's shape), read.py (YAML, CSV), check.py (every problem at once),
write.py (upserts and the roster); this module puts them together.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import Session, func, select

from store.directory import OrgUnit
from store.directory_import.check import _check, shared_numbers
from store.directory_import.model import (
    CATALOGUE,
    DEMO,
    PARENT_KIND,
    POSITIONS,
    DirectoryImportError,
    DirectoryIn,
    ImportReport,
    PersonIn,
    PositionIn,
    PostIn,
    RosterIn,
    UnitIn,
    Where,
)
from store.directory_import.read import CSV_COLUMNS, _read_csv, _read_yaml
from store.directory_import.write import _roster, _upsert, _write
from store.roster import DutyShift

__all__ = ["CATALOGUE", "CSV_COLUMNS", "DEMO", "PARENT_KIND", "POSITIONS", "DirectoryImportError", "DirectoryIn",
           "ImportReport", "PersonIn", "PositionIn", "PostIn", "RosterIn", "UnitIn", "Where", "_check", "_read_csv",
           "_read_yaml", "_roster", "_upsert", "_write", "extend_demo_roster", "import_directory",
           "load_demo_if_empty", "shared_numbers"]


def import_directory(session: Session, path: Path, *, today: date | None = None,
                     tz: str = "Asia/Shanghai") -> ImportReport:
    """Check all of `path` and write it into `session`, or raise DirectoryImportError and write nothing.

    The roster starts on `today` (default: the duty day in progress in `tz`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        model, errors, where = _read_yaml(path)
    elif suffix == ".csv":
        model, errors, where = _read_csv(path)
    else:
        raise DirectoryImportError([f"{path.name}: unknown file type; use .yaml, .yml or .csv"])
    if model is None:
        raise DirectoryImportError(errors)
    problems, phones = _check(model, session, where)  # a CSV with bad rows: check the rest too
    if errors or problems:
        raise DirectoryImportError(errors + problems)
    if today is None and model.roster:
        now = datetime.now(ZoneInfo(tz))
        start = time.fromisoformat(model.roster.shift_start)
        today = now.date() if now.time() >= start else now.date() - timedelta(days=1)
    report = _write(session, model, phones, today or date.today(), tz)
    report.warnings = shared_numbers(session, model, where)
    return report


def load_demo_if_empty(session: Session, today: date | None = None) -> bool:
    """The demo district, when the directory is empty (`make run` on a fresh machine)."""
    if session.exec(select(OrgUnit)).first() is not None:
        return False
    import_directory(session, DEMO, today=today)
    return True


def extend_demo_roster(session: Session, now: datetime | None = None, tz: str = "Asia/Shanghai") -> int:
    """Keep the demo district's duty roster a week ahead; returns the shifts written.

    The demo's roster covers a week from its first load; a stack kept (or restarted) past that
    would have nobody on duty, so handovers and the desk would show no one. Only the demo's own
    roster is extended, and only when it runs out within two days: imported directories keep
    whatever roster their owners gave them.
    """
    model, _, _ = _read_yaml(DEMO)
    if model is None or model.roster is None or not model.org_units:
        return 0
    root = session.get(OrgUnit, model.org_units[0].id)
    if root is None or root.name != model.org_units[0].name:
        return 0  # not the demo district
    now = (now or datetime.now(UTC)).astimezone(ZoneInfo(tz))
    last = session.exec(select(func.max(DutyShift.ends_at))).one()
    last = None if last is None else (last if last.tzinfo else last.replace(tzinfo=UTC)).astimezone(ZoneInfo(tz))
    if last is not None and last > now + timedelta(days=2):
        return 0
    if last is not None and last > now:  # go on from where the roster ends: the shift in progress stays
        day = last.date()
    else:
        day = now.date() if now.time() >= time.fromisoformat(model.roster.shift_start) else now.date() - timedelta(days=1)
    return _roster(session, model.roster, day, tz)[1]
