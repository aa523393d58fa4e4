"""`zhujian qc`: one record, a batch, and the errors a user meets with bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from zhujian.cli import app
from zhujian.examples import load_example

runner = CliRunner()  # click ≥ 8.2 keeps stderr apart in `result.stderr`
ISSUE_FIELDS = {"kind", "conclusion", "icd10", "detail"}
# female_67_critical: K 2.6 (class A), FPG 11.8 (class B), BI-RADS 4B breast nodule (class B), Hb 96, eGFR G3b …
CRITICAL = load_example("female_67_critical")
METABOLIC = load_example("male_56_metabolic")


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _lines(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_single_record_prints_issues_as_json(tmp_path: Path) -> None:
    record = _write(tmp_path / "record.json", CRITICAL)
    text = tmp_path / "conclusions.txt"
    text.write_text("主检结论：\n1. 低钾血症，建议立即急诊就诊\n2. 前列腺增生\n", encoding="utf-8")
    result = runner.invoke(app, ["qc", str(record), "--conclusions", str(text)])
    assert result.exit_code == 0, result.output
    issues = json.loads(result.stdout)
    assert all(set(i) == ISSUE_FIELDS for i in issues)
    kinds = {(i["kind"], i["conclusion"]) for i in issues}
    assert ("sex_mismatch", "前列腺增生") in kinds  # the examinee is a woman
    # The B-class BI-RADS 4 nodule was left out; its engine name is reported.
    assert ("missed", "乳腺结节（BI-RADS 4类及以上）") in kinds
    assert not [i for i in issues if i["kind"] == "missed" and i["conclusion"] == "严重低钾血症"]


def test_batch_writes_one_line_per_record(tmp_path: Path) -> None:
    records = _lines(tmp_path / "records.jsonl", [CRITICAL, METABOLIC])
    conclusions = _lines(
        tmp_path / "conclusions.jsonl",
        [
            {"visit_id": METABOLIC["visit_id"], "text": "1. 子宫肌瘤"},
            {"visit_id": CRITICAL["visit_id"], "text": "1. 严重低钾血症，建议急诊就诊"},
        ],
    )
    out = tmp_path / "qc.jsonl"
    result = runner.invoke(app, ["qc", str(records), "--conclusions", str(conclusions), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["visit_id"] for r in rows] == [CRITICAL["visit_id"], METABOLIC["visit_id"]]
    assert all(set(r) == {"visit_id", "issues"} for r in rows)
    metabolic = rows[1]["issues"]
    assert ("sex_mismatch", "子宫肌瘤") in {(i["kind"], i["conclusion"]) for i in metabolic}


def test_batch_through_the_installed_entry_point(tmp_path: Path) -> None:
    records = _lines(tmp_path / "records.jsonl", [METABOLIC])
    conclusions = _lines(tmp_path / "c.jsonl", [{"visit_id": METABOLIC["visit_id"], "text": "1. 脂肪肝\n2. 脂肪肝"}])
    out = tmp_path / "qc.jsonl"
    completed = subprocess.run(
        [sys.executable, "-m", "zhujian", "qc", str(records), "--conclusions", str(conclusions), "--out", str(out)],
        capture_output=True,
        text=True,
        env=dict(os.environ),  # PYTHONPATH included
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    issues = json.loads(out.read_text(encoding="utf-8"))["issues"]
    assert "duplicate" in {i["kind"] for i in issues}


def _error(args: list[str]) -> str:
    result = runner.invoke(app, ["qc", *args])
    assert result.exit_code == 2, result.output
    return result.stderr


def test_bad_conclusions_line_names_line_and_field(tmp_path: Path) -> None:
    records = _lines(tmp_path / "records.jsonl", [METABOLIC])
    out = str(tmp_path / "qc.jsonl")
    bad_json = tmp_path / "a.jsonl"
    bad_json.write_text(json.dumps({"visit_id": METABOLIC["visit_id"], "text": "脂肪肝"}) + "\n{oops\n", "utf-8")
    assert "a.jsonl:2" in _error([str(records), "--conclusions", str(bad_json), "--out", out])
    no_text = _lines(tmp_path / "b.jsonl", [{"visit_id": METABOLIC["visit_id"], "text": 3}])
    message = _error([str(records), "--conclusions", str(no_text), "--out", out])
    assert "b.jsonl:1" in message and "field text" in message
    no_id = _lines(tmp_path / "c.jsonl", [{"text": "脂肪肝"}])
    assert "field visit_id" in _error([str(records), "--conclusions", str(no_id), "--out", out])


def test_records_without_conclusions_and_conclusions_without_records_are_errors(tmp_path: Path) -> None:
    records = _lines(tmp_path / "records.jsonl", [CRITICAL, METABOLIC])
    only_one = _lines(tmp_path / "c.jsonl", [{"visit_id": METABOLIC["visit_id"], "text": "脂肪肝"}])
    message = _error([str(records), "--conclusions", str(only_one), "--out", str(tmp_path / "o.jsonl")])
    assert "records.jsonl:1" in message and CRITICAL["visit_id"] in message
    one_record = _lines(tmp_path / "r1.jsonl", [METABOLIC])
    extra = _lines(
        tmp_path / "c2.jsonl",
        [{"visit_id": METABOLIC["visit_id"], "text": "脂肪肝"}, {"visit_id": "nobody", "text": "贫血"}],
    )
    assert "'nobody'" in _error([str(one_record), "--conclusions", str(extra), "--out", str(tmp_path / "o.jsonl")])


def test_invalid_record_names_the_field(tmp_path: Path) -> None:
    bad = dict(METABOLIC, sex="男")
    records = _lines(tmp_path / "records.jsonl", [METABOLIC, bad])
    conclusions = _lines(tmp_path / "c.jsonl", [{"visit_id": METABOLIC["visit_id"], "text": "脂肪肝"}])
    message = _error([str(records), "--conclusions", str(conclusions), "--out", str(tmp_path / "o.jsonl")])
    assert "records.jsonl:2" in message and "field sex" in message
    single = _write(tmp_path / "one.json", bad)
    text = tmp_path / "t.txt"
    text.write_text("脂肪肝", encoding="utf-8")
    assert "field sex" in _error([str(single), "--conclusions", str(text)])
    assert "cannot read" in _error([str(tmp_path / "missing.json"), "--conclusions", str(text)])


def test_center_file_sets_qc_options(tmp_path: Path) -> None:
    record = _write(tmp_path / "record.json", METABOLIC)
    text = tmp_path / "c.txt"
    # Every disease of male_56_metabolic, none of its minor findings (T波改变, 骨量减少 …).
    text.write_text(
        "1. 高血压病，建议心内科随访\n2. 血脂异常\n3. 代谢综合征\n4. 空腹血糖受损\n5. 肺结节\n6. 高尿酸血症\n7. 肥胖\n"
        "8. 颈动脉斑块\n9. 中心型肥胖\n10. 脂肪肝\n11. 胆囊息肉\n12. 左肾囊肿\n13. 前列腺增生\n14. 幽门螺杆菌感染\n"
        "15. 眼底动脉硬化\n",
        encoding="utf-8",
    )
    default = runner.invoke(app, ["qc", str(record), "--conclusions", str(text)])
    assert default.exit_code == 0, default.output
    assert json.loads(default.stdout) == []
    center = tmp_path / "center.yaml"
    center.write_text("name: 测试中心\nqc:\n  missed_minor: true\n", encoding="utf-8")
    strict = runner.invoke(app, ["qc", str(record), "--conclusions", str(text), "--center", str(center)])
    assert strict.exit_code == 0, strict.output
    missed = {i["conclusion"] for i in json.loads(strict.stdout) if i["kind"] == "missed"}
    assert {"T波改变", "骨量减少"} <= missed
    center.write_text("qc:\n  missed_minr: true\n", encoding="utf-8")
    bad = runner.invoke(app, ["qc", str(record), "--conclusions", str(text), "--center", str(center)])
    assert bad.exit_code == 2 and "missed_minr" in bad.stderr
