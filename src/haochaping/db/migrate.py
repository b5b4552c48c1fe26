"""Programmatic Alembic: upgrade to head and check that the models match the migrations."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from haochaping.config import Settings
from haochaping.db.crypto import DataKeys

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic configuration pointing at the package's migrations and the database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    # Data migrations encrypt and hash identifiers: env.py gives its engine these keys.
    cfg.attributes["hcp_keys"] = DataKeys.from_settings(settings)
    return cfg


def upgrade(settings: Settings) -> None:
    """Bring the database schema to the newest revision (call outside an event loop)."""
    settings.ensure_data_dir()
    command.upgrade(alembic_config(settings), "head")


def check(settings: Settings) -> None:
    """Raise if the models have changes that no migration carries."""
    command.check(alembic_config(settings))
