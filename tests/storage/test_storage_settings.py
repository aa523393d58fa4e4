"""Settings: defaults, environment variables, validation, and no usable secret outside development."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from zhujian.settings import SettingsError, describe_settings, load_settings

ALL_VARIABLES = (
    "ZHUJIAN_ENV",
    "ZHUJIAN_DATABASE_URL",
    "ZHUJIAN_ADMIN_USERNAME",
    "ZHUJIAN_ADMIN_PASSWORD",
    "ZHUJIAN_SECRET_KEY",
    "ZHUJIAN_SESSION_IDLE_MINUTES",
    "ZHUJIAN_SESSION_MAX_HOURS",
    "ZHUJIAN_COOKIE_SECURE",
    "ZHUJIAN_TRUSTED_PROXIES",
    "ZHUJIAN_LOGIN_ACCOUNT_FAILURES",
    "ZHUJIAN_LOGIN_ADDRESS_FAILURES",
    "ZHUJIAN_LOGIN_MAX_DELAY_SECONDS",
    "ZHUJIAN_DB_POOL_SIZE",
    "ZHUJIAN_DB_POOL_TIMEOUT",
    "ZHUJIAN_MAX_BODY_BYTES",
    "ZHUJIAN_MAX_RECORD_ITEMS",
    "ZHUJIAN_MAX_RECORD_TEXTS",
    "ZHUJIAN_MAX_TEXT_LENGTH",
    "ZHUJIAN_MAX_PRIOR_VISITS",
    "ZHUJIAN_MAX_PAGE_SIZE",
    # zhujian.alerts
    "ZHUJIAN_CENTER_TIMEZONE",
    "ZHUJIAN_CENTER_NAME",
    "ZHUJIAN_ALERT_CLASS_B",
    "ZHUJIAN_ALERT_A_HOURS",
    "ZHUJIAN_ALERT_B_DAYS",
    "ZHUJIAN_ALERT_MESSAGE",
    "ZHUJIAN_ALERT_EMAIL_TO",
    "ZHUJIAN_SMTP_HOST",
    "ZHUJIAN_SMTP_PORT",
    "ZHUJIAN_SMTP_SENDER",
    "ZHUJIAN_SMTP_USERNAME",
    "ZHUJIAN_SMTP_PASSWORD",
    "ZHUJIAN_SMS_WEBHOOK_URL",
    "ZHUJIAN_SMS_WEBHOOK_TOKEN",
    "ZHUJIAN_LLM_BASE_URL",
    "ZHUJIAN_LLM_MODEL",
    "ZHUJIAN_LLM_API_KEY",
    "ZHUJIAN_LLM_TIMEOUT_S",
    "ZHUJIAN_LLM_TEMPERATURE",
    "ZHUJIAN_LLM_MAX_TOKENS",
    "ZHUJIAN_LLM_JSON_MODE",
    "ZHUJIAN_LLM_STREAM",
    "ZHUJIAN_LLM_CONCURRENCY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///zhujian.db"
    assert settings.env == "production"
    assert settings.admin_password is None and settings.secret_key is None
    assert settings.admin_username == "admin"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHUJIAN_DATABASE_URL", "postgresql://zj:pw@db:5432/zhujian")
    monkeypatch.setenv("ZHUJIAN_ADMIN_PASSWORD", "twelve chars!")
    monkeypatch.setenv("ZHUJIAN_SECRET_KEY", "k" * 40)
    settings = load_settings()
    # The only PostgreSQL driver installed is psycopg 3.
    assert settings.database_url == "postgresql+psycopg://zj:pw@db:5432/zhujian"
    assert settings.admin_password is not None and settings.admin_password.get_secret_value() == "twelve chars!"
    assert settings.require_secret_key() == "k" * 40
    assert "twelve" not in repr(settings) and "kkkk" not in repr(settings)


def test_no_secret_key_outside_development() -> None:
    with pytest.raises(SettingsError, match="ZHUJIAN_SECRET_KEY is not set"):
        load_settings().require_secret_key()


def test_development_gets_a_random_key_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHUJIAN_ENV", "development")
    key = load_settings().require_secret_key()
    assert len(key) >= 32
    assert load_settings().require_secret_key() == key


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("secret_key", "too short", "at least 32"),
        ("admin_password", "short", "at least 12"),
        ("env", "staging", "production"),
        ("trusted_proxies", "10.0.0.1, proxy.example", "not an address or network: 'proxy.example'"),
    ],
)
def test_invalid_values_are_refused(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_settings(**{field: value})


def test_every_setting_is_described() -> None:
    rows = describe_settings()
    names = [name for name, _, _ in rows]
    # Every setting these tests know of is described (others — LLM, alerts, audit anchors — have their own tests).
    assert set(ALL_VARIABLES) <= set(names)
    assert len(set(names)) == len(names)
    assert all(help_text for _, _, help_text in rows)
    shown = {name: default for name, default, _ in rows}
    assert shown["ZHUJIAN_SECRET_KEY"] == "(none)" and shown["ZHUJIAN_ADMIN_PASSWORD"] == "(none)"
