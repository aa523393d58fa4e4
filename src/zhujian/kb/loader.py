"""Load and cross-check the knowledge base.

Every problem is collected (file, path inside the file, message) and reported at once, so a KB editor sees the
whole list after one run instead of fixing errors one at a time.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from zhujian.kb.schema import (
    AllCondition,
    AnyCondition,
    AtLeastCondition,
    CenterConfig,
    CompareFile,
    ConclusionCondition,
    ConclusionDef,
    ConclusionsFile,
    Condition,
    ContextFile,
    CriticalFile,
    CriticalValueDef,
    FindingCondition,
    FindingDef,
    ItemCondition,
    ItemDef,
    ItemsFile,
    KBManifest,
    LexiconFile,
    NotCondition,
    RiskFile,
    RuleDef,
    RulesFile,
    SiteDef,
    SwitchDef,
)


@dataclass(frozen=True, slots=True)
class KBProblem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class KBError(Exception):
    """The knowledge base has problems; `problems` lists every one of them."""

    def __init__(self, problems: list[KBProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} knowledge-base problem(s):\n{lines}")


@lru_cache(maxsize=65536)
@lru_cache(maxsize=65536)
def normalize_label(text: str) -> str:
    """Key used to match item names and aliases: NFKC, lower case, no spaces, no leading '*' or trailing ':'."""
    key = unicodedata.normalize("NFKC", text).strip().lower()
    key = key.lstrip("*").rstrip(":：")
    return re.sub(r"\s+", "", key)


@lru_cache(maxsize=4096)
def normalize_unit(unit: str) -> str:
    key = unicodedata.normalize("NFKC", unit).strip().lower().replace(" ", "")
    key = key.replace("μ", "u").replace("µ", "u").replace("×", "*").replace("^", "")
    return key.replace("10*", "10")


@dataclass
class KnowledgeBase:
    manifest: KBManifest
    items: dict[str, ItemDef]
    conclusions: dict[str, ConclusionDef]
    rules: list[RuleDef]
    switches: dict[str, SwitchDef]
    critical_values: list[CriticalValueDef]
    context: ContextFile
    sites: dict[str, SiteDef]
    findings: dict[str, FindingDef]
    content_hash: str
    risk: RiskFile | None = None
    compare: CompareFile | None = None
    center: CenterConfig = field(default_factory=CenterConfig)
    alias_index: dict[str, str] = field(default_factory=dict)
    unit_factors: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    @property
    def version(self) -> str:
        return f"{self.manifest.version}+{self.content_hash[:8]}"

    def switch_on(self, name: str) -> bool:
        if name in self.center.switches:
            return self.center.switches[name]
        return self.switches[name].default

    def resolve_item(self, label: str) -> str | None:
        """KB item id for a source label or code, or None."""
        return self.alias_index.get(normalize_label(label))

    def with_center(self, center: CenterConfig) -> KnowledgeBase:
        """A copy with per-center critical-value overrides and switches applied (validated)."""
        problems: list[KBProblem] = []
        by_id = {c.id: c for c in self.critical_values}
        for i, override in enumerate(center.critical_overrides):
            if override.id not in by_id:
                problems.append(
                    KBProblem("center", f"critical_overrides[{i}].id", f"unknown critical value {override.id!r}")
                )
        for name in center.switches:
            if name not in self.switches:
                problems.append(KBProblem("center", f"switches.{name}", f"unknown switch {name!r}"))
        for i, extra in enumerate(center.extra_critical_values):
            if extra.item not in self.items:
                problems.append(KBProblem("center", f"extra_critical_values[{i}].item", f"unknown item {extra.item!r}"))
        if problems:
            raise KBError(problems)
        values: list[CriticalValueDef] = []
        overrides = {o.id: o for o in center.critical_overrides}
        for cv in self.critical_values:
            o = overrides.get(cv.id)
            if o is None:
                values.append(cv)
            elif o.enabled:
                update: dict[str, Any] = {}
                if o.value is not None:
                    update["value"] = o.value
                if o.op is not None:
                    update["op"] = o.op
                values.append(cv.model_copy(update=update))
        values.extend(center.extra_critical_values)
        copy = KnowledgeBase(
            manifest=self.manifest,
            items=self.items,
            conclusions=self.conclusions,
            rules=self.rules,
            switches=self.switches,
            critical_values=values,
            context=self.context,
            sites=self.sites,
            findings=self.findings,
            content_hash=self.content_hash,
            risk=self.risk,
            compare=self.compare,
            center=center,
            alias_index=self.alias_index,
            unit_factors=self.unit_factors,
            files=self.files,
        )
        return copy


M = TypeVar("M", bound=BaseModel)


def _default_root() -> Path:
    return Path(str(resources.files("zhujian").joinpath("kb/data")))


def _yaml_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())


def _error_path(loc: Iterable[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# libyaml's loader when PyYAML was built with it: the same documents as the pure-Python SafeLoader
# (tests/test_kb_loading.py compares the two KBs) in about a third of the time (docs/measurements.md).
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(model: type[M], path: Path, root: Path, problems: list[KBProblem]) -> M | None:
    rel = str(path.relative_to(root))
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError as exc:
        problems.append(KBProblem(rel, "", f"YAML syntax error: {exc}"))
        return None
    except OSError as exc:
        problems.append(KBProblem(rel, "", f"cannot read: {exc.strerror or exc}"))
        return None
    except UnicodeDecodeError as exc:
        problems.append(KBProblem(rel, "", f"not UTF-8 text (byte {exc.start}): a binary file?"))
        return None
    if data is None:
        problems.append(KBProblem(rel, "", "file is empty"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            # Drop pydantic's internal union/tag segments so the path reads like the YAML.
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            problems.append(KBProblem(rel, _error_path(loc), err["msg"]))
        return None


def iter_conditions(cond: Condition) -> Iterator[Condition]:
    yield cond
    if isinstance(cond, AllCondition):
        for c in cond.all:
            yield from iter_conditions(c)
    elif isinstance(cond, AnyCondition):
        for c in cond.any:
            yield from iter_conditions(c)
    elif isinstance(cond, NotCondition):
        yield from iter_conditions(cond.not_)
    elif isinstance(cond, AtLeastCondition):
        for c in cond.at_least.of:
            yield from iter_conditions(c)


def load_kb(root: Path | None = None, center: CenterConfig | None = None) -> KnowledgeBase:
    """Load, validate and cross-check the KB under `root` (default: the bundled one). Raises KBError."""
    root = root or _default_root()
    if not root.is_dir():
        raise KBError([KBProblem(str(root), "", "not a folder: --kb names the knowledge-base folder")])
    problems: list[KBProblem] = []
    digest = hashlib.sha256()
    files: list[str] = []

    def parse(model: type[M], path: Path) -> M | None:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
        files.append(str(path.relative_to(root)))
        return _parse(model, path, root, problems)

    manifest_path = root / "manifest.yaml"
    manifest = parse(KBManifest, manifest_path) if manifest_path.exists() else None
    if manifest is None and not manifest_path.exists():
        problems.append(KBProblem("manifest.yaml", "", "missing"))

    items: dict[str, ItemDef] = {}
    item_files: dict[str, str] = {}
    for path in _yaml_files(root / "items"):
        parsed = parse(ItemsFile, path)
        if parsed is None:
            continue
        for i, item in enumerate(parsed.items):
            rel = str(path.relative_to(root))
            if item.id in items:
                problems.append(
                    KBProblem(rel, f"items[{i}].id", f"duplicate item id {item.id!r} (also in {item_files[item.id]})")
                )
            items[item.id] = item
            item_files[item.id] = rel

    conclusions: dict[str, ConclusionDef] = {}
    for path in _yaml_files(root / "conclusions"):
        parsed_c = parse(ConclusionsFile, path)
        if parsed_c is None:
            continue
        for i, con in enumerate(parsed_c.conclusions):
            if con.id in conclusions:
                problems.append(
                    KBProblem(
                        str(path.relative_to(root)), f"conclusions[{i}].id", f"duplicate conclusion id {con.id!r}"
                    )
                )
            conclusions[con.id] = con

    rules: list[tuple[str, int, RuleDef]] = []
    switches: dict[str, SwitchDef] = {}
    for path in _yaml_files(root / "rules"):
        parsed_r = parse(RulesFile, path)
        if parsed_r is None:
            continue
        rel = str(path.relative_to(root))
        for i, rule in enumerate(parsed_r.rules):
            rules.append((rel, i, rule))
        for sw in parsed_r.switches:
            switches[sw.id] = sw

    critical: list[CriticalValueDef] = []
    critical_path = root / "critical.yaml"
    if critical_path.exists():
        parsed_cv = parse(CriticalFile, critical_path)
        if parsed_cv is not None:
            critical = parsed_cv.critical_values

    risk: RiskFile | None = None
    risk_path = root / "risk.yaml"
    if risk_path.exists():
        risk = parse(RiskFile, risk_path)
    compare: CompareFile | None = None
    compare_path = root / "compare.yaml"
    if compare_path.exists():
        compare = parse(CompareFile, compare_path)
        if compare is not None:
            for i, class_rule in enumerate(compare.item_classes):
                if class_rule.item not in items:
                    problems.append(
                        KBProblem("compare.yaml", f"item_classes[{i}].item", f"unknown item {class_rule.item!r}")
                    )

    context: ContextFile | None = None
    sites: dict[str, SiteDef] = {}
    findings: dict[str, FindingDef] = {}
    finding_files: dict[str, str] = {}
    lexicon_dir = root / "lexicon"
    context_path = lexicon_dir / "context.yaml"
    if context_path.exists():
        context = parse(ContextFile, context_path)
    else:
        problems.append(KBProblem("lexicon/context.yaml", "", "missing"))
    for path in _yaml_files(lexicon_dir):
        if path.name == "context.yaml":
            continue
        parsed_l = parse(LexiconFile, path)
        if parsed_l is None:
            continue
        rel = str(path.relative_to(root))
        for i, site in enumerate(parsed_l.sites):
            if site.id in sites:
                problems.append(KBProblem(rel, f"sites[{i}].id", f"duplicate site id {site.id!r}"))
            sites[site.id] = site
        for i, fd in enumerate(parsed_l.findings):
            if fd.id in findings:
                problems.append(
                    KBProblem(
                        rel, f"findings[{i}].id", f"duplicate finding id {fd.id!r} (also in {finding_files[fd.id]})"
                    )
                )
            findings[fd.id] = fd
            finding_files[fd.id] = rel

    # ---- cross references -------------------------------------------------------------------------------------
    alias_index: dict[str, str] = {}
    unit_factors: dict[str, dict[str, tuple[float, float]]] = {}
    for item_id, item in items.items():
        rel = item_files[item_id]
        for label in [item.id, item.name, *item.aliases]:
            key = normalize_label(label)
            other = alias_index.get(key)
            if other is not None and other != item_id:
                problems.append(KBProblem(rel, f"{item_id}.aliases", f"alias {label!r} also belongs to item {other!r}"))
            alias_index[key] = item_id
        factors: dict[str, tuple[float, float]] = {}
        if item.unit is not None:
            factors[normalize_unit(item.unit)] = (1.0, 0.0)
        for conv in item.conversions:
            factors[normalize_unit(conv.unit)] = (conv.factor, conv.offset)
        unit_factors[item_id] = factors

    for rel, i, rule in rules:
        where = f"rules[{i}]"
        if rule.conclusion not in conclusions:
            problems.append(KBProblem(rel, f"{where}.conclusion", f"unknown conclusion {rule.conclusion!r}"))
        for s in rule.suppresses:
            if s not in conclusions:
                problems.append(KBProblem(rel, f"{where}.suppresses", f"unknown conclusion {s!r}"))
        for name in [*rule.requires_switch, *rule.unless_switch]:
            if name not in switches:
                problems.append(KBProblem(rel, f"{where}", f"unknown switch {name!r}"))
        for cond in iter_conditions(rule.when):
            if isinstance(cond, ItemCondition) and cond.item not in items:
                problems.append(KBProblem(rel, f"{where}.when", f"unknown item {cond.item!r}"))
            elif isinstance(cond, ItemCondition) and cond.rank_op is not None and items[cond.item].kind != "ordinal":
                problems.append(KBProblem(rel, f"{where}.when", f"rank test on non-ordinal item {cond.item!r}"))
            elif isinstance(cond, FindingCondition) and cond.finding not in findings:
                problems.append(KBProblem(rel, f"{where}.when", f"unknown finding {cond.finding!r}"))
            elif isinstance(cond, ConclusionCondition) and cond.conclusion not in conclusions:
                problems.append(KBProblem(rel, f"{where}.when", f"unknown conclusion {cond.conclusion!r}"))

    for i, cv in enumerate(critical):
        if cv.item not in items:
            problems.append(KBProblem("critical.yaml", f"critical_values[{i}].item", f"unknown item {cv.item!r}"))
    seen_cv: set[str] = set()
    for i, cv in enumerate(critical):
        if cv.id in seen_cv:
            problems.append(KBProblem("critical.yaml", f"critical_values[{i}].id", f"duplicate id {cv.id!r}"))
        seen_cv.add(cv.id)

    for fid, fd in findings.items():
        rel = finding_files[fid]
        for s in fd.sites:
            if s not in sites:
                problems.append(KBProblem(rel, f"{fid}.sites", f"unknown site {s!r}"))
        if fd.conclusion is not None and fd.conclusion not in conclusions:
            problems.append(KBProblem(rel, f"{fid}.conclusion", f"unknown conclusion {fd.conclusion!r}"))
        for s in fd.suppresses:
            if s not in findings:
                problems.append(KBProblem(rel, f"{fid}.suppresses", f"unknown finding {s!r}"))
        for j, pattern in enumerate([*fd.patterns, *fd.exclude]):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(KBProblem(rel, f"{fid}.patterns[{j}]", f"bad regular expression {pattern!r}: {exc}"))
    if context is not None:
        ctx = context.context
        named = [("context.incomplete", p) for p in ctx.incomplete] + [
            ("context.scope_closers", p) for p in ctx.scope_closers
        ]
        named += [("attributes.bilateral", p) for p in context.attributes.bilateral]
        for where, pattern in named:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(KBProblem("lexicon/context.yaml", where, f"bad regular expression {pattern!r}: {exc}"))
    for sid, site in sites.items():
        for pattern in site.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(KBProblem("lexicon", f"sites.{sid}", f"bad regular expression {pattern!r}: {exc}"))

    if problems or manifest is None or context is None:
        raise KBError(problems)

    kb = KnowledgeBase(
        manifest=manifest,
        items=items,
        conclusions=conclusions,
        rules=[r for _, _, r in rules],
        switches=switches,
        critical_values=critical,
        context=context,
        sites=sites,
        findings=findings,
        content_hash=digest.hexdigest(),
        risk=risk,
        compare=compare,
        alias_index=alias_index,
        unit_factors=unit_factors,
        files=files,
    )
    if center is not None:
        kb = kb.with_center(center)
    return kb


def load_center_config(path: Path) -> CenterConfig:
    problems: list[KBProblem] = []
    parsed = _parse(CenterConfig, path, path.parent, problems)
    if parsed is None:
        raise KBError(problems)
    return parsed


def _hashed_files(root: Path) -> list[Path]:
    """The files `load_kb` reads, in the order it hashes them (the KB version depends on the order)."""
    lexicon = root / "lexicon"
    singles = [root / "critical.yaml", root / "risk.yaml", root / "compare.yaml"]
    return [
        *[p for p in [root / "manifest.yaml"] if p.exists()],
        *_yaml_files(root / "items"),
        *_yaml_files(root / "conclusions"),
        *_yaml_files(root / "rules"),
        *[p for p in singles if p.exists()],
        *[p for p in [lexicon / "context.yaml"] if p.exists()],
        *[p for p in _yaml_files(lexicon) if p.name != "context.yaml"],
    ]


def kb_version(root: Path | None = None) -> str:
    """The version `load_kb(root).version` reports, from the manifest and the file hashes alone (no validation):
    what `zhujian version` prints without loading the whole KB. Raises KBError when the manifest cannot be read."""
    root = root or _default_root()
    digest = hashlib.sha256()
    for path in _hashed_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    problems: list[KBProblem] = []
    manifest_path = root / "manifest.yaml"
    if not manifest_path.exists():
        raise KBError([KBProblem("manifest.yaml", "", "missing")])
    manifest = _parse(KBManifest, manifest_path, root, problems)
    if manifest is None:
        raise KBError(problems)
    return f"{manifest.version}+{digest.hexdigest()[:8]}"


_DEFAULT_KB: KnowledgeBase | None = None


def default_kb() -> KnowledgeBase:
    """The bundled KB, loaded once per process."""
    global _DEFAULT_KB
    if _DEFAULT_KB is None:
        _DEFAULT_KB = load_kb()
    return _DEFAULT_KB
