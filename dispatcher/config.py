"""Settings: the only place that reads the environment (JIAOYING_*)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_DEV_SECRET = "dev-insecure-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIAOYING_", extra="ignore")

    # Embedded default: a SQLite file in the working directory.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'jiaoying.db'}")
    broker_url: str = ""  # empty: embedded in-process worker; redis://… for Celery
    secret_key: str = _DEV_SECRET
    public_url: str = "http://127.0.0.1:8000"
    # "development" lets the embedded mode run with a throw-away secret; "production" refuses it.
    environment: str = "development"
    max_body_bytes: int = 262_144
    site_dir: str = ""  # default site for `serve`/`demo`; empty: rosters/qingxi

    # Simulator channels: empty = record in memory; a URL = one HTTP round trip per attempt to a
    # loopback simulator server (tests and benchmarks).
    simulator_url: str = ""
    # How long a worker may hold an attempt it claimed before the scheduler treats it as in doubt.
    attempt_lease_seconds: float = 60.0
    # Tests and the demo only: a file holding seconds to add to the real clock, shared by every
    # process (API, scheduler, Celery workers), so a test can jump minutes ahead.
    clock_offset_file: str = ""

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_api_base: str = ""  # override of Twilio's REST base URL (fakes, proxies); empty = Twilio's own

    # IM robots: one group robot per kind; a kind whose URL is empty is not used.
    dingtalk_webhook_url: str = ""
    dingtalk_secret: str = ""
    wecom_webhook_url: str = ""
    feishu_webhook_url: str = ""
    feishu_secret: str = ""
    im_webhook_url: str = ""  # generic JSON webhook
    im_webhook_secret: str = ""

    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_timeout: float = 15.0

    broadcast_url: str = ""  # the rural emergency broadcast platform's endpoint
    broadcast_secret: str = ""

    link_ttl_hours: float = 24.0  # acknowledgement links expire (and never outlive the warning)

    # Provider limits, enforced across all workers (see dispatcher.domain.limits).
    rate_limits: str = ""  # e.g. "sms=10/s,voice=3/s,im=20/min,email=10/s"; empty = unlimited
    callee_spacing_seconds: float = 0.0  # minimum time between two voice calls to the same person
    send_attempts: int = 3  # tries per hand-over for transient provider errors (jittered backoff)

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        if self.environment == "production":
            if self.secret_key == _DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError(
                    "JIAOYING_SECRET_KEY must be set to at least 32 random characters in production "
                    f"(e.g. {secrets.token_urlsafe(32)})"
                )
            if self.database_url.startswith("sqlite"):
                raise ValueError("production mode needs PostgreSQL: set JIAOYING_DATABASE_URL")
        return self

    @field_validator("rate_limits")
    @classmethod
    def _limits_parse(cls, value: str) -> str:
        from .domain.limits import parse_limits

        parse_limits(value)  # refuse a typo at start-up rather than run unlimited
        return value

    @property
    def limits(self) -> dict[Any, Any]:
        from .domain.limits import parse_limits

        return parse_limits(self.rate_limits)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def project_root() -> Path:
    """The source checkout (for the bundled rosters/ and templates/), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "rosters").is_dir() else Path.cwd()
