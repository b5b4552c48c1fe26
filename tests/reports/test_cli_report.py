"""`haochaping report monthly`: writes and archives the report once, exports the archived
workbook on every run, and refuses bad input with the reason (exit 2)."""

from __future__ import annotations

import asyncio
import io

from openpyxl import load_workbook
from typer.testing import CliRunner

from haochaping.cli import app as cli
from haochaping.config import Settings
from haochaping.db.session import make_engine, make_sessionmaker
from haochaping.orgs import schemas as org_schemas
from haochaping.orgs import service as org_service
from tests.factories import ADMIN

runner = CliRunner()


def _region(url: str) -> None:
    async def go():
        engine = make_engine(Settings(database_url=url, _env_file=None))
        try:
            async with make_sessionmaker(engine)() as db:
                await org_service.create_region(
                    db=db,
                    actor=ADMIN,
                    data=org_schemas.RegionCreate(code="330100", name="杭州市"),
                )
                await db.commit()
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_report_monthly_writes_once_and_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    env = {
        "HAOCHAPING_DATABASE_URL": url,
        "HAOCHAPING_ENV": "test",
        "HAOCHAPING_UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    assert runner.invoke(cli, ["migrate"], env=env).exit_code == 0
    _region(url)
    args = ["report", "monthly", "--region", "330100", "--month", "2025-03"]
    first = runner.invoke(cli, [*args, "--out", "a.xlsx", "--quiet"], env=env)
    assert first.exit_code == 0, first.output
    assert "杭州市2025年3月" in first.output and "新生成并存档" in first.output
    data = (tmp_path / "a.xlsx").read_bytes()
    wb = load_workbook(io.BytesIO(data))
    assert wb.sheetnames[0] == "概况" and "窗口服务之星" in wb.sheetnames
    digest = [line for line in first.output.splitlines() if "SM3" in line][0].split("SM3 ")[1]
    assert len(digest) == 64

    again = runner.invoke(cli, [*args, "--out", "b.xlsx"], env=env)
    assert again.exit_code == 0, again.output
    assert "已存档（未替换）" in again.output and digest in again.output
    assert (tmp_path / "b.xlsx").read_bytes() == data

    for bad, code in (
        (["--region", "330100", "--month", "2025-13"], "invalid_month"),
        (["--region", "999999", "--month", "2025-03"], "region_not_found"),
        (["--region", "330100", "--month", "2999-01"], "month_not_over"),
    ):
        r = runner.invoke(cli, ["report", "monthly", *bad, "--out", "c.xlsx"], env=env)
        assert r.exit_code == 2, r.output
        assert code in r.output
    assert not (tmp_path / "c.xlsx").exists()
