"""Optional compiled engine: with ZHUJIAN_COMPILE=1 the modules listed in pyproject.toml under
`[tool.zhujian.compiled]` are compiled with mypyc. Everything else about the package is in pyproject.toml."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def compiled_modules() -> list[str]:
    with (HERE / "pyproject.toml").open("rb") as handle:
        modules: list[str] = tomllib.load(handle)["tool"]["zhujian"]["compiled"]["modules"]
    return modules


# Metadata-only runs (the build backend asking what the build needs) happen before mypyc is installed.
METADATA_ONLY = {"egg_info", "dist_info", "sdist"}

ext_modules = []
if os.environ.get("ZHUJIAN_COMPILE", "") == "1" and not METADATA_ONLY.intersection(sys.argv[1:]):
    if {"editable_wheel", "develop"}.intersection(sys.argv[1:]):
        # An editable install would put the compiled modules beside their sources, where they would shadow every
        # later edit of the .py files until rebuilt.
        raise SystemExit("ZHUJIAN_COMPILE=1 needs a regular install (pip install .), not an editable one")
    from mypyc.build import mypycify

    ext_modules = mypycify(compiled_modules(), opt_level="3")

setup(ext_modules=ext_modules)
