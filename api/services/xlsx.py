"""Excel workbooks of the lists (openpyxl): one sheet, a bold header row, times as Excel datetimes in the
duty office's local time (Excel knows no zones), column widths to fit, the header frozen and filtered.
The console's exports (api/console/exports.py) say which columns; this writes them."""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from config import get_settings

TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # characters a worksheet may not hold


def _cell(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str):
        return _ILLEGAL.sub("", value)
    return value


def workbook(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], tz: str | None = None) -> bytes:
    """The .xlsx bytes of one sheet named `title` with these headers and rows."""
    zone = ZoneInfo(tz or get_settings().timezone)
    wb = Workbook()
    ws = wb.active
    ws.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "Sheet1"
    ws.append(list(headers))
    for c in ws[1]:
        c.font = Font(bold=True)
    widths = [max(6, _width(h)) for h in headers]
    for row in rows:
        values = [_cell(v, zone) for v in row]
        ws.append(values)
        for c in ws[ws.max_row]:
            if isinstance(c.value, str) and c.value.startswith("="):
                c.data_type = "s"  # text as typed (a title, a reason), never a formula
        for i, v in enumerate(values):
            if i < len(widths):
                widths[i] = min(60, max(widths[i], 19 if isinstance(v, datetime) else _width(v)))
    for row in ws.iter_rows(min_row=2):
        for c in row:
            if isinstance(c.value, datetime):
                c.number_format = TIME_FORMAT
    for i, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = w + 2
    ws.freeze_panes = "A2"
    if ws.max_row > 1:
        ws.auto_filter.ref = ws.dimensions
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _width(value: Any) -> int:
    text = "" if value is None else str(value)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)  # CJK characters take two columns
