"""Which build of the engine is running: plain Python, or modules compiled with mypyc
(`ZHUJIAN_COMPILE=1 pip install .`, see setup.py). Both give the same reports; the compiled one is faster."""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

# The engine's modules that a compiled install replaces (pyproject.toml, [tool.zhujian.compiled]).
ENGINE_MODULES = (
    "zhujian.domain.report",
    "zhujian.kb.loader",
    "zhujian.pipeline.compare",
    "zhujian.pipeline.conditions",
    "zhujian.pipeline.evaluate",
    "zhujian.pipeline.extract",
    "zhujian.pipeline.literals",
    "zhujian.pipeline.risk_section",
    "zhujian.pipeline.rules",
    "zhujian.pipeline.run",
    "zhujian.pipeline.values",
)


def compiled_engine_modules() -> list[str]:
    """The engine modules that were loaded from C extensions."""
    compiled = []
    for name in ENGINE_MODULES:
        path = getattr(importlib.import_module(name), "__file__", None) or ""
        if path.endswith(tuple(EXTENSION_SUFFIXES)):
            compiled.append(name)
    return compiled


def engine_build() -> str:
    """One line for `zhujian version` and the benchmarks: compiled (n of N modules) or plain Python."""
    compiled = compiled_engine_modules()
    if not compiled:
        return "engine: plain Python"
    return f"engine: compiled with mypyc ({len(compiled)} of {len(ENGINE_MODULES)} modules)"
