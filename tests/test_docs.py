"""Documentation keeps up with the code: every CLI command, setting and rule-condition kind is documented."""

from __future__ import annotations

from pathlib import Path

import typer

from zhujian.cli import app
from zhujian.kb.schema import _CONDITION_KEYS
from zhujian.settings import describe_settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
KB_DOC = (ROOT / "docs" / "knowledge-base.md").read_text(encoding="utf-8")


def _command_names(typer_app: typer.Typer) -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in typer_app.registered_commands}
    names |= {g.name or "" for g in typer_app.registered_groups}
    return {n.replace("_", "-") for n in names if n}


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [name for name in sorted(_command_names(app)) if f"zhujian {name}" not in README]
    assert not missing, f"commands not shown in README.md: {missing}"


def test_every_setting_is_in_the_readme() -> None:
    missing = [env for env, _default, _help in describe_settings() if env not in README]
    assert not missing, f"settings not documented in README.md: {missing}"


def test_every_condition_kind_is_documented() -> None:
    missing = [kind for kind in _CONDITION_KEYS if f"| `{kind}` |" not in KB_DOC]
    assert not missing, f"rule condition kinds not documented in docs/knowledge-base.md: {missing}"
