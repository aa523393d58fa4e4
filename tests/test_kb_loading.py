"""Loading the knowledge base fast must not change it: libyaml's loader against the pure-Python one, and the
version `zhujian version` reads without loading the KB against the loaded KB's own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from zhujian.kb import loader
from zhujian.kb.loader import kb_version, load_kb

KB_ROOT = Path(loader.__file__).resolve().parent / "data"


def _needs_libyaml() -> None:
    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML was built without libyaml: only the pure-Python loader exists, nothing to compare")


def test_c_and_python_loaders_read_every_kb_file_alike() -> None:
    _needs_libyaml()
    files = sorted(KB_ROOT.rglob("*.yaml"))
    assert len(files) > 30
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.safe_load(text), path


def test_c_and_python_loaders_give_the_identical_kb(monkeypatch: pytest.MonkeyPatch) -> None:
    _needs_libyaml()
    monkeypatch.setattr(loader, "YAML_LOADER", yaml.SafeLoader)
    pure = load_kb()
    monkeypatch.setattr(loader, "YAML_LOADER", yaml.CSafeLoader)
    fast = load_kb()
    assert fast == pure
    assert fast.version == pure.version and len(fast.rules) == len(pure.rules) > 0


def test_version_without_loading_matches_the_loaded_kb(tmp_path: Path) -> None:
    assert kb_version() == load_kb().version
    # Changed files in every folder change both versions alike: the hash covers every file, in the loader's order.
    copy = tmp_path / "kb"
    shutil.copytree(KB_ROOT, copy)
    for path in [copy / "critical.yaml", *(sorted((copy / f).glob("*.yaml"))[-1] for f in ("items", "lexicon"))]:
        with path.open("a", encoding="utf-8") as handle:
            handle.write("\n# a comment changes the content hash\n")
    assert kb_version(copy) == load_kb(copy).version != load_kb().version
