"""The QC vocabulary files: strict schema, cross-checked against the knowledge base, every entry with a source."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest
import yaml

from zhujian.kb.loader import KBError, KnowledgeBase
from zhujian.qc.vocabulary import fold, load_qc_vocabulary

QC_DATA = Path(str(resources.files("zhujian").joinpath("kb/data/qc")))


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "qc"
    shutil.copytree(QC_DATA, target)
    return target


def test_bundled_vocabulary_loads(kb: KnowledgeBase) -> None:
    vocabulary = load_qc_vocabulary(kb)
    # Wordings from the synonym table and KB names with their qualifier removed are both known.
    assert vocabulary.phrases[fold("窦缓")].primary == "ecg_c_sinus_brady"
    assert "dyslipidemia" in vocabulary.phrases[fold("高甘油三酯血症")].conclusions
    assert vocabulary.phrases[fold("肺结节")].primary == "chest_c_nodule"
    assert vocabulary.item_aliases[fold("ALT")] == "alt"


def test_every_synonym_entry_has_a_source() -> None:
    data = yaml.safe_load((QC_DATA / "synonyms.yaml").read_text(encoding="utf-8"))
    assert all(entry.get("source") for entry in data["synonyms"])
    terms = yaml.safe_load((QC_DATA / "vocabulary.yaml").read_text(encoding="utf-8"))["sex_terms"]
    assert all(entry.get("source") for entry in terms)


def test_unknown_conclusion_and_item_are_reported_with_their_path(kb: KnowledgeBase, tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "synonyms.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["synonyms"][0]["conclusions"].append("no_such_conclusion")
    data["synonyms"][1]["items"] = {"no_such_item": "high"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KBError) as caught:
        load_qc_vocabulary(kb, root)
    text = str(caught.value)
    assert "qc/synonyms.yaml:synonyms[0].conclusions" in text and "no_such_conclusion" in text
    assert "no_such_item" in text


def test_unknown_key_is_an_error(kb: KnowledgeBase, tmp_path: Path) -> None:
    root = _copy(tmp_path)
    path = root / "vocabulary.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["domains"][0]["itmes"] = ["tc"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KBError, match=r"qc/vocabulary.yaml:domains.0.itmes"):
        load_qc_vocabulary(kb, root)


def test_kb_validate_checks_the_qc_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from zhujian.cli import app

    root = tmp_path / "kb"
    shutil.copytree(QC_DATA.parent, root)
    path = root / "qc" / "synonyms.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["synonyms"][0]["conclusions"] = ["dyslipidemia_x"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["kb", "validate", "--kb", str(root)])
    assert result.exit_code == 1
    assert "qc/synonyms.yaml:synonyms[0].conclusions: unknown conclusion 'dyslipidemia_x'" in result.stderr
