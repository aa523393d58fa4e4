"""`zhujian batch` from the command line, including a real batch killed with SIGKILL and run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from zhujian.batch.cli import batch_command

app = typer.Typer()
app.command("batch")(batch_command)


@app.callback()
def _group() -> None:
    """A group, as in the main CLI (a one-command Typer app would drop the command name)."""


runner = CliRunner()

ROOT = Path(__file__).resolve().parents[2]


def record(visit_id: str, index: int) -> dict[str, Any]:
    """A record with a dozen lab items, values varied by index so reports differ."""
    return {
        "visit_id": visit_id,
        "sex": "female" if index % 2 else "male",
        "age": 30 + index % 50,
        "items": [
            {"name": "空腹血糖", "value": f"{4.5 + (index % 40) / 10:.1f}"},
            {"name": "甘油三酯", "value": f"{0.8 + (index % 30) / 10:.1f}"},
            {"name": "总胆固醇", "value": "5.2"},
            {"name": "高密度脂蛋白胆固醇", "value": "1.1"},
            {"name": "低密度脂蛋白胆固醇", "value": "3.1"},
            {"name": "丙氨酸氨基转移酶", "value": str(20 + index % 60)},
            {"name": "天门冬氨酸氨基转移酶", "value": "25"},
            {"name": "肌酐", "value": str(60 + index % 50)},
            {"name": "尿酸", "value": str(300 + index % 200)},
            {"name": "血红蛋白", "value": "135"},
            {"name": "白细胞计数", "value": "6.1"},
            {"name": "血小板计数", "value": "210"},
        ],
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def whole_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_batch_reports_and_summarises(tmp_path: Path) -> None:
    source = tmp_path / "records.jsonl"
    lines = [json.dumps(record(f"c{i}", i), ensure_ascii=False) for i in range(6)] + ["not json"]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "reports.jsonl"
    result = runner.invoke(app, ["batch", str(source), "--out", str(out), "--workers", "1", "--no-progress"])
    assert result.exit_code == 0, result.output  # rejects do not make the batch fail
    assert "records read: 7" in result.output
    assert "reported: 6" in result.output
    assert "rejected: 1 (invalid_json 1)" in result.output
    assert "records/s" in result.output
    assert sorted(r["visit_id"] for r in read_jsonl(out)) == [f"c{i}" for i in range(6)]
    assert [r["line"] for r in read_jsonl(tmp_path / "reports.rejects.jsonl")] == [7]


def test_custom_rejects_path(tmp_path: Path) -> None:
    source = tmp_path / "records.jsonl"
    source.write_text('{"visit_id": "x", "sex": "男"}\n', encoding="utf-8")
    rejects = tmp_path / "bad.jsonl"
    result = runner.invoke(
        app, ["batch", str(source), "--out", str(tmp_path / "o.jsonl"), "--rejects", str(rejects), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    [reject] = read_jsonl(rejects)
    assert (reject["line"], reject["visit_id"], reject["kind"]) == (1, "x", "invalid_record")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "0"], "workers must be at least 1"),
        (["--chunk-size", "0"], "chunk size must be at least 1"),
        (["--kb", "/nonexistent/kb"], ""),
    ],
)
def test_unusable_arguments_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    source = tmp_path / "records.jsonl"
    source.write_text(json.dumps(record("a", 1)) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["batch", str(source), "--out", str(tmp_path / "o.jsonl"), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_missing_input_and_same_paths_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["batch", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2 and "does not exist" in result.output
    source = tmp_path / "records.jsonl"
    source.write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["batch", str(source), "--out", str(source)])
    assert result.exit_code == 2 and "three different files" in result.output


def test_killed_batch_resumes_with_every_record_exactly_once(tmp_path: Path) -> None:
    count = 3000
    bad_lines = {777, 1500, 2999}  # 1-based line numbers of records the engine cannot take
    source = tmp_path / "records.jsonl"
    expected_ids: set[str] = set()
    with source.open("w", encoding="utf-8") as fh:
        for line_no in range(1, count + 1):
            visit_id = f"k{line_no:05d}"
            expected_ids.add(visit_id)
            data = record(visit_id, line_no)
            if line_no in bad_lines:
                data["sex"] = "男"
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")
    out = tmp_path / "reports.jsonl"
    rejects = tmp_path / "reports.rejects.jsonl"
    command = [sys.executable, "-m", "zhujian.batch.cli", str(source), "--out", str(out)]
    options = ["--workers", "2", "--chunk-size", "50", "--no-progress"]

    # A session of its own, so that one killpg reaches the parent and its worker processes.
    proc = subprocess.Popen(
        [*command, *options], cwd=tmp_path, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while whole_lines(out) < 200 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the batch ended before it could be killed: " + proc.communicate()[1].decode()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    done_before_kill = whole_lines(out)
    assert 200 <= done_before_kill < count - len(bad_lines), "the kill did not land midway"

    rerun = subprocess.run([*command, *options], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "skipped as already done: 0" not in rerun.stdout

    reports = read_jsonl(out)  # raises if any line is not whole, valid JSON
    reported = [r["visit_id"] for r in reports]
    rejected = read_jsonl(rejects)
    rejected_ids = [r["visit_id"] for r in rejected]
    assert len(reported) == len(set(reported)), "a visit_id was reported twice"
    assert not set(reported) & set(rejected_ids), "a visit_id was both reported and rejected"
    assert set(reported) | set(rejected_ids) == expected_ids
    assert sorted(r["line"] for r in rejected) == sorted(bad_lines)
    assert all(r["kind"] == "invalid_record" and "sex" in r["reason"] for r in rejected)
