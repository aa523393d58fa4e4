"""`zhujian group REPORTS --out group.html`: the group (团检) report of a cohort from the engine's reports
(JSON lines as `zhujian batch` writes them, or its Parquet output)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer


def read_reports(path: Path) -> Iterator[dict[str, Any]]:
    """Reports from JSON lines or Parquet; a line that is not a JSON object stops with its line number."""
    if path.suffix.lower() == ".parquet":
        from zhujian.group.parquet import read_parquet_reports

        yield from read_parquet_reports(path)
        return
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(
                    f"{path} line {number}: not valid JSON (column {exc.colno}: {exc.msg})"
                ) from exc
            if not isinstance(value, dict):
                raise typer.BadParameter(f"{path} line {number}: expected a report object, got {type(value).__name__}")
            yield value


def group_command(
    reports: Annotated[Path, typer.Argument(help="reports: JSON lines (zhujian batch --out) or Parquet")],
    out: Annotated[Path, typer.Option("--out", help="HTML file of the group report")],
    pdf: Annotated[Path | None, typer.Option("--pdf", help="also write the report as PDF")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="also write the numbers as JSON")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="also write every table as CSV (long format)")] = None,
    xlsx_out: Annotated[Path | None, typer.Option("--xlsx", help="also write every table as Excel")] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="report field to split by, e.g. employer (small groups hidden)")
    ] = None,
    min_cell: Annotated[
        int, typer.Option("--min-cell", min=1, help="cells with fewer people are suppressed everywhere")
    ] = 5,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="the same cohort's reports of an earlier year, for the change")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="report title (e.g. the employer's name)")] = None,
) -> None:
    """Write the employer's group report: headcount by sex and age, prevalence of each conclusion (overall, by sex
    and age band, top 10 with charts), key indicator distributions, A/B counts, risk categories, change since the
    earlier year and advice for the employer. No names or ids appear; small cells are suppressed."""
    from zhujian.group.aggregate import GroupInputError, build_group_report, merged_part_lines
    from zhujian.group.render import group_csv, group_xlsx, render_group_html, render_group_pdf
    from zhujian.kb.loader import default_kb

    for path in (reports, previous):
        if path is not None and not path.is_file():
            typer.echo(f"cannot read {path}: no such file", err=True)
            raise typer.Exit(2)
    try:
        group = build_group_report(
            read_reports(reports),
            min_cell=min_cell,
            by=by,
            previous=list(read_reports(previous)) if previous is not None else None,
            title=title,
            part_lines=merged_part_lines(default_kb()),
        )
    except (GroupInputError, typer.BadParameter) as exc:
        typer.echo(f"{reports}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if group["n"] == 0:
        typer.echo(f"{reports}: no reports in the file", err=True)
        raise typer.Exit(2)
    out.write_text(render_group_html(group), encoding="utf-8")
    if json_out is not None:
        json_out.write_text(json.dumps(group, ensure_ascii=False, indent=1), encoding="utf-8")
    if csv_out is not None:
        csv_out.write_text(group_csv(group), encoding="utf-8-sig")  # BOM: Excel opens Chinese CSV correctly
    if xlsx_out is not None:
        xlsx_out.write_bytes(group_xlsx(group))
    if pdf is not None:
        pdf.write_bytes(render_group_pdf(group))
    typer.echo(f"团检报告：{group['n']} 人，{len(group['conclusions'])} 项结论 → {out}")
