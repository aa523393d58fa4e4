"""Guideline check of lab conclusions on Tianchi checkups the project never tuned on (d_test_A + its glucose answers).

The truth is computed here, independently of the knowledge base, from the raw CSV values and the guideline
cut-offs below; the engine's conclusions come from the real path: `zhujian ingest --format wide-csv` then
`zhujian batch` (or, with --library, the same library calls in-process). For adults, per category:

| category | truth (guideline) | engine conclusion counted |
|---|---|---|
| glucose | FPG ≥ 6.1 mmol/L (中国2型糖尿病防治指南 2020: IFG or diabetes range) | ICD-10 E10–E14 or R73 |
| lipids | TC ≥ 6.2, LDL-C ≥ 4.1, TG ≥ 2.3 or HDL-C < 1.0 mmol/L (中国血脂管理指南 2023) | E78 |
| uric acid | > 420 µmol/L (both sexes, CLINICAL.md Decisions) | E79 |
| ALT | above WS/T 404.1-2012 (men > 50, women > 40 U/L) | R74 or K70–K77 |
| haemoglobin | anaemia: men < 120, women < 110 g/L (CLINICAL.md §5.7) | D50–D64 |
| platelets | < 125 ×10⁹/L (below WS/T 405-2012) | D69 |
| white cells | < 3.5 or > 9.5 ×10⁹/L (WS/T 405-2012) | D70 or D72 |
| eGFR | CKD-EPI 2021 creatinine < 60 mL/min/1.73 m² (KDIGO) | N18 or N19 |

    python benchmarks/tianchi_guideline_check.py            # via the CLI (ingest, batch)
    python benchmarks/tianchi_guideline_check.py --library  # in-process
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "tianchi-diabetes"

Row = dict[str, str]


def _num(row: Row, column: str) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _egfr(row: Row) -> float | None:
    """CKD-EPI 2021 creatinine equation (Inker LA et al., NEJM 2021, Table 2), written out here on purpose."""
    scr_umol, age = _num(row, "肌酐"), _num(row, "年龄")
    sex = row.get("性别")
    if scr_umol is None or age is None or sex not in ("男", "女"):
        return None
    scr = scr_umol / 88.4
    female = sex == "女"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    value = 142 * min(scr / kappa, 1) ** alpha * max(scr / kappa, 1) ** -1.200 * 0.9938**age
    return value * (1.012 if female else 1.0)


def _lipids(row: Row) -> bool | None:
    tc, ldl, tg, hdl = (_num(row, c) for c in ("总胆固醇", "低密度脂蛋白胆固醇", "甘油三酯", "高密度脂蛋白胆固醇"))
    if all(v is None for v in (tc, ldl, tg, hdl)):
        return None
    return bool(
        (tc is not None and tc >= 6.2)
        or (ldl is not None and ldl >= 4.1)
        or (tg is not None and tg >= 2.3)
        or (hdl is not None and hdl < 1.0)
    )


def _threshold(column: str, test: Callable[[float, Row], bool]) -> Callable[[Row], bool | None]:
    def judge(row: Row) -> bool | None:
        value = _num(row, column)
        return None if value is None else test(value, row)

    return judge


def _egfr_low(row: Row) -> bool | None:
    value = _egfr(row)
    return None if value is None or not math.isfinite(value) else value < 60


TRUTH: dict[str, Callable[[Row], bool | None]] = {
    "glucose": _threshold("血糖", lambda v, r: v >= 6.1),
    "lipids": _lipids,
    "uric acid": _threshold("尿酸", lambda v, r: v > 420),
    "ALT": _threshold("*丙氨酸氨基转换酶", lambda v, r: v > (50 if r["性别"] == "男" else 40)),
    "haemoglobin": _threshold("血红蛋白", lambda v, r: v < (120 if r["性别"] == "男" else 110)),
    "platelets": _threshold("血小板计数", lambda v, r: v < 125),
    "white cells": _threshold("白细胞计数", lambda v, r: v < 3.5 or v > 9.5),
    "eGFR < 60": _egfr_low,
}


def _codes(category: str) -> Callable[[str], bool]:
    def in_range(code: str, lo: str, hi: str) -> bool:
        return lo <= code[:3] <= hi

    table: dict[str, Callable[[str], bool]] = {
        "glucose": lambda c: in_range(c, "E10", "E14") or c.startswith("R73"),
        "lipids": lambda c: c.startswith("E78"),
        "uric acid": lambda c: c.startswith("E79"),
        "ALT": lambda c: c.startswith("R74") or in_range(c, "K70", "K77"),
        "haemoglobin": lambda c: in_range(c, "D50", "D64"),
        "platelets": lambda c: c.startswith("D69"),
        "white cells": lambda c: c.startswith(("D70", "D72")),
        "eGFR < 60": lambda c: c.startswith(("N18", "N19")),
    }
    return table[category]


def _merged_csv(out: Path) -> list[Row]:
    """d_test_A with its glucose column restored from d_answer_a (same row order, data/README.md)."""
    with (DATA / "d_test_A_20180102.csv").open(encoding="gb18030") as handle:
        rows = list(csv.DictReader(handle))
    with (DATA / "d_answer_a_20180128.csv").open(encoding="gb18030") as handle:
        answers = [line.strip() for line in handle if line.strip()]
    if answers and not answers[0].replace(".", "", 1).isdigit():
        answers = answers[1:]  # header line
    if len(answers) != len(rows):
        raise SystemExit(f"answer rows {len(answers)} != test rows {len(rows)}")
    header = [*rows[0].keys(), "血糖"]
    for row, glucose in zip(rows, answers, strict=True):
        row["血糖"] = glucose
    with out.open("w", encoding="gb18030", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _reports_via_cli(csv_path: Path, work: Path) -> dict[str, dict[str, Any]]:
    records, reports = work / "records.jsonl", work / "reports.jsonl"
    exe = [sys.executable, "-m", "zhujian"]
    subprocess.run(
        [*exe, "ingest", str(csv_path), "--format", "wide-csv", "--out", str(records)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run([*exe, "batch", str(records), "--out", str(reports)], check=True, stdout=subprocess.DEVNULL)
    with reports.open(encoding="utf-8") as handle:
        return {r["visit_id"]: r for r in map(json.loads, handle)}


def _reports_in_process(csv_path: Path) -> dict[str, dict[str, Any]]:
    from zhujian.adapters import ingest_file
    from zhujian.kb.loader import default_kb
    from zhujian.pipeline.run import build_report

    kb = default_kb()
    return {r.visit_id: build_report(kb, r).to_dict() for r in ingest_file(csv_path, "wide-csv", kb=kb)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", action="store_true", help="call the library in-process instead of the CLI")
    parser.add_argument("--show", type=int, default=3, help="disagreements to print per category")
    parser.add_argument("--train", action="store_true", help="check d_train (5,642 rows) instead of d_test_A")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"data not found: {DATA}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        merged = work / "tianchi_test_a_with_glucose.csv"
        if args.train:
            merged = DATA / "d_train_20180102.csv"
            with merged.open(encoding="gb18030") as handle:
                rows = list(csv.DictReader(handle))
        else:
            rows = _merged_csv(merged)
        reports = _reports_in_process(merged) if args.library else _reports_via_cli(merged, work)
    print("| category | truth positives | engine positives | agree | recall | precision |")
    print("|---|---:|---:|---:|---:|---:|")
    misses: dict[str, list[str]] = {}
    all_ok = True
    for category, judge in TRUTH.items():
        in_category = _codes(category)
        tp = fp = fn = 0
        for row in rows:
            age = _num(row, "年龄")
            if age is None or age < 18:
                continue
            truth = judge(row)
            report = reports.get(row["id"])
            if truth is None or report is None:
                continue
            predicted = any(in_category(c["icd10"]) for c in report["conclusions"])
            if truth and predicted:
                tp += 1
            elif predicted and not truth:
                fp += 1
                misses.setdefault(category, []).append(f"FP id {row['id']}")
            elif truth and not predicted:
                fn += 1
                misses.setdefault(category, []).append(f"FN id {row['id']}")
        recall = tp / (tp + fn) if tp + fn else 1.0
        precision = tp / (tp + fp) if tp + fp else 1.0
        all_ok &= recall >= 0.995 and precision >= 0.99
        print(f"| {category} | {tp + fn} | {tp + fp} | {tp} | {recall:.4f} | {precision:.4f} |")
    for category, items in misses.items():
        print(f"{category}: {', '.join(items[: args.show])}")
    print("target met (recall ≥ 0.995, precision ≥ 0.99 in every category):", all_ok)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
