"""The directory file's shape (pydantic models), the built-in positions, and what an import reports."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEMO = Path(__file__).parent.parent / "demo" / "district.yaml"
CATALOGUE = Path(__file__).resolve().parents[2] / "definitions" / "positions.yaml"
PARENT_KIND = {"department": "district", "town": "district", "village": "town"}


class _M(BaseModel):
    # ids and phone numbers written without quotes arrive as ints: take them as text
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class UnitIn(_M):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    kind: str
    parent: str | None = None
    area_code: str | None = None
    vertical_line: bool = False
    duty_phone: str | None = Field(default=None, description="the unit's 24-hour duty phone (a landline or a mobile)")


class PositionIn(_M):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    leader: bool = False


class PersonIn(_M):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    mobile: str
    mobile2: str | None = None
    im_id: str | None = None
    dingtalk_user_id: str | None = Field(default=None, max_length=64, description="DingTalk userid (工作通知)")
    org_unit: str | None = None
    contact_confirmed: date | None = None
    language: Literal["zh", "en"] | None = Field(default=None, description="the texts' language; none: keep (new: zh)")


class PostIn(_M):
    position: str
    org_unit: str
    person: str
    deputy: str | None = None
    superior: str | None = None


class RosterIn(_M):
    shift_start: str = "08:30"
    days: int = Field(default=7, ge=1, le=366)
    rotation: dict[str, list[str | list[str]]]


class DirectoryIn(_M):
    org_units: list[UnitIn] = Field(default_factory=list)
    positions: list[PositionIn] = Field(default_factory=list)
    persons: list[PersonIn] = Field(default_factory=list)
    posts: list[PostIn] = Field(default_factory=list)
    roster: RosterIn | None = None


def _builtin_positions() -> tuple[PositionIn, ...]:
    """The positions call-out plans may name; definitions/positions.yaml is their one source."""
    rows = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["positions"]
    return tuple(PositionIn(**{k: r[k] for k in ("code", "name_zh", "name_en", "leader") if k in r}) for r in rows)


# district_party_secretary 区委书记, district_head 区长, deputy_district_head 副区长, dept_head,
# duty_office_head, town_party_secretary, town_head, town_flood_officer, village_flood_resp, village_head
POSITIONS: tuple[PositionIn, ...] = _builtin_positions()


class DirectoryImportError(ValueError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the directory file:\n" + "\n".join(errors))


@dataclass
class ImportReport:
    """Items in the file, and how many of them were new or changed (`changed`)."""

    org_units: int = 0
    persons: int = 0
    positions: int = 0
    posts: int = 0
    shifts: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


Where = Callable[[Sequence], str]  # a location (("persons", 5, "mobile")) -> "file:line"
