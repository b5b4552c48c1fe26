"""The monthly report as an Excel workbook (openpyxl): one sheet per section, the overview
first, numbers stored as numbers with their display format (rates as percentages)."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

if TYPE_CHECKING:
    from haochaping.reports.service import Section

NUMBER_FORMATS = {"rate": "0.00%", "score": "0.000", "int": "0"}
_SHEET_BAD = re.compile(r"[\[\]\*\?/\\:]")
MAX_WIDTH = 40


def sheet_title(title: str, used: set[str]) -> str:
    """A valid, unique sheet name (at most 31 characters, none of []*?/\\:)."""
    base = _SHEET_BAD.sub("-", title)[:31] or "表"
    name, n = base, 2
    while name in used:
        suffix = f"({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(name)
    return name


def _width(value: Any) -> int:
    text = "" if value is None else str(value)
    # A CJK character is about two Latin ones wide.
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def render(content: dict[str, Any], sections: list[Section]) -> bytes:
    """The workbook's bytes: the report's title, region, month and time of writing on top of
    the first sheet, each section's note under its title. Written in openpyxl's write-only
    mode (rows streamed, a province's staff ranking is tens of thousands of rows)."""
    wb = Workbook(write_only=True)
    used: set[str] = set()
    for index, section in enumerate(sections):
        ws = wb.create_sheet(sheet_title(section.title, used))
        top: list[list[Any]] = []
        if index == 0:
            top.append([content["title"]])
            top.append(
                [
                    f"地区：{content['region_name']}（{content['region_code']}）",
                    f"月份：{content['month']}",
                    f"生成时间：{content['generated_at']}",
                ]
            )
        top.append([section.title])
        if section.note:
            top.append([section.note])
        widths = [_width(name) for name, _ in section.columns]
        for row in section.rows:
            for c, value in enumerate(row[: len(widths)]):
                widths[c] = max(widths[c], _width(value))
        # Column widths and the frozen header go before the first row in write-only mode.
        for c, w in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(c)].width = min(MAX_WIDTH, w + 2)
        ws.freeze_panes = f"A{len(top) + 3}"
        for n, line in enumerate(top):
            cells: list[Any] = list(line)
            if n == 0:
                cells[0] = _styled(ws, cells[0], font=TITLE_FONT)
            ws.append(cells)
        ws.append([])
        ws.append([_styled(ws, name, font=BOLD, center=True) for name, _ in section.columns])
        formats = [NUMBER_FORMATS.get(fmt) for _, fmt in section.columns]
        for r, row in enumerate(section.rows):
            out: list[Any] = []
            for c, value in enumerate(row):
                fmt = formats[c] if c < len(formats) else None
                if section.row_formats is not None and c == 1:
                    fmt = NUMBER_FORMATS.get(section.row_formats[r])
                if fmt is not None and isinstance(value, int | float):
                    out.append(_styled(ws, value, number_format=fmt))
                else:
                    out.append(value)
            ws.append(out)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


BOLD = Font(bold=True)
TITLE_FONT = Font(bold=True, size=14)


def _styled(
    ws: Any,
    value: Any,
    *,
    font: Font | None = None,
    center: bool = False,
    number_format: str | None = None,
) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    if font is not None:
        cell.font = font
    if center:
        cell.alignment = Alignment(horizontal="center")
    if number_format is not None:
        cell.number_format = number_format
    return cell


def header_row(sheet: Any) -> int:
    """The row (1-based) of a section's column headers in a sheet this module wrote: the
    first row after the blank line under the title block."""
    for row in range(1, sheet.max_row + 1):
        if all(cell.value is None for cell in sheet[row]):
            return row + 1
    return 1
