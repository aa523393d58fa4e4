"""`zhujian pdf REPORT.json --out …`: the command function, mounted on a throwaway Typer app (the lead registers
it on the real one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from zhujian.domain.record import Record
from zhujian.examples import load_example
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report
from zhujian.render.cli import pdf_command

app = typer.Typer()
app.command("pdf")(pdf_command)
app.command("unused")(lambda: None)  # two commands, so that "pdf" is a sub-command as on the real CLI


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("render_cli")
    record = load_example("female_67_critical")
    report = build_report(default_kb(), Record.model_validate(record)).to_dict()
    report_path, record_path = folder / "report.json", folder / "record.json"
    report_path.write_text(json.dumps(report, ensure_ascii=False), encoding="utf-8")
    record_path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    return report_path, record_path, report


def test_render_cli_writes_html_preview(files: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    report_path, record_path, report = files
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["pdf", str(report_path), "--out", str(out), "--record", str(record_path), "--center-name", "某中心"]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "某中心" in html and report["conclusions"][0]["name"] in html
    assert "右侧乳腺外上象限" in html  # an original text result: only the record has it
    assert "without --record" not in result.output


def test_render_cli_says_when_the_original_texts_are_missing(
    files: tuple[Path, Path, dict[str, Any]], tmp_path: Path
) -> None:
    report_path, _, _ = files
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["pdf", str(report_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "without --record" in result.output and "--record RECORD.json" in result.output
    html = out.read_text(encoding="utf-8")
    assert "右侧乳腺外上象限" not in html and "检查所见的原文请见各项检查的报告单" in html


def test_render_cli_writes_pdf(files: tuple[Path, Path, dict[str, Any]], tmp_path: Path) -> None:
    pytest.importorskip("weasyprint", reason="WeasyPrint is not installed: PDF output is not tested")
    report_path, _, _ = files
    out = tmp_path / "report.pdf"
    result = CliRunner().invoke(app, ["pdf", str(report_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"conclusions": []}', "visit_id"),
    ],
)
def test_render_cli_rejects_bad_input(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "out.html"
    result = CliRunner().invoke(app, ["pdf", str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_render_cli_reports_a_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["pdf", str(tmp_path / "absent.json"), "--out", str(tmp_path / "x.pdf")])
    assert result.exit_code == 2
    assert "cannot read report" in result.output
