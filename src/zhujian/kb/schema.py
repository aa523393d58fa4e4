"""Strict schema of the knowledge-base files.

Every model forbids unknown keys so that a typo in a YAML file is an error that names the file and the path,
never a silently ignored setting. Thresholds, aliases, lexicon patterns and advice live in the YAML files;
this module only says what shape they must have.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

Sex = Literal["any", "male", "female"]
Op = Literal["<", "<=", ">", ">=", "==", "!="]
Level = Literal["A", "B"]
# Rank groups in the order the 2019 checkup consensus and common 主检报告 practice list them.
Category = Literal["disease", "finding", "risk_factor"]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------------------------
# Items (numbers and categories)
# ---------------------------------------------------------------------------------------------------------------


class UnitConversion(StrictModel):
    """`canonical_value = value_in_unit * factor` (plus `offset`, unused for current analytes)."""

    unit: str
    factor: float
    offset: float = 0.0
    note: str | None = None


class ReferenceInterval(StrictModel):
    """Default interval for one sex/age band. Bands are half-open: `age_min <= age < age_max`."""

    sex: Sex = "any"
    age_min: float | None = None
    age_max: float | None = None
    low: float | None = None
    high: float | None = None
    source: str

    @model_validator(mode="after")
    def _check_bounds(self) -> ReferenceInterval:
        if self.low is None and self.high is None:
            raise ValueError("a reference interval needs low, high or both")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.age_min is not None and self.age_max is not None and self.age_min >= self.age_max:
            raise ValueError(f"age_min {self.age_min} is not below age_max {self.age_max}")
        return self


class OrdinalLevel(StrictModel):
    """One step of an ordinal scale such as a urine dipstick (−, ±, 1+ … 4+)."""

    label: str
    rank: int
    synonyms: list[str] = []


class QualitativeValue(StrictModel):
    label: str
    abnormal: bool
    synonyms: list[str] = []


class ItemDef(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    name_en: str
    section: str
    kind: Literal["quantitative", "ordinal", "qualitative"]
    aliases: list[str] = []
    loinc: str | None = None
    unit: str | None = None
    conversions: list[UnitConversion] = []
    decimals: int | None = None
    plausible_low: float | None = None
    plausible_high: float | None = None
    reference: list[ReferenceInterval] = []
    # Ordinal scale, lowest first; ranks above `normal_max_rank` are abnormal.
    scale: list[OrdinalLevel] = []
    normal_max_rank: int | None = None
    # Qualitative results (阴性/阳性 …).
    values: list[QualitativeValue] = []
    # Quantitative result whose reference comes from the input only (tumour markers, breath tests).
    reference_from_input_only: bool = False
    source: str
    note: str | None = None

    @model_validator(mode="after")
    def _check_kind(self) -> ItemDef:
        if self.kind == "ordinal" and (not self.scale or self.normal_max_rank is None):
            raise ValueError("an ordinal item needs `scale` and `normal_max_rank`")
        if self.kind == "qualitative" and not self.values:
            raise ValueError("a qualitative item needs `values`")
        if self.kind == "quantitative" and self.unit is None:
            raise ValueError("a quantitative item needs a canonical `unit`")
        if (
            self.plausible_low is not None
            and self.plausible_high is not None
            and self.plausible_low >= self.plausible_high
        ):
            raise ValueError("plausible_low must be below plausible_high")
        return self


class ItemsFile(StrictModel):
    items: list[ItemDef]


# ---------------------------------------------------------------------------------------------------------------
# Conditions: a small closed vocabulary, one model per kind
# ---------------------------------------------------------------------------------------------------------------


class ItemCondition(StrictModel):
    """Compare an evaluated item: either a number (`op` + `value`, canonical unit) or its flag."""

    item: str
    op: Op | None = None
    value: float | None = None
    flag: Literal["high", "low", "abnormal", "normal", "any_abnormal"] | None = None
    # Only for ordinal items: compare the rank (e.g. urine protein rank >= 2 means ≥ 1+).
    rank_op: Op | None = None
    rank: int | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ItemCondition:
        tests = [self.op is not None, self.flag is not None, self.rank_op is not None]
        if sum(tests) != 1:
            raise ValueError("an item condition needs exactly one of op+value, flag, rank_op+rank")
        if self.op is not None and self.value is None:
            raise ValueError("`op` needs `value`")
        if self.rank_op is not None and self.rank is None:
            raise ValueError("`rank_op` needs `rank`")
        return self


class AttrTest(StrictModel):
    attr: Literal["size_mm", "count", "category_rank", "grade_rank", "rate_bpm"]
    op: Op
    value: float


class FindingCondition(StrictModel):
    finding: str
    where: list[AttrTest] = []


class HistoryCondition(StrictModel):
    """Questionnaire: any keyword found in the given fields (history, medications, …)."""

    history: list[str]
    fields: list[Literal["history", "medications", "family_history", "symptoms"]] = ["history"]


class FlagCondition(StrictModel):
    """Questionnaire booleans."""

    questionnaire: Literal["smoking", "drinking"]
    is_: Annotated[bool, Field(alias="is")] = True

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SexCondition(StrictModel):
    sex: Literal["male", "female"]


class AgeRange(StrictModel):
    min: float | None = None
    max: float | None = None


class AgeCondition(StrictModel):
    """`min <= age < max`."""

    age: AgeRange


class ConclusionCondition(StrictModel):
    conclusion: str


class AllCondition(StrictModel):
    all: list[Condition]


class AnyCondition(StrictModel):
    any: list[Condition]


class NotCondition(StrictModel):
    not_: Annotated[Condition, Field(alias="not")]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AtLeastSpec(StrictModel):
    n: int
    of: list[Condition]


class AtLeastCondition(StrictModel):
    at_least: AtLeastSpec


_CONDITION_KEYS = (
    "item",
    "finding",
    "history",
    "questionnaire",
    "sex",
    "age",
    "conclusion",
    "all",
    "any",
    "not",
    "at_least",
)


def _condition_kind(value: object) -> str | None:
    """Pick the condition model by its leading key so that errors name one model, not all eleven."""
    if isinstance(value, dict):
        for key in _CONDITION_KEYS:
            if key in value:
                return key
        return None
    if isinstance(value, BaseModel):
        name = type(value).__name__
        return {
            "ItemCondition": "item",
            "FindingCondition": "finding",
            "HistoryCondition": "history",
            "FlagCondition": "questionnaire",
            "SexCondition": "sex",
            "AgeCondition": "age",
            "ConclusionCondition": "conclusion",
            "AllCondition": "all",
            "AnyCondition": "any",
            "NotCondition": "not",
            "AtLeastCondition": "at_least",
        }.get(name)
    return None


Condition = Annotated[
    (
        Annotated[ItemCondition, Tag("item")]
        | Annotated[FindingCondition, Tag("finding")]
        | Annotated[HistoryCondition, Tag("history")]
        | Annotated[FlagCondition, Tag("questionnaire")]
        | Annotated[SexCondition, Tag("sex")]
        | Annotated[AgeCondition, Tag("age")]
        | Annotated[ConclusionCondition, Tag("conclusion")]
        | Annotated[AllCondition, Tag("all")]
        | Annotated[AnyCondition, Tag("any")]
        | Annotated[NotCondition, Tag("not")]
        | Annotated[AtLeastCondition, Tag("at_least")]
    ),
    Discriminator(
        _condition_kind,
        custom_error_type="unknown_condition",
        custom_error_message="a condition must start with one of: " + ", ".join(_CONDITION_KEYS),
    ),
]

for _model in (AllCondition, AnyCondition, NotCondition, AtLeastSpec, AtLeastCondition):
    _model.model_rebuild()


# ---------------------------------------------------------------------------------------------------------------
# Conclusions and rules
# ---------------------------------------------------------------------------------------------------------------


class ExplanationVariant(StrictModel):
    """Examinee explanation for a sex/age band; the first matching variant wins, else `explanation`."""

    sex: Sex = "any"
    age_min: float | None = None
    age_max: float | None = None
    text: str


class ConclusionDef(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    icd10: Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4}(x[0-9]{3})?)?$")]
    system: str
    level: Level | None = None
    category: Category
    order: int
    department: str
    follow_up: str
    advice: str
    explanation: str
    explanation_variants: list[ExplanationVariant] = []
    sex: Sex = "any"
    source: str


class ConclusionsFile(StrictModel):
    conclusions: list[ConclusionDef]


class RuleDef(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    conclusion: str
    when: Condition
    # Conclusions folded into this one when it fires (一元化); their evidence is kept under this conclusion.
    suppresses: list[str] = []
    # Optional wording added to the conclusion name, e.g. "（血压控制不佳）".
    qualifier: str | None = None
    # Center switches (CenterConfig.switches): the rule applies only when every `requires_switch` is on and
    # every `unless_switch` is off. Unknown switch names are KB errors.
    requires_switch: list[str] = []
    unless_switch: list[str] = []
    source: str


class SwitchDef(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    default: bool
    description: str
    source: str


class RulesFile(StrictModel):
    rules: list[RuleDef] = []
    switches: list[SwitchDef] = []


# ---------------------------------------------------------------------------------------------------------------
# Critical values and important abnormal results (CLINICAL.md §6), overridable per center
# ---------------------------------------------------------------------------------------------------------------


class CriticalValueDef(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    item: str
    op: Op
    value: float
    level: Level
    reason: str
    source: str


class CriticalFile(StrictModel):
    critical_values: list[CriticalValueDef]


# ---------------------------------------------------------------------------------------------------------------
# Text lexicon
# ---------------------------------------------------------------------------------------------------------------


class SiteDef(StrictModel):
    """An organ or exam region. `patterns` detect it in text; `items` are exam-item labels that imply it."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    patterns: list[str]
    items: list[str] = []
    paired: bool = False
    # Exam items that name one side of a paired organ (e.g. the Meinian table ids 0117 左肾, 0118 右肾).
    item_sides: dict[str, Literal["左", "右"]] = {}
    sex: Sex = "any"
    # When an exam item names this site (e.g. 内科, 心电图), its findings stay possible throughout the text even
    # after other organs are mentioned.
    dominant: bool = False


class FindingDef(StrictModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    icd10: Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4}(x[0-9]{3})?)?$")]
    # The finding only counts while one of these sites is active (empty = anywhere).
    sites: list[str] = []
    patterns: list[str]
    # A clause matching any of these does not produce this finding (e.g. physiological wording).
    exclude: list[str] = []
    conclusion: str | None = None
    # A finding that, once seen, makes others redundant in the same text (e.g. 胆囊切除术后 over 胆囊未显示).
    suppresses: list[str] = []
    # Grade words to map (e.g. 轻度/中度/重度) are read from the clause; a default grade may be given.
    default_grade: str | None = None
    per_side: bool = False
    critical: Level | None = None
    source: str


class NegationCue(StrictModel):
    cue: str
    direction: Literal["forward", "backward"]
    # Forward cues negate up to the end of the clause or the first terminator; backward cues negate the clause
    # text before them.
    max_chars: int = 40


class ContextRules(StrictModel):
    negation: list[NegationCue]
    # Words that end the scope of a forward negation within a clause (e.g. 但, 可见).
    terminators: list[str]
    # Phrases that contain a cue but are not a negation of a finding (e.g. 无明显诱因 is not relevant here).
    pseudo_negation: list[str] = []
    uncertainty: list[str]
    # Texts meaning that the organ could not be assessed (显示不清, 气体干扰 …) → `incomplete`.
    incomplete: list[str]
    # Clause separators.
    separators: str
    # Organ or exam headings that start a new diagnosis when followed by a colon in conclusion lists
    # (`肝:脂肪肝胆:胆囊息肉`); the colon becomes a sentence break.
    headings: list[str] = []
    # Objects that end a forward cue's scope right after it: in 左肾未见异常右肾囊肿 the cue negates 异常 only.
    scope_closers: list[str] = []
    source: str


class GradeWord(StrictModel):
    word: str
    grade: str
    rank: int


class CountWord(StrictModel):
    word: str
    count: int | Literal["多发"]


class AttributeRules(StrictModel):
    grades: list[GradeWord]
    # Lesion counts (多发/两个/单发 …), first match in the order given.
    counts: list[CountWord]
    # Patterns that mean both sides inside a match; "双" alone is not enough (双肾盂 is a duplex kidney).
    bilateral: list[str]
    source: str


class LexiconFile(StrictModel):
    sites: list[SiteDef] = []
    findings: list[FindingDef] = []


# ---------------------------------------------------------------------------------------------------------------
# Center configuration (per-center overrides)
# ---------------------------------------------------------------------------------------------------------------


class CriticalOverride(StrictModel):
    id: str
    value: float | None = None
    op: Op | None = None
    enabled: bool = True


class QcCenterSettings(StrictModel):
    """Per-center settings of the QC of physicians' 主检 conclusions (`zhujian.qc`)."""

    # Also report minor engine conclusions (findings, risk factors) the physician left out; class A/B conclusions
    # and diseases are always checked. Off by default so that QC is not noise.
    missed_minor: bool = False
    # Conclusion levels whose physician wording must carry advice (建议/复查/…科).
    advice_required_levels: list[Level] = ["A", "B"]
    # Issue kinds that block signing in the workbench; the others are warnings.
    blocking: list[str] = []
    # Relative tolerance when a quoted number is compared with the record (on top of the quoted rounding).
    value_tolerance: float = Field(default=0.01, ge=0, le=0.5)


class CenterConfig(StrictModel):
    name: str = "default"
    critical_overrides: list[CriticalOverride] = []
    extra_critical_values: list[CriticalValueDef] = []
    # Named switches, e.g. `hyperuricemia_female_360` (CLINICAL.md "Decisions").
    switches: dict[str, bool] = {}
    qc: QcCenterSettings = QcCenterSettings()


class ContextFile(StrictModel):
    context: ContextRules
    attributes: AttributeRules


class KBManifest(StrictModel):
    name: str
    version: str
    description: str


# ---------------------------------------------------------------------------------------------------------------
# Risk-section inputs and longitudinal comparison
# ---------------------------------------------------------------------------------------------------------------


class RiskKeywords(StrictModel):
    """Questionnaire keywords that answer the yes/no inputs of the risk models."""

    hypertension_history: list[str]
    antihypertensive_drugs: list[str]
    diabetes_history: list[str]
    antidiabetic_drugs: list[str]
    ascvd_family_history: list[str]
    diabetes_family_history: list[str]
    ckd_history: list[str]
    source: str


class DiabetesRange(StrictModel):
    """Values at this checkup that count as diabetes for the risk models' yes/no input (any one suffices)."""

    any_of: list[ItemCondition]
    source: str


class RiskFile(StrictModel):
    keywords: RiskKeywords
    diabetes_range: DiabetesRange


class FindingChangeRule(StrictModel):
    """A text finding is worse when this attribute rose by at least `min_increase` since the last visit."""

    attr: Literal["size_mm", "category_rank", "grade_rank", "count"]
    min_increase: float
    description: str
    source: str


class ItemClassRule(StrictModel):
    """Guideline classes of an item: crossing a cut-off towards `worse` is worse, the other way improved."""

    item: str
    cuts: list[float]
    worse: Literal["up", "down"]
    sex: Sex = "any"
    source: str

    @model_validator(mode="after")
    def _ascending(self) -> ItemClassRule:
        if not self.cuts or any(a >= b for a, b in zip(self.cuts, self.cuts[1:], strict=False)):
            raise ValueError("cuts must be a non-empty ascending list")
        return self


class CompareFile(StrictModel):
    finding_worse: list[FindingChangeRule]
    item_classes: list[ItemClassRule]
    # A change smaller than this share of the previous value is reported as 持平 (stable).
    stable_fraction: float = 0.02
