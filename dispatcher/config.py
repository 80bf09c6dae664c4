"""Settings: the only place that reads the environment (JIAOYING_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import secretfile

_DEV_SECRET = "dev-insecure-secret"  # public: only for tests and library use, refused by every server
ENVIRONMENTS = ("development", "production")
_MAKE_ONE = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


class UnsafeSecret(ValueError):
    """The secret key cannot protect links and sessions; the message says how to fix it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JIAOYING_", extra="ignore")

    # Embedded default: a SQLite file in the working directory.
    database_url: str = Field(default_factory=lambda: f"sqlite:///{Path.cwd() / 'jiaoying.db'}")
    broker_url: str = ""  # empty: embedded in-process worker; redis://… for Celery
    # Signs acknowledgement links and board sessions. Not set: read from ``secret_file``; neither:
    # the public development value, which `serve` and `scheduler` refuse (see require_safe_secret).
    secret_key: str = ""
    secret_file: str = ""  # empty: jiaoying.secret next to the SQLite file, else in the working directory
    public_url: str = "http://127.0.0.1:8000"
    # "development" or "production" (any case); production also refuses SQLite at start-up.
    environment: str = "development"
    max_body_bytes: int = 262_144
    site_dir: str = ""  # default site for `serve`/`demo`; empty: rosters/qingxi

    # Simulator channels: empty = record in memory; a URL = one HTTP round trip per attempt to a
    # loopback simulator server (tests and benchmarks).
    simulator_url: str = ""
    # A worker's lease on the attempts it claimed, renewed every quarter lease while it lives: a dead
    # worker's unsent attempts wait this long before the scheduler settles them (60 s once held 80 s
    # of escalations back after a SIGKILL in bench/faults.py).
    attempt_lease_seconds: float = 30.0
    # Tests and the demo only: a file holding seconds to add to the real clock, shared by every
    # process (API, scheduler, Celery workers), so a test can jump minutes ahead.
    clock_offset_file: str = ""

    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_api_base: str = ""  # override of Twilio's REST base URL (fakes, proxies); empty = Twilio's own

    # Aliyun (阿里云) SMS (Dysmsapi) and voice (Dyvmsapi). Endpoints: the providers' public hosts;
    # plain http only to loopback (fakes). Configured when the AccessKey pair is set.
    aliyun_access_key_id: str = ""
    aliyun_access_key_secret: str = ""
    aliyun_sms_sign_name: str = ""  # the approved signature (签名), e.g. 青溪县应急管理局
    aliyun_voice_show_number: str = ""  # CalledShowNumber: the number the official sees calling
    aliyun_sms_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_voice_endpoint: str = "dyvmsapi.aliyuncs.com"

    # Tencent Cloud (腾讯云) SMS and voice messages (VMS). Configured when the SecretId pair is set.
    tencent_secret_id: str = ""
    tencent_secret_key: str = ""
    tencent_region: str = "ap-guangzhou"
    tencent_sms_app_id: str = ""  # SmsSdkAppId
    tencent_sms_sign_name: str = ""
    tencent_voice_app_id: str = ""  # VoiceSdkAppid
    tencent_sms_endpoint: str = "sms.tencentcloudapi.com"
    tencent_voice_endpoint: str = "vms.tencentcloudapi.com"

    # Template codes per purpose x channel x provider (a YAML file; see docs/channels-carriers.md).
    carrier_templates: str = ""
    # Providers of a channel in the order they are tried (comma-separated); empty: every configured
    # one in the order aliyun, tencent, twilio.
    sms_providers: str = ""
    voice_providers: str = ""

    # Production only: let a channel a plan uses run on the simulator (nothing reaches a phone) instead
    # of refusing to start. Shown on the board and /readyz while it lasts.
    allow_simulators: bool = False

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
    # Messages to one person per window, per channel (e.g. "voice=5/h,voice=20/d"); a channel named
    # here replaces its provider's own documented per-number limits.
    number_limits: str = ""
    send_attempts: int = 3  # tries per hand-over for transient provider errors (jittered backoff)

    # Where the secret came from: "environment" (or a constructor argument), "file" or "default".
    _secret_origin: str = PrivateAttr("default")

    @field_validator("environment", mode="before")
    @classmethod
    def _known_environment(cls, value: Any) -> str:
        name = str(value).strip().lower()
        if name not in ENVIRONMENTS:
            raise ValueError(f"unknown environment {value!r}; accepted: {', '.join(ENVIRONMENTS)}")
        return name

    @model_validator(mode="after")
    def _secret_and_production(self) -> Settings:
        if "secret_key" in self.model_fields_set:
            self._secret_origin = "environment"
        else:
            stored = secretfile.read(self.secret_path)
            self._secret_origin = "default" if stored is None else "file"
            # Not through __setattr__: the key stays "not set" for model_fields_set and copies.
            self.__dict__["secret_key"] = _DEV_SECRET if stored is None else stored
        if self.environment == "production":
            problem = self.secret_problem()
            if problem:
                raise ValueError(problem)
            if self.database_url.startswith("sqlite"):
                raise ValueError("production mode needs PostgreSQL: set JIAOYING_DATABASE_URL")
        return self

    @property
    def secret_path(self) -> Path:
        """The secret file: JIAOYING_SECRET_FILE, else jiaoying.secret beside the SQLite file (or in
        the working directory)."""
        return Path(self.secret_file).expanduser() if self.secret_file else secretfile.default_path(self.database_url)

    @property
    def secret_origin(self) -> str:
        return self._secret_origin

    def secret_problem(self) -> str | None:
        """Why the secret key cannot protect links and sessions, with how to fix it; None if it can."""
        path = self.secret_path
        fix = (f"set JIAOYING_SECRET_KEY to at least {secretfile.MIN_LENGTH} random characters (e.g. the output of "
               f"`{_MAKE_ONE}`)")
        if self.is_sqlite or self.secret_file:
            fix += f", or leave it unset and run `jiaoying db upgrade`, which creates {path}"
        else:
            fix += ", or set JIAOYING_SECRET_FILE to a file holding it (`jiaoying db upgrade` creates that file)"
        where = "JIAOYING_SECRET_KEY" if self._secret_origin == "environment" else f"the secret file {path}"
        key = self.secret_key
        if self._secret_origin == "default":
            return f"no secret key is configured (JIAOYING_SECRET_KEY is not set and {path} does not exist): {fix}"
        if not key.strip():
            return f"{where} is empty: {fix}"
        if key == _DEV_SECRET:
            return f"{where} holds the public development secret, with which anyone can forge links: {fix}"
        if len(key) < secretfile.MIN_LENGTH:
            return f"{where} is {len(key)} characters long, shorter than {secretfile.MIN_LENGTH}: {fix}"
        return None

    def require_safe_secret(self) -> None:
        """Refuse to run a server with a missing, empty, short or development secret."""
        problem = self.secret_problem()
        if problem:
            raise UnsafeSecret(problem)

    @field_validator("rate_limits")
    @classmethod
    def _limits_parse(cls, value: str) -> str:
        from .domain.limits import parse_limits

        parse_limits(value)  # refuse a typo at start-up rather than run unlimited
        return value

    @field_validator("number_limits")
    @classmethod
    def _number_limits_parse(cls, value: str) -> str:
        from .domain.limits import parse_number_limits

        parse_number_limits(value)
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
