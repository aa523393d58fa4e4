"""Run-time settings of the workbench (database, first administrator, secret key), read from `ZHUJIAN_*` variables.

Settings are built when a command or the web app starts (`load_settings()`), never at import time, so tests and
tools can pass their own values. Secrets have no usable default: the secret key must be set outside development
mode, and the first administrator is only created when its password is given.
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
