"""Settings: the only place that reads the environment (JIAOYING_*)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

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

    # Every setting has a description: docs/configuration.md's table is generated from them by
    # scripts/gen-config-docs (a test fails when it is out of date). ``docs_default``: how the
    # default is shown when the value alone would mislead; ``docs_same_row``: documented in the row
    # of the setting above.

    database_url: str = Field(  # embedded default: a SQLite file in the working directory
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'jiaoying.db'}",
        description="SQLAlchemy URL. PostgreSQL: `postgresql+psycopg://user:pass@host/db`",
        json_schema_extra={"docs_default": "`sqlite:///./jiaoying.db`"})
    broker_url: str = Field("", description="Redis URL for the Celery runtime; empty = embedded in-process worker")
    embedded_worker: Literal["thread", "process"] = Field(
        "thread", description="embedded mode (`serve` without a broker): `thread` runs the scheduler and the worker as "
                              "threads of `serve`; `process` runs them as child processes of `serve` (a scheduler "
                              "and `JIAOYING_EMBEDDED_WORKER_PROCESSES` workers), so the API, the timers and the "
                              "sending each have a core — for county-scale fan-outs on a machine with two or more "
                              "cores ([engine.md](engine.md#the-embedded-runtime))")
    embedded_worker_processes: int = Field(
        0, ge=0, le=16, description="with `JIAOYING_EMBEDDED_WORKER=process`: how many worker processes send",
        json_schema_extra={"docs_default": "0: one per CPU core"})
    # Not set: read from ``secret_file``; neither: the public development value, which `serve` and
    # `scheduler` refuse (see require_safe_secret).
    secret_key: str = Field(
        "", description="signs acknowledgement links, board sessions and the record; at least 32 random characters. "
                        "`serve`, `scheduler` and Celery workers refuse a missing, empty, short or development secret "
                        "(only `demo` makes a throw-away one) — see [security.md](security.md)",
        json_schema_extra={"docs_default": "read from the secret file"})
    secret_file: str = Field(
        "", description="where `jiaoying db upgrade` writes a random secret (mode 0600) when none is set, and where "
                        "the secret is read from",
        json_schema_extra={"docs_default": "`jiaoying.secret` beside the SQLite file, else in the working directory"})
    environment: str = Field(
        "development", description="`development` or `production` (any other value is refused); `production` also "
                                   "refuses SQLite at start-up")
    public_url: str = Field("http://127.0.0.1:8000",
                            description="the address webhooks and acknowledgement links are built on")
    max_body_bytes: int = Field(
        262_144, description="largest API body accepted (413 beyond, refused before it is read); webhooks and board "
                             "forms are capped at 64 KiB")
    site_dir: str = Field(
        "", description="not used at present: `jiaoying demo` always loads the sample county `rosters/qingxi`, and "
                        "the other commands take the site folder as an argument")

    twilio_account_sid: str = Field(
        "", description="Twilio SMS and voice; all three set = the real adapters, else the simulators "
                        "([docs/channels-twilio.md](channels-twilio.md))")
    twilio_auth_token: str = Field("", json_schema_extra={"docs_same_row": True})
    twilio_from_number: str = Field("", json_schema_extra={"docs_same_row": True})
    twilio_api_base: str = Field(
        "", description="override of Twilio's REST base URL, for fakes and proxies; empty = Twilio's own")

    # Aliyun (阿里云) SMS (Dysmsapi) and voice (Dyvmsapi). Configured when the AccessKey pair is set.
    aliyun_access_key_id: str = Field(
        "", description="Aliyun SMS and voice: both set = the Aliyun adapters "
                        "([channels-aliyun.md](channels-aliyun.md))")
    aliyun_access_key_secret: str = Field("", json_schema_extra={"docs_same_row": True})
    aliyun_sms_sign_name: str = Field(  # e.g. 青溪县应急管理局
        "", description="the approved SMS signature (签名); the number officials see calling (`CalledShowNumber`)")
    aliyun_voice_show_number: str = Field("", json_schema_extra={"docs_same_row": True})
    aliyun_sms_endpoint: str = Field("dysmsapi.aliyuncs.com",
                                     description="the providers' hosts; plain http only to loopback (fakes)")
    aliyun_voice_endpoint: str = Field("dyvmsapi.aliyuncs.com", json_schema_extra={"docs_same_row": True})

    # Tencent Cloud (腾讯云) SMS and voice messages (VMS). Configured when the SecretId pair is set.
    tencent_secret_id: str = Field(
        "", description="Tencent Cloud SMS and voice messages ([channels-tencent.md](channels-tencent.md))")
    tencent_secret_key: str = Field("", json_schema_extra={"docs_same_row": True})
    tencent_region: str = Field("ap-guangzhou", json_schema_extra={"docs_same_row": True})
    tencent_sms_app_id: str = Field(
        "", description="the SMS application (SmsSdkAppId) and its approved signature; the voice application "
                        "(VoiceSdkAppid)")
    tencent_sms_sign_name: str = Field("", json_schema_extra={"docs_same_row": True})
    tencent_voice_app_id: str = Field("", json_schema_extra={"docs_same_row": True})
    tencent_sms_endpoint: str = Field("sms.tencentcloudapi.com",
                                      description="the providers' hosts; plain http only to loopback (fakes)")
    tencent_voice_endpoint: str = Field("vms.tencentcloudapi.com", json_schema_extra={"docs_same_row": True})

    carrier_templates: str = Field(
        "", description="the YAML file mapping purpose × channel × provider to an approved template code and its "
                        "variables ([channels-carriers.md](channels-carriers.md))")
    sms_providers: str = Field(
        "", description="the providers of a channel in the order they are tried (`aliyun,tencent,twilio`)",
        json_schema_extra={"docs_default": "empty: every configured one, in the order aliyun, tencent, twilio"})
    voice_providers: str = Field("", json_schema_extra={"docs_same_row": True})

    allow_simulators: bool = Field(
        False, description="production only: run a plan's channel that has no provider on the simulator instead of "
                           "refusing to start; `/readyz` and the board say these messages reach no phone")

    # IM robots: one group robot per kind; a kind whose URL is empty is not used.
    dingtalk_webhook_url: str = Field("", description="DingTalk group robot (signed)")
    dingtalk_secret: str = Field("", json_schema_extra={"docs_same_row": True})
    wecom_webhook_url: str = Field("", description="WeCom group robot")
    feishu_webhook_url: str = Field("", description="Feishu custom bot (signed)")
    feishu_secret: str = Field("", json_schema_extra={"docs_same_row": True})
    im_webhook_url: str = Field(
        "", description="generic JSON webhook (HMAC-signed); any IM URL set = the real IM adapter, posting to every "
                        "configured robot")
    im_webhook_secret: str = Field("", json_schema_extra={"docs_same_row": True})

    smtp_host: str = Field("", description="e-mail through aiosmtplib")
    smtp_port: int = Field(587, json_schema_extra={"docs_same_row": True})
    smtp_username: str = Field("", json_schema_extra={"docs_same_row": True})
    smtp_password: str = Field("", json_schema_extra={"docs_same_row": True})
    smtp_from: str = Field("", json_schema_extra={"docs_same_row": True})
    smtp_starttls: bool = Field(True, json_schema_extra={"docs_same_row": True})
    smtp_timeout: float = Field(15.0, json_schema_extra={"docs_same_row": True})

    broadcast_url: str = Field(
        "", description="the rural emergency broadcast platform ([contract](channels-im-email-broadcast.md))")
    broadcast_secret: str = Field("", json_schema_extra={"docs_same_row": True})

    forwarding_file: str = Field(
        "", description="the YAML file naming where red and orange warnings are forwarded as CAP (the city, "
                        "neighbouring counties) and who gets each call-out's settled result; it holds their keys "
                        "(or names the variables that do). Empty = no forwarding "
                        "([forwarding.md](forwarding.md); `jiaoying forwarding check`)")

    link_ttl_hours: float = Field(24.0, description="acknowledgement links expire (never later than the warning)")

    # Provider limits, enforced across all workers (see dispatcher.domain.limits).
    rate_limits: str = Field(
        "", description="provider limits per channel, enforced across all workers: "
                        "`sms=10/s,voice=3/s,im=20/min,email=10/s`; a channel named here overrides its provider's "
                        "default",
        json_schema_extra={"docs_default": "empty: each provider's own documented limit (the IM robots': 20/min for "
                                           "DingTalk)"})
    number_limits: str = Field(
        "", description="messages to one number per window, per channel, as the providers count them: "
                        "`voice=1/min,voice=5/h,voice=20/d,sms=10/d`; a message over one waits until it is under; a "
                        "channel named here replaces its provider's defaults",
        json_schema_extra={"docs_default": "empty: each provider's own documented limits per number (Aliyun voice: "
                                           "1/min, 5/h, 20/d)"})
    callee_spacing_seconds: float = Field(
        0.0, description="minimum time between two voice calls to the same number of a person (e.g. `60` for "
                         "providers that allow one call a minute per number)")
    send_attempts: int = Field(
        3, description="tries per hand-over for transient provider errors (jittered exponential backoff, at least the "
                       "provider's Retry-After); after them the attempt waits for a later try, never failed for good "
                       "([engine.md](engine.md))")

    simulator_url: str = Field(
        "", description="simulator channels: empty = record in memory (the last 50,000 sends per process); "
                        "a URL = one HTTP round trip per attempt to a loopback simulator (tests, benchmarks)")
    # 60 s once held 80 s of escalations back after a SIGKILL in bench/faults.py.
    attempt_lease_seconds: float = Field(
        30.0, description="a worker's lease on the attempts it claimed, renewed every quarter lease while it sends; a "
                          "worker that stops renewing (a dead one) has its attempts settled by the scheduler")
    chromium_path: str = Field(
        "", description="the Chromium the board renders the 一事一档 PDF with (`/board/warnings/{id}/print.pdf`), "
                        "driven through Playwright (the `playwright` Python package must be installed; it never "
                        "downloads a browser). Neither found: the PDF download answers 503 saying so, and the "
                        "printable page still prints from the browser",
        json_schema_extra={"docs_default": "empty: `chromium` (or `chromium-browser`) on the `PATH`"})
    # Shared by every process (API, scheduler, Celery workers).
    clock_offset_file: str = Field(
        "", description="tests only: seconds added to the clock, shared by every process, so tests can jump minutes "
                        "ahead")

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

    def worker_processes(self) -> int:
        """How many worker processes the embedded runtime starts (0: it runs threads instead)."""
        if self.embedded_worker != "process":
            return 0
        return self.embedded_worker_processes or max(1, len(os.sched_getaffinity(0)))

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
