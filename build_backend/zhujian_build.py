"""The project's build backend: setuptools, plus mypyc when a compiled engine is asked for.

`ZHUJIAN_COMPILE=1 pip install .` compiles the engine's modules (listed in pyproject.toml under
`[tool.zhujian.compiled]`) to C extensions with mypyc. mypy, which carries mypyc, and the packages whose types it
reads (`build-requires` in the same table) are then added to the isolated build environment. Without the variable
the build is setuptools' own and the package is pure Python.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]



def _compiling() -> bool:
    return os.environ.get("ZHUJIAN_COMPILE", "") == "1"


def _compile_requirements() -> list[str]:
    with (Path(__file__).resolve().parents[1] / "pyproject.toml").open("rb") as handle:
        requirements: list[str] = tomllib.load(handle)["tool"]["zhujian"]["compiled"]["build-requires"]
    return requirements


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    extra = _compile_requirements() if _compiling() else []
    return list(_setuptools.get_requires_for_build_wheel(config_settings)) + extra


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    # An editable install stays pure Python (setup.py refuses ZHUJIAN_COMPILE=1 there), so mypyc is not needed.
    return list(_setuptools.get_requires_for_build_editable(config_settings))


def build_editable(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    return str(_setuptools.build_editable(wheel_directory, config_settings, metadata_directory))
