"""Charts of the group report as SVG text (matplotlib, rendered server-side; embedded in the HTML and the PDF).

Only cells that are shown in the tables are drawn: a suppressed cell is never plotted, so a chart cannot reveal what
a table hides. Glyphs are drawn as paths, so the SVG needs no font wherever it is shown.
"""

from __future__ import annotations

from typing import Any

from zhujian.render.svg import figure_svg, new_figure

MALE_COLOUR = "#3b6ea5"
FEMALE_COLOUR = "#c0504d"
BAR_COLOUR = "#4a7f6b"


def _figure(width: float, height: float) -> Any:
    return new_figure(width, height, hash_salt="zhujian")


def age_sex_chart(age_sex: list[dict[str, Any]]) -> str | None:
    rows = [row for row in age_sex if not (row["male"]["suppressed"] and row["female"]["suppressed"])]
    if not rows:
        return None
    figure, axes = _figure(6.4, 2.8)
    positions = range(len(rows))
    width = 0.38
    series = ((-width / 2, "male", "男", MALE_COLOUR), (width / 2, "female", "女", FEMALE_COLOUR))
    for offset, sex, label, colour in series:
        values = [row[sex]["n"] or 0 for row in rows]
        bars = axes.bar([p + offset for p in positions], values, width, label=label, color=colour)
        for bar, row in zip(bars, rows, strict=True):
            if row[sex]["suppressed"]:
                axes.annotate("<", (bar.get_x() + bar.get_width() / 2, 0), ha="center", va="bottom", fontsize=7)
    axes.set_xticks(list(positions), [row["age_band"] for row in rows])
    axes.set_ylabel("人数")
    axes.set_title("受检人员年龄与性别分布（小于最小单元的格不显示）", fontsize=10)
    axes.legend(frameon=False, fontsize=8)
    axes.spines[["top", "right"]].set_visible(False)
    return figure_svg(figure)


def prevalence_chart(conclusions: list[dict[str, Any]], limit: int = 10) -> str | None:
    shown = [c for c in conclusions if not c["suppressed"] and c["n"]][:limit]
    if not shown:
        return None
    figure, axes = _figure(6.4, 0.35 * len(shown) + 0.9)
    names = [c["name"] for c in reversed(shown)]
    shares = [c["share"] * 100 for c in reversed(shown)]
    bars = axes.barh(names, shares, color=BAR_COLOUR)
    for bar, share in zip(bars, shares, strict=True):
        axes.annotate(
            f"{share:.1f}%", (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
            textcoords="offset points", va="center", fontsize=8,
        )
    axes.set_xlabel("检出率（%）")
    axes.set_title(f"检出率前 {len(shown)} 位的主检结论", fontsize=10)
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_xlim(0, max(shares) * 1.2)
    axes.tick_params(axis="y", labelsize=8)
    return figure_svg(figure)


def category_chart(title: str, categories: list[dict[str, Any]]) -> str | None:
    shown = [row for row in categories if not row["suppressed"] and row["n"]]
    if not shown:
        return None
    figure, axes = _figure(3.2, 0.32 * len(shown) + 0.9)
    labels = [row["category"] for row in reversed(shown)]
    values = [row["share"] * 100 for row in reversed(shown)]
    axes.barh(labels, values, color=BAR_COLOUR)
    axes.set_xlabel("占受检人数（%）", fontsize=8)
    axes.set_title(title, fontsize=9)
    axes.tick_params(labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    return figure_svg(figure)
