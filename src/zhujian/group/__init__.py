"""Group (团检) reports for an employer or any cohort: `build_group_report` (pure aggregation with small-cell
suppression), `render_group_html` / `render_group_pdf` / `group_csv` / `group_xlsx`; CLI `zhujian group`."""

from zhujian.group.aggregate import DEFAULT_MIN_CELL, GroupInputError, build_group_report, merged_part_lines

__all__ = ["DEFAULT_MIN_CELL", "GroupInputError", "build_group_report", "merged_part_lines"]
