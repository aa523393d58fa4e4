"""Per-source conventions as data: the units a source leaves unsaid, its value codes, its age classes.

A profile is a YAML file under `adapters/profiles/` (one per source, each with its source). It is chosen with
`--profile NAME`, or detected from the header when all of its `detect_all` headers are present.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from zhujian.adapters.base import IngestError
from zhujian.adapters.demographics import AgeBand
from zhujian.kb.loader import KnowledgeBase, normalize_label, normalize_unit

FormatKind = Literal["wide", "long"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnRule(_Strict):
    """How to read one column (wide) or one item (long) of the source."""

    unit: str | None = None  # the unit the source uses without printing it
    item: str | None = None  # KB item id, when the header is not one of the item's aliases
    values: dict[str, str] = {}  # source code → value as the KB knows it (e.g. urine protein 1 → "-")
    rename: str | None = None  # keep the column under this name: it is not the measurement its header suggests
    note: str | None = None


class AgeCodes(_Strict):
    column: str
    source: str
    bands: dict[str, tuple[int, int | None]]


class Profile(_Strict):
    name: str
    description: str
    source: str
    formats: list[FormatKind]
    detect_all: list[str] = []
    columns: dict[str, ColumnRule] = {}
    age_codes: AgeCodes | None = None
    date_order: Literal["dmy", "mdy"] | None = None
    item_labels: dict[str, str] = {}  # long: source item code → label (Meinian table ids)
    text_items: list[str] = []  # long: source item codes whose values are free text
    notes: list[str] = []

    _rules_by_key: dict[str, ColumnRule] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._rules_by_key = {normalize_label(header): rule for header, rule in self.columns.items()}

    def column_rule(self, header: str) -> ColumnRule | None:
        return self._rules_by_key.get(normalize_label(header))

    def age_band(self, code: str) -> AgeBand | None:
        if self.age_codes is None:
            return None
        band = self.age_codes.bands.get(code.strip())
        return None if band is None else AgeBand(band[0], band[1])

    def is_age_code_column(self, header: str) -> bool:
        return self.age_codes is not None and normalize_label(self.age_codes.column) == normalize_label(header)


@lru_cache(maxsize=1)
def load_profiles() -> dict[str, Profile]:
    """Every bundled profile by name. Raises IngestError naming the file and field of a broken one."""
    folder = resources.files("zhujian.adapters").joinpath("profiles")
    profiles: dict[str, Profile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        try:
            profile = Profile.model_validate(yaml.safe_load(entry.read_text(encoding="utf-8")))
        except (yaml.YAMLError, ValidationError) as exc:
            raise IngestError(f"profile file {entry.name} is invalid: {exc}") from exc
        if profile.name != entry.name.removesuffix(".yaml").replace("_", "-"):
            raise IngestError(f"profile file {entry.name}: name {profile.name!r} does not match the file name")
        profiles[profile.name] = profile
    return profiles


def profile_names() -> list[str]:
    return sorted(load_profiles())


def check_profile(profile: Profile, kb: KnowledgeBase) -> list[str]:
    """Problems of a profile against the KB: unknown item ids, units the KB cannot convert."""
    problems: list[str] = []
    for header, rule in profile.columns.items():
        item_id = rule.item or kb.resolve_item(header)
        if rule.item is not None and rule.item not in kb.items:
            problems.append(f"{profile.name}: column {header!r}: unknown KB item {rule.item!r}")
            continue
        if rule.unit is not None and rule.rename is None:
            if item_id is None:
                problems.append(f"{profile.name}: column {header!r} has a unit but is no KB item")
            elif normalize_unit(rule.unit) not in kb.unit_factors.get(item_id, {}):
                problems.append(f"{profile.name}: column {header!r}: KB item {item_id} cannot convert {rule.unit!r}")
    return problems


def select_profile(header: Iterable[str], requested: str | None, kind: FormatKind) -> tuple[Profile | None, str]:
    """The profile to use and why: the requested one, none (`"none"`), or the best match of the header."""
    profiles = load_profiles()
    if requested is not None:
        if requested == "none":
            return None, "no profile (--profile none)"
        profile = profiles.get(requested)
        if profile is None:
            known = ", ".join(sorted(profiles))
            raise IngestError(f"unknown profile {requested!r}; known profiles: {known}, none")
        return profile, "given with --profile"
    keys = {normalize_label(h) for h in header}
    best: Profile | None = None
    for profile in profiles.values():
        if kind not in profile.formats or not profile.detect_all:
            continue
        matches = all(normalize_label(h) in keys for h in profile.detect_all)
        if matches and (best is None or len(profile.detect_all) > len(best.detect_all)):
            best = profile
    if best is None:
        return None, "no profile matches the header"
    shown = ", ".join(best.detect_all)
    return best, f"detected from the headers {shown}"
