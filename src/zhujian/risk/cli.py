"""`zhujian risk MODEL --input JSON`: run one risk model or guideline class on a JSON object.

`--input` is a path to a JSON file, `-` for stdin, or the JSON text itself (anything starting with `{`).
The answer is one JSON object on stdout. Unknown keys, missing or invalid inputs, and inputs outside a model's range
exit with code 2, a message on stderr, and `{"error": message}` on stdout.

Input keys (all numbers are JSON numbers, all flags JSON booleans, `sex` is "male" or "female"):

- china-par: age, sex, sbp_mmhg, bp_treated, tc_mg_dl | tc_mmol_l, hdl_mg_dl | hdl_mmol_l, waist_cm, smoker,
  diabetes, north, urban (men only), family_history (men only)
- pce: age, sex, race ("white" | "african_american"), tc_mg_dl, hdl_mg_dl, sbp_mmhg, bp_treated, smoker, diabetes
- egfr: equation ("ckd-epi-2021" | "ckd-epi-2021-cys" | "ckd-epi-2009"), age, sex, scr_mg_dl | scr_umol_l,
  scys_mg_l (ckd-epi-2021-cys only), black (ckd-epi-2009 only)
- kdigo: egfr, and/or acr with acr_unit ("mg/g" | "mg/mmol")
- cdrs: age, sex, bmi, waist_cm, sbp_mmhg, family_history_diabetes
- bp-class: sbp, dbp, on_treatment (optional; null = unknown)
- bmi-class: bmi; waist-class: sex, waist_cm
- metabolic-syndrome: sex, waist_cm, fpg_mmol_l, pg2h_mmol_l, diabetes_treated, sbp, dbp, hypertension_treated,
  tg_mmol_l, hdl_mmol_l; every key optional, and a missing key means "not known" (pg2h_mmol_l: OGTT not done)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel, ConfigDict, ValidationError

from zhujian.risk.cdrs import cdrs_score
from zhujian.risk.china_par import HDL_MG_DL_RANGE, TC_MG_DL_RANGE, china_par_10y, china_par_ideal_10y
from zhujian.risk.classes import bmi_class, bp_class, waist_class
from zhujian.risk.egfr import (
    SOURCE_2009,
    SOURCE_2021,
    SOURCE_KDIGO,
    AcrUnit,
    egfr_ckd_epi_2009_cr,
    egfr_ckd_epi_2021_cr,
    egfr_ckd_epi_2021_cr_cys,
    kdigo_a,
    kdigo_g,
)
from zhujian.risk.errors import CannotCompute, format_number
from zhujian.risk.metabolic_syndrome import COMPONENT_LABELS, metabolic_syndrome
from zhujian.risk.pce import pce_10y
from zhujian.risk.units import (
    Sex,
    cholesterol_mmol_l_to_mg_dl,
    creatinine_umol_l_to_mg_dl,
    round_half_up,
)

risk_app = typer.Typer(
    help="Risk models and guideline classes: a JSON object in, a JSON object out.",
    no_args_is_help=True,
)

EXIT_BAD_INPUT = 2

InputOption = Annotated[
    str,
    typer.Option(
        "--input",
        "-i",
        help="JSON object: a file path, '-' for stdin, or the JSON text itself (starting with '{').",
    ),
]


class _BadInputError(Exception):
    """Input that no model could read: not JSON, not an object, unknown keys, wrong types."""


class _Input(BaseModel):
    # Strict: "120" is not a number and 1 is not a boolean, so that a mis-exported file fails loudly.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ChinaParInput(_Input):
    age: float
    sex: Sex
    sbp_mmhg: float
    bp_treated: bool
    tc_mg_dl: float | None = None
    tc_mmol_l: float | None = None
    hdl_mg_dl: float | None = None
    hdl_mmol_l: float | None = None
    waist_cm: float
    smoker: bool
    diabetes: bool
    north: bool
    urban: bool | None = None
    family_history: bool | None = None


class PceInput(_Input):
    age: float
    sex: Sex
    race: Literal["white", "african_american"]
    tc_mg_dl: float
    hdl_mg_dl: float
    sbp_mmhg: float
    bp_treated: bool
    smoker: bool
    diabetes: bool


class EgfrInput(_Input):
    equation: Literal["ckd-epi-2021", "ckd-epi-2021-cys", "ckd-epi-2009"]
    age: float
    sex: Sex
    scr_mg_dl: float | None = None
    scr_umol_l: float | None = None
    scys_mg_l: float | None = None
    black: bool | None = None


class KdigoInput(_Input):
    egfr: float | None = None
    acr: float | None = None
    acr_unit: AcrUnit | None = None


class CdrsInput(_Input):
    age: float
    sex: Sex
    bmi: float
    waist_cm: float
    sbp_mmhg: float
    family_history_diabetes: bool


class BpClassInput(_Input):
    sbp: float
    dbp: float
    on_treatment: bool | None = None


class BmiClassInput(_Input):
    bmi: float


class WaistClassInput(_Input):
    sex: Sex
    waist_cm: float


class MetabolicSyndromeInput(_Input):
    sex: Sex | None = None
    waist_cm: float | None = None
    fpg_mmol_l: float | None = None
    pg2h_mmol_l: float | None = None
    diabetes_treated: bool | None = None
    sbp: float | None = None
    dbp: float | None = None
    hypertension_treated: bool | None = None
    tg_mmol_l: float | None = None
    hdl_mmol_l: float | None = None


InputT = TypeVar("InputT", bound=_Input)


def _read_input(raw: str) -> Any:
    # Imported here: the CLI registers this module at start-up, and reading an input is only needed to run a model.
    from zhujian.input_files import InputFileError, Kind, kind_of, load_json, mismatch, parse_json

    try:
        if raw.lstrip().startswith(("{", "[")):
            # "[" is never a sensible file name here; reading it as JSON gives the clearer "must be an object" error.
            data, source = parse_json(raw, "--input"), "--input"
        else:
            loaded = load_json(raw, "input file")
            data, source = loaded.data, loaded.source
    except InputFileError as exc:
        raise _BadInputError(str(exc)) from exc
    if kind_of(data) is not Kind.OBJECT:
        # A checkup record or a report has keys the models do not know; say what the file is instead of listing them.
        raise _BadInputError(mismatch(source, data, Kind.OBJECT, "risk"))
    return data


def _describe_errors(model: type[_Input], error: ValidationError) -> str:
    unknown: list[str] = []
    missing: list[str] = []
    invalid: list[str] = []
    for item in error.errors(include_url=False):
        # Optional fields are unions, whose errors carry the union member after the key; the key alone is enough.
        field = str(item["loc"][0]) if item["loc"] else "input"
        if item["type"] == "extra_forbidden":
            unknown.append(field)
        elif item["type"] == "missing":
            missing.append(field)
        elif not any(entry.startswith(f"{field} ") for entry in invalid):
            invalid.append(f"{field} {json.dumps(item['input'], ensure_ascii=False)} ({item['msg']})")
    messages: list[str] = []
    if unknown:
        allowed = ", ".join(model.model_fields)
        messages.append(f"unknown keys: {', '.join(unknown)} (allowed: {allowed})")
    if missing:
        messages.append(f"cannot compute: missing {', '.join(missing)}")
    if invalid:
        messages.append(f"cannot compute: invalid {'; '.join(invalid)}")
    return "; ".join(messages)


def _parse(model: type[InputT], data: Any) -> InputT:
    if not isinstance(data, dict):
        raise _BadInputError("input must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _BadInputError(_describe_errors(model, exc)) from exc


def _run(raw: str, model: type[InputT], compute: Callable[[InputT], dict[str, Any]]) -> None:
    try:
        result = compute(_parse(model, _read_input(raw)))
    except (_BadInputError, CannotCompute) as exc:
        message = str(exc)
        typer.echo(message, err=True)
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    typer.echo(json.dumps(result, ensure_ascii=False))


def _either(field_a: str, value_a: float | None, field_b: str, value_b: float | None) -> tuple[str, float]:
    """The one of two alternative unit fields that was given."""
    if value_a is not None and value_b is not None:
        raise CannotCompute(f"cannot compute: give either {field_a} or {field_b}, not both", field=field_a)
    if value_a is not None:
        return field_a, value_a
    if value_b is not None:
        return field_b, value_b
    raise CannotCompute(f"cannot compute: missing {field_a} (or {field_b})", field=field_a)


def _cholesterol_mg_dl(field_mg: str, mg: float | None, field_mmol: str, mmol: float | None) -> tuple[float, bool]:
    given, value = _either(field_mg, mg, field_mmol, mmol)
    if given == field_mg:
        return value, False
    return cholesterol_mmol_l_to_mg_dl(value), True


def _china_par(p: ChinaParInput) -> dict[str, Any]:
    tc, tc_converted = _cholesterol_mg_dl("tc_mg_dl", p.tc_mg_dl, "tc_mmol_l", p.tc_mmol_l)
    hdl, hdl_converted = _cholesterol_mg_dl("hdl_mg_dl", p.hdl_mg_dl, "hdl_mmol_l", p.hdl_mmol_l)
    # The model's ranges are in mg/dL; a converted value must be reported under the key the user actually gave.
    for field, value, converted, original, (low, high) in (
        ("tc_mmol_l", tc, tc_converted, p.tc_mmol_l, TC_MG_DL_RANGE),
        ("hdl_mmol_l", hdl, hdl_converted, p.hdl_mmol_l, HDL_MG_DL_RANGE),
    ):
        if converted and not (low <= value <= high):
            raise CannotCompute(
                f"cannot compute: {field} {format_number(original)} is {value:.1f} mg/dL, "
                f"outside {format_number(low)}–{format_number(high)} mg/dL",
                field=field,
                value=original,
            )
    result = china_par_10y(
        age=p.age,
        sex=p.sex,
        sbp_mmhg=p.sbp_mmhg,
        bp_treated=p.bp_treated,
        tc_mg_dl=tc,
        hdl_mg_dl=hdl,
        waist_cm=p.waist_cm,
        smoker=p.smoker,
        diabetes=p.diabetes,
        north=p.north,
        urban=p.urban,
        family_history=p.family_history,
    )
    ideal = china_par_ideal_10y(age=p.age, sex=p.sex, north=p.north, urban=p.urban)
    return {
        "model": "china-par",
        "risk10_pct": result.risk10_pct,
        "risk10_pct_rounded": result.risk10_pct_rounded,
        "category": result.category,
        "ideal_risk10_pct": ideal.risk10_pct,
        "ideal_risk10_pct_rounded": ideal.risk10_pct_rounded,
        "ideal_category": ideal.category,
        "individual_sum": result.individual_sum,
        "inputs": {"tc_mg_dl": tc, "hdl_mg_dl": hdl},
        "source": result.source,
    }


def _pce(p: PceInput) -> dict[str, Any]:
    result = pce_10y(
        age=p.age,
        sex=p.sex,
        race=p.race,
        tc_mg_dl=p.tc_mg_dl,
        hdl_mg_dl=p.hdl_mg_dl,
        sbp_mmhg=p.sbp_mmhg,
        bp_treated=p.bp_treated,
        smoker=p.smoker,
        diabetes=p.diabetes,
    )
    return {
        "model": "pce",
        "risk10_pct": result.risk10_pct,
        "risk10_pct_rounded": round_half_up(result.risk10_pct, 1),
        "category_2018": result.category_2018,
        "individual_sum": result.individual_sum,
        "source": result.source,
    }


def _egfr(p: EgfrInput) -> dict[str, Any]:
    given, scr = _either("scr_mg_dl", p.scr_mg_dl, "scr_umol_l", p.scr_umol_l)
    scr_mg_dl = creatinine_umol_l_to_mg_dl(scr) if given == "scr_umol_l" else scr
    if p.equation != "ckd-epi-2021-cys" and p.scys_mg_l is not None:
        raise CannotCompute("cannot compute: scys_mg_l applies only to equation ckd-epi-2021-cys", field="scys_mg_l")
    if p.equation != "ckd-epi-2009" and p.black is not None:
        raise CannotCompute(
            "cannot compute: black applies only to equation ckd-epi-2009 (the 2021 equations are race-free)",
            field="black",
        )
    if p.equation == "ckd-epi-2021":
        egfr = egfr_ckd_epi_2021_cr(scr_mg_dl, p.age, p.sex)
        source = SOURCE_2021
    elif p.equation == "ckd-epi-2021-cys":
        if p.scys_mg_l is None:
            raise CannotCompute.missing("scys_mg_l")
        egfr = egfr_ckd_epi_2021_cr_cys(scr_mg_dl, p.scys_mg_l, p.age, p.sex)
        source = SOURCE_2021
    else:
        if p.black is None:
            raise CannotCompute.missing("black")
        egfr = egfr_ckd_epi_2009_cr(scr_mg_dl, p.age, p.sex, p.black)
        source = SOURCE_2009
    return {
        "model": "egfr",
        "equation": p.equation,
        "egfr": egfr,
        "egfr_rounded": int(round_half_up(egfr)),
        "G": kdigo_g(egfr),
        "scr_mg_dl": scr_mg_dl,
        "source": f"{source} {SOURCE_KDIGO}",
    }


def _kdigo(p: KdigoInput) -> dict[str, Any]:
    if p.egfr is None and p.acr is None:
        raise CannotCompute("cannot compute: missing egfr or acr", field="egfr")
    result: dict[str, Any] = {"model": "kdigo"}
    if p.egfr is not None:
        result["G"] = kdigo_g(p.egfr)
    if p.acr is not None:
        if p.acr_unit is None:
            raise CannotCompute.missing("acr_unit")
        result["A"] = kdigo_a(p.acr, p.acr_unit)
    elif p.acr_unit is not None:
        raise CannotCompute.missing("acr")
    result["source"] = SOURCE_KDIGO
    return result


def _cdrs(p: CdrsInput) -> dict[str, Any]:
    result = cdrs_score(
        age=p.age,
        sex=p.sex,
        bmi=p.bmi,
        waist_cm=p.waist_cm,
        sbp_mmhg=p.sbp_mmhg,
        family_history_diabetes=p.family_history_diabetes,
    )
    return {
        "model": "cdrs",
        "score": result.score,
        "high_risk": result.high_risk,
        "points": dict(result.points),
        "source": result.source,
    }


def _bp_class(p: BpClassInput) -> dict[str, Any]:
    result = bp_class(p.sbp, p.dbp, p.on_treatment)
    return {
        "model": "bp-class",
        "class": result.category,
        "isolated_systolic": result.isolated_systolic,
        "hypertension": result.hypertension,
        "controlled": result.controlled,
        "source": result.source,
    }


def _metabolic_syndrome(p: MetabolicSyndromeInput) -> dict[str, Any]:
    result = metabolic_syndrome(
        sex=p.sex,
        waist_cm=p.waist_cm,
        fpg_mmol_l=p.fpg_mmol_l,
        pg2h_mmol_l=p.pg2h_mmol_l,
        diabetes_treated=p.diabetes_treated,
        sbp=p.sbp,
        dbp=p.dbp,
        hypertension_treated=p.hypertension_treated,
        tg_mmol_l=p.tg_mmol_l,
        hdl_mmol_l=p.hdl_mmol_l,
    )
    return {
        "model": "metabolic-syndrome",
        "present": result.present,
        "criteria_met": list(result.criteria_met),
        "criteria_met_labels": [COMPONENT_LABELS[c] for c in result.criteria_met],
        "criteria_not_met": list(result.criteria_not_met),
        "criteria_unknown": list(result.criteria_unknown),
        "missing_inputs": list(result.missing_inputs),
        "source": result.source,
    }


@risk_app.command("china-par")
def china_par_command(input_: InputOption) -> None:
    """China-PAR 10-year ASCVD risk (%), 2019 category and the ideal-risk-factor comparison."""
    _run(input_, ChinaParInput, _china_par)


@risk_app.command("pce")
def pce_command(input_: InputOption) -> None:
    """Pooled Cohort Equations 10-year ASCVD risk (%), ages 40-79."""
    _run(input_, PceInput, _pce)


@risk_app.command("egfr")
def egfr_command(input_: InputOption) -> None:
    """eGFR by CKD-EPI 2021 (creatinine or creatinine-cystatin C) or 2009, with the KDIGO G category."""
    _run(input_, EgfrInput, _egfr)


@risk_app.command("kdigo")
def kdigo_command(input_: InputOption) -> None:
    """KDIGO G category from eGFR and/or A category from the albumin-to-creatinine ratio."""
    _run(input_, KdigoInput, _kdigo)


@risk_app.command("cdrs")
def cdrs_command(input_: InputOption) -> None:
    """Chinese Diabetes Risk Score (ages 20-74); high risk at >= 25."""
    _run(input_, CdrsInput, _cdrs)


@risk_app.command("bp-class")
def bp_class_command(input_: InputOption) -> None:
    """Office blood-pressure class (中国高血压防治指南 2018/2024)."""
    _run(input_, BpClassInput, _bp_class)


@risk_app.command("bmi-class")
def bmi_class_command(input_: InputOption) -> None:
    """BMI class (WS/T 428-2013)."""
    _run(input_, BmiClassInput, lambda p: {"model": "bmi-class", "class": bmi_class(p.bmi)})


@risk_app.command("waist-class")
def waist_class_command(input_: InputOption) -> None:
    """Waist class (WS/T 428-2013)."""
    _run(input_, WaistClassInput, lambda p: {"model": "waist-class", "class": waist_class(p.sex, p.waist_cm)})


@risk_app.command("metabolic-syndrome")
def metabolic_syndrome_command(input_: InputOption) -> None:
    """Metabolic syndrome by the CDS 2017/2020 criteria (>= 3 of 5 components); null when undetermined."""
    _run(input_, MetabolicSyndromeInput, _metabolic_syndrome)
