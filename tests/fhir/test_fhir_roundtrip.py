"""Round trips through FHIR R4: records → a hand-built Bundle → read_fhir_bundle gives the same items and texts; a
report → report_to_fhir_bundle → parsed back with fhir.resources gives the same conclusions and observations.

The bundles in the first half are written here by hand (not by the exporter), the way another system would send
them, so the reader is tested against FHIR as specified rather than against our own writer."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from zhujian.adapters.fhir import read_fhir_bundle, report_to_fhir_bundle
from zhujian.domain.record import ItemInput, Record, TextInput
from zhujian.domain.report import Conclusion, EvaluatedItem, Evidence, Problem, Report
from zhujian.kb.loader import KnowledgeBase, default_kb

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# Value sets of the FHIR R4 specification for the codes the exporter emits (hl7.org/fhir/R4, each element's binding).
# fhir.resources checks structure only (it accepts status="bogus"), so these checks are ours.
BUNDLE_TYPES = {
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch",
    "batch-response",
    "history",
    "searchset",
    "collection",
}
REPORT_STATUSES = {
    "registered",
    "partial",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
}
OBSERVATION_STATUSES = {
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
}
OBSERVATION_CATEGORIES = {
    "social-history",
    "vital-signs",
    "imaging",
    "laboratory",
    "procedure",
    "survey",
    "exam",
    "therapy",
    "activity",
}
INTERPRETATION_CODES = {"H", "L", "A", "N", "HH", "LL", "AA", "HU", "LU", "<", ">", "I", "R", "S", "NEG", "POS"}
CONDITION_CLINICAL = {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
CONDITION_VERIFICATION = {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
CONDITION_CATEGORIES = {"problem-list-item", "encounter-diagnosis"}
COMPARATORS = {"<", "<=", ">=", ">"}
GENDERS = {"male", "female", "other", "unknown"}
DATA_ABSENT_REASONS = {
    "unknown",
    "asked-unknown",
    "temp-unknown",
    "not-asked",
    "asked-declined",
    "masked",
    "not-applicable",
    "unsupported",
    "as-text",
    "error",
    "not-a-number",
    "negative-infinity",
    "positive-infinity",
    "not-performed",
    "not-permitted",
}
DEVICE_NAME_TYPES = {
    "udi-label-name",
    "user-friendly-name",
    "patient-reported-name",
    "manufacturer-name",
    "model-name",
    "other",
}
PROVENANCE_AGENT_TYPES = {
    "enterer",
    "performer",
    "author",
    "verifier",
    "legal",
    "attester",
    "informant",
    "custodian",
    "assembler",
    "composer",
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


# ---- records → hand-built bundle → records -----------------------------------------------------------------


def _records() -> list[Record]:
    first = Record(
        person_id="p1",
        visit_id="V1",
        sex="female",
        birth_date=dt.date(1960, 5, 4),
        exam_date=dt.date(2024, 3, 1),
        items=[
            ItemInput(name="空腹血糖", value=6.5, unit="mmol/L", reference_range="3.9-6.1"),
            ItemInput(name="收缩压", value=150, unit="mmHg", reference_range="90-139"),
            ItemInput(name="尿蛋白", value="2+"),
            ItemInput(name="乙肝表面抗原", value="阴性"),
            ItemInput(name="总胆固醇", value=5.2, unit="mmol/L", reference_range="<=5.2"),
        ],
        texts=[
            TextInput(item="超声提示", section="彩超", text="脂肪肝（轻度）"),
            TextInput(item="肝脏", section="彩超", text="肝脏形态大小正常，包膜光整，实质回声细密增强，后方回声衰减。"),
        ],
    )
    second = Record(
        person_id="p1",
        visit_id="V2",
        sex="female",
        birth_date=dt.date(1960, 5, 4),
        exam_date=dt.date(2025, 3, 5),
        items=[ItemInput(name="空腹血糖", value=7.4, unit="mmol/L", reference_range="3.9-6.1")],
        texts=[TextInput(item="心电图", section="心电图室", text="窦性心律，ST-T改变")],
    )
    other = Record(
        person_id="p2",
        visit_id="V3",
        sex="male",
        exam_date=dt.date(2025, 1, 2),
        items=[ItemInput(name="甘油三酯", value=2.8, unit="mmol/L", reference_range=">=0.45")],
    )
    return [first, second, other]


# How this hand-written sender codes items: LOINC for glucose, a UCUM code without display for blood pressure.
_SENDER_LOINC = {"空腹血糖": "14771-0"}
_SENDER_UCUM_ONLY = {"mmHg": "mm[Hg]"}


def _range(text: str | None) -> list[dict[str, Any]]:
    if text is None:
        return []
    if text.startswith("<="):
        return [{"high": {"value": float(text[2:])}}]
    if text.startswith(">="):
        return [{"low": {"value": float(text[2:])}}]
    low, high = text.split("-")
    return [{"low": {"value": float(low)}, "high": {"value": float(high)}}]


def _item_observation(item: ItemInput, oid: str, date: dt.date, patient: str) -> dict[str, Any]:
    assert item.name is not None
    code: dict[str, Any] = {"text": item.name}
    if item.name in _SENDER_LOINC:
        code["coding"] = [{"system": LOINC, "code": _SENDER_LOINC[item.name]}]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": code,
        "subject": {"reference": patient},
        "effectiveDateTime": f"{date.isoformat()}T08:30:00+08:00",
    }
    if isinstance(item.value, int | float):
        quantity: dict[str, Any] = {"value": item.value}
        if item.unit in _SENDER_UCUM_ONLY:
            quantity.update(system=UCUM, code=_SENDER_UCUM_ONLY[item.unit])
        elif item.unit:
            quantity["unit"] = item.unit
        observation["valueQuantity"] = quantity
    elif item.value == "2+":
        observation["valueCodeableConcept"] = {"text": "2+"}
    else:
        observation["valueString"] = item.value
    ranges = _range(item.reference_range)
    if ranges:
        observation["referenceRange"] = ranges
    return observation


def _text_observation(text: TextInput, oid: str, date: dt.date, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "imaging"}],
                "text": text.section,
            }
        ],
        "code": {"text": text.item},
        "subject": {"reference": patient},
        "effectiveDateTime": date.isoformat(),
        "valueString": text.text,
    }


def _bundle_of(records: list[Record], conclusion: dict[str, str]) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    patients: set[str] = set()
    for record in records:
        assert record.person_id is not None and record.exam_date is not None
        patient_ref = f"Patient/{record.person_id}"
        if record.person_id not in patients:
            patients.add(record.person_id)
            patient: dict[str, Any] = {
                "resourceType": "Patient",
                "id": record.person_id,
                "gender": record.sex,
                # A sender's real Patient carries a name and an identity number; neither may reach the record.
                "name": [{"text": "王秀英"}],
                "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "11010519491231002X"}],
            }
            if record.birth_date:
                patient["birthDate"] = record.birth_date.isoformat()
            entries.append({"fullUrl": f"http://example.org/fhir/Patient/{record.person_id}", "resource": patient})
        results = []
        for n, item in enumerate(record.items):
            oid = f"{record.visit_id}-item-{n}"
            entries.append({"resource": _item_observation(item, oid, record.exam_date, patient_ref)})
            results.append({"reference": f"Observation/{oid}"})
        for n, text in enumerate(record.texts):
            oid = f"{record.visit_id}-text-{n}"
            entries.append({"resource": _text_observation(text, oid, record.exam_date, patient_ref)})
            results.append({"reference": f"Observation/{oid}"})
        report: dict[str, Any] = {
            "resourceType": "DiagnosticReport",
            "id": f"dr-{record.visit_id}",
            "identifier": [{"value": record.visit_id}],
            "status": "final",
            "code": {"text": "体检报告"},
            "subject": {"reference": patient_ref},
            "effectiveDateTime": record.exam_date.isoformat(),
            "result": results,
        }
        if record.visit_id in conclusion:
            report["conclusion"] = conclusion[record.visit_id]
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": report})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _item_tuples(record: Record) -> list[tuple[Any, ...]]:
    return [(i.name, i.value, i.unit, i.reference_range) for i in record.items]


def test_records_survive_a_fhir_bundle(kb: KnowledgeBase) -> None:
    originals = _records()
    bundle = _bundle_of(originals, {"V1": "脂肪肝（轻度）；空腹血糖升高"})
    assert Bundle.model_validate(bundle) is not None  # the hand-built input is valid R4(B)

    result = read_fhir_bundle(bundle, kb, source="sender.json")

    assert result.problems == []
    assert [r.visit_id for r in result.records] == ["V1", "V2", "V3"]
    for original, read in zip(originals, result.records, strict=True):
        assert (read.person_id, read.sex, read.birth_date, read.exam_date) == (
            original.person_id,
            original.sex,
            original.birth_date,
            original.exam_date,
        )
        assert _item_tuples(read) == _item_tuples(original)
        original_texts = [(t.item, t.section, t.text) for t in original.texts]
        read_texts = [(t.item, t.section, t.text) for t in read.texts]
        if original.visit_id == "V1":
            # The report's conclusion is a text too, labelled with the report's title.
            assert read_texts == [("体检报告", None, "脂肪肝（轻度）；空腹血糖升高"), *original_texts]
        else:
            assert read_texts == original_texts
        assert all(i.origin and i.origin.startswith("sender.json:entry[") for i in read.items)

    first = result.records[0]
    # LOINC 14771-0 is glu's code in the KB (items/glucose.yaml); the other items resolve by their Chinese names.
    assert [i.code for i in first.items] == ["glu", "sbp", "u_pro", "hbsag", "tc"]
    # Nothing of the Patient's name or identifier reaches the record.
    dumped = first.model_dump_json()
    assert "王秀英" not in dumped and "11010519491231002X" not in dumped
    assert first.age_years() == 63.0  # born 1960-05-04, examined 2024-03-01


def test_comparator_and_ucum_only_units_are_kept_readable(kb: KnowledgeBase) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p9", "gender": "male"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "tg",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "2571-8", "display": "Triglyceride"}]},
                    "subject": {"reference": "Patient/p9"},
                    "effectiveDateTime": "2025-06-01",
                    "valueQuantity": {"value": 6.22, "comparator": ">", "system": UCUM, "code": "mmol/L"},
                }
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "temp",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": "8310-5"}]},
                    "subject": {"reference": "Patient/p9"},
                    "effectiveDateTime": "2025-06-01",
                    "valueQuantity": {"value": 36.6, "system": UCUM, "code": "Cel"},
                }
            },
        ],
    }
    result = read_fhir_bundle(bundle, kb)
    assert result.problems == []
    (record,) = result.records
    tg, temperature = record.items
    # 2571-8 (mass concentration) is in adapters/fhir_codes.yaml for tg; the KB converts the unit.
    assert (tg.code, tg.value, tg.unit) == ("tg", ">6.22", "mmol/L")
    # UCUM "Cel" is written the way the KB spells it, so the engine can use it.
    assert (temperature.code, temperature.value, temperature.unit) == ("temperature", 36.6, "°C")


# ---- report → bundle → parsed back ---------------------------------------------------------------------------


def _report() -> Report:
    items = [
        EvaluatedItem("tc", "总胆固醇", "总胆固醇", "6.8", 6.8, "mmol/L", None, 5.2, "kb", "high"),
        EvaluatedItem("ldl", "低密度脂蛋白胆固醇", "LDL-C", "4.5", 4.5, "mmol/L", None, 3.4, "input", "high"),
        EvaluatedItem("sbp", "收缩压", "收缩压", "152", 152.0, "mmHg", 90.0, 139.0, "kb", "high"),
        EvaluatedItem("hgb", "血红蛋白", "血红蛋白", "96", 96.0, "g/L", 115.0, 150.0, "input", "low"),
        EvaluatedItem("u_pro", "尿蛋白", "尿蛋白", "2+", "2+", None, None, None, None, "abnormal", rank=3),
        EvaluatedItem("tg", "甘油三酯", "甘油三酯", "> 6.22", 6.22, "mmol/L", None, 1.7, "kb", "high", qualifier=">"),
        EvaluatedItem("glu", "空腹血糖", "空腹血糖", "5.1", 5.1, "mmol/L", 3.9, 6.1, "kb", "normal"),
        EvaluatedItem(
            "alt", "丙氨酸氨基转移酶", "ALT", "未查", None, "U/L", None, None, None, "unknown", qualifier="未查"
        ),
        EvaluatedItem(None, "某某因子", "某某因子", "阳性", "阳性", None, None, None, None, "unknown"),
    ]
    conclusions = [
        Conclusion(
            conclusion_id="dyslipidaemia",
            name="血脂异常",
            icd10="E78.5",
            level=None,
            category="disease",
            system="代谢",
            order=10,
            department="内分泌科",
            follow_up="3个月复查血脂",
            advice="低脂饮食，规律运动。",
            explanation="",
            evidence=[
                Evidence("item", "总胆固醇 6.8 mmol/L↑", item_id="tc", value=6.8, unit="mmol/L", flag="high"),
                Evidence("item", "LDL-C 4.5 mmol/L↑", item_id="ldl", value=4.5, unit="mmol/L", flag="high"),
            ],
        ),
        Conclusion(
            conclusion_id="hypertension_new",
            name="血压升高",
            icd10="R03.0",
            level="B",
            category="finding",
            system="循环",
            order=20,
            department="心内科",
            follow_up="1周内复测血压",
            advice="限盐，监测血压。",
            explanation="",
            evidence=[Evidence("item", "收缩压 152 mmHg↑", item_id="sbp", value=152.0, unit="mmHg", flag="high")],
        ),
        Conclusion(
            conclusion_id="fatty_liver",
            name="脂肪肝",
            icd10="K76.0",
            level=None,
            category="finding",
            system="消化",
            order=30,
            department="消化内科",
            follow_up="",
            advice="减重。",
            explanation="",
            evidence=[Evidence("finding", "超声：肝脏回声细密增强", finding_id="fatty_liver")],
        ),
    ]
    return Report(
        visit_id="VIS-001",
        person_id="p-7f3a",
        sex="male",
        age=56.0,
        exam_date="2025-04-02",
        kb_version="test-kb",
        engine_version="0.1.0",
        conclusions=conclusions,
        items=items,
        findings=[],
        critical=[],
        problems=[Problem("not_done", "丙氨酸氨基转移酶（ALT）未检查：原值“未查”", item="ALT", value="未查")],
    )


def _resources(bundle: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def _codes(concept: dict[str, Any]) -> list[str]:
    return [c["code"] for c in concept.get("coding", [])]


def check_value_sets(bundle: dict[str, Any]) -> None:
    """Every code the exporter emits is in its FHIR R4 value set, and every reference resolves in the bundle."""
    assert bundle["type"] in BUNDLE_TYPES
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    for url in full_urls:
        assert url.startswith("urn:uuid:")
        uuid.UUID(url.removeprefix("urn:uuid:"))

    def references(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["reference"]] if isinstance(node.get("reference"), str) else []
            return found + [r for v in node.values() for r in references(v)]
        if isinstance(node, list):
            return [r for v in node for r in references(v)]
        return []

    assert set(references(bundle)) <= set(full_urls)
    for patient in _resources(bundle, "Patient"):
        assert patient["gender"] in GENDERS
        assert "name" not in patient
    for report in _resources(bundle, "DiagnosticReport"):
        assert report["status"] in REPORT_STATUSES
    for observation in _resources(bundle, "Observation"):
        assert observation["status"] in OBSERVATION_STATUSES
        for category in observation.get("category", []):
            assert set(_codes(category)) <= OBSERVATION_CATEGORIES
        for interpretation in observation.get("interpretation", []):
            assert set(_codes(interpretation)) <= INTERPRETATION_CODES
        values = [k for k in observation if k.startswith("value")]
        # obs-6: dataAbsentReason only when there is no value; one of the two must be there for a leaf observation.
        assert len(values) + ("dataAbsentReason" in observation) == 1
        if "dataAbsentReason" in observation:
            assert set(_codes(observation["dataAbsentReason"])) <= DATA_ABSENT_REASONS
        quantity = observation.get("valueQuantity", {})
        if "comparator" in quantity:
            assert quantity["comparator"] in COMPARATORS
        for reference_range in observation.get("referenceRange", []):
            assert {"low", "high", "text"} & set(reference_range)  # obs-3
    for condition in _resources(bundle, "Condition"):
        assert set(_codes(condition["clinicalStatus"])) <= CONDITION_CLINICAL
        assert set(_codes(condition["verificationStatus"])) <= CONDITION_VERIFICATION
        for category in condition["category"]:
            assert set(_codes(category)) <= CONDITION_CATEGORIES
    for device in _resources(bundle, "Device"):
        assert {n["type"] for n in device["deviceName"]} <= DEVICE_NAME_TYPES
    for provenance in _resources(bundle, "Provenance"):
        for agent in provenance["agent"]:
            assert set(_codes(agent["type"])) <= PROVENANCE_AGENT_TYPES


def test_report_bundle_validates_and_parses_back(kb: KnowledgeBase) -> None:
    report = _report()
    bundle = report_to_fhir_bundle(report, None, kb=kb, generated_at=dt.datetime(2025, 4, 3, 9, 0, tzinfo=dt.UTC))

    parsed = Bundle.model_validate(bundle)
    check_value_sets(bundle)
    again = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert again["type"] == "collection"

    (diagnostic,) = _resources(again, "DiagnosticReport")
    assert diagnostic["status"] == "preliminary"
    assert diagnostic["conclusion"] == "1. 血脂异常\n2. 血压升高\n3. 脂肪肝"
    assert [(c["coding"][0]["system"], c["coding"][0]["code"], c["text"]) for c in diagnostic["conclusionCode"]] == [
        ("http://hl7.org/fhir/sid/icd-10", "E78.5", "血脂异常"),
        ("http://hl7.org/fhir/sid/icd-10", "R03.0", "血压升高"),
        ("http://hl7.org/fhir/sid/icd-10", "K76.0", "脂肪肝"),
    ]

    conditions = _resources(again, "Condition")
    assert [(c["code"]["coding"][0]["code"], c["code"]["text"]) for c in conditions] == [
        ("E78.5", "血脂异常"),
        ("R03.0", "血压升高"),
        ("K76.0", "脂肪肝"),
    ]
    assert {_codes(c["verificationStatus"])[0] for c in conditions} == {"provisional"}
    assert {_codes(c["category"][0])[0] for c in conditions} == {"encounter-diagnosis"}
    notes = [n["text"] for n in conditions[0]["note"]]
    assert "依据：总胆固醇 6.8 mmol/L↑；LDL-C 4.5 mmol/L↑" in notes
    assert "建议：低脂饮食，规律运动。" in notes

    observations = {o["code"]["text"]: o for o in _resources(again, "Observation")}
    assert len(observations) == len(report.items)
    by_url = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    assert sorted(by_url[r["reference"]]["code"]["text"] for r in diagnostic["result"]) == sorted(observations)
    # The dyslipidaemia condition points at the two lipid observations that are its evidence.
    evidence = [by_url[r["reference"]]["code"]["text"] for r in conditions_detail(bundle)]
    assert evidence == ["总胆固醇", "低密度脂蛋白胆固醇"]

    def interpretation(name: str) -> str | None:
        found = observations[name].get("interpretation")
        return _codes(found[0])[0] if found else None

    tc = observations["总胆固醇"]
    assert tc["valueQuantity"] == {"value": 6.8, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    assert tc["code"]["coding"] == [{"system": LOINC, "code": "14647-2"}]  # KB lipids.yaml
    assert tc["referenceRange"][0]["high"]["value"] == 5.2 and "low" not in tc["referenceRange"][0]
    assert observations["收缩压"]["valueQuantity"]["code"] == "mm[Hg]"
    assert [interpretation(n) for n in ("总胆固醇", "血红蛋白", "尿蛋白", "空腹血糖", "某某因子")] == [
        "H",
        "L",
        "A",
        "N",
        None,
    ]
    assert observations["尿蛋白"]["valueCodeableConcept"] == {"text": "2+"}
    assert observations["甘油三酯"]["valueQuantity"]["comparator"] == ">"
    assert observations["某某因子"]["valueString"] == "阳性"
    alt = observations["丙氨酸氨基转移酶"]
    assert alt["dataAbsentReason"]["text"] == "未查" and "valueQuantity" not in alt
    assert any("未检查" in n["text"] for n in alt["note"])  # the item's data-quality problem travels with it

    (provenance,) = _resources(again, "Provenance")
    assert provenance["recorded"].startswith("2025-04-03T09:00:00")
    (device,) = _resources(again, "Device")
    assert [v["value"] for v in device["version"]] == ["0.1.0", "test-kb"]


def conditions_detail(bundle: dict[str, Any]) -> list[dict[str, str]]:
    first_condition = _resources(bundle, "Condition")[0]
    details: list[dict[str, str]] = first_condition["evidence"][0]["detail"]
    return details


def test_signed_report_is_final_and_confirmed(kb: KnowledgeBase) -> None:
    bundle = report_to_fhir_bundle(_report(), None, kb=kb, signed=True)
    check_value_sets(bundle)
    assert _resources(bundle, "DiagnosticReport")[0]["status"] == "final"
    assert {o["status"] for o in _resources(bundle, "Observation")} == {"final"}
    assert {_codes(c["verificationStatus"])[0] for c in _resources(bundle, "Condition")} == {"confirmed"}


def test_same_report_gives_the_same_bundle(kb: KnowledgeBase) -> None:
    when = dt.datetime(2025, 4, 3, tzinfo=dt.UTC)
    assert report_to_fhir_bundle(_report(), kb=kb, generated_at=when) == report_to_fhir_bundle(
        _report(), kb=kb, generated_at=when
    )


def test_exported_bundle_reads_back_as_the_report_values(kb: KnowledgeBase) -> None:
    report = _report()
    record = Record(
        person_id="p-7f3a",
        visit_id="VIS-001",
        sex="male",
        birth_date=dt.date(1969, 1, 20),
        exam_date=dt.date(2025, 4, 2),
        texts=[TextInput(item="肝脏", section="彩超", text="肝脏形态大小正常，实质回声细密增强。")],
    )
    bundle = report_to_fhir_bundle(report, record, kb=kb)
    result = read_fhir_bundle(bundle, kb)

    (read,) = result.records
    assert (read.person_id, read.visit_id, read.sex, read.birth_date, read.exam_date) == (
        "p-7f3a",
        "VIS-001",
        "male",
        dt.date(1969, 1, 20),
        dt.date(2025, 4, 2),
    )
    values = {i.name: (i.value, i.unit) for i in read.items}
    assert values["总胆固醇"] == (6.8, "mmol/L")
    assert values["收缩压"] == (152.0, "mmHg")  # UCUM mm[Hg] back to the KB's spelling
    assert values["尿蛋白"] == ("2+", None)
    assert values["甘油三酯"] == (">6.22", "mmol/L")
    assert values["丙氨酸氨基转移酶"] == ("未查", None)
    ranges = {i.name: i.reference_range for i in read.items}
    assert ranges["总胆固醇"] == "<=5.2" and ranges["血红蛋白"] == "115-150"
    assert ("肝脏", "肝脏形态大小正常，实质回声细密增强。") in [(t.item, t.text) for t in read.texts]
    # Conditions, the Device and the Provenance are listed as not read, none silently skipped.
    skipped = sorted(p.resource_type for p in result.problems)
    assert skipped == ["Condition", "Condition", "Condition", "Device", "Provenance"]
