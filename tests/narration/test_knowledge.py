"""The narration knowledge (prompt, word lists) is validated like the KB: every problem names the file and path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zhujian.kb.loader import KBError
from zhujian.narration.knowledge import _default_root, load_narration_knowledge


def test_bundled_narration_knowledge_loads_with_sources() -> None:
    knowledge = load_narration_knowledge()
    assert knowledge.prompt_version == "narrative-zh-1"
    for part in (knowledge.serious_terms, knowledge.drugs, knowledge.negation, knowledge.units, knowledge.lifestyle):
        assert part.source.strip()
    assert all(a.source.strip() for a in knowledge.lifestyle.advice)
    assert "{digest}" in knowledge.prompt.user


@pytest.fixture
def kb_copy(tmp_path: Path) -> Path:
    root = tmp_path / "kb"
    shutil.copytree(_default_root(), root)
    return root


def test_broken_files_are_reported_together(kb_copy: Path) -> None:
    (kb_copy / "narration" / "drugs.yaml").write_text(
        "source: s\nagents: [阿司匹林]\nclasses: []\ndose_patterns: ['(unclosed']\n", encoding="utf-8"
    )
    prompt = kb_copy / "prompts" / "narrative.yaml"
    prompt.write_text(prompt.read_text(encoding="utf-8").replace("{digest}", "{digset}"), encoding="utf-8")
    (kb_copy / "narration" / "units.yaml").write_text("source: s\nunits: {mmHg: []}\nextra: 1\n", encoding="utf-8")
    with pytest.raises(KBError) as caught:
        load_narration_knowledge(kb_copy)
    text = str(caught.value)
    assert "narration/drugs.yaml" in text and "dose_patterns" in text
    assert "prompts/narrative.yaml" in text and "{digest}" in text
    assert "narration/units.yaml" in text and "extra" in text


def test_missing_file_is_named(kb_copy: Path) -> None:
    (kb_copy / "narration" / "negation.yaml").unlink()
    with pytest.raises(KBError, match=r"narration/negation.yaml"):
        load_narration_knowledge(kb_copy)
