"""Reading a directory file: YAML (with line numbers from the YAML source) or CSV (one row per post)."""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from definitions.yamlsource import YamlDocument, format_loc
from store.directory_import.model import DirectoryIn, PersonIn, PostIn, UnitIn, Where


def _read_yaml(path: Path) -> tuple[DirectoryIn | None, list[str], Where]:
    try:
        doc = YamlDocument.read(path, path.name)
    except yaml.YAMLError as exc:
        mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
        msg = f"{path.name}:{mark.line + 1 if mark else '?'}: YAML syntax: {getattr(exc, 'problem', None) or exc}"
        if context and getattr(exc, "context", None) and (not mark or context.line != mark.line):
            msg += f" ({exc.context} on line {context.line + 1})"
        return None, [msg], None

    def where(loc: Sequence) -> str:
        return f"{path.name}:{doc.line_of(list(loc)) or '?'}"

    try:
        return DirectoryIn.model_validate(doc.data or {}), [], where
    except ValidationError as exc:
        return None, [str(e) for e in doc.errors_from(exc)], where


CSV_COLUMNS = ["org_unit_id", "org_unit_name", "org_unit_kind", "parent_id", "position_code", "person_id",
               "person_name", "mobile", "mobile2", "im_id", "deputy_id", "superior_id", "language",
               "dingtalk_user_id", "org_unit_duty_phone"]


def _read_csv(path: Path) -> tuple[DirectoryIn | None, list[str], Where]:
    """One row per post; an org unit or person repeated on later rows must repeat the same values."""
    errors: list[str] = []
    lines: dict[tuple, int] = {}  # (section, index) -> line
    units: dict[str, tuple[UnitIn, int]] = {}
    persons: dict[str, tuple[PersonIn, int]] = {}
    posts: list[PostIn] = []

    def where(loc: Sequence) -> str:
        return f"{path.name}:{lines.get(tuple(loc[:2]), '?')}"

    def add(table: dict, section: str, item: BaseModel, line: int) -> None:
        first = table.get(item.id)
        if first is None:
            table[item.id] = (item, line)
            lines[(section, len(table) - 1)] = line
        elif first[0] != item:
            errors.append(f"{path.name}:{line}: {section} {item.id!r} differs from line {first[1]}")

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS[:8] if c not in (reader.fieldnames or [])]
        if missing:
            return None, [f"{path.name}:1: missing columns: {', '.join(missing)}"], where
        for row in reader:
            line = reader.line_num

            def get(key: str, row: dict = row) -> str | None:
                return (row.get(key) or "").strip() or None

            try:
                add(units, "org_units", UnitIn(id=get("org_unit_id") or "", name=get("org_unit_name") or "",
                                               kind=get("org_unit_kind") or "", parent=get("parent_id"),
                                               duty_phone=get("org_unit_duty_phone")), line)
                add(persons, "persons", PersonIn(id=get("person_id") or "", name=get("person_name") or "",
                                                 mobile=get("mobile") or "", mobile2=get("mobile2"),
                                                 im_id=get("im_id"), dingtalk_user_id=get("dingtalk_user_id"),
                                                 org_unit=get("org_unit_id"),
                                                 language=get("language")), line)
                posts.append(PostIn(position=get("position_code") or "", org_unit=get("org_unit_id") or "",
                                    person=get("person_id") or "", deputy=get("deputy_id"), superior=get("superior_id")))
                lines[("posts", len(posts) - 1)] = line
            except ValidationError as exc:
                for e in exc.errors():
                    errors.append(f"{path.name}:{line}: {format_loc(e['loc'])}: {e['msg']}")
    model = DirectoryIn(org_units=[u for u, _ in units.values()], persons=[p for p, _ in persons.values()], posts=posts)
    return model, errors, where
