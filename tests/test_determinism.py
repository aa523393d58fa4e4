"""A report must not depend on the process it was built in: merges (一元化) used to follow set order, so the
same record gave different `merged`/`evidence` orders under different string-hash seeds (one per worker process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Creatinine and urea both high with an eGFR of 45-59: the eGFR conclusion absorbs two others.
RENAL = {
    "visit_id": "det-renal",
    "sex": "male",
    "age": 54,
    "exam_date": "2017-10-10",
    "items": [
        {"name": "肌酐", "value": "139.55", "unit": "umol/L"},
        {"name": "尿素", "value": "10.04", "unit": "mmol/L"},
        {"name": "尿酸", "value": "520", "unit": "umol/L"},
    ],
}


def _report(path: Path, seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "zhujian", "report", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_reports_are_identical_under_different_hash_seeds(tmp_path: Path) -> None:
    record = tmp_path / "renal.json"
    record.write_text(json.dumps(RENAL, ensure_ascii=False), encoding="utf-8")
    renal = [_report(record, seed) for seed in ("1", "2", "3")]
    assert renal[1] == renal[0] and renal[2] == renal[0]
    assert [c for c in renal[0]["conclusions"] if len(c.get("merged", [])) >= 2], "two conclusions merge into one"
    example = ROOT / "src" / "zhujian" / "examples" / "male_56_metabolic.json"
    assert _report(example, "1") == _report(example, "2")
