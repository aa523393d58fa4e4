"""Compare a physician's 主检 conclusions with the engine's report of the same record (the oracle) and list issues.

Kinds (fixed names): `missed`, `contradiction`, `value_mismatch`, `sex_mismatch`, `side_mismatch`, `unsupported`,
plus `duplicate` (the same conclusion written twice) and `missing_advice` (a class A/B conclusion without advice).
For `missed` the issue names the engine's conclusion; for every other kind the physician's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zhujian.domain.record import Record
from zhujian.domain.report import Conclusion, EvaluatedItem, Report
from zhujian.kb.loader import KnowledgeBase, normalize_unit
from zhujian.kb.schema import QcCenterSettings
from zhujian.pipeline.run import build_report
from zhujian.qc.normalize import ItemClaim, PhysicianConclusion, clause_start, read_conclusion
from zhujian.qc.parse import ConclusionLine, split_conclusions
from zhujian.qc.vocabulary import QcVocabulary, fold, vocabulary_for

ISSUE_KINDS = (
    "missed",
    "contradiction",
    "value_mismatch",
    "sex_mismatch",
    "side_mismatch",
    "unsupported",
    "duplicate",
    "missing_advice",
)
# How the workbench names each kind (zh-CN).
ISSUE_LABELS = {
    "missed": "遗漏结论",
    "contradiction": "与检查结果矛盾",
    "value_mismatch": "数值与记录不符",
    "sex_mismatch": "与性别不符",
    "side_mismatch": "左右侧不符",
    "unsupported": "诊断无依据",
    "duplicate": "结论重复",
    "missing_advice": "重要异常缺少建议",
}
_FLAG_WORDS = {"high": "偏高", "low": "偏低", "abnormal": "异常", "normal": "正常", "unknown": "未判定"}
_DIRECTION_WORDS = {"high": "升高", "low": "降低", "abnormal": "异常"}
_SEX_WORDS = {"male": "男性", "female": "女性"}


@dataclass(frozen=True, slots=True)
class QcIssue:
    kind: str
    conclusion: str | None
    icd10: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "conclusion": self.conclusion, "icd10": self.icd10, "detail": self.detail}


@dataclass
class _EngineConclusion:
    conclusion: Conclusion
    items: dict[str, str] = field(default_factory=dict)  # item id → abnormal flag in its evidence
    findings: set[str] = field(default_factory=set)
    sites: set[str] = field(default_factory=set)
    merged_ids: set[str] = field(default_factory=set)
    from_history: bool = False

    @property
    def id(self) -> str:
        return self.conclusion.conclusion_id


def _engine_view(kb: KnowledgeBase, report: Report, vocabulary: QcVocabulary) -> list[_EngineConclusion]:
    site_ids = {site.name: sid for sid, site in kb.sites.items()}
    finding_sites: dict[str, set[str]] = {}
    for f in report.findings:
        if f.site is not None and f.site in site_ids:
            finding_sites.setdefault(f.finding_id, set()).add(site_ids[f.site])
    out: list[_EngineConclusion] = []
    for c in report.conclusions:
        view = _EngineConclusion(c)
        for e in c.evidence:
            if e.kind == "item" and e.item_id and e.flag in ("high", "low", "abnormal"):
                view.items.setdefault(e.item_id, e.flag)
            elif e.kind == "finding" and e.finding_id:
                view.findings.add(e.finding_id)
                view.sites.update(finding_sites.get(e.finding_id, set()))
            elif e.kind == "history":
                view.from_history = True
        for name in c.merged:
            view.merged_ids.update(vocabulary.conclusion_names.get(fold(name), set()))
        out.append(view)
    return out


def _reportable(c: Conclusion, settings: QcCenterSettings) -> bool:
    """Class A/B conclusions and diseases are always checked; minor findings and risk factors by center setting."""
    return c.level in ("A", "B") or c.category == "disease" or settings.missed_minor


def _compatible(claim: str | None, flag: str) -> bool:
    return claim == "abnormal" or flag == "abnormal" or claim == flag


def _covers(line: PhysicianConclusion, engine: _EngineConclusion, vocabulary: QcVocabulary) -> bool:
    if engine.id in line.conclusion_ids or engine.merged_ids & line.conclusion_ids:
        return True
    if engine.findings & line.finding_ids:
        return True
    if engine.id in vocabulary.composite or engine.from_history:
        return False
    # A number quoted without a direction ("代谢综合征：空腹血糖 9.2") does not diagnose that item's conclusion.
    return any(
        c.direction is not None and c.item_id in engine.items and _compatible(c.direction, engine.items[c.item_id])
        for c in line.item_claims
    )


def _items_by_id(report: Report) -> dict[str, list[EvaluatedItem]]:
    out: dict[str, list[EvaluatedItem]] = {}
    for item in report.items:
        if item.item_id is not None:
            out.setdefault(item.item_id, []).append(item)
    return out


def _shown(item: EvaluatedItem) -> str:
    value = item.raw_value if item.raw_value is not None else item.value
    unit = f" {item.unit}" if item.unit and not str(value).endswith(str(item.unit)) else ""
    return f"{item.name} {value}{unit}（{_FLAG_WORDS.get(item.flag, item.flag)}）"


def _decimals(text: str) -> int:
    return len(text.split(".", 1)[1]) if "." in text else 0


def _raw_number(item: EvaluatedItem) -> float | None:
    if isinstance(item.raw_value, int | float):
        return float(item.raw_value)
    if isinstance(item.raw_value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*", item.raw_value)
        if match:
            return float(match.group(1))
    return None


class _Checker:
    def __init__(
        self,
        kb: KnowledgeBase,
        record: Record,
        report: Report,
        lines: list[PhysicianConclusion],
        settings: QcCenterSettings,
    ) -> None:
        self.kb = kb
        self.record = record
        self.report = report
        self.lines = lines
        self.settings = settings
        self.vocabulary = vocabulary_for(kb)
        self.engine = _engine_view(kb, report, self.vocabulary)
        self.items = _items_by_id(report)
        self.issues: list[QcIssue] = []
        self.flagged_lines: set[int] = set()  # lines with a contradiction or sex mismatch: not also unsupported
        self.contradicted: set[str] = set()  # engine conclusions a physician line contradicts: not also missed

    # ---- helpers -------------------------------------------------------------------------------------------
    def _icd(self, line: PhysicianConclusion) -> str | None:
        return self.kb.conclusions[line.primary].icd10 if line.primary in self.kb.conclusions else None

    def _add(self, kind: str, line: PhysicianConclusion | None, detail: str, engine: Conclusion | None = None) -> None:
        if engine is not None:
            self.issues.append(QcIssue(kind, engine.name, engine.icd10, detail))
        elif line is not None:
            self.issues.append(QcIssue(kind, line.name, self._icd(line), detail))

    def _where(self, line: PhysicianConclusion) -> str:
        return f"第{line.number}条“{line.name}”"

    # ---- kinds ---------------------------------------------------------------------------------------------
    def sex_mismatch(self) -> None:
        sex = self.record.sex
        if sex not in ("male", "female"):
            return
        other = "female" if sex == "male" else "male"
        for line in self.lines:
            reasons: list[str] = []
            primary = self.kb.conclusions.get(line.primary or "")
            if primary is not None and primary.sex == other:
                reasons.append(f"“{primary.name}”仅见于{_SEX_WORDS[other]}")
            reasons += [
                f"“{term}”为{_SEX_WORDS[other]}器官/情况"
                for term in self.vocabulary.sex_terms.get(other, ())
                if term in line.folded
            ]
            if reasons:
                self.flagged_lines.add(line.number)
                self._add(
                    "sex_mismatch", line, f"{self._where(line)}：{reasons[0]}，受检者为{_SEX_WORDS[sex]}"
                )

    def contradiction(self) -> None:
        reportable = [e for e in self.engine if _reportable(e.conclusion, self.settings)]
        for line in self.lines:
            found: list[str] = []
            # The opposite direction of an item: "甘油三酯偏低" with TG 5.4 (偏高).
            for claim in line.item_claims:
                if claim.direction not in ("high", "low"):
                    continue
                opposite = "low" if claim.direction == "high" else "high"
                for item in self.items.get(claim.item_id, []):
                    if item.flag == opposite:
                        found.append(
                            f"写{self.kb.items[claim.item_id].name}{_DIRECTION_WORDS[claim.direction]}，"
                            f"记录为{_shown(item)}"
                        )
                        self.contradicted.update(e.id for e in self.engine if claim.item_id in e.items)
                        break
            # A normal statement about a domain with abnormal evidence: "血脂正常" with TG 5.4.
            if line.normal_items or line.normal_sites:
                abnormal: dict[str, None] = {}
                names: dict[str, None] = {}
                for e in reportable:
                    hit_items = [i for i in e.items if i in line.normal_items]
                    if not hit_items and not e.sites & line.normal_sites:
                        continue
                    for i in hit_items:
                        abnormal.update((_shown(it), None) for it in self.items.get(i, [])[:1])
                    names[e.conclusion.name] = None
                    self.contradicted.add(e.id)
                if names:
                    subjects = "、".join(line.normal_subjects)
                    shown = f"{'；'.join(abnormal)}，" if abnormal else ""
                    found.append(f"写{subjects}正常/未见异常，但{shown}引擎结论有“{'”“'.join(names)}”")
            # A denied conclusion the evidence shows: "无脂肪肝" with fatty liver on ultrasound.
            for phrase in line.negated:
                for e in self.engine:
                    if e.id == phrase.primary:
                        found.append(f"否定了“{phrase.text}”，但引擎结论有“{e.conclusion.name}”")
                        self.contradicted.add(e.id)
            # The control status: "血糖控制良好" where the engine finds 糖尿病（血糖控制不佳）.
            for e in self.engine:
                if not _covers(line, e, self.vocabulary):
                    continue
                engine_name = fold(e.conclusion.name)
                for pair in self.vocabulary.control_opposites:
                    said = next((w for w in pair.physician if fold(w) in line.folded), None)
                    if fold(pair.engine) in engine_name and said is not None and fold(pair.engine) not in line.folded:
                        found.append(f"写“{said}”，引擎结论为“{e.conclusion.name}”")
            if found:
                self.flagged_lines.add(line.number)
                detail = f"{self._where(line)}与检查结果矛盾：" + "；".join(dict.fromkeys(found))
                self._add("contradiction", line, detail)

    def value_mismatch(self) -> None:
        for line in self.lines:
            for quoted in line.values:
                item_def = self.kb.items.get(quoted.item_id)
                if item_def is None or item_def.kind != "quantitative":
                    continue
                measured = self.items.get(quoted.item_id, [])
                if not measured:
                    self._add(
                        "value_mismatch",
                        line,
                        f"{self._where(line)}引用{item_def.name} {quoted.text}，但记录中没有该项目的结果",
                    )
                    continue
                quoted_canonical = quoted.value
                if quoted.unit:
                    factor = self.kb.unit_factors.get(quoted.item_id, {}).get(normalize_unit(quoted.unit))
                    if factor is not None:
                        quoted_canonical = quoted.value * factor[0] + factor[1]
                rounding = 0.5 * 10 ** -_decimals(quoted.text) + 1e-9
                candidates: list[float] = []
                for item in measured:
                    if isinstance(item.value, int | float):
                        candidates.append(float(item.value))
                    raw = _raw_number(item)
                    if raw is not None:
                        candidates.append(raw)
                if not candidates:
                    continue
                ok = any(
                    abs(q - c) <= max(rounding, self.settings.value_tolerance * abs(c))
                    for c in candidates
                    for q in (quoted.value, quoted_canonical)
                )
                if not ok:
                    unit = f" {quoted.unit}" if quoted.unit else ""
                    self._add(
                        "value_mismatch",
                        line,
                        f"{self._where(line)}引用{item_def.name} {quoted.text}{unit}，"
                        f"记录为{_shown(measured[0])}",
                    )

    def side_mismatch(self) -> None:
        recorded: dict[str, set[str]] = {}
        for f in self.report.findings:
            side = f.attrs.get("side")
            if isinstance(side, str):
                recorded.setdefault(f.finding_id, set()).add(side)
        for line in self.lines:
            for claim in line.sides:
                # Only a named left or right is checked: "双侧" in unpunctuated text often carries over from a
                # neighbouring finding, and one side of a bilateral finding is not wrong.
                sides = recorded.get(claim.finding_id)
                if claim.side not in ("左", "右") or not sides or claim.side in sides or "双侧" in sides:
                    continue
                seen = "、".join(s if s.endswith("侧") else s + "侧" for s in sorted(sides))
                self._add(
                    "side_mismatch",
                    line,
                    f"{self._where(line)}写{claim.side}侧{claim.finding_name}，检查所见为{seen}",
                )

    def _history_supports(self, line: PhysicianConclusion) -> bool:
        q = self.record.questionnaire
        # A denied entry ("否认糖尿病") supports nothing.
        texts = [
            fold(t)
            for t in (*q.history, *q.medications, *q.symptoms)
            if not any(cue in fold(t) for cue in self.vocabulary.negation_cues)
        ]
        if not texts:
            return False
        words = {p.text for p in line.phrases}
        for cid in line.conclusion_ids:
            words.update(fold(w) for w in _bare_names(self.kb.conclusions[cid].name))
        # Either way round: history "2型糖尿病" supports "糖尿病", history "高血压" supports "高血压病".
        return any(w and w in t for w in words for t in texts) or any(
            len(t) >= 2 and t in line.folded for t in texts
        )

    def coverage(self) -> dict[int, list[_EngineConclusion]]:
        return {line.number: [e for e in self.engine if _covers(line, e, self.vocabulary)] for line in self.lines}

    def _judged_claims(self, line: PhysicianConclusion) -> list[ItemClaim]:
        """Directional claims on items the record has with a definite flag (not `unknown`)."""
        return [
            c
            for c in line.item_claims
            if c.direction and any(i.flag != "unknown" for i in self.items.get(c.item_id, []))
        ]

    def _supported(self, line: PhysicianConclusion, covered: list[_EngineConclusion]) -> bool:
        if self._history_supports(line):
            return True
        if line.finding_ids & {f.finding_id for f in self.report.findings}:
            return True
        # An item the engine used for one of the named conclusions supports the wording whatever its flag
        # (空腹血糖 6.1 is within the reference interval and still 空腹血糖受损).
        used = {
            ev.item_id
            for e in self.engine
            if e.id in line.conclusion_ids
            for ev in e.conclusion.evidence
            if ev.kind == "item" and ev.item_id
        }
        judged = self._judged_claims(line)
        declared = [c for c in judged if c.declared]
        if declared:
            # "高甘油三酯血症" says TG is high: with a normal TG it is unsupported even when a cholesterol-type
            # 血脂异常 exists.
            return any(self._claim_supported(c) or c.item_id in used for c in declared)
        engine_ids = {e.id for e in self.engine} | {m for e in self.engine for m in e.merged_ids}
        if line.primary is not None and line.primary in engine_ids:
            return True
        if judged:
            return any(self._claim_supported(c) or c.item_id in used for c in judged)
        return bool(covered)

    def unsupported(self, covered: dict[int, list[_EngineConclusion]]) -> None:
        for line in self.lines:
            if line.number in self.flagged_lines or not line.recognized:
                continue
            if self._supported(line, covered[line.number]):
                continue
            reasons = []
            for claim in line.item_claims:
                measured = self.items.get(claim.item_id, [])
                name = self.kb.items[claim.item_id].name
                reasons.append(f"{_shown(measured[0])}" if measured else f"记录中无{name}结果")
            why = "；".join(dict.fromkeys(reasons)) if reasons else "检查结果与病史中未见相应依据"
            self._add("unsupported", line, f"{self._where(line)}无检查结果或病史支持：{why}")

    def _claim_supported(self, claim: ItemClaim) -> bool:
        direction = claim.direction
        if direction is None:
            return False
        return any(
            item.flag in ("high", "low", "abnormal") and _compatible(direction, item.flag)
            for item in self.items.get(claim.item_id, [])
        )

    def missed(self, covered: dict[int, list[_EngineConclusion]]) -> None:
        done = {e.id for found in covered.values() for e in found}
        for e in self.engine:
            c = e.conclusion
            if e.id in done or e.id in self.contradicted or not _reportable(c, self.settings):
                continue
            level = f"{c.level}类重要异常结果" if c.level else {"disease": "疾病", "finding": "异常发现"}.get(
                c.category, "风险因素"
            )
            evidence = "；".join(ev.description for ev in c.evidence[:3])
            self._add("missed", None, f"引擎结论“{c.name}”（{level}）未见于医生结论；依据：{evidence}", engine=c)

    def duplicate(self) -> None:
        seen: dict[tuple[Any, ...], PhysicianConclusion] = {}
        for line in self.lines:
            primaries = frozenset(p.primary for p in line.phrases) or frozenset([line.primary] if line.primary else [])
            # Unrecognized wording still duplicates when the same words are written twice.
            words = "" if primaries else self._words(line)
            if not primaries and not words:
                continue
            key = (
                words,
                primaries,
                frozenset((c.item_id, c.direction) for c in line.item_claims if c.direction),
                frozenset((s.finding_id, s.side) for s in line.sides),
            )
            first = seen.get(key)
            if first is None:
                seen[key] = line
                continue
            self._add("duplicate", line, f"{self._where(line)}与第{first.number}条“{first.name}”重复")

    def _words(self, line: PhysicianConclusion) -> str:
        """The diagnosis words of a line: without advice, punctuation and spaces."""
        text = line.folded
        for cue in self.vocabulary.advice_cues:
            at = text.find(cue, 1)
            if at > 0:
                # The whole advice clause goes ("3-6个月复查血脂"), not only the words from the cue on.
                text = text[: max(clause_start(text, at), 1)]
        return re.sub(r"[\s,;:。、，；：]", "", text)

    def missing_advice(self, covered: dict[int, list[_EngineConclusion]]) -> None:
        levels = set(self.settings.advice_required_levels)
        for e in self.engine:
            if e.conclusion.level not in levels:
                continue
            lines = [line for line in self.lines if e in covered[line.number]]
            if lines and not any(line.advice for line in lines):
                line = lines[0]
                self._add(
                    "missing_advice",
                    line,
                    f"{self._where(line)}对应{e.conclusion.level}类重要异常结果“{e.conclusion.name}”，未写处理建议"
                    f"（参考：{e.conclusion.follow_up}）",
                )

    def run(self) -> list[QcIssue]:
        self.sex_mismatch()
        self.contradiction()
        self.value_mismatch()
        self.side_mismatch()
        covered = self.coverage()
        self.unsupported(covered)
        self.duplicate()
        self.missing_advice(covered)
        self.missed(covered)
        order = {kind: i for i, kind in enumerate(ISSUE_KINDS)}
        return sorted(self.issues, key=lambda issue: order.get(issue.kind, len(order)))


def _bare_names(name: str) -> list[str]:
    bare = re.sub(r"[（(][^（）()]*[)）]", "", name).strip()
    return [p for p in re.split(r"[/／]", bare) if len(p) >= 2]


def settings_for(kb: KnowledgeBase, settings: QcCenterSettings | None) -> QcCenterSettings:
    return settings if settings is not None else kb.center.qc


def check_lines(
    kb: KnowledgeBase,
    record: Record,
    lines: Sequence[PhysicianConclusion],
    settings: QcCenterSettings | None = None,
    *,
    report: Report | None = None,
) -> list[QcIssue]:
    """Issues of already-read physician conclusions against the engine's report of `record`."""
    engine_report = report if report is not None else build_report(kb, record)
    return _Checker(kb, record, engine_report, list(lines), settings_for(kb, settings)).run()


def qc_text(
    kb: KnowledgeBase,
    record: Record,
    text: str,
    settings: QcCenterSettings | None = None,
    *,
    report: Report | None = None,
) -> list[QcIssue]:
    """QC of free-text conclusions as a physician wrote them (a numbered list in any common style)."""
    vocabulary = vocabulary_for(kb)
    lines = [read_conclusion(kb, vocabulary, line) for line in split_conclusions(text)]
    return check_lines(kb, record, lines, settings, report=report)


def qc_signed_report(
    record: Record,
    conclusions_structured: Iterable[dict[str, Any]],
    kb: KnowledgeBase,
    settings: QcCenterSettings | None = None,
) -> list[QcIssue]:
    """QC at sign time: the workbench's conclusions (report-JSON dicts with `id`, `name`, `advice`, `follow_up`,
    optional `merged_from`) against the engine's report of the record. The KB id of an engine or KB-added
    conclusion is trusted; the name a physician wrote or edited is read like free text."""
    vocabulary = vocabulary_for(kb)
    lines: list[PhysicianConclusion] = []
    for number, entry in enumerate(conclusions_structured, start=1):
        name = str(entry.get("name") or "").strip()
        lines.append(read_conclusion(kb, vocabulary, ConclusionLine(number, name), structured=entry))
    return check_lines(kb, record, lines, settings)


def blocking_issues(issues: Iterable[QcIssue], settings: QcCenterSettings) -> list[QcIssue]:
    """The issues a center configured as blocking signature (the others are warnings)."""
    blocking = set(settings.blocking)
    return [i for i in issues if i.kind in blocking]
