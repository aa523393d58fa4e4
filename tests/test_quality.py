"""Static checks as part of the suite: ruff (style, no print in library code) and mypy --strict."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install the test extras: pip install -e '.[test]'")
    return [found]


def test_ruff() -> None:
    result = subprocess.run(
        [*_tool("ruff"), "check", "src", "tests", "benchmarks", "build_backend", "setup.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict() -> None:
    result = subprocess.run([*_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_pipeline_is_pure() -> None:
    """The pipeline imports no web, database or network code (DESIGN.md)."""
    forbidden = ("fastapi", "sqlalchemy", "requests", "httpx", "urllib.request", "socket", "psycopg", "openai")
    for path in (ROOT / "src" / "zhujian" / "pipeline").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in forbidden:
            assert f"import {name}" not in text and f"from {name}" not in text, f"{path.name} imports {name}"
