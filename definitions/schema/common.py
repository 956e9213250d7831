"""Types shared by every definition kind: durations, levels, channels."""
from __future__ import annotations

import re
from datetime import timedelta
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_DURATION = timedelta(days=366)


def parse_duration(value: object) -> timedelta:
    """`30s`, `10m`, `1h`, `7d` (also timedelta, seconds, or ISO 8601 from a serialised snapshot)."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise ValueError("a duration is written like 30s, 10m, 1h or 7d")
    elif isinstance(value, int | float):
        result = _seconds(value, value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        result = _seconds(int(m.group(1)) * _UNITS[m.group(2)], value)
    elif isinstance(value, str) and value.startswith("P"):
        from pydantic import TypeAdapter

        result = TypeAdapter(timedelta).validate_python(value)
    else:
        raise ValueError(f"{value!r} is not a duration: write it like 30s, 10m, 1h or 7d")
    if result <= timedelta(0):
        raise ValueError(f"duration {value!r} must be positive")
    if result > MAX_DURATION:
        raise ValueError(f"duration {value!r} is longer than a year")
    return result


def _seconds(seconds: float, value: object) -> timedelta:
    """A number of seconds as a timedelta, refused as `parse_duration` refuses (a ValueError, a 422 in a request)
    when it is not a number (NaN, Infinity) or too long for one: timedelta raised OverflowError there, a 500."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} is not a duration: write it like 30s, 10m, 1h or 7d")
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {value!r} is longer than a year")
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be positive")
    return timedelta(seconds=seconds)


def format_duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def duration_zh(td: timedelta) -> str:
    """A duration as Chinese reads it: 10分钟, 2小时, 1天 (format_duration writes the definitions' 10m, 2h, 1d)."""
    seconds = int(td.total_seconds())
    for unit, word in (("d", "天"), ("h", "小时"), ("m", "分钟")):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{word}"
    return f"{seconds}秒"


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)]


class Level(str, Enum):
    """Warning colour levels, lowest first (CAP/GB: 蓝 < 黄 < 橙 < 红)."""

    blue = "blue"
    yellow = "yellow"
    orange = "orange"
    red = "red"

    @property
    def rank(self) -> int:
        return list(Level).index(self)

    @property
    def zh(self) -> str:
        return {"blue": "蓝色", "yellow": "黄色", "orange": "橙色", "red": "红色"}[self.value]

    def __ge__(self, other: "Level") -> bool:  # type: ignore[override]
        return self.rank >= Level(other).rank

    def __gt__(self, other: "Level") -> bool:  # type: ignore[override]
        return self.rank > Level(other).rank

    def __le__(self, other: "Level") -> bool:  # type: ignore[override]
        return self.rank <= Level(other).rank

    def __lt__(self, other: "Level") -> bool:  # type: ignore[override]
        return self.rank < Level(other).rank


class Channel(str, Enum):
    sms = "sms"
    voice = "voice"
    im = "im"


class Strict(BaseModel):
    """Base of every definition model: unknown keys are errors, not silently ignored; a float is finite (a threshold
    of `.inf` would reach the bulletin's JSON, which PostgreSQL refuses)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # YAML's .nan and .inf are floats
