"""`zhujian ingest` through a small typer app, as the main CLI registers it."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from zhujian.adapters.cli import ingest_command
from zhujian.domain.record import Record

app = typer.Typer()
app.command("ingest")(ingest_command)
app.command("other")(lambda: None)  # two commands, so that "ingest" is a sub-command as in the main CLI
runner = CliRunner()

CSV = (
    "id,性别,年龄,体检日期,血糖,舒张压,神秘\nA,男,50,2024-01-02,6.5,100164,x\nB,女,40,2024-01-02,未查,80,\n,男,1,,5,,\n"
)


def test_ingest_writes_records_report_and_problems(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(CSV, encoding="gb18030")
    out, report, problems = tmp_path / "records.jsonl", tmp_path / "report.json", tmp_path / "problems.jsonl"
    result = runner.invoke(
        app,
        ["ingest", str(source), "--out", str(out), "--report-json", str(report), "--problems", str(problems)],
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    records = [Record.model_validate_json(line) for line in lines]
    assert [r.visit_id for r in records] == ["A", "B"]
    assert "null" not in lines[0]  # exclude_none
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["encoding"] == "gb18030"
    assert data["rows_read"] == 3 and data["records_written"] == 2 and data["rows_rejected"] == 1
    assert data["problems_by_code"] == {"implausible": 1, "item_unknown": 1, "not_done": 1}
    assert data["columns"]["舒张压"]["rejected"] == {"implausible": 1}
    assert data["unknown_columns"] == ["神秘"]
    problem_lines = [json.loads(line) for line in problems.read_text(encoding="utf-8").splitlines()]
    assert {(p["visit_id"], p["code"], p["field"]) for p in problem_lines} == {
        ("A", "implausible", "in.csv:row 2:column 舒张压"),
        ("A", "item_unknown", "in.csv:row 2:column 神秘"),
        ("B", "not_done", "in.csv:row 3:column 血糖"),
    }
    assert "records written" in result.output


def test_ingest_to_stdout(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,血糖\nA,5.5\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(source), "--out", "-"])
    assert result.exit_code == 0
    assert '"visit_id":"A"' in result.stdout


def test_unreadable_input_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert "no such file" in result.output
    source = tmp_path / "codes.csv"
    source.write_text("code,name\nA00,霍乱\n", encoding="utf-8")
    result = runner.invoke(app, ["ingest", str(source), "--format", "long", "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert "needs a column naming the item" in result.output
    assert not (tmp_path / "o.jsonl").exists()  # no empty output left behind
    result = runner.invoke(app, ["ingest", str(source), "--format", "nosuch", "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "unknown format" in result.output
    result = runner.invoke(app, ["ingest", str(source), "--encoding", "cp949x", "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "unknown encoding" in result.output
