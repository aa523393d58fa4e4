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
from zhujian.render.typography import typeset

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


@pytest.fixture(scope="module", params=EXAMPLES)
def signed(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], Path]:
    """Each example signed: without the draft watermark, whose rotated glyphs pdftotext mixes into the text."""
    name: str = request.param
    report = build_report(default_kb(), Record.model_validate(load_example(name))).to_dict()
    pdf = render_patient_report_pdf(
        report,
        load_example(name),
        center_name="示例体检中心",
        signatures=[{"role": "chief", "name": "李主检", "signed_at": "2026-03-20T09:30:00"}],
    )
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}-signed.pdf"
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


def _page_text(path: Path, first: int, last: int | None = None) -> str:
    """The text of pages first..last in content order, without whitespace (line breaks may fall inside a name)."""
    text = _run(_poppler("pdftotext"), "-raw", "-f", str(first), "-l", str(last or first), str(path), "-")
    return re.sub(r"\s+", "", text)


def _page_count(path: Path) -> int:
    return int(re.search(r"Pages:\s+(\d+)", _run(_poppler("pdfinfo"), str(path))).group(1))  # type: ignore[union-attr]


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def test_render_pdf_first_page_is_the_summary(signed: tuple[str, dict[str, Any], Path]) -> None:
    _, report, path = signed
    first = _page_text(path, 1)
    assert "健康体检报告" in first and report["visit_id"] in first and "结果摘要" in first
    # The whole summary fits on page one: every conclusion is named there, and the chapters start on page two.
    for conclusion in report["conclusions"]:
        assert _squeeze(conclusion["name"]) in first, conclusion["name"]
    assert "主检结论及建议" not in first
    assert "主检结论及建议" in _page_text(path, 2, _page_count(path))


def test_render_pdf_summary_announces_the_critical_value() -> None:
    path = OUTPUT / "female_67_critical.pdf"
    if not path.exists():
        report = build_report(default_kb(), Record.model_validate(load_example("female_67_critical"))).to_dict()
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_patient_report_pdf(report))
    first = _page_text(path, 1)
    # K 2.6 mmol/L is a class A critical value: first on page one, before anything else in the summary.
    assert "重要提示" in first and "严重低钾血症" in first and "2.6mmol/L" in first and "请立即就医" in first
    assert first.index("严重低钾血症") < first.index("需要复查或就诊")
    assert "未发现需要处理的异常" not in first


# The ICD-10 code shape (E78.9, K76.000, R91, N40): a letter, two digits, an optional dotted extension.
ICD10_CODE = re.compile(r"(?<![A-Za-z0-9])[A-Z][0-9]{2}(?:\.[0-9A-Z]{1,4})?(?![0-9])")
# Wording of the KB's physician advice that an examinee's report must not carry.
PHYSICIAN_ONLY = ("KDIGO", "NSAIDs", "空芯针穿刺活检", "他汀治疗", "ICD", "基线生存率", "论文推导值", "China-PAR模型")


def test_render_pdf_has_no_icd_codes_or_physician_advice(signed: tuple[str, dict[str, Any], Path]) -> None:
    _, report, path = signed
    raw = _run(_poppler("pdftotext"), "-raw", str(path), "-")
    assert ICD10_CODE.findall(raw) == []
    text = _squeeze(raw)
    for conclusion in report["conclusions"]:
        assert _squeeze(conclusion["icd10"]) not in text
        assert _squeeze(conclusion["advice"]) not in text, conclusion["name"]
        # The examinee's explanation is there instead.
        assert _squeeze(conclusion["explanation"]) in text, conclusion["name"]
    for words in PHYSICIAN_ONLY:
        assert words not in text, words


def test_render_pdf_prints_the_original_imaging_and_ecg_text(signed: tuple[str, dict[str, Any], Path]) -> None:
    name, _, path = signed
    text = _squeeze(_run(_poppler("pdftotext"), "-raw", str(path), "-"))
    record = load_example(name)
    assert record["texts"]
    for entry in record["texts"]:
        # Quoted as written, with its punctuation and units set as everywhere else (render.typography).
        assert _squeeze(typeset(entry["text"])) in text, entry["item"]


def test_render_pdf_trend_charts_only_with_earlier_values(signed: tuple[str, dict[str, Any], Path]) -> None:
    name, report, path = signed
    text = _squeeze(_run(_poppler("pdftotext"), "-raw", str(path), "-"))
    with_earlier = [i["name"] for i in report["items"] if i["previous"]]
    if name == "male_56_metabolic":
        # The record's earlier visit measured 空腹血糖, 总胆固醇, 尿酸 and blood pressure.
        assert len(with_earlier) == 5
        assert "与既往体检比较" in text
        for item in with_earlier:
            assert f"{item}：2025-03" in text, item
    else:
        assert with_earlier == [] and "与既往体检比较" not in text


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
