"""Tables as downloads: CSV (UTF-8 with a BOM, so that Excel reads the Chinese headers) and
Excel (openpyxl's write-only workbook), both streamed.

A table is its columns (a Chinese header and the kind of value) and its rows of raw values.
The CSV cells are the text people read on the page (`cell_text`); the Excel cells keep the
numbers as numbers, with a number format (a rate is a fraction shown as a percentage).
Strings that a spreadsheet would run as a formula are kept as text in both.

`list_response` is the streamed variant for the console's lists: rows come from an async
generator that reads the list in keyset batches (`core.pagination.walk`), the workbook is
written row by row (write-only: the rows go to a temporary file, not to memory), so a month of
a province costs the memory of one batch, not of the month.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from haochaping.core.choices import ChoiceSet
from haochaping.core.templating import SECURITY_HEADERS
from haochaping.core.timeutil import fmt_local, to_local

CHUNK = 64 * 1024
EMPTY = "—"
# A leading character that makes Excel or LibreOffice evaluate a CSV cell (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(ChoiceSet):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel"


class ColumnKind(ChoiceSet):
    TEXT = "text", "文本"
    COUNT = "count", "数量"
    RATE = "rate", "比率"
    SCORE = "score", "分值"
    SIGNED = "signed", "变化"
    TIME = "time", "时间"


NUMBER_FORMATS = {
    ColumnKind.COUNT: "0",
    ColumnKind.RATE: "0.00%",
    ColumnKind.SCORE: "0.00",
    ColumnKind.SIGNED: "+0;-0;0",
    ColumnKind.TIME: "yyyy-mm-dd hh:mm:ss",
}
XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Column:
    """One column of a table: its Chinese header and the kind of its values."""

    label: str
    kind: ColumnKind = ColumnKind.TEXT


def cell_text(value: Any, kind: ColumnKind = ColumnKind.TEXT) -> str:
    """A value as people read it in a table cell (and in the CSV download)."""
    if value is None or value == "":
        return EMPTY
    if kind == ColumnKind.RATE:
        return f"{float(value) * 100:.2f}%"
    if kind == ColumnKind.SCORE:
        return f"{float(value):.2f}"
    if kind == ColumnKind.SIGNED:
        return f"{int(value):+d}" if value else "0"
    if kind == ColumnKind.TIME:
        return fmt_local(value)
    return str(value)


def _csv_safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("%"))
    except ValueError:
        return False
    return True


def content_disposition(filename: str) -> str:
    """An attachment header with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    fallback = "".join(
        ch if (ch.isascii() and ch.isalnum()) or ch in "-_." else "_" for ch in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


Rows = Iterable[Sequence[Any]] | AsyncIterable[Sequence[Any]]


async def _each(rows: Rows) -> AsyncIterator[Sequence[Any]]:
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
    else:
        for row in rows:
            yield row


async def csv_chunks(columns: Sequence[Column], rows: Rows) -> AsyncIterator[bytes]:
    """The table as CSV, UTF-8 with a BOM, in chunks of about 64 KB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow([_csv_safe(c.label) for c in columns])
    async for row in _each(rows):
        writer.writerow(
            [_csv_safe(cell_text(v, c.kind)) for v, c in zip(row, columns, strict=True)]
        )
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


async def xlsx_chunks(columns: Sequence[Column], rows: Rows, *, sheet: str) -> AsyncIterator[bytes]:
    """The table as an Excel workbook of one sheet, written row by row (write-only mode keeps
    the rows on disk, not in memory) and streamed from a temporary file."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    bold = Font(bold=True)
    header = []
    for c in columns:
        cell = WriteOnlyCell(ws, value=c.label)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    async for row in _each(rows):
        cells = []
        for value, column in zip(row, columns, strict=True):
            cell = WriteOnlyCell(ws, value=_xlsx_value(value, column.kind))
            if isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            elif column.kind in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[column.kind]
            cells.append(cell)
        ws.append(cells)
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
        wb.save(out)
        out.seek(0)
        while chunk := out.read(CHUNK):
            yield chunk


def _xlsx_value(value: Any, kind: ColumnKind) -> Any:
    if value is None or value == "":
        return None
    if kind is ColumnKind.TEXT:
        return str(value)
    if kind in (ColumnKind.COUNT, ColumnKind.SIGNED):
        return int(value)
    if kind is ColumnKind.TIME:
        # Excel has no time zones: the Shanghai wall-clock time people read on the page.
        local = to_local(value)
        return local.replace(tzinfo=None) if local else None
    return float(value)


def table_response(
    *,
    filename: str,
    columns: Sequence[Column],
    rows: Rows,
    fmt: ExportFormat,
    sheet: str = "数据",
) -> StreamingResponse:
    """A download of one table: `filename` without its extension; rows are raw values in
    the order of the columns (a list, a generator, or an async generator of a query)."""
    if fmt is ExportFormat.XLSX:
        body = xlsx_chunks(columns, rows, sheet=sheet)
        media = XLSX_MEDIA
    else:
        body = csv_chunks(columns, rows)
        media = "text/csv; charset=utf-8"
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": content_disposition(f"{filename}.{fmt.value}"),
    }
    return StreamingResponse(body, media_type=media, headers=headers)


def list_response(
    *,
    filename: str,
    columns: Sequence[Column],
    rows: AsyncIterable[Sequence[Any]],
    sheet: str = "数据",
) -> StreamingResponse:
    """A console list's download as Excel, streamed: `rows` is an async generator reading the
    list in batches (the list's own query and masking, every page of the filters shown), so
    memory stays bounded however long the list. Not cached anywhere: the rows are personal
    data even masked."""
    response = table_response(
        filename=filename, columns=columns, rows=rows, fmt=ExportFormat.XLSX, sheet=sheet
    )
    response.headers["Cache-Control"] = "no-store"
    return response
