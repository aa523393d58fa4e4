"""The group report as HTML (charts embedded as SVG), PDF (WeasyPrint, Noto CJK) and tables (CSV, xlsx)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

from zhujian.group.aggregate import SEX_LABELS
from zhujian.group.charts import age_sex_chart, category_chart, prevalence_chart
from zhujian.render.typography import typeset

_NONE_CELL = {"n": None, "share": None, "suppressed": False}


def _count(value: Mapping[str, Any], min_cell: int) -> str:
    if value.get("suppressed"):
        return f"<{min_cell}"
    return "—" if value.get("n") is None else str(value["n"])


def _share(value: Mapping[str, Any]) -> str:
    if value.get("suppressed"):
        return "—"
    share = value.get("share")
    return "—" if share is None else f"{share * 100:.1f}%"


def _change(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:+.1f}"


# Citations keep their own punctuation; identifiers and dates are not prose.
_NOT_PROSE = frozenset({"source", "icd10", "generated_at", "by", "first", "last", "model"})


def _typeset_prose(value: Any, key: str | None = None) -> Any:
    """A copy of the group report with every printed Chinese string set (units, full-width punctuation)."""
    if isinstance(value, str):
        return value if key in _NOT_PROSE else typeset(value)
    if isinstance(value, Mapping):
        # Keys are set too: age-band labels are both values (row.age_band) and keys (c.by_age_band[...]).
        return {(typeset(k) if isinstance(k, str) else k): _typeset_prose(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_typeset_prose(v, key) for v in value]
    return value


def render_group_html(group: Mapping[str, Any]) -> str:
    from jinja2 import Environment, select_autoescape

    group = _typeset_prose(group)
    environment = Environment(autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    environment.filters["count"] = _count
    environment.filters["share"] = _share
    environment.filters["change"] = _change
    template_text = resources.files("zhujian.group").joinpath("templates/group_report.html").read_text("utf-8")
    charts = {
        "age_sex": age_sex_chart(group["age_sex"]),
        "prevalence": prevalence_chart(group["conclusions"]),
        "indicators": [
            chart
            for indicator in group["indicators"]
            if indicator["model"] in ("bmi-class", "bp-class", "egfr")
            and (chart := category_chart(indicator["title"], indicator["categories"])) is not None
        ],
    }
    return environment.from_string(template_text).render(
        g=group, charts=charts, sex_labels=SEX_LABELS, none_cell=_NONE_CELL
    )


def render_group_pdf(group: Mapping[str, Any]) -> bytes:
    html = render_group_html(group)
    from weasyprint import HTML  # type: ignore[import-untyped, import-not-found, unused-ignore]

    pdf = HTML(string=html).write_pdf()
    if not isinstance(pdf, bytes):
        raise RuntimeError("WeasyPrint returned no PDF bytes")
    return pdf


TABLE_COLUMNS = ("table", "row", "column", "n", "share", "suppressed")


def table_rows(group: Mapping[str, Any]) -> Iterator[tuple[str, str, str, int | None, float | None, bool]]:
    """Every number of the report as a long table: (table, row, column, n, share, suppressed)."""

    def out(
        table: str, row: str, column: str, value: Mapping[str, Any]
    ) -> tuple[str, str, str, int | None, float | None, bool]:
        return (table, row, column, value.get("n"), value.get("share"), bool(value.get("suppressed")))

    yield ("cohort", "受检人数", "合计", group["n"], 1.0 if group["n"] else None, False)
    for sex, value in group["by_sex"].items():
        yield out("cohort", "性别", SEX_LABELS[sex], value)
    for row in group["age_sex"]:
        yield out("age_sex", row["age_band"], "合计", row["total"])
        for sex in ("male", "female", "unknown"):
            yield out("age_sex", row["age_band"], SEX_LABELS[sex], row[sex])
    for key in ("A", "B"):
        yield out("important_results", f"{key}类", "人数", group["important_results"][key])
    for conclusion in group["conclusions"]:
        name = f"{conclusion['name']} [{conclusion['icd10']}]"
        yield out("conclusions", name, "合计", conclusion)
        for sex, value in conclusion.get("by_sex", {}).items():
            yield out("conclusions", name, SEX_LABELS[sex], value)
        for band, value in conclusion.get("by_age_band", {}).items():
            yield out("conclusions", name, band, value)
        if "previous" in conclusion:
            yield out("conclusions", name, "上次", conclusion["previous"])
    for indicator in group["indicators"]:
        for row in indicator["categories"]:
            yield out("indicators", indicator["title"], row["category"], row)
        yield out("indicators", indicator["title"], "未能评估", indicator["not_assessed"])
    for item in group["item_flags"]:
        for flag in item["flags"]:
            yield out("item_flags", item["title"], flag["label"], flag)


def group_csv(group: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(TABLE_COLUMNS)
    for row in table_rows(group):
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def group_xlsx(group: Mapping[str, Any]) -> bytes:
    import importlib

    # Imported by name: openpyxl has no type information.
    openpyxl: Any = importlib.import_module("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "团检统计"
    sheet.append(list(TABLE_COLUMNS))
    for row in table_rows(group):
        sheet.append(list(row))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
