"""Run-time settings of the workbench (database, first administrator, secret key), read from `ZHUJIAN_*` variables.

Settings are built when a command or the web app starts (`load_settings()`), never at import time, so tests and
tools can pass their own values. Secrets have no usable default: the secret key must be set outside development
mode, and the first administrator is only created when its password is given.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from zhujian.domain.record import DEFAULT_RECORD_LIMITS, RecordLimits

DEFAULT_DATABASE_URL = "sqlite:///zhujian.db"
MIN_SECRET_KEY_LENGTH = 32
MIN_ADMIN_PASSWORD_LENGTH = 12

Environment = Literal["production", "development"]


class SettingsError(Exception):
    """A setting is missing or unusable for what was asked (e.g. no secret key in production mode)."""


class Settings(BaseSettings):
    """All settings, each read from the environment variable `ZHUJIAN_<NAME>` (e.g. `ZHUJIAN_DATABASE_URL`)."""

    model_config = SettingsConfigDict(env_prefix="ZHUJIAN_", extra="ignore", frozen=True)

    env: Environment = Field(
        default="production",
        description=(
            "Run mode: 'production' (default) or 'development'. Only development mode runs without a secret key "
            "(a random one per process)."
        ),
    )
    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "SQLAlchemy database URL: 'sqlite:///zhujian.db' (default, a file in the working directory) or "
            "'postgresql+psycopg://user:password@host:5432/name'. 'postgresql://' is read as psycopg 3."
        ),
    )
    admin_username: str = Field(
        default="admin",
        min_length=1,
        max_length=64,
        description="User name of the first administrator (created only when ZHUJIAN_ADMIN_PASSWORD is set).",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description=(
            "Password of the first administrator, created when the database has no user yet. No default: "
            f"without it no account is created. At least {MIN_ADMIN_PASSWORD_LENGTH} characters."
        ),
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            f"Key that signs session cookies and tokens; at least {MIN_SECRET_KEY_LENGTH} characters, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`. Required outside development mode."
        ),
    )

    audit_anchor_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs the anchors of the audit chain head (HMAC-SHA256). Default: the secret key. Keep it out "
            "of the database's reach so that someone who can rewrite the database cannot forge anchors."
        ),
    )
    audit_anchor_file: str | None = Field(
        default=None,
        description=(
            "Append-only file outside the database where each audit anchor is also written (ship it to write-once "
            "storage or a log server); `zhujian audit verify` checks it. Default: none (table anchors only)."
        ),
    )
    audit_anchor_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="Seconds between two anchors of the audit chain head while the workbench runs (default 300).",
    )
    session_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A browser session ends after this many minutes without a request (idle timeout).",
    )
    session_max_hours: float = Field(
        default=12,
        gt=0,
        le=7 * 24,
        description="A browser session ends this many hours after login, however active (absolute timeout).",
    )
    cookie_secure: bool | None = Field(
        default=None,
        description=(
            "Mark cookies `Secure` (sent over HTTPS only): 'true', 'false', or unset to decide per request (HTTPS "
            "seen directly or in X-Forwarded-Proto from a trusted proxy)."
        ),
    )
    trusted_proxies: str = Field(
        default="",
        max_length=4000,
        description=(
            "Comma-separated addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For / "
            "X-Forwarded-Proto headers are believed. Empty (default): the headers are ignored."
        ),
    )
    login_account_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description=(
            "Failed logins for one account (from any address) before each further failure delays the next try "
            "(2 s, 4 s, 8 s … up to ZHUJIAN_LOGIN_MAX_DELAY_SECONDS)."
        ),
    )
    login_address_failures: int = Field(
        default=30,
        ge=1,
        le=100000,
        description="Failed logins from one client address, across all user names, before its tries are delayed.",
    )
    login_max_delay_seconds: int = Field(
        default=300,
        ge=1,
        le=24 * 3600,
        description=(
            "The longest delay login throttling imposes; counters are forgotten 15 minutes after the last failure."
        ),
    )
    db_pool_size: int = Field(
        default=10,
        ge=1,
        le=500,
        description=(
            "Database connections per web worker process, and so the number of requests one worker process works on "
            "at once; further requests wait their turn (a few more connections are kept for health checks)."
        ),
    )
    db_pool_timeout: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description=(
            "Seconds a request may wait for its turn or a database connection before the server answers "
            "503 with Retry-After (overload), instead of letting requests pile up."
        ),
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body in bytes (413 above it); a real checkup record is 10–100 kB of JSON.",
    )
    max_record_items: int = Field(
        default=DEFAULT_RECORD_LIMITS.max_items,
        ge=1,
        description="Most items in one posted record, and in each prior visit (422 above it); real ones have 100–300.",
    )
    max_record_texts: int = Field(
        default=DEFAULT_RECORD_LIMITS.max_texts,
        ge=1,
        description="Most free texts in one posted record, and in each prior visit; real ones have 10–40.",
    )
    max_text_length: int = Field(
        default=DEFAULT_RECORD_LIMITS.max_text_length,
        ge=1,
        description="Longest free text (characters) in a posted record.",
    )
    max_prior_visits: int = Field(
        default=DEFAULT_RECORD_LIMITS.max_prior_visits,
        ge=0,
        description="Most prior visits in one posted record.",
    )
    max_page_size: int = Field(
        default=200,
        ge=1,
        le=500,
        description="Largest page (`limit`) a list request may ask for (422 above it).",
    )

    # ---- alerts and follow-up (zhujian.alerts); deadlines default to kb/data/alerts.yaml
    center_timezone: str = Field(
        default="Asia/Shanghai",
        description=(
            "IANA time zone of the center: every time the workbench shows is in it, alert deadlines in days and "
            "follow-up due dates count its local days."
        ),
    )
    center_name: str = Field(default="体检中心", max_length=100, description="Center name used in alert messages.")
    alert_class_b: bool = Field(default=True, description="Open alerts for class B results too (class A always).")
    alert_a_hours: float | None = Field(
        default=None, gt=0, description="Center deadline for notifying a class A result, in hours (KB default: 2)."
    )
    alert_b_days: int | None = Field(
        default=None,
        ge=0,
        description="Center deadline for class B, in local days after the result (0 = same day; KB default: 7).",
    )
    alert_message: str = Field(
        default="【{center}】您的体检结果（体检号 {visit_id}）需要尽快就诊或复查，请尽快与体检中心联系。",
        max_length=500,
        description="Text of e-mail / SMS alert messages; may use only {visit_id}, {level} and {center}.",
    )
    alert_email_to: str | None = Field(
        default=None, description="Default e-mail recipient of alert messages (e.g. the center's on-call desk)."
    )
    smtp_host: str | None = Field(
        default=None, description="SMTP server for alert e-mails (e-mail notifier off when unset)."
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP server port.")
    smtp_sender: str = Field(default="zhujian@localhost", description="From address of alert e-mails.")
    smtp_username: str | None = Field(default=None, description="SMTP login user (no login when unset).")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP login password.")
    sms_webhook_url: str | None = Field(
        default=None,
        description="HTTP(S) URL of the center's SMS gateway; POST JSON {to, text} (SMS notifier off when unset).",
    )
    sms_webhook_token: SecretStr | None = Field(default=None, description="Bearer token sent to the SMS gateway.")

    @field_validator("center_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"ZHUJIAN_CENTER_TIMEZONE {value!r} is not a known IANA time zone") from exc
        return value

    llm_base_url: str | None = Field(
        default=None,
        description=(
            "Base URL of an OpenAI-compatible chat-completions server for `--narrator llm`, e.g. "
            "'http://127.0.0.1:8000/v1' (vLLM), 'http://127.0.0.1:11434/v1' (Ollama). No default: without it the "
            "LLM narrator cannot start and nothing is ever sent."
        ),
    )
    llm_model: str | None = Field(
        default=None,
        description="Model name the server knows, e.g. 'Qwen/Qwen2.5-7B-Instruct'. Required for the LLM narrator.",
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key sent as a bearer token (optional; local servers usually need none)."
    )
    llm_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description=(
            "Seconds one model request may take. A whole narration (one retry included) never takes longer than "
            "about twice this; after that the template narrative is used."
        ),
    )
    llm_temperature: float = Field(default=0.2, ge=0, le=2, description="Sampling temperature of the LLM narrator.")
    llm_max_tokens: int = Field(
        default=3000, gt=0, le=32768, description="Largest answer, in tokens, the LLM narrator asks for."
    )
    llm_json_mode: Literal["json_schema", "json_object", "none"] = Field(
        default="json_object",
        description=(
            "How the server is asked for JSON: 'json_schema' (the answer schema, e.g. vLLM, DashScope), "
            "'json_object' (any JSON object; Ollama, most servers) or 'none'. The answer is validated here anyway."
        ),
    )
    llm_stream: bool = Field(
        default=False, description="Ask for a streamed answer (server-sent events) instead of one response."
    )
    llm_concurrency: int = Field(
        default=4, ge=1, le=64, description="Model requests in flight at once in `zhujian batch --narrator llm`."
    )

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, url: str) -> str:
        # psycopg 3 is the only PostgreSQL driver installed; a bare postgresql:// would ask SQLAlchemy for psycopg2.
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("llm_base_url")
    @classmethod
    def _llm_base_url(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None
        url = url.strip()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"ZHUJIAN_LLM_BASE_URL must start with http:// or https://, not {url!r}")
        return url.rstrip("/")

    @field_validator("admin_password")
    @classmethod
    def _admin_password_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_ADMIN_PASSWORD_LENGTH:
            raise ValueError(f"ZHUJIAN_ADMIN_PASSWORD must have at least {MIN_ADMIN_PASSWORD_LENGTH} characters")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"ZHUJIAN_SECRET_KEY must have at least {MIN_SECRET_KEY_LENGTH} characters")
        return value

    def anchor_key(self) -> str | None:
        """The key for audit anchors: its own setting, else the secret key (None when neither is set)."""
        if self.audit_anchor_key is not None:
            return self.audit_anchor_key.get_secret_value()
        return self.secret_key.get_secret_value() if self.secret_key is not None else None

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"ZHUJIAN_TRUSTED_PROXIES: not an address or network: {part.strip()!r}") from None
        return value

    @property
    def proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        parts = [p.strip() for p in self.trusted_proxies.split(",")]
        return tuple(ipaddress.ip_network(p, strict=False) for p in parts if p)

    @property
    def record_limits(self) -> RecordLimits:
        """The record limits the workbench validates posted records with."""
        return RecordLimits(
            max_items=self.max_record_items,
            max_texts=self.max_record_texts,
            max_text_length=self.max_text_length,
            max_prior_visits=self.max_prior_visits,
        )

    @property
    def is_development(self) -> bool:
        return self.env == "development"

    def require_secret_key(self) -> str:
        """The secret key; in development mode without one, a random key for this process (sessions end on
        restart). Raises `SettingsError` in production mode when it is not set."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        if self.is_development:
            return _development_secret_key()
        raise SettingsError(
            "ZHUJIAN_SECRET_KEY is not set: set it to a random string of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters, or set ZHUJIAN_ENV=development for a throw-away key"
        )


_DEVELOPMENT_KEY: list[str] = []


def _development_secret_key() -> str:
    # One random key per process: development sessions work until restart, and no key is ever written down.
    if not _DEVELOPMENT_KEY:
        _DEVELOPMENT_KEY.append(secrets.token_urlsafe(48))
    return _DEVELOPMENT_KEY[0]


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment; keyword arguments (field names) win over environment variables."""
    return Settings(**overrides)


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default shown, help) for every setting; secrets show no default."""
    rows: list[tuple[str, str, str]] = []
    for name, info in Settings.model_fields.items():
        default = info.get_default()
        shown = "(none)" if default is None else str(default)
        rows.append((f"ZHUJIAN_{name.upper()}", shown, info.description or ""))
    return rows
