"""The risk section of the report: every model computed from the record when its inputs are present, with the
inputs used, the model's name and source, its category, and what the examinee can change. A model whose inputs
are missing says which ones; nothing is guessed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from zhujian.domain.record import Record
from zhujian.domain.report import EvaluatedItem
from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import DiabetesRange, RiskKeywords
from zhujian.pipeline.conditions import first_affirmed_entry
from zhujian.pipeline.evaluate import compare
from zhujian.pipeline.extract import lexicon_for
from zhujian.risk import (
    CannotCompute,
    bmi_class,
    bp_class,
    cdrs_score,
    china_par_10y,
    china_par_direct_high_risk,
    china_par_ideal_10y,
    kdigo_a,
    kdigo_g,
    metabolic_syndrome,
    waist_class,
)
from zhujian.risk.china_par import IDEAL_SBP_MMHG, IDEAL_TC_MG_DL, IDEAL_WAIST_CM
from zhujian.risk.metabolic_syndrome import COMPONENT_LABELS
from zhujian.risk.units import cholesterol_mg_dl_to_mmol_l, cholesterol_mmol_l_to_mg_dl

Sex = Literal["male", "female"]


@dataclass
class RiskAssessment:
    model: str
    name: str
    source: str
    computed: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    category: str | None = None
    missing: list[str] = field(default_factory=list)
    message: str | None = None
    modifiable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "name": self.name,
            "source": self.source,
            "computed": self.computed,
            "inputs": self.inputs,
            "result": self.result,
            "category": self.category,
            "missing": self.missing,
            "message": self.message,
            "modifiable": self.modifiable,
            "notes": self.notes,
        }


_INPUT_LABELS = {
    "age": "年龄",
    "sex": "性别",
    "sbp": "收缩压",
    "dbp": "舒张压",
    "tc": "总胆固醇",
    "hdl": "高密度脂蛋白胆固醇",
    "ldl": "低密度脂蛋白胆固醇",
    "tg": "甘油三酯",
    "glu": "空腹血糖",
    "waist": "腰围",
    "bmi": "体重指数",
    "egfr": "eGFR",
    "u_acr": "尿白蛋白/肌酐比值",
    "smoking": "是否吸烟（问卷）",
    "north": "居住地是否在长江以北（问卷）",
    "urban": "城市/农村（问卷）",
}


# Lower-cased keyword lists of the KB's risk keywords, by the identity of the KB's list (kept alive by the KB).
_LOWERED: dict[int, tuple[list[str], list[str]]] = {}


def _lowered(keywords: list[str]) -> list[str]:
    hit = _LOWERED.get(id(keywords))
    if hit is None or hit[0] is not keywords:
        if len(_LOWERED) > 1024:
            _LOWERED.clear()
        hit = _LOWERED[id(keywords)] = (keywords, [k.lower() for k in keywords])
    return hit[1]


class _Inputs:
    """The record as the models read it, with its questionnaire answers (treated hypertension, diabetes, family
    history) worked out once per record rather than once per model that asks."""

    def __init__(
        self,
        record: Record,
        items: dict[str, EvaluatedItem],
        keywords: RiskKeywords,
        diabetes_range: DiabetesRange,
        negation_cues: tuple[str, ...],
        separators: frozenset[str],
    ) -> None:
        self.record = record
        self.items = items
        self.negation_cues = negation_cues
        self.separators = separators
        q = record.questionnaire
        self.bp_treated = self._has(q.medications, keywords.antihypertensive_drugs)
        self.hypertension_known = self.bp_treated or self._has(q.history, keywords.hypertension_history)
        self.diabetes_treated = self._has(q.medications, keywords.antidiabetic_drugs) or self._has(
            q.history, keywords.diabetes_history
        )
        # Known diabetes, or a diabetes-range value at this checkup (risk.yaml `diabetes_range`).
        self.diabetes = self.diabetes_treated or self._in_diabetes_range(diabetes_range)
        self.ascvd_family = self._has(q.family_history, keywords.ascvd_family_history)
        self.diabetes_family = self._has(q.family_history, keywords.diabetes_family_history)

    def _has(self, entries: list[str], keywords: list[str]) -> bool:
        if not entries:
            return False
        return first_affirmed_entry(entries, _lowered(keywords), self.negation_cues, self.separators) is not None

    def _in_diabetes_range(self, diabetes_range: DiabetesRange) -> bool:
        for cond in diabetes_range.any_of:
            value = self.num(cond.item)
            if (
                value is not None
                and cond.op is not None
                and cond.value is not None
                and compare(value, cond.op, cond.value)
            ):
                return True
        return False

    def num(self, item_id: str) -> float | None:
        e = self.items.get(item_id)
        return e.value if e is not None and isinstance(e.value, float) else None

    @property
    def sex(self) -> Sex | None:
        sex = self.record.sex
        if sex == "male" or sex == "female":
            return sex
        return None

    @property
    def age(self) -> float | None:
        return self.record.age_years()


_METABOLIC_INPUT_LABELS = {
    "sex": "性别",
    "waist_cm": "腰围",
    "fpg_mmol_l": "空腹血糖",
    "pg2h_mmol_l": "OGTT 2小时血糖",
    "diabetes_treated": "糖尿病诊断/治疗史（问卷）",
    "sbp": "收缩压",
    "dbp": "舒张压",
    "hypertension_treated": "高血压诊断/治疗史（问卷）",
    "tg_mmol_l": "甘油三酯",
    "hdl_mmol_l": "高密度脂蛋白胆固醇",
}


def _missing(values: dict[str, object]) -> list[str]:
    return [_INPUT_LABELS.get(k, k) for k, v in values.items() if v is None]


def _china_par(x: _Inputs) -> RiskAssessment:
    a = RiskAssessment(
        model="china-par",
        name="China-PAR 10年动脉粥样硬化性心血管病(ASCVD)风险",
        source="Yang X et al., Circulation 2016;134:1430-1440; 中国心血管病风险评估和管理指南(2019)；"
        "男性采用高精度系数，女性基线生存率 0.9851（论文推导值）",
        computed=False,
    )
    sex, age = x.sex, x.age
    sbp, tc, hdl, waist = x.num("sbp"), x.num("tc"), x.num("hdl"), x.num("waist")
    q = x.record.questionnaire
    needed: dict[str, object] = {
        "sex": sex,
        "age": age,
        "sbp": sbp,
        "tc": tc,
        "hdl": hdl,
        "waist": waist,
        "smoking": q.smoking,
        "north": q.north,
    }
    if sex == "male":
        needed["urban"] = q.urban
    a.missing = _missing(needed)
    if a.missing or sex is None or age is None or sbp is None or tc is None or hdl is None or waist is None:
        a.message = "无法计算：缺少" + "、".join(a.missing)
        return a
    assert q.smoking is not None and q.north is not None
    tc_mg, hdl_mg = round(cholesterol_mmol_l_to_mg_dl(tc), 1), round(cholesterol_mmol_l_to_mg_dl(hdl), 1)
    urban = q.urban if sex == "male" else None
    family = x.ascvd_family if sex == "male" else None
    a.inputs = {
        "age": age,
        "sex": sex,
        "sbp_mmhg": sbp,
        "bp_treated": x.bp_treated,
        "tc_mg_dl": tc_mg,
        "hdl_mg_dl": hdl_mg,
        "waist_cm": waist,
        "smoker": q.smoking,
        "diabetes": x.diabetes,
        "north": q.north,
        "urban": urban,
        "family_history": family,
    }
    a.notes.append("TC、HDL-C 由 mmol/L 换算为 mg/dL（mg/dL = mmol/L ÷ 0.0259）")
    try:
        result = china_par_10y(
            age=age,
            sex=sex,
            sbp_mmhg=sbp,
            bp_treated=x.bp_treated,
            tc_mg_dl=tc_mg,
            hdl_mg_dl=hdl_mg,
            waist_cm=waist,
            smoker=q.smoking,
            diabetes=x.diabetes,
            north=q.north,
            urban=urban,
            family_history=family,
        )
        ideal = china_par_ideal_10y(age=age, sex=sex, north=q.north, urban=urban)
    except CannotCompute as exc:
        a.message = exc.message
        return a
    a.computed = True
    a.category = result.category
    a.result = {
        "risk10_pct": round(result.risk10_pct, 2),
        "category": result.category,
        "ideal_risk10_pct": round(ideal.risk10_pct, 2),
    }
    ideal_waist = IDEAL_WAIST_CM[sex]
    if sbp > IDEAL_SBP_MMHG:
        a.modifiable.append(f"收缩压 {sbp:g} mmHg → 理想 {IDEAL_SBP_MMHG:g} mmHg")
    if tc_mg > IDEAL_TC_MG_DL:
        ideal_tc_mmol = cholesterol_mg_dl_to_mmol_l(IDEAL_TC_MG_DL)
        a.modifiable.append(f"总胆固醇 {tc:g} mmol/L → 理想 ≤ {ideal_tc_mmol:.1f} mmol/L ({IDEAL_TC_MG_DL:g} mg/dL)")
    if waist > ideal_waist:
        a.modifiable.append(f"腰围 {waist:g} cm → 理想 {ideal_waist:g} cm")
    if q.smoking:
        a.modifiable.append("吸烟 → 戒烟")
    if x.diabetes:
        a.modifiable.append("糖尿病/高血糖 → 规范控制血糖")
    direct = china_par_direct_high_risk(
        age=age, diabetes=x.diabetes, ldl_c_mmol_l=x.num("ldl"), tc_mmol_l=tc, ckd_stage=None
    )
    if direct.high_risk:
        a.result["direct_high_risk"] = list(direct.reasons)
        a.notes.append("满足指南直接高危条件（UNVERIFIED，见来源）：" + "；".join(direct.reasons))
    return a


def _cdrs(x: _Inputs) -> RiskAssessment:
    a = RiskAssessment(
        model="cdrs",
        name="中国糖尿病风险评分(CDRS)",
        source="中国2型糖尿病防治指南(2020年版)；Zhou X et al., J Diabetes 2013；≥25分为高危",
        computed=False,
    )
    sex, age, bmi, waist, sbp = x.sex, x.age, x.num("bmi"), x.num("waist"), x.num("sbp")
    a.missing = _missing({"sex": sex, "age": age, "bmi": bmi, "waist": waist, "sbp": sbp})
    if a.missing or sex is None or age is None or bmi is None or waist is None or sbp is None:
        a.message = "无法计算：缺少" + "、".join(a.missing)
        return a
    if x.diabetes_treated:
        a.message = "已知糖尿病，不适用糖尿病风险筛查评分"
        return a
    a.inputs = {
        "age": age,
        "sex": sex,
        "bmi": bmi,
        "waist_cm": waist,
        "sbp_mmhg": sbp,
        "family_history_diabetes": x.diabetes_family,
    }
    try:
        r = cdrs_score(
            age=age, sex=sex, bmi=bmi, waist_cm=waist, sbp_mmhg=sbp, family_history_diabetes=x.diabetes_family
        )
    except CannotCompute as exc:
        a.message = exc.message
        return a
    a.computed = True
    a.category = "高危" if r.high_risk else "非高危"
    a.result = {"score": r.score, "high_risk": r.high_risk, "points": dict(r.points)}
    if r.high_risk:
        a.modifiable.append("评分 ≥ 25：建议行 OGTT 筛查；减重、增加运动、控制血压可降低风险")
    return a


def _egfr(x: _Inputs) -> RiskAssessment:
    a = RiskAssessment(
        model="egfr",
        name="肾功能分期（eGFR, KDIGO）",
        source="CKD-EPI 2021 肌酐方程 (Inker LA et al., NEJM 2021)；KDIGO 2012/2024 G/A 分期",
        computed=False,
    )
    egfr = x.num("egfr")
    if egfr is None:
        a.missing = ["肌酐", "年龄", "性别"]
        a.message = "无法计算：缺少肌酐或年龄/性别"
        return a
    a.computed = True
    a.inputs = {"egfr": egfr}
    # The conclusions classify the unrounded value (59.6 is below 60); with integer cut-offs the floor gives the
    # same category through kdigo_g, which itself rounds for display.
    a.result = {"egfr": round(egfr, 1), "G": kdigo_g(math.floor(egfr))}
    a.category = a.result["G"]
    acr = x.num("u_acr")
    if acr is not None:
        a.inputs["acr_mg_g"] = acr
        a.result["A"] = kdigo_a(acr, "mg/g")
    a.notes.append("单次检测不能诊断慢性肾脏病（需持续 > 3 个月）")
    return a


def _metabolic(x: _Inputs) -> RiskAssessment:
    a = RiskAssessment(
        model="metabolic-syndrome",
        name="代谢综合征（中华医学会糖尿病学分会标准）",
        source="中国2型糖尿病防治指南(2020年版) 代谢综合征诊断标准（≥3项）",
        computed=False,
    )
    inputs = {
        "sex": x.sex,
        "waist_cm": x.num("waist"),
        "fpg_mmol_l": x.num("glu"),
        "diabetes_treated": x.diabetes_treated,
        "sbp": x.num("sbp"),
        "dbp": x.num("dbp"),
        "hypertension_treated": x.hypertension_known,
        "tg_mmol_l": x.num("tg"),
        "hdl_mmol_l": x.num("hdl"),
        "pg2h_mmol_l": x.num("glu_2h"),
    }
    try:
        r = metabolic_syndrome(**inputs)  # type: ignore[arg-type]
    except CannotCompute as exc:
        a.message = exc.message
        return a
    a.inputs = {k: v for k, v in inputs.items() if v is not None}
    a.missing = [_METABOLIC_INPUT_LABELS.get(name, name) for name in r.missing_inputs]
    a.computed = r.present is not None
    a.result = {
        "present": r.present,
        "criteria_met": [COMPONENT_LABELS[c] for c in r.criteria_met],
        "criteria_unknown": [COMPONENT_LABELS[c] for c in r.criteria_unknown],
    }
    a.category = {True: "符合代谢综合征", False: "不符合", None: "无法判定"}[r.present]
    if r.present is None:
        a.message = "缺少的项目可能改变结论：" + "、".join(a.missing)
    return a


def _classes(x: _Inputs) -> list[RiskAssessment]:
    out: list[RiskAssessment] = []
    sbp, dbp = x.num("sbp"), x.num("dbp")
    bp = RiskAssessment(model="bp-class", name="诊室血压分级", source="中国高血压防治指南2018年修订版", computed=False)
    if sbp is not None and dbp is not None:
        try:
            r = bp_class(sbp, dbp, x.bp_treated or None)
            bp.computed, bp.category = True, r.category
            bp.inputs = {"sbp": sbp, "dbp": dbp, "on_treatment": x.bp_treated}
            bp.result = {"class": r.category, "isolated_systolic": r.isolated_systolic}
        except CannotCompute as exc:
            bp.message = exc.message
    else:
        bp.missing = _missing({"sbp": sbp, "dbp": dbp})
        bp.message = "无法计算：缺少" + "、".join(bp.missing)
    out.append(bp)
    bmi = x.num("bmi")
    b = RiskAssessment(model="bmi-class", name="体重指数分类", source="WS/T 428-2013 成人体重判定", computed=False)
    if bmi is not None:
        b.computed, b.category, b.inputs, b.result = True, bmi_class(bmi), {"bmi": bmi}, {"class": bmi_class(bmi)}
    else:
        b.missing, b.message = ["体重指数（身高、体重）"], "无法计算：缺少身高或体重"
    out.append(b)
    waist, sex = x.num("waist"), x.sex
    w = RiskAssessment(model="waist-class", name="腰围分类", source="WS/T 428-2013 成人体重判定", computed=False)
    if waist is not None and sex is not None:
        cls = waist_class(sex, waist)
        w.computed, w.category, w.inputs, w.result = True, cls, {"sex": sex, "waist_cm": waist}, {"class": cls}
    else:
        w.missing = _missing({"waist": waist, "sex": sex})
        w.message = "无法计算：缺少" + "、".join(w.missing)
    out.append(w)
    return out


_MODELS: list[Callable[[_Inputs], RiskAssessment]] = [_china_par, _cdrs, _egfr, _metabolic]


def assess_risks(kb: KnowledgeBase, record: Record, items: dict[str, EvaluatedItem]) -> list[RiskAssessment]:
    if kb.risk is None:
        return []
    lexicon = lexicon_for(kb)
    # The lexicon's forward negation cues, and its separators without "、": "否认高血压、糖尿病史" keeps both under the
    # negation (as the rules' history conditions do).
    x = _Inputs(
        record,
        items,
        kb.risk.keywords,
        kb.risk.diabetes_range,
        lexicon.history_negation_cues,
        lexicon.history_separators,
    )
    return [model(x) for model in _MODELS] + _classes(x)
