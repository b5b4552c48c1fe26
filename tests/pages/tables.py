"""Reading the console's statistics pages back: every table with an id (`table-<name>`),
cell by cell, and the KPI cards, as a test compares them with the API and the downloads."""

from __future__ import annotations

from html.parser import HTMLParser


class Tables(HTMLParser):
    """The text of every cell of every table with an id, and the KPI values by id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: dict[str, list[str | None]] = {}
        self.kpis: dict[str, str] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._kpi: str | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id", "").startswith("table-"):
            self._table = a["id"][len("table-") :]
            self.tables[self._table] = []
            self.links[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._table and self._in_body:
            self._row = []
            self.links[self._table].append(a.get("data-href"))
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "span" and a.get("id", "").startswith("kpi-"):
            self._kpi = a["id"][len("kpi-") :]
            self.kpis[self._kpi] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            if self._row != ["暂无数据"]:
                self.tables[self._table].append(self._row)
            else:
                self.links[self._table].pop()
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None
        elif tag == "span":
            self._kpi = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._kpi:
            self.kpis[self._kpi] += data.strip()


def parse(html: str) -> Tables:
    p = Tables()
    p.feed(html)
    return p
