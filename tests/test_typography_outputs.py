"""Every rendered output scanned for the typography faults of issue 12: the text report (`zhujian report --format
text`), the template narrative, the workbench review page, the group report and the examinee PDF, for the bundled
examples, the golden cases and the longitudinal cases (prior visits).

The faults (GB/T 15834-2011 for punctuation, SI Brochure §5.4 for units):
- a half-width space after a full-width punctuation mark;
- a half-width , ; : ( ) ? between two Chinese characters;
- an ASCII unit: umol/L, 10^9/L, 10^12/L, kg/m2, 1.73m2 (or 1.73m² without the space), or ×10⁹ with a second
  multiplication sign;
- a number printed with a trailing ".0" where the record gave it without decimals (148 printed as 148.0).
The scanner is shown to find each fault when one is planted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from db_testing import PASSWORD, copy_of, make_team
from zhujian.cli import app as cli_app
from zhujian.domain.record import Record
from zhujian.examples import example_names, load_example
from zhujian.group import build_group_report
from zhujian.group.render import render_group_html
from zhujian.kb.loader import KnowledgeBase
from zhujian.narrate import get_narrator
from zhujian.pipeline.run import build_report
from zhujian.render.typography import CJK
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.web.app import create_app
from zhujian.web.security import create_api_token

ROOT = Path(__file__).resolve().parents[1]
SECRET_KEY = "typography-test-secret-" + "x" * 32

# Marks that are full-width in Chinese text (GB/T 15834): no half-width space may follow them.
FULL_WIDTH = "，。、；：？！（）【】〔〕《》“”"
FAULTS: dict[str, re.Pattern[str]] = {
    "space after full-width punctuation": re.compile(f"[{FULL_WIDTH}] +(?=\\S)"),
    "half-width punctuation between Chinese characters": re.compile(f"[{CJK}] *[,;:()?] *[{CJK}]"),
    "ASCII unit umol/L": re.compile(r"(?<![A-Za-z])umol/L"),
    "ASCII unit 10^n/L": re.compile(r"10\^(?:9|12)/L"),
    "doubled multiplication sign": re.compile(r"[×x*]\s*×10"),
    "ASCII unit kg/m2": re.compile(r"kg/m2(?!\d)"),
    "ASCII unit 1.73m2": re.compile(r"1\.73 ?m2|1\.73m²"),
}


@dataclass
class Case:
    name: str
    record: dict[str, Any]


def _cases() -> list[Case]:
    cases = [Case(f"example/{name}", load_example(name)) for name in example_names()]
    for folder in sorted((ROOT / "tests" / "cases").iterdir()):
        if (folder / "input.json").is_file():
            cases.append(Case(f"case/{folder.name}", json.loads((folder / "input.json").read_text(encoding="utf-8"))))
    for path in sorted((ROOT / "tests" / "longitudinal").glob("*_input.json")):
        cases.append(Case(f"longitudinal/{path.stem}", json.loads(path.read_text(encoding="utf-8"))))
    return cases


CASES = _cases()


def whole_number_inputs(record: dict[str, Any]) -> set[str]:
    """The values the record (and its prior visits) gave without decimals: "148", 148."""
    found: set[str] = set()
    visits = [record, *(record.get("prior_visits") or [])]
    for visit in visits:
        for item in visit.get("items") or []:
            value = item.get("value")
            text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
            if re.fullmatch(r"[<>≤≥]?\s*\d+", text):
                found.add(re.sub(r"\D", "", text))
    return found


def zero_decimal_inputs(record: dict[str, Any]) -> set[str]:
    """Values the record itself gave with a ".0" ("25.0", 25.0): printing them so is keeping their precision."""
    found: set[str] = set()
    for visit in [record, *(record.get("prior_visits") or [])]:
        for item in visit.get("items") or []:
            value = item.get("value")
            if isinstance(value, float | str):
                found.update(re.findall(r"\d+\.0(?!\d)", repr(value) if isinstance(value, float) else value))
    return found


def guideline_decimals(report: dict[str, Any]) -> set[str]:
    """Numbers such as "9.0" that the knowledge base's own texts print (thresholds: HbA1c≥9.0%, BMI≥28.0): these
    are written with their decimal on purpose and are not measured values."""
    texts: list[str] = [str(report.get("kb_version")), str(report.get("engine_version"))]
    for conclusion in report.get("conclusions") or []:
        texts += [str(conclusion.get(k) or "") for k in ("name", "icd10", "advice", "explanation", "follow_up")]
    texts += [str(alert.get("reason") or "") for alert in report.get("critical") or []]
    return set(re.findall(r"\d+\.0(?!\d)", " ".join(texts)))


def scan(
    text: str, whole_numbers: frozenset[str] | set[str] = frozenset(), allowed: frozenset[str] | set[str] = frozenset()
) -> list[str]:
    """The faults in one output, each with a little context."""
    problems: list[str] = []
    for fault, pattern in FAULTS.items():
        for match in pattern.finditer(text):
            start = max(match.start() - 15, 0)
            problems.append(f"{fault}: …{text[start : match.end() + 15]}…")
    for match in re.finditer(r"(?<![\d.])(\d+)\.0(?![\d])", text):
        if match.group(1) in whole_numbers and match.group(0) not in allowed:
            start = max(match.start() - 15, 0)
            problems.append(f"trailing .0 on a whole-number input: …{text[start : match.end() + 15]}…")
    return problems


# The record's own texts (ultrasound, ECG reports) are quoted as the examinee's data, with the finding spans marked
# at their character offsets: they are printed exactly as given, whatever their punctuation.
QUOTED_SOURCE_CLASSES = frozenset({"texts"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "col", "area", "base", "source", "wbr"})


class _TextNodes(HTMLParser):
    """The visible text nodes of a page (scripts, styles, SVG charts and quoted source texts left out), whitespace
    collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[str] = []
        self._open: list[bool] = []  # per open element: whether its text is left out
        self._pre = 0  # inside <pre> and <textarea>, line breaks are shown as line breaks

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("pre", "textarea"):
            self._pre += 1
        if tag in _VOID:
            return
        classes = set((dict(attrs).get("class") or "").split())
        hidden = tag in ("script", "style", "svg") or bool(classes & QUOTED_SOURCE_CLASSES)
        self._open.append(hidden or (bool(self._open) and self._open[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "textarea"):
            self._pre -= 1
        if tag not in _VOID and self._open:
            self._open.pop()

    @property
    def _hidden(self) -> bool:
        return bool(self._open) and self._open[-1]

    def handle_data(self, data: str) -> None:
        if self._pre:
            text = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in data.splitlines()).strip()
        else:
            text = re.sub(r"\s+", " ", data).strip()
        if text and not self._hidden:
            self.nodes.append(text)


def html_text(html: str) -> str:
    parser = _TextNodes()
    parser.feed(html)
    return "\n".join(parser.nodes)


# --- the scanner itself --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("planted", "fault"),
    [
        ("新发现者高血糖明显， 指南建议此类", "space after full-width punctuation"),
        ("肌酐(酶法)", "half-width punctuation between Chinese characters"),
        ("血糖,肾功能", "half-width punctuation between Chinese characters"),
        ("肌酐 118 umol/L↑", "ASCII unit umol/L"),
        ("白细胞 6.2 10^9/L", "ASCII unit 10^n/L"),
        ("红细胞 4.5 10^12/L", "ASCII unit 10^n/L"),
        ("白细胞≤2.0××10⁹/L", "doubled multiplication sign"),
        ("体重指数 28 kg/m2↑", "ASCII unit kg/m2"),
        ("eGFR 43.7 mL/min/1.73m2", "ASCII unit 1.73m2"),
        ("上次 148.0 mmHg", "trailing .0 on a whole-number input"),
    ],
)
def test_the_scanner_finds_a_planted_fault(planted: str, fault: str) -> None:
    clean = "钾 2.6 mmol/L↓（参考 3.5-5.3）；C-TIRADS 4A；LDL-C<2.6 mmol/L；HbA1c≥9.0%；收缩压 148 mmHg"
    assert scan(clean, {"148", "9"}, {"9.0"}) == []
    problems = scan(clean + "；" + planted, {"148"}, {"9.0"})
    assert [p.split(":")[0] for p in problems] == [fault]


def test_html_text_keeps_visible_text_only() -> None:
    html = (
        "<p>血压、<b>血脂</b><br></p><script>var a = '， x';</script><svg><text>a， b</text></svg><td>148</td>"
        '<dl class="texts"><dd>裸眼视力左:1.0</dd></dl><p>完，\n  好</p><pre>一。\n   二</pre>'
    )
    assert html_text(html) == "血压、\n血脂\n148\n完， 好\n一。\n二"


# --- the outputs ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(kb: KnowledgeBase) -> dict[str, tuple[Case, dict[str, Any], str]]:
    """Each case's report JSON and template narrative, built once."""
    out = {}
    for case in CASES:
        report = build_report(kb, Record.model_validate(case.record))
        out[case.name] = (case, report.to_dict(), get_narrator("template").narrate(report))
    return out


def _assert_clean(where: str, text: str, case: Case, report: dict[str, Any]) -> None:
    allowed = guideline_decimals(report) | zero_decimal_inputs(case.record)
    problems = scan(text, whole_number_inputs(case.record), allowed)
    assert problems == [], f"{where}: {len(problems)} typography fault(s):\n" + "\n".join(problems[:30])


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_template_narrative(reports: dict[str, tuple[Case, dict[str, Any], str]], name: str) -> None:
    case, report, narrative = reports[name]
    _assert_clean(f"narrative {name}", narrative, case, report)


@pytest.mark.parametrize("name", example_names())
def test_text_report_from_the_command_line(
    reports: dict[str, tuple[Case, dict[str, Any], str]], name: str, tmp_path: Path
) -> None:
    case, report, _ = reports[f"example/{name}"]
    path = tmp_path / "record.json"
    path.write_text(json.dumps(case.record, ensure_ascii=False), encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["report", str(path), "--format", "text"])
    assert result.exit_code == 0, result.output
    assert "【主检结论及建议】" in result.output
    _assert_clean(f"zhujian report --format text {name}", result.output, case, report)


def test_group_report(reports: dict[str, tuple[Case, dict[str, Any], str]]) -> None:
    everyone = [report for _, report, _ in reports.values()]
    html = render_group_html(build_group_report(everyone, min_cell=1))
    text = html_text(html)
    assert "受检人数" in text
    whole = set().union(*(whole_number_inputs(case.record) for case, _, _ in reports.values()))
    problems = [p for p in scan(text) if not p.startswith("trailing")]  # the group report prints no results
    assert problems == [], "group report:\n" + "\n".join(problems[:30])
    assert whole  # the cohort has whole-number inputs, so the check above is about real data


@dataclass
class Workbench:
    client: TestClient
    token: str  # the chief physician's API token, to store records
    csrf: str  # the page session's CSRF token, for the htmx posts


@pytest.fixture(scope="module")
def workbench(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, kb: KnowledgeBase) -> Iterator[Workbench]:
    """The workbench with every case stored, logged in as the chief physician."""
    url = copy_of(sqlite_template, tmp_path_factory.mktemp("typography_web"))
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    application = create_app(Settings(database_url=url, secret_key=SECRET_KEY), kb=kb, session_factory=factory)
    token, _ = create_api_token(SECRET_KEY, team.chief.user_id)
    with TestClient(application) as client:
        login = client.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
        assert csrf
        response = client.post(
            "/login",
            data={"username": "chief", "password": PASSWORD, "csrf_token": csrf.group(1)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        page_csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
        assert page_csrf
        yield Workbench(client, token, page_csrf.group(1))
    engine.dispose()


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_workbench_review_page(
    workbench: Workbench,
    reports: dict[str, tuple[Case, dict[str, Any], str]],
    name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case, report, _ = reports[name]
    record = dict(case.record, visit_id=f"TYPO-{name.replace('/', '-')}")
    headers = {"Authorization": f"Bearer {workbench.token}"}
    stored = workbench.client.post("/api/records", json=record, headers=headers)
    assert stored.status_code in (200, 201), stored.text
    page = workbench.client.get(f"/reports/{stored.json()['report_id']}")
    assert page.status_code == 200
    text = html_text(page.text)
    assert "检查结果" in text
    _assert_clean(f"workbench review page {name}", text, case, report)
    # The narrative the workbench writes (the template's: no model is configured here).
    monkeypatch.delenv("ZHUJIAN_LLM_BASE_URL", raising=False)
    monkeypatch.delenv("ZHUJIAN_LLM_MODEL", raising=False)
    generated = workbench.client.post(
        f"/reports/{stored.json()['report_id']}/narrative/generate",
        data={"expected_version": "1"},
        headers={"X-CSRF-Token": workbench.csrf, "HX-Request": "true"},
    )
    assert generated.status_code == 200, generated.text
    text = html_text(generated.text)
    assert "【综述】" in text
    _assert_clean(f"workbench narrative {name}", text, case, report)


def _pdftotext() -> str:
    path = shutil.which("pdftotext")
    assert path is not None, "pdftotext (Debian poppler-utils) is needed to read the examinee PDF"
    return path


@pytest.mark.parametrize("name", example_names())
def test_examinee_pdf(reports: dict[str, tuple[Case, dict[str, Any], str]], name: str, tmp_path: Path) -> None:
    from zhujian.render import render_patient_report_pdf

    case, report, _ = reports[f"example/{name}"]
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(render_patient_report_pdf(report, case.record, center_name="示例体检中心"))
    text = subprocess.run(
        [_pdftotext(), "-layout", str(path), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert report["conclusions"][0]["name"][:4] in re.sub(r"\s+", "", text)
    # Layout spacing between columns is not text: runs of two or more spaces are column gaps.
    lines = [re.sub(r" {2,}", "\n", line) for line in text.splitlines()]
    _assert_clean(f"examinee PDF {name}", "\n".join(lines), case, report)
