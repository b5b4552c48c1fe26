"""Settings: one validated class, read from the environment (HAOCHAPING_*) or `.env`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"


class Settings(BaseSettings):
    """Everything the service can be told from outside; injected into `create_app`."""

    model_config = SettingsConfigDict(
        env_prefix="HAOCHAPING_", env_file=".env", extra="ignore", frozen=True
    )

    env: str = Field("development", pattern="^(development|test|production)$")
    database_url: str = "sqlite+aiosqlite:///./data/haochaping.db"
    secret_key: str = DEV_SECRET
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    # Evaluation rules (jurisdiction policies refine these in a later capability).
    evaluation_window_days: int = Field(30, ge=1, le=3650)
    good_levels: tuple[int, ...] = (3, 4, 5)
    comment_max_chars: int = Field(2000, ge=10, le=20000)
    max_body_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    batch_max_items: int = Field(1000, ge=1, le=10000)
    token_ttl_seconds: int = Field(8 * 3600, ge=60)
    session_cookie_secure: bool = False
    db_pool_size: int = Field(10, ge=1)
    db_echo: bool = False

    @model_validator(mode="after")
    def _secret_in_production(self) -> Settings:
        if self.env == "production" and (
            self.secret_key == DEV_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "HAOCHAPING_SECRET_KEY must be set to a random string of 32+ characters "
                "in production"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_data_dir(self) -> None:
        """Create the folder of an SQLite file database."""
        if self.is_sqlite and ":///" in self.database_url:
            path = self.database_url.split(":///", 1)[1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
