"""LLM narrator settings: defaults, validation at start, and the config the narrator builds from them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from zhujian.narration.llm import LLMConfig, LLMConfigError
from zhujian.settings import load_settings


@pytest.fixture(autouse=True)
def no_llm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BASE_URL", "MODEL", "API_KEY", "TIMEOUT_S", "TEMPERATURE", "MAX_TOKENS", "JSON_MODE", "STREAM"):
        monkeypatch.delenv(f"ZHUJIAN_LLM_{name}", raising=False)


def test_defaults_send_nothing() -> None:
    settings = load_settings()
    assert settings.llm_base_url is None and settings.llm_model is None and settings.llm_api_key is None
    assert settings.llm_timeout_s == 30.0
    assert settings.llm_json_mode == "json_object"
    with pytest.raises(LLMConfigError, match="ZHUJIAN_LLM_BASE_URL and ZHUJIAN_LLM_MODEL"):
        LLMConfig.from_settings(settings)


def test_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHUJIAN_LLM_BASE_URL", "http://127.0.0.1:8000/v1/")
    monkeypatch.setenv("ZHUJIAN_LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setenv("ZHUJIAN_LLM_API_KEY", "sk-test")
    monkeypatch.setenv("ZHUJIAN_LLM_TIMEOUT_S", "12.5")
    monkeypatch.setenv("ZHUJIAN_LLM_JSON_MODE", "json_schema")
    monkeypatch.setenv("ZHUJIAN_LLM_STREAM", "true")
    config = LLMConfig.from_settings()
    assert config.base_url == "http://127.0.0.1:8000/v1"
    assert config.api_key == "sk-test"
    assert config.timeout_s == 12.5 and config.deadline_s == 25.0
    assert config.json_mode == "json_schema" and config.stream is True


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ZHUJIAN_LLM_BASE_URL", "127.0.0.1:8000/v1", "must start with http:// or https://"),
        ("ZHUJIAN_LLM_TIMEOUT_S", "0", "greater than 0"),
        ("ZHUJIAN_LLM_TIMEOUT_S", "soon", "valid number"),
        ("ZHUJIAN_LLM_JSON_MODE", "grammar", "json_schema"),
        ("ZHUJIAN_LLM_TEMPERATURE", "3", "less than or equal to 2"),
        ("ZHUJIAN_LLM_MAX_TOKENS", "-5", "greater than 0"),
    ],
)
def test_bad_values_are_refused_at_start(name: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        load_settings()


def test_template_narration_loads_no_http_client() -> None:
    """The default narrator never touches the network: the HTTP client is not even imported."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, json\n"
        "from zhujian.examples import load_example\n"
        "from zhujian.domain.record import Record\n"
        "from zhujian.kb.loader import default_kb\n"
        "from zhujian.pipeline.run import build_report\n"
        "from zhujian.narration import narrate_report, narrator_for\n"
        "import zhujian.cli\n"
        "report = build_report(default_kb(), Record.model_validate(load_example('female_67_critical')))\n"
        "narrative = narrate_report(report, narrator_for('template'))\n"
        "assert narrative.source == 'template'\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('openai', 'httpx'))))\n"
    )
    src = str(Path(__file__).parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
