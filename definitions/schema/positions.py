"""The catalogue of positions that definitions may name (definitions/positions.yaml)."""
from __future__ import annotations

from pydantic import Field

from definitions.schema.common import Strict


class PositionDef(Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name_zh: str
    name_en: str
    level: str = Field(pattern=r"^(district|department|town|village|duty_office)$")
    leader: bool = False


class PositionCatalogue(Strict):
    positions: list[PositionDef] = Field(min_length=1)

    def codes(self) -> set[str]:
        return {p.code for p in self.positions}
