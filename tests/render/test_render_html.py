"""The examinee's report as HTML: what it must show, built from the bundled example records."""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest
from markupsafe import escape

from zhujian.domain.record import Record
from zhujian.examples import load_example
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report
from zhujian.render import ReportFormatError, follow_up_schedule, render_patient_report_html


@pytest.fixture(scope="module")
def critical() -> tuple[dict[str, Any], dict[str, Any]]:
    record = load_example("female_67_critical")
    return build_report(default_kb(), Record.model_validate(record)).to_dict(), record


@pytest.fixture(scope="module")
def metabolic() -> tuple[dict[str, Any], dict[str, Any]]:
    record = load_example("male_56_metabolic")
    return build_report(default_kb(), Record.model_validate(record)).to_dict(), record


def _row(html: str, item_name: str) -> str:
    """The <tr> of the result table whose first cell is exactly `item_name`."""
    match = re.search(r"<tr class=\"([^\"]*)\">\s*<td>" + re.escape(item_name) + r"</td>(.*?)</tr>", html, re.S)
    assert match is not None, f"no result row for {item_name}"
    return match.group(0)


# ------------------------------------------------------------------------------------------ follow-up dates


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("3-6个月复查", "复查日期约 2026-06 至 2026-09"),  # 2026-03 + 3 / + 6 months
        ("6–12个月复查甲状腺超声", "复查日期约 2026-09 至 2027-03"),  # en dash, crosses the year
        ("1个月内就诊", "就诊日期约 2026-04 前"),  # "within": a deadline, labelled as a visit
        ("12个月复查泌尿系超声", "复查日期约 2027-03"),
        ("1年后复查心电图", "复查日期约 2027-03"),  # years count as 12 months
        ("1-2年复查骨密度", "复查日期约 2027-03 至 2028-03"),
        ("立即就诊", None),
        ("2周内心内科就诊", None),  # weeks: the window text is printed as it is
        ("每年眼科复查", None),
        ("遵医嘱定期随访，每1-3个月复诊评估血压", None),  # a repeating schedule, not a date ("3个月" must not match)
        ("避免剧烈运动3-7天后复查", None),
    ],
)
def test_render_follow_up_schedule_from_exam_date(window: str, expected: str | None) -> None:
    assert follow_up_schedule(window, dt.date(2026, 3, 18)) == expected


def test_render_follow_up_schedule_needs_an_exam_date() -> None:
    assert follow_up_schedule("3-6个月复查", None) is None


def test_render_follow_up_schedule_month_end_rolls_into_the_next_year() -> None:
    assert follow_up_schedule("3-6个月复查", dt.date(2026, 11, 30)) == "复查日期约 2027-02 至 2027-05"


# ------------------------------------------------------------------------------------------ the page


def test_render_html_has_summary_page_and_every_conclusion(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    html = render_patient_report_html(report, record, center_name="示例体检中心")
    assert html.startswith("<!DOCTYPE html>")
    assert '<html lang="zh-CN">' in html
    for text in (
        "示例体检中心",
        "健康体检报告",
        "DEMO-2026-0002",
        "P-demo-002",
        "女",
        "67 岁",
        "2026-03-18",
        "隐私提示",
    ):
        assert text in html
    assert report["conclusions"], "the critical example must have conclusions"
    squeezed = re.sub(r"\s+", "", html)
    for conclusion in report["conclusions"]:
        assert str(escape(conclusion["name"])) in html
        assert re.sub(r"\s+", "", str(escape(conclusion["explanation"]))) in squeezed
        # The KB's advice is written for physicians (drug names, guideline stages): the examinee never reads it.
        assert str(escape(conclusion["advice"].strip())) not in html
        assert conclusion["icd10"] not in html
    assert f"知识库版本 {report['kb_version']}" in html
    assert f"引擎版本 {report['engine_version']}" in html


def test_render_html_highlights_the_critical_potassium_with_a_call_to_action(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    html = render_patient_report_html(*critical)
    # K 2.6 mmol/L is below the class A limit of 2.8: a critical value, so an "A" alert telling the examinee to go now.
    alerts_a = re.findall(r'<div class="alert alert-a">(.*?)</div>', html, re.S)
    assert len(alerts_a) == 1
    assert "2.6 mmol/L" in alerts_a[0]
    assert "请立即就医" in alerts_a[0]
    # The alerts come before the conclusions, and the summary page already announces them.
    assert html.index("危急值及重要异常结果") < html.index("主检结论及建议")
    summary = html[html.index('<section class="summary-page">') : html.index('<section class="body">')]
    assert "重要提示" in summary and "请立即就医" in summary


def test_render_html_important_results_say_when_to_go(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    html = render_patient_report_html(report, record)
    alerts_b = re.findall(r'<div class="alert alert-b">(.*?)</div>', html, re.S)
    by_id = {c["id"]: c for c in report["conclusions"]}
    expected = [by_id[a["conclusion_id"]] for a in report["critical"] if a["level"] == "B"]
    assert len(alerts_b) == len(expected) >= 1
    for block, conclusion in zip(alerts_b, expected, strict=True):
        assert str(escape(conclusion["name"])) in block
        # A class B result is not an emergency: the examinee is told the window, not "go now".
        assert "请立即就医" not in block
        assert (
            f"请于{escape(conclusion['follow_up'])}" in block
            or f"请尽快就诊（{escape(conclusion['follow_up'])}" in block
        )


def _summary_page(html: str) -> str:
    return html[html.index('<section class="summary-page">') : html.index('<section class="body">')]


def test_render_html_summary_page_comes_first_and_lists_the_urgent_results(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    html = render_patient_report_html(report, record)
    summary = _summary_page(html)
    assert html.index('<section class="summary-page">') < html.index('<section class="body">')
    urgent = summary[summary.index("重要提示") : summary.index("需要复查或就诊")]
    # The example's alerts: class A potassium 2.6 mmol/L first, then the two class B results, each with its action.
    names = {c["id"]: c["name"] for c in report["conclusions"]}
    alert_names = [names[a["conclusion_id"]] for a in report["critical"]]
    positions = [urgent.index(str(escape(name))) for name in alert_names]
    assert positions == sorted(positions)
    assert "危急值" in urgent[: positions[0]] and "2.6 mmol/L" in urgent and "请立即就医" in urgent
    # Every other conclusion is in the recheck table with its window; none is left off the first page.
    rechecks = summary[summary.index("需要复查或就诊") :]
    for conclusion in report["conclusions"]:
        if conclusion["name"] not in alert_names:
            assert str(escape(conclusion["name"])) in rechecks
            assert str(escape(conclusion["follow_up"])) in rechecks
    # eGFR G3b "3个月内复查…" from the exam on 2026-03-18: before 2026-06.
    egfr_row = re.search(r"<tr>\s*<td>估算肾小球滤过率降低.*?</tr>", rechecks, re.S)
    assert egfr_row is not None and "2026-06 前" in egfr_row.group(0)
    assert "本次体检未发现需要处理的异常" not in html


def test_render_html_summary_says_what_is_fine(metabolic: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = metabolic
    summary = _summary_page(render_patient_report_html(report, record))
    fine = summary[summary.index("结果正常的项目") :]
    listed = re.search(r"各项结果均在参考范围内：([^。]+)。", fine)
    assert listed is not None
    sections = listed.group(1).split("、")
    # In the record, the blood count and the liver enzymes are all inside their ranges… except ALT/GGT: the
    # liver panel is not fine, the blood count is.
    assert "血常规" in sections and "肝功能" not in sections and "血脂" not in sections
    for section in sections:
        flags = {i["flag"] for i in report["items"] if i["section"] == section}
        assert "normal" in flags and not flags & {"high", "low", "abnormal"}, section
    # The texts without findings: pancreas, spleen and right kidney read normal in the record.
    texts = re.search(r"未见需要提示的异常：([^。]+)。", fine)
    assert texts is not None and {"胰腺", "脾脏", "右肾"} <= set(texts.group(1).split("、"))
    assert "肝脏" not in texts.group(1).split("、")


def test_render_html_summary_never_calls_cited_results_fine(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    # Blood pressure 138/82 is inside 90-139/60-89 yet it is the evidence of 血压正常高值; every other section of this
    # record has an abnormal result. Nothing is listed as fine.
    assert any(c["id"] == "bp_high_normal" for c in report["conclusions"])
    assert "结果正常的项目" not in _summary_page(render_patient_report_html(report, record))


def test_render_html_important_conclusion_is_urgent_even_without_an_alert(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    quiet = copy.deepcopy(report)
    quiet["critical"] = []
    summary = _summary_page(render_patient_report_html(quiet, record))
    # The conclusions still carry level A and B: they stay first and unmistakable.
    assert "重要提示" in summary and "严重低钾血症" in summary[: summary.index("需要复查或就诊")]
    assert "请立即就医" in summary


def test_render_html_without_important_results_has_no_urgent_box(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    calm = copy.deepcopy(report)
    calm["critical"] = []
    for conclusion in calm["conclusions"]:
        conclusion["level"], conclusion["critical"] = None, False
    html = render_patient_report_html(calm, record)
    assert 'class="alert alert-a"' not in html and "重要提示" not in html
    # Conclusions remain: the summary is a recheck list, never an all-clear.
    assert "需要复查或就诊" in _summary_page(html) and "未发现需要处理的异常" not in html


def test_render_html_all_clear_only_without_conclusions() -> None:
    html = render_patient_report_html({"visit_id": "V-ok", "conclusions": [], "critical": []})
    assert "本次体检未发现需要处理的异常结果" in _summary_page(html)


def test_render_html_flags_results_with_arrows(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    html = render_patient_report_html(*critical)
    # Values and ranges from the example record: 钾 2.6 (3.5-5.3), 空腹血糖 11.8 (3.9-6.1), 白细胞 5.2 (normal).
    potassium = _row(html, "钾")
    assert "abnormal" in potassium and "critical" in potassium
    assert ">2.6<" in potassium and "↓" in potassium and "3.5–5.3" in potassium and "危急" in potassium
    glucose = _row(html, "空腹血糖")
    assert "abnormal" in glucose and "↑" in glucose and "3.9–6.1" in glucose
    protein = _row(html, "尿蛋白")
    assert "abnormal" in protein and "异常" in protein and ">2+<" in protein
    wbc = _row(html, "白细胞计数")
    assert 'class=""' in wbc and "↑" not in wbc and "↓" not in wbc


def test_render_html_groups_results_by_section_in_source_order(
    metabolic: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = metabolic
    html = render_patient_report_html(report, record)
    sections: list[str] = []
    for item in record["items"]:
        if item["section"] not in sections:
            sections.append(item["section"])
    results = html[html.index('<h2 class="results-heading">') : html.index("<h2>影像、心电图及体格检查")]
    headings = re.findall(r"<h3>([^<]+)", results)
    positions = [headings.index(s) for s in sections]
    assert positions == sorted(positions)
    # Values the engine computed (BMI from height and weight) are grouped last, under their own heading.
    assert headings[-1] == "计算指标"
    assert html.index("<h3>计算指标") < html.index("<td>体重指数</td>")
    # The metabolic example has a prior visit: the change column is shown.
    assert "与上次比较" in html and "较上次" in html


def _results_chapter(html: str) -> str:
    return html[html.index('<h2 class="results-heading">') : html.index("<h2>影像、心电图及体格检查")]


def _section_table(html: str, title: str) -> str:
    chapter = _results_chapter(html)
    start = chapter.index(f"<h3>{title}")
    return chapter[start : chapter.index("</table>", start)]


def test_render_html_results_without_source_sections_use_the_kb_sections(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    assert all("section" not in item for item in record["items"])  # the source names no sections
    html = render_patient_report_html(report, record)
    # The KB files potassium and sodium under 电解质 (items/electrolytes.yaml), haemoglobin under 血常规.
    electrolytes = _section_table(html, "电解质")
    assert "<td>钾</td>" in electrolytes and "<td>钠</td>" in electrolytes
    assert "<td>血红蛋白</td>" in _section_table(html, "血常规")
    assert "<h3>检验及测量项目" not in html


def test_render_html_change_column_only_where_there_is_an_earlier_value(
    metabolic: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    html = render_patient_report_html(*metabolic)
    # The earlier visit measured total cholesterol, not the blood count.
    assert "与上次比较" in _section_table(html, "血脂")
    assert "与上次比较" not in _section_table(html, "血常规")


def _conclusion_block(html: str, name: str) -> str:
    blocks = [b for b in html.split('<div class="conclusion')[1:] if f"</span>{escape(name)}" in b]
    assert len(blocks) == 1, f"expected one conclusion block for {name}"
    return blocks[0]


def test_render_html_prints_follow_up_dates(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    html = render_patient_report_html(*critical)
    # eGFR G3b: "3个月内复查肾功能…" from the exam on 2026-03-18 → before 2026-06 (the ECG changes that had a
    # 3-6 month window are now part of the hypokalaemia conclusion that explains them).
    egfr = _conclusion_block(html, "估算肾小球滤过率降低")
    assert "3个月内复查肾功能" in egfr and "复查日期约 2026-06 前" in egfr
    # 严重低钾血症: "立即就诊" states no months, so the window text stands alone.
    potassium = _conclusion_block(html, "严重低钾血症")
    assert "立即就诊" in potassium and "日期约" not in potassium


def test_render_html_risk_section_shows_computed_results_in_words(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    html = render_patient_report_html(report, record)
    risk = html[html.index("健康风险评估") : html.index("检查及检验结果")]
    # Creatinine, age and sex are there: eGFR 43.7 is computed; G3b is 30-44 in KDIGO 2012.
    assert "估算肾小球滤过率 43.7" in risk and "G3b期（肾功能中到重度下降）" in risk
    # The critical example has no lipid panel and no waist: China-PAR is not computed, and the page says what
    # was missing instead of printing a row of "未能评估".
    assert "未能评估" not in risk
    missing = risk[risk.index("资料不全") :]
    assert "心脑血管病10年风险" in missing and "总胆固醇" in missing and "腰围" in missing
    # Sources and notes on the models' coefficients are for physicians.
    for source in {a["source"] for a in report["risk"]}:
        assert str(escape(source)) not in html
    assert "基线生存率" not in html and "论文推导值" not in html and "KDIGO" not in html


def test_render_html_shows_text_results_with_their_findings(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    with_record = render_patient_report_html(report, record)
    assert "影像、心电图及体格检查" in with_record
    assert str(escape(record["texts"][1]["text"])) in with_record  # the original breast ultrasound text
    assert "乳腺结节（右侧，16 mm，BI-RADS 4B）" in with_record
    without_record = render_patient_report_html(report, None)
    assert "乳腺结节（右侧，16 mm，BI-RADS 4B）" in without_record
    assert str(escape(record["texts"][1]["text"])) not in without_record


def test_render_html_escapes_user_text(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    hostile = copy.deepcopy(report)
    hostile["conclusions"][0]["explanation"] = "<script>alert('x')</script>"
    hostile["items"][0]["name"] = "<img src=x onerror=alert(1)>"
    html = render_patient_report_html(
        hostile,
        record,
        center_name="<b>中心</b>",
        display_name="张<i>三</i>",
        signatures=[{"role": "chief", "name": "<script>李</script>", "signed_at": "2026-03-20T09:30:00"}],
    )
    assert "<script>" not in html
    assert "<img src=x" not in html
    assert "<b>中心</b>" not in html and "张<i>三</i>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "&lt;b&gt;中心&lt;/b&gt;" in html


def test_render_html_unsigned_is_a_draft(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    html = render_patient_report_html(*critical)
    assert 'class="watermark"' in html
    assert "草稿，未签字" in html
    assert 'class="signer"' not in html


def test_render_html_signed_names_both_physicians(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    signatures: list[dict[str, Any]] = [
        {"role": "reviewer", "name": "王审核", "signed_at": dt.datetime(2026, 3, 21, 14, 5)},
        {"role": "chief", "name": "李主检", "signed_at": "2026-03-20T01:30:00Z"},  # UTC, printed as Beijing time
    ]
    html = render_patient_report_html(*critical, signatures=signatures, display_name="张三")
    assert 'class="watermark"' not in html
    assert "草稿，未签字" not in html and "已审核签发" in html
    assert "姓名" in html and "张三" in html and "P-demo-002" not in html
    # The chief examiner is printed first whatever order the caller used.
    assert html.index("主检医生") < html.index("审核医生")
    assert re.search(r"主检医生</th><td class=\"signer\">李主检</td><th>签字时间</th><td>2026-03-20 09:30", html)
    assert re.search(r"审核医生</th><td class=\"signer\">王审核</td><th>签字时间</th><td>2026-03-21 14:05", html)


def test_render_html_reviewer_alone_is_still_a_draft(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    html = render_patient_report_html(*critical, signatures=[{"role": "reviewer", "name": "王审核"}])
    assert "王审核" in html and "草稿，未签字" in html


def test_render_html_without_record_uses_the_report_demographics(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, _ = critical
    html = render_patient_report_html(report)
    assert "67 岁" in html and "2026-03-18" in html and "女" in html


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"conclusions": []}, "visit_id"),
        ({"visit_id": "V1", "conclusions": "not a list"}, "conclusions"),
        ({"visit_id": "V1", "items": [1, 2]}, "items"),
    ],
)
def test_render_html_rejects_a_report_of_the_wrong_shape(broken: dict[str, Any], message: str) -> None:
    with pytest.raises(ReportFormatError, match=message):
        render_patient_report_html(broken)


def test_render_html_minimal_report_renders() -> None:
    html = render_patient_report_html({"visit_id": "V-1"})
    assert "V-1" in html and "未发现需要列入结论的异常" in html and "未知" in html


# ------------------------------------------------------------------------------------------ trends


def test_render_html_trend_chart_for_each_result_with_an_earlier_value(
    metabolic: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = metabolic
    html = render_patient_report_html(report, record)
    figures = re.findall(r'<figure class="trend">(.*?)</figure>', html, re.S)
    # The record's earlier visit (2025-03-20) measured five of these items.
    earlier = {i["name"]: i["value"] for i in record["prior_visits"][0]["items"]}
    assert len(figures) == len(earlier) == 5
    for figure in figures:
        assert "<svg" in figure
    captions = " ".join(re.findall(r"<figcaption>(.*?)</figcaption>", html, re.S))
    # 总胆固醇 6.05 mmol/L at the earlier visit, 6.42 now.
    assert "总胆固醇：2025-03 6.05 → 2026-03 6.42" in captions
    for name in earlier:
        assert f"{name}：2025-03 " in captions


def test_render_html_no_trend_chart_without_an_earlier_value(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    html = render_patient_report_html(report, record)
    assert "<figure" not in html and "与既往体检比较" not in html
    # Given an earlier potassium, the same report draws exactly that one chart.
    earlier = copy.deepcopy(report)
    potassium = next(i for i in earlier["items"] if i["name"] == "钾")
    potassium["previous"] = [{"visit_id": "V-0", "exam_date": "2025-03-10", "value": 3.9, "flag": "normal"}]
    html = render_patient_report_html(earlier, record)
    figures = re.findall(r'<figure class="trend">(.*?)</figure>', html, re.S)
    assert len(figures) == 1 and "钾：2025-03 3.9 → 2026-03 2.6" in figures[0]


def test_render_html_trend_chart_escapes_the_item_name(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    hostile = copy.deepcopy(report)
    potassium = next(i for i in hostile["items"] if i["name"] == "钾")
    potassium["name"] = "钾 --> <script>alert(1)</script>"
    potassium["previous"] = [{"visit_id": "V-0", "exam_date": "2025-03-10", "value": 3.9, "flag": "normal"}]
    html = render_patient_report_html(hostile, record)
    assert '<figure class="trend">' in html and "<script>" not in html


# ------------------------------------------------------------------------------------------ narrative


def _with_narrative(report: dict[str, Any], source: str, advice: str) -> dict[str, Any]:
    first = report["conclusions"][0]
    out = copy.deepcopy(report)
    out["narrative"] = {
        "source": source,
        "edited_by_physician": False,
        "sections": {
            "summary": "您这次检查最要紧的是血钾明显偏低。",
            "conclusions": [{"name": first["name"], "explanation": first["explanation"], "advice": advice}],
            "lifestyle": ["饮食清淡。"],
            "follow_up": [f"{first['name']}：{first['follow_up']}"],
        },
    }
    return out


def test_render_html_template_narrative_prints_no_physician_advice(
    critical: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    report, record = critical
    first = report["conclusions"][0]
    # The template narrative copies the KB's physician advice into each conclusion.
    html = render_patient_report_html(_with_narrative(report, "template", first["advice"]), record)
    assert "报告解读" in html and "您这次检查最要紧的是血钾明显偏低" in html
    assert str(escape(first["advice"].strip())) not in html


def test_render_html_model_narrative_advice_is_printed(critical: tuple[dict[str, Any], dict[str, Any]]) -> None:
    report, record = critical
    advice = "请今天就去医院急诊，查血钾和心电图，医生会给您补钾。"
    html = render_patient_report_html(_with_narrative(report, "llm", advice), record)
    assert advice in html
