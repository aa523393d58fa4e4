"""Bundled example records (synthetic, written from the guidelines; no real person)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def example_names() -> list[str]:
    folder = resources.files("zhujian.examples")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_example(name: str) -> Any:
    path = resources.files("zhujian.examples").joinpath(f"{name}.json")
    if not path.is_file():
        raise FileNotFoundError(name)
    return json.loads(path.read_text(encoding="utf-8"))
