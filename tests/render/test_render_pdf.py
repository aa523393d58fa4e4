"""The examinee's report as PDF: WeasyPrint output checked with poppler-utils (pdfinfo, pdffonts, pdftotext,
pdftoppm). A PNG of page 1 of each example is left in test-output/render/ for a person to look at."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from zhujian.domain.record import Record
from zhujian.examples import load_example
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report
from zhujian.render import render_patient_report_pdf

pytest.importorskip("weasyprint", reason="WeasyPrint is not installed: PDF output is not tested")

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "render"
EXAMPLES = ["female_67_critical", "male_56_metabolic"]


def _poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not found: install the Debian package poppler-utils to check the PDF")
    return path


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture(scope="module", params=EXAMPLES)
def rendered(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], Path]:
    """Each example rendered once (about two seconds each): its name, its report JSON and the PDF file."""
    name: str = request.param
    report = build_report(default_kb(), Record.model_validate(load_example(name))).to_dict()
    pdf = render_patient_report_pdf(report, load_example(name), center_name="示例体检中心")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.pdf"
    path.write_bytes(pdf)
    return name, report, path


def test_render_pdf_is_an_a4_pdf(rendered: tuple[str, dict[str, Any], Path]) -> None:
    _, _, path = rendered
    assert path.read_bytes().startswith(b"%PDF-")
    info = _run(_poppler("pdfinfo"), str(path))
    assert re.search(r"Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)", info), info


def test_render_pdf_embeds_a_cjk_font(rendered: tuple[str, dict[str, Any], Path]) -> None:
    _, _, path = rendered
    lines = _run(_poppler("pdffonts"), str(path)).splitlines()[2:]  # two header lines
    # Columns end with: encoding, emb, sub, uni, object number, generation.
    embedded_cjk = [
        line.split()[0]
        for line in lines
        if re.search(r"CJK|WenQuanYi|MicroHei", line.split()[0]) and line.split()[-5] == "yes"
    ]
    assert embedded_cjk, "no embedded CJK font; install fonts-noto-cjk (Noto Sans CJK SC):\n" + "\n".join(lines)


def test_render_pdf_text_has_conclusions_and_page_numbers(rendered: tuple[str, dict[str, Any], Path]) -> None:
    _, report, path = rendered
    pdftotext = _poppler("pdftotext")
    # Line breaks may fall inside a long name: compare without whitespace.
    text = re.sub(r"\s+", "", _run(pdftotext, str(path), "-"))
    assert report["conclusions"]
    for conclusion in report["conclusions"]:
        assert re.sub(r"\s+", "", conclusion["name"]) in text, conclusion["name"]
    pages = int(re.search(r"Pages:\s+(\d+)", _run(_poppler("pdfinfo"), str(path))).group(1))  # type: ignore[union-attr]
    first_page = _run(pdftotext, "-raw", "-f", "1", "-l", "1", str(path), "-")
    assert f"第 1 页 / 共 {pages} 页" in first_page
    last_page = _run(pdftotext, "-raw", "-f", str(pages), "-l", str(pages), str(path), "-")
    assert f"第 {pages} 页 / 共 {pages} 页" in last_page
    assert f"知识库版本 {report['kb_version']}" in last_page


def test_render_pdf_unsigned_draft_is_marked_on_every_page(rendered: tuple[str, dict[str, Any], Path]) -> None:
    _, _, path = rendered
    pdftotext = _poppler("pdftotext")
    pages = int(re.search(r"Pages:\s+(\d+)", _run(_poppler("pdfinfo"), str(path))).group(1))  # type: ignore[union-attr]
    for page in range(1, pages + 1):
        text = re.sub(r"\s+", "", _run(pdftotext, "-f", str(page), "-l", str(page), str(path), "-"))
        # The watermark's glyphs are extracted one by one because the text is rotated.
        assert "草" in text and "稿" in text, f"page {page} has no draft mark"


def test_render_pdf_cover_announces_the_critical_value() -> None:
    pdftotext = _poppler("pdftotext")
    path = OUTPUT / "female_67_critical.pdf"
    if not path.exists():
        report = build_report(default_kb(), Record.model_validate(load_example("female_67_critical"))).to_dict()
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_patient_report_pdf(report))
    cover = re.sub(r"\s+", "", _run(pdftotext, "-f", "1", "-l", "1", str(path), "-"))
    assert "健康体检报告" in cover and "DEMO-2026-0002" in cover and "隐私提示" in cover
    assert "重要提示" in cover and "严重低钾血症" in cover and "请立即就医" in cover


def test_render_pdf_page_one_png_for_review(rendered: tuple[str, dict[str, Any], Path]) -> None:
    name, _, path = rendered
    prefix = OUTPUT / f"{name}-page1"
    _run(_poppler("pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(path), str(prefix))
    png = prefix.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    # A4 is 8.27 x 11.69 inches: 496 x 702 pixels at 60 dpi.
    assert (abs(width - 496), abs(height - 702)) <= (1, 1), (width, height)


def test_render_pdf_signed_report_has_no_draft_mark() -> None:
    pdftotext = _poppler("pdftotext")
    report = {"visit_id": "V-signed", "exam_date": "2026-03-18", "sex": "male", "age": 40, "conclusions": []}
    pdf = render_patient_report_pdf(
        report,
        signatures=[
            {"role": "chief", "name": "李主检", "signed_at": "2026-03-20T09:30:00"},
            {"role": "reviewer", "name": "王审核", "signed_at": "2026-03-21T10:00:00"},
        ],
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "signed_minimal.pdf"
    path.write_bytes(pdf)
    text = re.sub(r"\s+", "", _run(pdftotext, str(path), "-"))
    assert "李主检" in text and "王审核" in text and "2026-03-2009:30" in text
    assert "草" not in text and "未签字" not in text
