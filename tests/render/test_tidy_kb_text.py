"""scripts/tidy_kb_text.py: the KB's prose set per GB/T 15834 by line edits that leave everything else as written."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "tidy_kb_text.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tidy_kb_text", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE = """\
# 血糖 (a comment, left as written)
conclusions:
  - id: glucose_high
    name: 谷草转氨酶(AST)升高
    advice: >-
      空腹血糖≥11.1 mmol/L或HbA1c≥9.0%。新发现者高血糖明显，
      指南建议此类新诊断患者可考虑短期胰岛素强化治疗；结合LDL-C
      target (mmol/L) 评估。
    explanation: "您的血压、 血脂偏高,请复查。"
    follow_up: 1周内内分泌科就诊
    source: "中国2型糖尿病防治指南(2020年版): 糖尿病诊断标准; UNVERIFIED"
    aliases: [肌酐(酶法), CREA]
    note: "Jaffe (苦味酸法) intervals differ, 男 9–60."
"""


def test_prose_fields_are_set_and_everything_else_kept() -> None:
    tidy = _script().tidy_yaml_text
    new = tidy(SAMPLE)
    data = yaml.safe_load(new)["conclusions"][0]
    old = yaml.safe_load(SAMPLE)["conclusions"][0]
    assert data["name"] == "谷草转氨酶（AST）升高"
    # The fold after "，" was a stray space: the two lines are joined there. The fold before "target" is kept.
    assert data["advice"] == (
        "空腹血糖≥11.1 mmol/L或HbA1c≥9.0%。新发现者高血糖明显，指南建议此类新诊断患者可考虑短期胰岛素强化治疗；"
        "结合LDL-C target (mmol/L) 评估。"
    )
    assert data["explanation"] == "您的血压、血脂偏高，请复查。"
    for untouched in ("source", "aliases", "note", "follow_up", "id"):
        assert data[untouched] == old[untouched]
    assert new.startswith("# 血糖 (a comment, left as written)\n")
    assert '    source: "中国2型糖尿病防治指南(2020年版): 糖尿病诊断标准; UNVERIFIED"\n' in new
    assert tidy(new) == new  # a second run changes nothing


def test_check_mode_reports_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sample.yaml"
    path.write_text(SAMPLE, encoding="utf-8")
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert check.returncode == 1, check.stderr
    assert f"{path}:4:" in check.stdout  # the name line
    assert path.read_text(encoding="utf-8") == SAMPLE
    fix = subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, cwd=ROOT)
    assert fix.returncode == 0, fix.stderr
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert again.returncode == 0 and "0 file(s)" in again.stdout
