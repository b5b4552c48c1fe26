"""Table downloads (core/exports.py): CSV with a BOM and the page's text, Excel with numbers
as numbers, both streamed; formulas never run; the file name survives in UTF-8."""

from __future__ import annotations

import csv
import io
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook

from haochaping.core.exports import (
    Column,
    ColumnKind,
    ExportFormat,
    cell_text,
    content_disposition,
    table_response,
)

COLUMNS = [
    Column("单位"),
    Column("评价数", ColumnKind.COUNT),
    Column("好评率", ColumnKind.RATE),
    Column("平均分", ColumnKind.SCORE),
    Column("名次变化", ColumnKind.SIGNED),
]
ROWS = [
    ["上城区市民之家", 1234, 0.987654, 9.4567, 2],
    ['=HYPERLINK("http://x")', 0, None, None, -3],
    ["-1+2", 7, 1.0, 10, 0],
]


def serve(rows_factory) -> FastAPI:
    app = FastAPI()

    @app.get("/t")
    async def t(fmt: str):
        return table_response(
            filename="看板-趋势", columns=COLUMNS, rows=rows_factory(), fmt=ExportFormat(fmt)
        )

    return app


async def fetch(app: FastAPI, fmt: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get("/t", params={"fmt": fmt})


@pytest.mark.parametrize("source", ["list", "async"])
async def test_csv_has_a_bom_chinese_headers_and_the_page_text(source):
    async def agen():
        for row in ROWS:
            yield row

    r = await fetch(serve(lambda: list(ROWS) if source == "list" else agen()), "csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[0] == ["单位", "评价数", "好评率", "平均分", "名次变化"]
    assert lines[1] == ["上城区市民之家", "1234", "98.77%", "9.46", "+2"]
    # A formula is kept as text; an empty rate shows as on the page.
    assert lines[2] == ['\'=HYPERLINK("http://x")', "0", "—", "—", "-3"]
    assert lines[3][0] == "'-1+2"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "看板-趋势.csv"


async def test_xlsx_keeps_numbers_as_numbers_and_formulas_as_text():
    r = await fetch(serve(lambda: list(ROWS)), "xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb.active
    values = [list(row) for row in ws.iter_rows(values_only=True)]
    assert values[0] == ["单位", "评价数", "好评率", "平均分", "名次变化"]
    assert values[1] == ["上城区市民之家", 1234, 0.987654, 9.4567, 2]
    assert values[2] == ['=HYPERLINK("http://x")', 0, None, None, -3]
    assert ws.cell(row=3, column=1).data_type == "s"  # text, not a formula
    assert ws.cell(row=2, column=3).number_format == "0.00%"
    assert ws.cell(row=1, column=1).font.bold


def test_cell_text_and_content_disposition():
    assert cell_text(None, ColumnKind.RATE) == "—"
    assert cell_text(0.5, ColumnKind.RATE) == "50.00%"
    assert cell_text(0, ColumnKind.SIGNED) == "0"
    header = content_disposition("榜单 2026年11月.xlsx")
    assert 'filename="' in header and header.isascii()
    assert unquote(header.split("filename*=UTF-8''")[1]) == "榜单 2026年11月.xlsx"
