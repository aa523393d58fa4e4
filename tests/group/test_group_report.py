"""The group (团检) report: counts equal a recount from the reports, every small cell is suppressed everywhere
(JSON, CSV, HTML), no identifier reaches employer-facing output, and the real Tianchi file goes through ingest,
batch and group."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from zhujian.group import build_group_report
from zhujian.group.render import group_csv, render_group_html

ROOT = Path(__file__).resolve().parents[2]
TIANCHI_TEST = ROOT.parent / "shared" / "data" / "tianchi-diabetes" / "d_test_A_20180102.csv"


def _report(visit: str, sex: str, age: float, conclusions: list[tuple[str, str, str | None]], **extra: Any) -> dict:
    return {
        "visit_id": visit,
        "person_id": extra.pop("person_id", f"P{visit}"),
        "sex": sex,
        "age": age,
        "exam_date": extra.pop("exam_date", "2026-05-01"),
        "critical": [],
        "conclusions": [{"name": n, "icd10": code, "level": level} for n, code, level in conclusions],
        "items": [],
        "risk": [],
        **extra,
    }


def _cohort() -> list[dict]:
    """14 people: 8 men (6 with 脂肪肝), 6 women (2 with 脂肪肝), 3 people with 甲状腺结节 (too few to show)."""
    reports = []
    for i in range(8):
        conclusions = [("脂肪肝", "K76.000", None)] if i < 6 else []
        if i < 2:
            conclusions.append(("甲状腺结节", "E04.1", None))
        reports.append(_report(f"M{i}", "male", 35 + i, conclusions))
    for i in range(6):
        conclusions = [("脂肪肝", "K76.000", None)] if i < 2 else []
        if i == 0:
            conclusions.append(("甲状腺结节", "E04.1", None))
        reports.append(_report(f"F{i}", "female", 45 + i, conclusions))
    return reports


def test_prevalence_counts_people_and_suppresses_small_cells() -> None:
    group = build_group_report(_cohort(), min_cell=5)
    assert group["n"] == 14
    assert group["by_sex"]["male"] == {"n": 8, "share": round(8 / 14, 4), "suppressed": False}
    fatty = next(c for c in group["conclusions"] if c["name"] == "脂肪肝")
    assert (fatty["n"], fatty["share"]) == (8, round(8 / 14, 4))
    # Women 2 of 6 is below the minimum cell and hidden; men 6 of 8 is hidden too, or 8 - 6 would reveal the 2.
    assert fatty["by_sex"]["female"]["suppressed"] and fatty["by_sex"]["female"]["n"] is None
    assert fatty["by_sex"]["male"]["suppressed"] and fatty["by_sex"]["male"]["n"] is None
    # With a minimum cell of 2 both are shown, each as a share of its own sex.
    relaxed = next(c for c in build_group_report(_cohort(), min_cell=2)["conclusions"] if c["name"] == "脂肪肝")
    assert relaxed["by_sex"]["male"] == {"n": 6, "share": 0.75, "suppressed": False}
    assert relaxed["by_sex"]["female"] == {"n": 2, "share": round(2 / 6, 4), "suppressed": False}
    thyroid = next(c for c in group["conclusions"] if c["name"] == "甲状腺结节")
    assert thyroid["suppressed"] and thyroid["n"] is None and thyroid["share"] is None
    assert all(cell["suppressed"] for cell in thyroid["by_sex"].values())
    assert "甲状腺结节" not in group["top10"]


def test_a_hidden_part_cannot_be_recovered_from_the_total() -> None:
    """Headcount by sex: 3 people of unknown sex next to 8 men and 6 women (total 17 shown). Hiding only the 3 would
    reveal them as 17 - 8 - 6, so the smallest shown part is hidden as well."""
    reports = _cohort() + [_report(f"U{i}", "unknown", 40, []) for i in range(3)]
    group = build_group_report(reports, min_cell=5)
    assert group["by_sex"]["unknown"]["suppressed"]
    assert group["by_sex"]["female"]["suppressed"]  # the smallest shown part (6)
    assert group["by_sex"]["male"] == {"n": 8, "share": round(8 / 17, 4), "suppressed": False}


def test_one_person_counts_once_with_the_latest_exam() -> None:
    reports = _cohort()
    reports.append(_report("M0-old", "male", 34, [("高血压", "I10", None)], person_id="PM0", exam_date="2025-05-01"))
    group = build_group_report(reports, min_cell=1)
    assert group["n"] == 14
    assert all(c["name"] != "高血压" for c in group["conclusions"])


def test_change_against_the_previous_year() -> None:
    current = _cohort()
    previous = [_report(f"M{i}", "male", 34 + i, [("脂肪肝", "K76.000", None)] if i < 3 else []) for i in range(8)]
    previous += [_report(f"F{i}", "female", 44 + i, []) for i in range(6)]
    group = build_group_report(current, min_cell=1, previous=previous)
    fatty = next(c for c in group["conclusions"] if c["name"] == "脂肪肝")
    assert fatty["previous"]["n"] == 3
    assert fatty["change_pp"] == round((8 / 14 - 3 / 14) * 100, 1)


def test_by_field_hides_small_groups() -> None:
    reports = [{**r, "employer": "甲公司" if i < 10 else "乙公司"} for i, r in enumerate(_cohort())]
    group = build_group_report(reports, min_cell=5, by="employer")
    groups = {g["group"]: g for g in group["groups"]}
    assert groups["甲公司"]["n"] == 10
    assert groups["乙公司"] == {"group": "乙公司", "n": None, "suppressed": True}


def test_csv_and_html_show_no_small_number_and_no_identifier() -> None:
    reports = _cohort()
    group = build_group_report(reports, min_cell=5)
    rows = list(csv.DictReader(io.StringIO(group_csv(group))))
    assert rows
    for row in rows:
        if row["n"]:
            assert int(row["n"]) >= 5 or int(row["n"]) == 0, row
        else:
            assert row["suppressed"] == "True" or row["n"] == ""
    html = render_group_html(group)
    for report in reports:
        assert report["visit_id"] not in html  # ids never printed
        assert report["person_id"] not in html
    assert "&lt;5" in html


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "zhujian", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=900
    )


@pytest.mark.skipif(not TIANCHI_TEST.exists(), reason="../shared/data/tianchi-diabetes is not present")
def test_tianchi_through_ingest_batch_and_group(tmp_path: Path) -> None:
    ingest = _run("ingest", str(TIANCHI_TEST), "--format", "wide-csv", "--out", "records.jsonl", cwd=tmp_path)
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    batch = _run("batch", "records.jsonl", "--out", "reports.jsonl", "--workers", "2", cwd=tmp_path)
    assert batch.returncode == 0, batch.stderr[-2000:]
    group = _run(
        "group", "reports.jsonl", "--out", "g.html", "--json", "g.json", "--csv", "g.csv", "--pdf", "g.pdf",
        cwd=tmp_path,
    )
    assert group.returncode == 0, group.stderr[-2000:]
    data = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))

    # Recount from the reports themselves.
    reports = [json.loads(line) for line in (tmp_path / "reports.jsonl").read_text(encoding="utf-8").splitlines()]
    people = {r.get("person_id") or r["visit_id"]: r for r in reports}
    assert data["n"] == len(people) == 1000
    # The counting rule: each line as signed, and each merged part as the KB line of that name.
    from zhujian.kb.loader import default_kb

    kb_lines = {d.name: (d.name, d.icd10) for d in default_kb().conclusions.values()}
    recount: Counter[tuple[str, str]] = Counter()
    for report in people.values():
        lines = {(c["name"], c["icd10"]) for c in report["conclusions"]}
        for c in report["conclusions"]:
            for part in c.get("merged") or []:
                own = kb_lines.get(part) or kb_lines.get(part.split("（")[0])
                if own is not None:
                    lines.add(own)
        recount.update(lines)
    assert recount, "the Tianchi labs give conclusions"
    for conclusion in data["conclusions"]:
        expected = recount[(conclusion["name"], conclusion["icd10"])]
        if expected < 5:
            assert conclusion["suppressed"] and conclusion["n"] is None
        else:
            assert conclusion["n"] == expected
    assert {(c["name"], c["icd10"]) for c in data["conclusions"]} == set(recount)
    sexes = Counter(r["sex"] for r in people.values())
    assert data["by_sex"]["male"]["n"] == sexes["male"]

    def small_numbers(value: Any) -> list[int]:
        if isinstance(value, dict):
            found = [value["n"]] if isinstance(value.get("n"), int) and 0 < value["n"] < 5 else []
            return found + [n for v in value.values() for n in small_numbers(v)]
        if isinstance(value, list):
            return [n for v in value for n in small_numbers(v)]
        return []

    assert small_numbers(data) == []
    html = (tmp_path / "g.html").read_text(encoding="utf-8")
    assert html.count("<svg") >= 2  # age/sex and top-10 charts
    text = re.sub(r"<svg.*?</svg>", "", html, flags=re.S)  # path coordinates in charts are numbers too
    assert not [r["visit_id"] for r in reports if re.search(rf"(?<![\d.]){re.escape(r['visit_id'])}(?![\d.])", text)]
    assert (tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")


def test_the_employer_of_a_record_reaches_its_report_and_splits_the_group(kb: Any) -> None:
    from zhujian.domain.record import Record
    from zhujian.pipeline.run import build_report

    base = json.loads((ROOT / "tests" / "cases" / "13_hyperuricaemia_male" / "input.json").read_text(encoding="utf-8"))
    reports = []
    for i in range(6):
        record = Record.model_validate({**base, "visit_id": f"E{i}", "employer": "甲公司" if i < 5 else "乙公司"})
        reports.append(build_report(kb, record).to_dict())
    assert reports[0]["employer"] == "甲公司"
    assert "employer" not in build_report(kb, Record.model_validate(base)).to_dict()
    group = build_group_report(reports, min_cell=5, by="employer")
    assert [(g["group"], g["n"]) for g in group["groups"]] == [("乙公司", None), ("甲公司", 5)]


def test_a_merged_part_still_counts_as_its_own_line(kb: Any) -> None:
    """一元化 puts 肥胖 and 中心型肥胖 inside 代谢综合征（伴肥胖） for the bundled man: the employer's count of 肥胖 must
    still hold every such person, recounted here from the reports' own merged lists."""
    from zhujian.domain.record import Record
    from zhujian.examples import load_example
    from zhujian.group import merged_part_lines
    from zhujian.pipeline.run import build_report

    reports = []
    for i in range(6):
        record = dict(load_example("male_56_metabolic"), visit_id=f"V{i}", person_id=f"P{i}")
        reports.append(build_report(kb, Record.model_validate(record)).to_dict())
    with_obesity = sum(
        any(c["name"] == "肥胖" or "肥胖" in (c.get("merged") or []) for c in r["conclusions"]) for r in reports
    )
    assert with_obesity == 6, "the example's BMI of 28 and waist of 96 cm give 肥胖 in every report"
    assert not any(c["name"] == "肥胖" for r in reports for c in r["conclusions"]), "肥胖 is only a merged part here"

    counted = build_group_report(reports, min_cell=5, part_lines=merged_part_lines(kb))
    obesity = next(c for c in counted["conclusions"] if c["name"] == "肥胖")
    assert obesity["icd10"] == "E66.9" and obesity["n"] == with_obesity
    merged_line = next(c for c in counted["conclusions"] if c["name"].startswith("代谢综合征"))
    assert merged_line["n"] == 6, "the merged line itself is still counted once per person"

    as_signed = build_group_report(reports, min_cell=5)  # without the KB: lines as signed only
    assert not any(c["name"] == "肥胖" for c in as_signed["conclusions"])
