"""Trend charts of the examinee's report as SVG text (matplotlib, rendered server-side, embedded in the HTML and
the PDF), drawn the way the group report draws its charts: glyphs as paths, so the SVG needs no font to display.

A chart is drawn only for a result that also has a value from an earlier visit; one point is not a trend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from zhujian.render.svg import figure_svg, new_figure

LINE_COLOUR = "#0b4f6c"
ABNORMAL_COLOUR = "#b3261e"
RANGE_COLOUR = "#dff0e6"


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One measurement: the visit's label on the x axis (a date), the value, and whether it was out of range."""

    label: str
    value: float
    abnormal: bool


def trend_chart_svg(
    title: str,
    points: Sequence[TrendPoint],
    value_labels: Sequence[str],
    ref_low: float | None = None,
    ref_high: float | None = None,
) -> str | None:
    """A small line chart of one result over visits, oldest first, with the reference range shaded; each point is
    labelled with `value_labels` (the numbers as the report prints them). None for fewer than two points."""
    if len(points) < 2 or len(value_labels) != len(points):
        return None
    figure, axes = new_figure(2.35, 1.55, hash_salt="zhujian-trend")
    positions = list(range(len(points)))
    values = [p.value for p in points]
    low_edge = min([*values, *(v for v in (ref_low, ref_high) if v is not None)])
    high_edge = max([*values, *(v for v in (ref_low, ref_high) if v is not None)])
    margin = (high_edge - low_edge) * 0.25 or abs(high_edge) * 0.1 or 1.0
    bottom, top = low_edge - margin, high_edge + margin
    if ref_low is not None or ref_high is not None:
        axes.axhspan(
            ref_low if ref_low is not None else bottom,
            ref_high if ref_high is not None else top,
            color=RANGE_COLOUR,
            zorder=0,
        )
    axes.plot(positions, values, color=LINE_COLOUR, linewidth=1.4, zorder=2)
    for x, point, shown in zip(positions, points, value_labels, strict=True):
        colour = ABNORMAL_COLOUR if point.abnormal else LINE_COLOUR
        axes.scatter([x], [point.value], color=colour, s=16, zorder=3)
        axes.annotate(
            shown, (x, point.value), xytext=(0, 5), textcoords="offset points", ha="center", va="bottom",
            fontsize=7, color=colour,
        )
    axes.set_ylim(bottom, top + margin * 0.6)
    axes.set_xlim(-0.45, len(points) - 0.55)
    axes.set_xticks(positions, [p.label for p in points], fontsize=7)
    axes.tick_params(axis="y", labelsize=6.5)
    axes.set_title(title, fontsize=8.5)
    axes.spines[["top", "right"]].set_visible(False)
    return figure_svg(figure, pad=0.4)
