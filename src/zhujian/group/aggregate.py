"""The group (团检) report as data: headcounts, prevalence of each conclusion, indicator distributions, important
results, risk categories and the change against an earlier year, with small cells suppressed everywhere.

Pure: reports (the engine's report JSON, one per visit) in, a JSON-ready dict out. Counting rules:
- one person counts once: reports are de-duplicated by `person_id` (the latest exam wins), and by `visit_id` when a
  report has no person id;
- a conclusion counts the people who have it, matched by name and ICD-10 code, as the physician signs it; a part
  merged into another line (一元化: 肥胖 inside 代谢综合征（伴肥胖）) counts as its own line too when `part_lines` (from
  the knowledge base: `merged_part_lines(kb)`) knows its name, so merging never lowers a condition's prevalence;
- every count below `min_cell` (default 5) is suppressed: `n` and `share` are null and `suppressed` is true, in
  tables, charts, JSON and CSV alike. Where a row splits a shown total into parts (sex, age bands), a second part is
  suppressed too when exactly one is, so that the hidden one cannot be recovered by subtraction.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

SEXES = ("male", "female", "unknown")
SEX_LABELS = {"male": "男", "female": "女", "unknown": "性别不详"}
FLAG_LABELS = {"high": "偏高", "low": "偏低", "normal": "正常", "abnormal": "异常", "unknown": "无法判读"}
DEFAULT_MIN_CELL = 5


class GroupInputError(ValueError):
    """A report line is not a report (names the line and what is missing)."""


@dataclass(frozen=True, slots=True)
class AgeBand:
    label: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class GroupConfig:
    version: str
    age_bands: tuple[AgeBand, ...]
    indicators: tuple[tuple[str, str], ...]  # (risk model, title)
    item_flags: tuple[tuple[str, str], ...]  # (item id, title)
    employer_advice: tuple[dict[str, Any], ...]


@cache
def default_config() -> GroupConfig:
    text = resources.files("zhujian.group").joinpath("data/group.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return GroupConfig(
        version=str(data["version"]),
        age_bands=tuple(AgeBand(str(b["label"]), float(b["low"]), float(b["high"])) for b in data["age_bands"]),
        indicators=tuple((str(i["model"]), str(i["title"])) for i in data["indicators"]),
        item_flags=tuple((str(i["item_id"]), str(i["title"])) for i in data["item_flags"]),
        employer_advice=tuple(dict(a) for a in data["employer_advice"]),
    )


# ------------------------------------------------------------------------------------------------------- people


@dataclass(frozen=True, slots=True)
class Person:
    """What the group report needs of one person's report."""

    key: str
    sex: str
    age: float | None
    exam_date: str
    group: str | None
    conclusions: frozenset[tuple[str, str]]  # (name, icd10)
    levels: frozenset[str]  # "A", "B" among the conclusions
    critical: bool
    risk: Mapping[str, str]  # model -> category (computed only)
    flags: Mapping[str, str]  # item id -> flag


PartLines = Mapping[str, tuple[str, str]]  # a merged part's name -> (name, ICD-10) of its own line


def merged_part_lines(kb: Any) -> dict[str, tuple[str, str]]:
    """Name -> (name, ICD-10) of every KB conclusion, for counting the parts a report merged into another line."""
    return {str(c.name): (str(c.name), str(c.icd10)) for c in kb.conclusions.values()}


def _part_line(name: str, part_lines: PartLines) -> tuple[str, str] | None:
    # Merged names may carry the qualifier their own rule added (高血压病（血压控制不佳）): the KB name is before it.
    return part_lines.get(name) or part_lines.get(name.split("（", 1)[0])


def _person(report: Mapping[str, Any], line: int, by: str | None, part_lines: PartLines | None = None) -> Person:
    if not isinstance(report, Mapping) or "conclusions" not in report or "visit_id" not in report:
        raise GroupInputError(f"line {line}: not a report (needs visit_id and conclusions, as `zhujian report` writes)")
    sex = report.get("sex") if report.get("sex") in SEXES else "unknown"
    age = report.get("age")
    conclusions = set()
    levels = set()
    for conclusion in report.get("conclusions") or []:
        if not isinstance(conclusion, Mapping) or not conclusion.get("name"):
            raise GroupInputError(f"line {line}: a conclusion without a name in visit {report.get('visit_id')!r}")
        conclusions.add((str(conclusion["name"]), str(conclusion.get("icd10") or "")))
        if part_lines:
            for part in conclusion.get("merged") or []:
                own = _part_line(str(part), part_lines)
                if own is not None:
                    conclusions.add(own)
        if conclusion.get("level") in ("A", "B"):
            levels.add(str(conclusion["level"]))
    risk = {
        str(model["model"]): str(model["category"])
        for model in report.get("risk") or []
        if isinstance(model, Mapping) and model.get("computed") and model.get("category")
    }
    flags = {
        str(item["item_id"]): str(item.get("flag") or "unknown")
        for item in report.get("items") or []
        if isinstance(item, Mapping) and item.get("item_id")
    }
    group_value = report.get(by) if by else None
    return Person(
        key=str(report.get("person_id") or f"visit:{report['visit_id']}"),
        sex=str(sex),
        age=float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None,
        exam_date=str(report.get("exam_date") or ""),
        group=None if group_value in (None, "") else str(group_value),
        conclusions=frozenset(conclusions),
        levels=frozenset(levels),
        critical=bool(report.get("critical")),
        risk=risk,
        flags=flags,
    )


def people_from_reports(
    reports: Iterable[Mapping[str, Any]], *, by: str | None = None, part_lines: PartLines | None = None
) -> list[Person]:
    """One Person per examinee: the latest exam of each person_id (visit_id when there is none)."""
    latest: dict[str, Person] = {}
    for line, report in enumerate(reports, start=1):
        person = _person(report, line, by, part_lines)
        kept = latest.get(person.key)
        if kept is None or person.exam_date >= kept.exam_date:
            latest[person.key] = person
    return list(latest.values())


# -------------------------------------------------------------------------------------------------------- cells


def cell(n: int, denominator: int, min_cell: int) -> dict[str, Any]:
    """A count with its share, or a suppressed cell."""
    if n < min_cell or denominator < min_cell:
        return {"n": None, "share": None, "suppressed": True}
    return {"n": n, "share": round(n / denominator, 4) if denominator else None, "suppressed": False}


def _protect_split(parts: dict[str, dict[str, Any]], counts: Mapping[str, int]) -> None:
    """When exactly one non-empty part of a shown total is suppressed, suppress the next smallest part as well, so
    the hidden count cannot be recovered as total minus the others. Empty parts (0) need no protection: a zero
    suppressed as small still reveals nothing beyond 'fewer than min_cell'."""
    hidden = [key for key, value in parts.items() if value["suppressed"] and counts.get(key, 0) > 0]
    if len(hidden) != 1:
        return
    candidates = sorted((counts.get(key, 0), key) for key, value in parts.items() if not value["suppressed"])
    if candidates:
        parts[candidates[0][1]] = {"n": None, "share": None, "suppressed": True}


def age_band(age: float | None, bands: tuple[AgeBand, ...]) -> str:
    if age is None:
        return "年龄不详"
    for band in bands:
        if band.low <= age < band.high:
            return band.label
    return "年龄不详"


# ------------------------------------------------------------------------------------------------ the aggregate


def build_group_report(
    reports: Iterable[Mapping[str, Any]],
    *,
    min_cell: int = DEFAULT_MIN_CELL,
    by: str | None = None,
    previous: Iterable[Mapping[str, Any]] | None = None,
    config: GroupConfig | None = None,
    title: str | None = None,
    part_lines: PartLines | None = None,
) -> dict[str, Any]:
    """The group report of a cohort as a JSON-ready dict (see the module docstring for the counting rules)."""
    if min_cell < 1:
        raise ValueError("min_cell must be at least 1")
    config = config or default_config()
    people = people_from_reports(reports, by=by, part_lines=part_lines)
    earlier = people_from_reports(previous, part_lines=part_lines) if previous is not None else None
    result = _cohort_section(people, min_cell=min_cell, config=config, earlier=earlier)
    result["title"] = title or "团体健康体检报告"
    result["min_cell"] = min_cell
    result["config_version"] = config.version
    result["generated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    exam_dates = sorted(p.exam_date for p in people if p.exam_date)
    result["exam_dates"] = {"first": exam_dates[0], "last": exam_dates[-1]} if exam_dates else None
    if by:
        groups: dict[str, list[Person]] = defaultdict(list)
        for person in people:
            groups[person.group or "（未填写）"].append(person)
        result["by"] = by
        result["groups"] = [
            {"group": name, "n": len(members), **_cohort_section(members, min_cell=min_cell, config=config)}
            if len(members) >= min_cell
            else {"group": name, "n": None, "suppressed": True}
            for name, members in sorted(groups.items())
        ]
    return result


def _cohort_section(
    people: list[Person], *, min_cell: int, config: GroupConfig, earlier: list[Person] | None = None
) -> dict[str, Any]:
    n = len(people)
    sex_counts = Counter(p.sex for p in people)
    bands = [band.label for band in config.age_bands] + ["年龄不详"]
    band_of = {id(p): age_band(p.age, config.age_bands) for p in people}
    band_counts = Counter(band_of.values())

    by_sex = {sex: cell(sex_counts.get(sex, 0), n, min_cell) for sex in SEXES}
    _protect_split(by_sex, sex_counts)

    age_sex = []
    for band in bands:
        in_band = [p for p in people if band_of[id(p)] == band]
        if not in_band and band == "年龄不详":
            continue
        counts = Counter(p.sex for p in in_band)
        row = {sex: cell(counts.get(sex, 0), n, min_cell) for sex in SEXES}
        _protect_split(row, counts)
        age_sex.append({"age_band": band, "total": cell(len(in_band), n, min_cell), **row})

    conclusion_people: dict[tuple[str, str], list[Person]] = defaultdict(list)
    for person in people:
        for key in person.conclusions:
            conclusion_people[key].append(person)
    earlier_counts: Counter[tuple[str, str]] = Counter()
    if earlier is not None:
        for person in earlier:
            earlier_counts.update(person.conclusions)

    conclusions = []
    for (name, icd10), members in sorted(conclusion_people.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        entry: dict[str, Any] = {"name": name, "icd10": icd10, **cell(len(members), n, min_cell)}
        member_sex = Counter(p.sex for p in members)
        sex_cells = {
            sex: cell(member_sex.get(sex, 0), sex_counts.get(sex, 0), min_cell) for sex in SEXES if sex_counts.get(sex)
        }
        if entry["suppressed"]:
            sex_cells = {sex: {"n": None, "share": None, "suppressed": True} for sex in sex_cells}
        else:
            _protect_split(sex_cells, member_sex)
        entry["by_sex"] = sex_cells
        member_band = Counter(band_of[id(p)] for p in members)
        band_cells = {
            band: cell(member_band.get(band, 0), band_counts.get(band, 0), min_cell)
            for band in bands
            if band_counts.get(band)
        }
        if entry["suppressed"]:
            band_cells = {band: {"n": None, "share": None, "suppressed": True} for band in band_cells}
        else:
            _protect_split(band_cells, member_band)
        entry["by_age_band"] = band_cells
        if earlier is not None:
            before = cell(earlier_counts.get((name, icd10), 0), len(earlier), min_cell)
            entry["previous"] = before
            entry["change_pp"] = (
                round((entry["share"] - before["share"]) * 100, 1)
                if not entry["suppressed"] and not before["suppressed"]
                else None
            )
        conclusions.append(entry)
    if earlier is not None:
        # Conclusions seen last year but not this year: a disappearance is a change worth showing.
        current_keys = set(conclusion_people)
        for (name, icd10), count in sorted(earlier_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            if (name, icd10) in current_keys:
                continue
            before = cell(count, len(earlier), min_cell)
            conclusions.append(
                {
                    "name": name,
                    "icd10": icd10,
                    **cell(0, n, min_cell),
                    "by_sex": {},
                    "by_age_band": {},
                    "previous": before,
                    "change_pp": None,
                }
            )

    indicators = []
    for model, model_title in config.indicators:
        categories = Counter(p.risk[model] for p in people if model in p.risk)
        assessed = sum(categories.values())
        rows = [
            {"category": category, **cell(count, n, min_cell)}
            for category, count in sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        indicators.append(
            {
                "model": model,
                "title": model_title,
                "assessed": cell(assessed, n, min_cell),
                "not_assessed": cell(n - assessed, n, min_cell),
                "categories": rows,
            }
        )
    item_flags = []
    for item_id, item_title in config.item_flags:
        flags = Counter(p.flags[item_id] for p in people if item_id in p.flags)
        measured = sum(flags.values())
        item_flags.append(
            {
                "item_id": item_id,
                "title": item_title,
                "measured": cell(measured, n, min_cell),
                "flags": [
                    {"flag": flag, "label": FLAG_LABELS.get(flag, flag), **cell(count, n, min_cell)}
                    for flag, count in sorted(flags.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
            }
        )

    important = {
        "A": cell(sum(1 for p in people if "A" in p.levels), n, min_cell),
        "B": cell(sum(1 for p in people if "B" in p.levels and "A" not in p.levels), n, min_cell),
        "critical": cell(sum(1 for p in people if p.critical), n, min_cell),
        # Batch reports carry no notification records; the workbench's alert loop knows who was reached.
        "follow_up_known": False,
    }

    advice = []
    for rule in config.employer_advice:
        prefixes = tuple(str(prefix) for prefix in rule["icd10_prefixes"])
        affected = sum(1 for p in people if any(code.startswith(prefixes) for _, code in p.conclusions))
        shown = cell(affected, n, min_cell)
        if not shown["suppressed"] and n and affected / n >= float(rule["min_share"]):
            advice.append({"id": rule["id"], "text": rule["text"], "source": rule["source"], **shown})

    section: dict[str, Any] = {
        "n": n,
        "by_sex": by_sex,
        "age_sex": age_sex,
        "conclusions": conclusions,
        "top10": [c["name"] for c in conclusions if not c["suppressed"]][:10],
        "indicators": indicators,
        "item_flags": item_flags,
        "important_results": important,
        "employer_advice": advice,
    }
    if earlier is not None:
        section["previous"] = {"n": len(earlier)}
    return section
