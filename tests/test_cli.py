"""The command line as a new user meets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhujian.cli import app
from zhujian.domain.record import record_json_schema
from zhujian.examples import example_names, load_example

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("report", "extract", "demo", "kb", "schema", "risk"):
        assert command in result.output


def test_report_json_has_fixed_fields(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(load_example("female_67_critical"), ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("visit_id", "conclusions", "items", "findings", "critical", "problems"):
        assert key in report
    for c in report["conclusions"]:
        for key in ("name", "icd10", "level", "department", "follow_up", "advice", "evidence"):
            assert key in c
    for i in report["items"]:
        for key in ("name", "source_name", "value", "unit", "ref_low", "ref_high", "flag", "critical"):
            assert key in i
    for f in report["findings"]:
        for key in ("name", "icd10", "site", "attrs", "source_item", "span"):
            assert key in f
    # K 2.6 mmol/L ≤ 2.8 is a class-A critical value (CLINICAL.md Decisions): first in both lists.
    assert report["critical"][0]["item_id"] == "k"
    assert report["conclusions"][0]["critical"] is True


def test_report_text(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(load_example("male_56_metabolic"), ensure_ascii=False), encoding="utf-8")
    result = runner.invoke(app, ["report", str(path), "--format", "text"])
    assert result.exit_code == 0, result.output
    assert "【综述】" in result.output and "【主检结论及建议】" in result.output
    assert "1. " in result.output


def test_invalid_record_names_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"visit_id": "x", "sex": "男", "items": [{"value": 5}]}, ensure_ascii=False),
                    encoding="utf-8")
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 2
    assert "sex" in result.output and "男" in result.output
    assert "items.0" in result.output


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_extract_keeps_order_and_ids(tmp_path: Path) -> None:
    lines = [
        {"id": "a", "item": "肝脏", "text": "肝脏形态大小正常，肝内回声呈点状密集弥漫性增强，肝内管道结构欠清晰。"},
        {"id": "b", "item": "左肾", "text": "左肾大小测值正常，实质回声均匀，集合系统未见明显分离及结石影。"},
        {"id": "c", "item": "胰腺", "text": "胰腺显示不清（受肠气影响）。"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n{broken\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["extract", "--in", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows[:3]] == ["a", "b", "c"]
    assert [f["icd10"][:3] for f in rows[0]["findings"]] == ["K76"]  # FINDINGS.md: fatty liver wording
    assert rows[1]["findings"] == []  # negated: 未见…结石影
    assert rows[2]["findings"] == [] and rows[2]["incomplete"] is True
    assert "error" in rows[3]
    for r in rows[:3]:
        assert set(r) == {"id", "findings", "incomplete"}


def test_demo_runs_every_example() -> None:
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for name in example_names():
        assert name in result.output


def test_kb_validate_and_stats() -> None:
    result = runner.invoke(app, ["kb", "validate"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    stats = runner.invoke(app, ["kb", "stats"])
    assert stats.exit_code == 0
    data = json.loads(stats.output)
    assert data["items"] >= 150 and data["conclusions"] >= 200


def test_schema_document_is_current() -> None:
    """docs/record.schema.json is the exported schema of the Record model (regenerate with `zhujian schema`)."""
    documented = json.loads((ROOT / "docs" / "record.schema.json").read_text(encoding="utf-8"))
    assert documented == record_json_schema()


HEAVY_MODULES = (
    "zhujian.adapters",
    "zhujian.pipeline",
    "zhujian.render",
    "zhujian.web",
    "zhujian.storage",
    "zhujian.risk",
    "zhujian.batch",
    "zhujian.domain",
    "sqlalchemy",
    "jinja2",
    "pydantic_settings",
)


@pytest.mark.parametrize("args", [["version"], ["--help"], ["risk", "--help"]])
def test_start_up_imports_only_what_the_command_needs(args: list[str]) -> None:
    # `zhujian version` took 3.3 s: it loaded the whole KB, and every command module (the engine, pydantic models,
    # Jinja2, the settings) was imported to register the commands. Timing figures: docs/measurements.md.
    code = (
        "import sys\n"
        "from zhujian.cli import app\n"
        f"try:\n    app({args!r}, prog_name='zhujian')\nexcept SystemExit:\n    pass\n"
        "print('MODULES:', *sorted(m for m in sys.modules if m.startswith(" + repr(HEAVY_MODULES) + ")))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().splitlines()[-1].split()[1:]
    expected = {"risk": ["zhujian.risk"]}.get(args[0], [])
    assert [m for m in loaded if not m.startswith(tuple(expected))] == [], loaded
    if args == ["version"]:
        assert "knowledge base 20" in done.stdout
