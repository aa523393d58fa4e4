"""read_fhir_bundle on bundles that are not tidy: unusable resources become problems naming type, id and reason;
observations without a DiagnosticReport are grouped by encounter or by date; panels and components are read."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from zhujian.adapters.fhir import FhirInputError, read_fhir_bundle
from zhujian.kb.loader import KnowledgeBase, default_kb

LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "id": "b1", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _obs(oid: str, text: str, value: Any, date: str = "2025-03-01", **extra: Any) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"text": text},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": date,
    }
    if isinstance(value, dict):
        observation.update(value)
    elif value is not None:
        observation["valueQuantity"] = {"value": value, "unit": "mmol/L"}
    observation.update(extra)
    return observation


PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1970-02-03"}


def test_every_unusable_resource_is_a_named_problem(kb: KnowledgeBase) -> None:
    bundle = _bundle(
        PATIENT,
        _obs("good", "空腹血糖", 5.4),
        {"resourceType": "Observation", "id": "no-status", "code": {"text": "钾"}, "valueQuantity": {"value": 4.1}},
        _obs("voided", "钠", 140, status="entered-in-error"),
        _obs("range", "尿红细胞", {"valueRange": {"low": {"value": 3}, "high": {"value": 5}}}),
        _obs("empty", "氯", None),
        {
            "resourceType": "MedicationStatement",
            "id": "med1",
            "status": "active",
            "subject": {"reference": "Patient/p1"},
        },
        {
            "resourceType": "DiagnosticReport",
            "id": "dr1",
            "status": "final",
            "code": {"text": "体检报告"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2025-03-01",
            "result": [{"reference": "Observation/good"}, {"reference": "Observation/missing"}],
            "presentedForm": [{"contentType": "application/pdf", "title": "report.pdf"}],
        },
    )
    bundle["entry"].append({"fullUrl": "urn:uuid:0c7e2c8a-1111-4a4b-9c1d-2b3c4d5e6f70"})

    result = read_fhir_bundle(bundle, kb)

    problems = {(p.resource_type, p.resource_id): p.reason for p in result.problems}
    assert (
        "status" in problems[("Observation", "no-status")]
        and "not a valid FHIR R4" in problems[("Observation", "no-status")]
    )
    assert "entered-in-error" in problems[("Observation", "voided")]
    assert "valueRange" in problems[("Observation", "range")]
    assert "no value" in problems[("Observation", "empty")]
    assert "MedicationStatement is not read" in problems[("MedicationStatement", "med1")]
    assert "entry[8] has no resource" in problems[("Bundle", "b1")]
    dr_problems = [p.reason for p in result.problems if p.resource_id == "dr1"]
    assert any("result[1] Observation/missing" in r for r in dr_problems)
    assert any("presentedForm" in r for r in dr_problems)
    assert len(result.problems) == 8

    # The report's visit holds the one good value; the valid observations it did not list join it (same day).
    (record,) = result.records
    assert record.visit_id == "dr1" and record.exam_date == dt.date(2025, 3, 1)
    assert [(i.name, i.value) for i in record.items] == [("空腹血糖", 5.4)]
    assert record.age_years() == 55.0  # born 1970-02-03


def test_results_of_a_voided_report_are_not_used(kb: KnowledgeBase) -> None:
    voided = {
        "resourceType": "DiagnosticReport",
        "id": "dr-x",
        "status": "entered-in-error",
        "code": {"text": "体检报告"},
        "subject": {"reference": "Patient/p1"},
        "result": [{"reference": "Observation/k"}],
    }
    result = read_fhir_bundle(_bundle(PATIENT, _obs("k", "钾", 2.6), voided), kb)
    assert result.records == []
    assert [(p.resource_type, p.resource_id, p.entry) for p in result.problems] == [("DiagnosticReport", "dr-x", 2)]
    assert "entered-in-error" in result.problems[0].reason


def test_patient_identity_numbers_and_partial_birth_dates_are_not_used(kb: KnowledgeBase) -> None:
    patient = {"resourceType": "Patient", "id": "11010519491231002X", "gender": "female", "birthDate": "1949-12"}
    observation = _obs("o1", "空腹血糖", 5.0)
    observation["subject"] = {"reference": "Patient/11010519491231002X"}
    result = read_fhir_bundle(_bundle(patient, observation), kb)

    (record,) = result.records
    assert record.person_id is None and record.birth_date is None and record.sex == "female"
    assert "11010519491231002X" not in record.model_dump_json()
    reasons = [p.reason for p in result.problems]
    assert any("identity-card or phone number" in r for r in reasons)
    assert any("birthDate date '1949-12' is partial" in r for r in reasons)


def test_observations_without_report_are_grouped_by_encounter_then_by_date(kb: KnowledgeBase) -> None:
    encounter = {
        "resourceType": "Encounter",
        "id": "enc-7",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2025-05-06T08:00:00+08:00"},
    }
    in_encounter = [
        _obs("e1", "总胆固醇", 5.9, date="2025-05-06", encounter={"reference": "Encounter/enc-7"}),
        _obs("e2", "甘油三酯", 2.1, date="2025-05-07", encounter={"reference": "Encounter/enc-7"}),
    ]
    by_date = [
        _obs("d1", "空腹血糖", 6.3, date="2024-01-10"),
        _obs("d2", "尿酸", {"valueQuantity": {"value": 455, "unit": "umol/L"}}, date="2024-01-10T09:00:00Z"),
        _obs("d3", "空腹血糖", 6.0, date="2023-01-09"),
    ]
    result = read_fhir_bundle(_bundle(PATIENT, encounter, *in_encounter, *by_date), kb)

    assert result.problems == []
    visits = {r.visit_id: r for r in result.records}
    assert sorted(visits) == ["enc-7", "p1-2023-01-09", "p1-2024-01-10"]
    assert visits["enc-7"].exam_date == dt.date(2025, 5, 6)  # the encounter's start, not the later sample day
    assert [i.name for i in visits["enc-7"].items] == ["总胆固醇", "甘油三酯"]
    assert [(i.name, i.value, i.unit) for i in visits["p1-2024-01-10"].items] == [
        ("空腹血糖", 6.3, "mmol/L"),
        ("尿酸", 455, "umol/L"),
    ]
    assert {r.person_id for r in result.records} == {"p1"}


def test_blood_pressure_panel_components_and_panel_members(kb: KnowledgeBase) -> None:
    blood_pressure = {
        "resourceType": "Observation",
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-01",
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 148, "unit": "mmHg"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 92, "unit": "mmHg"},
            },
        ],
    }
    panel = {
        "resourceType": "Observation",
        "id": "lipids",
        "status": "final",
        "code": {"text": "血脂四项"},
        "subject": {"reference": "Patient/p1"},
        "hasMember": [{"reference": "Observation/hdl"}],
    }
    member = _obs("hdl", "HDL-C", 0.9, referenceRange=[{"low": {"value": 1.0}}, {"text": "女性 >1.3"}])
    report = {
        "resourceType": "DiagnosticReport",
        "id": "dr9",
        "status": "final",
        "code": {"text": "体检"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2025-03-01",
        "result": [{"reference": "Observation/bp"}, {"reference": "Observation/lipids"}],
    }
    result = read_fhir_bundle(_bundle(PATIENT, blood_pressure, panel, member, report), kb)

    (record,) = result.records
    # 8480-6 / 8462-4 are the KB's codes for sbp / dbp (items/vitals.yaml).
    assert [(i.code, i.value, i.unit) for i in record.items] == [
        ("sbp", 148, "mmHg"),
        ("dbp", 92, "mmHg"),
        ("hdl", 0.9, "mmol/L"),
    ]
    assert record.items[2].reference_range == ">=1"
    # Two reference ranges: the first is used and the choice is reported.
    assert [p.reason for p in result.problems] == ["HDL-C: 2 reference ranges given; the first (>=1) is used"]


def test_free_text_observations_become_texts_and_short_unknown_results_stay_items(kb: KnowledgeBase) -> None:
    conclusion = _obs("us", "超声提示", {"valueString": "脂肪肝（轻度），胆囊息肉"})
    unknown_short = _obs("x", "某某因子", {"valueString": "阴性"})
    absent = _obs("alt", "ALT", {"dataAbsentReason": {"text": "未查"}})
    result = read_fhir_bundle(_bundle(PATIENT, conclusion, unknown_short, absent), kb)

    (record,) = result.records
    assert [(t.item, t.text) for t in record.texts] == [("超声提示", "脂肪肝（轻度），胆囊息肉")]
    # Kept as items so the engine reports them (unknown item; not done) instead of losing them.
    assert [(i.name, i.value) for i in record.items] == [("某某因子", "阴性"), ("ALT", "未查")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({"resourceType": "Patient", "id": "p"}, "expected 'Bundle'"),
        ({"resourceType": "Bundle", "type": "collection", "entry": {}}, "Bundle.entry must be a list"),
    ],
)
def test_input_that_is_not_a_bundle_is_refused(kb: KnowledgeBase, data: Any, message: str) -> None:
    with pytest.raises(FhirInputError, match=message):
        read_fhir_bundle(data, kb)
