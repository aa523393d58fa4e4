"""FHIR R4 in and out.

In: `read_fhir_bundle` turns a FHIR R4 Bundle (Patient, Encounter, Observation, DiagnosticReport) into canonical
records. One DiagnosticReport is one visit; observations that no report lists are grouped by their encounter, or by
person and date. Every resource that cannot be used becomes a `FhirProblem` naming its type, id and the reason —
nothing is dropped silently. Names, identifiers, telecoms and addresses of a Patient are never read: the record gets
the Patient's logical id as its pseudonymous person id.

Out: `report_to_fhir_bundle` turns a report into a `collection` Bundle: a DiagnosticReport (its `result` lists the
Observations), one Observation per evaluated item, one Condition per conclusion (ICD-10 coded, provisional until a
physician signs), a Patient without name, and a Provenance naming the engine and knowledge-base versions.

Resources are checked with the R4B models of `fhir.resources` (wire-compatible with R4 for these resources).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from zhujian import __version__
from zhujian.adapters.base import IngestError, ReadRecord, ReadRequest
from zhujian.domain.record import ItemInput, Record, RecordSex, TextInput
from zhujian.domain.report import (
    Conclusion,
    CriticalAlert,
    EvaluatedItem,
    Evidence,
    Finding,
    Flag,
    Problem,
    Report,
)
from zhujian.kb.loader import KnowledgeBase, normalize_unit

LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBSERVATION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
DATA_ABSENT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
PROVENANCE_PARTICIPANT_SYSTEM = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

REPORT_TITLE = "健康体检主检报告"

# Observation statuses whose result must not be used (FHIR R4 observation-status value set).
_UNUSABLE_STATUSES = frozenset({"entered-in-error", "cancelled"})
# Categories whose free-text values are descriptions (ultrasound, physical exam), not lab results.
_TEXT_CATEGORIES = frozenset({"imaging", "exam", "procedure"})
_LAB_CATEGORIES = frozenset({"laboratory", "vital-signs"})
_FLAG_INTERPRETATION = {
    "high": ("H", "High"),
    "low": ("L", "Low"),
    "abnormal": ("A", "Abnormal"),
    "normal": ("N", "Normal"),
}
# KB sections whose items are vital signs in FHIR's sense (body measurements, blood pressure, pulse).
_VITAL_SECTIONS = frozenset({"一般检查"})
_EXAM_SECTIONS = frozenset({"专项检查"})
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "zhujian:fhir-export")


# ---- the codes file ------------------------------------------------------------------------------------------------


class _CodesModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoincEntry(_CodesModel):
    code: str = Field(pattern=r"^\d{1,7}-\d$")
    item: str
    display: str
    note: str | None = None


class UcumEntry(_CodesModel):
    code: str
    labels: list[str] = Field(min_length=1)


class FhirCodesFile(_CodesModel):
    source: str
    loinc: list[LoincEntry]
    ucum: list[UcumEntry]


class FhirCodesError(ValueError):
    """The FHIR codes file has problems; the message names the file and each problem."""


@dataclass(frozen=True)
class FhirCodes:
    """LOINC codes beyond the KB's own, and the UCUM codes of the units the KB spells."""

    loinc_to_item: dict[str, str]
    unit_to_ucum: dict[str, str]  # keyed by normalize_unit(label)
    ucum_to_unit: dict[str, str]  # UCUM code → the label the KB recognizes
    source: str


def _default_codes_path() -> Path:
    return Path(str(resources.files("zhujian").joinpath("adapters/fhir_codes.yaml")))


def load_fhir_codes(path: Path | None = None) -> FhirCodes:
    """Load and check the codes file (default: the bundled `adapters/fhir_codes.yaml`). Raises FhirCodesError."""
    if path is None:
        return _bundled_codes()
    return _load_codes(path)


@lru_cache(maxsize=1)
def _bundled_codes() -> FhirCodes:
    return _load_codes(_default_codes_path())


def _load_codes(path: Path) -> FhirCodes:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = FhirCodesFile.model_validate(data)
    except (OSError, yaml.YAMLError) as exc:
        raise FhirCodesError(f"{path}: cannot be read: {exc}") from exc
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise FhirCodesError(f"{path}: " + "; ".join(lines)) from exc
    problems: list[str] = []
    loinc_to_item: dict[str, str] = {}
    for i, entry in enumerate(parsed.loinc):
        other = loinc_to_item.get(entry.code)
        if other is not None and other != entry.item:
            problems.append(f"loinc[{i}]: code {entry.code} maps to both {other!r} and {entry.item!r}")
        loinc_to_item[entry.code] = entry.item
    unit_to_ucum: dict[str, str] = {}
    ucum_to_unit: dict[str, str] = {}
    for i, unit in enumerate(parsed.ucum):
        if unit.code in ucum_to_unit:
            problems.append(f"ucum[{i}]: UCUM code {unit.code!r} listed twice")
        ucum_to_unit[unit.code] = unit.labels[0]
        for label in unit.labels:
            key = normalize_unit(label)
            if unit_to_ucum.get(key, unit.code) != unit.code:
                problems.append(f"ucum[{i}]: unit {label!r} maps to {unit_to_ucum[key]!r} and {unit.code!r}")
            unit_to_ucum[key] = unit.code
    if problems:
        raise FhirCodesError(f"{path}: " + "; ".join(problems))
    return FhirCodes(loinc_to_item, unit_to_ucum, ucum_to_unit, parsed.source)


def loinc_index(kb: KnowledgeBase, codes: FhirCodes) -> dict[str, str]:
    """LOINC code → KB item id: the KB's own `loinc` fields first, then the codes file (items the KB lacks skipped)."""
    index = {item.loinc: item_id for item_id, item in kb.items.items() if item.loinc}
    for code, item_id in codes.loinc_to_item.items():
        if item_id in kb.items:
            index.setdefault(code, item_id)
    return index


def ucum_code(unit: str | None, codes: FhirCodes | None = None) -> str | None:
    """UCUM code of a unit as the KB or a lab spells it, or None when unknown."""
    if not unit:
        return None
    codes = codes or load_fhir_codes()
    return codes.unit_to_ucum.get(normalize_unit(unit))


# ---- FHIR in ---------------------------------------------------------------------------------------------------------


class FhirInputError(ValueError):
    """The input is not a FHIR Bundle at all (as opposed to a bundle with some unusable resources)."""


@dataclass(frozen=True, slots=True)
class FhirProblem:
    """A resource, or a part of one, that could not be used, and why."""

    resource_type: str
    resource_id: str | None
    reason: str
    entry: int | None = None  # position in Bundle.entry, when the problem is about one entry

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.resource_id or '(no id)'}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource_type": self.resource_type,
            "resource_id": self.resource_id,
            "reason": self.reason,
            "entry": self.entry,
        }


@dataclass
class FhirReadResult:
    records: list[Record]
    problems: list[FhirProblem]


@dataclass
class _Entry:
    index: int
    resource_type: str
    resource_id: str | None
    full_url: str | None
    raw: dict[str, Any]

    @property
    def key(self) -> str:
        """Id used in problems: the logical id, else the fullUrl, else the entry position."""
        return self.resource_id or self.full_url or f"entry[{self.index}]"


@dataclass
class _Visit:
    key: tuple[Any, ...]
    visit_id: str
    first_index: int
    patient: _Entry | None = None
    report_date: dt.date | None = None
    encounter_date: dt.date | None = None
    issued_date: dt.date | None = None
    observation_dates: list[dt.date] = field(default_factory=list)
    items: list[ItemInput] = field(default_factory=list)
    texts: list[TextInput] = field(default_factory=list)


# Where the results of a voided (entered-in-error, cancelled) report go: read by nobody, reported once with the report.
_VOIDED = _Visit(("voided",), "", -1)


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _number_text(value: Any) -> str:
    """A JSON number as the source wrote it (no float noise, integers without '.0')."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _parse_date(value: Any) -> tuple[dt.date | None, str | None]:
    """The calendar date of a FHIR date/dateTime as written (local to the source), or why it cannot be used."""
    text = _as_str(value)
    if text is None:
        return None, None
    if len(text) < 10:
        return None, f"date {text!r} is partial (no day)"
    try:
        return dt.date.fromisoformat(text[:10]), None
    except ValueError:
        return None, f"date {text!r} is not a valid date"


def _validation_summary(exc: ValidationError, limit: int = 4) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(resource)'}: {e['msg']}" for e in exc.errors()[:limit]]
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class _BundleReader:
    """One pass over one bundle. Kept as a class because the steps share the reference index and problem list."""

    def __init__(self, data: dict[str, Any], kb: KnowledgeBase, codes: FhirCodes, source: str) -> None:
        self.data = data
        self.kb = kb
        self.codes = codes
        self.loinc = loinc_index(kb, codes)
        self.source = source
        self.problems: list[FhirProblem] = []
        self.entries: list[_Entry] = []
        self.by_reference: dict[str, _Entry] = {}
        self.visits: dict[tuple[Any, ...], _Visit] = {}
        self.observation_visit: dict[int, _Visit] = {}
        self.person_ids: dict[int, str | None] = {}

    # -- problems and references ------------------------------------------------------------------------------------

    def problem(self, entry: _Entry, reason: str) -> None:
        self.problems.append(FhirProblem(entry.resource_type, entry.key, reason, entry.index))

    def resolve(self, reference: Any) -> _Entry | None:
        ref = _as_str(_as_dict(reference).get("reference"))
        if ref is None:
            return None
        found = self.by_reference.get(ref)
        if found is not None:
            return found
        # Absolute or versioned references ("http://server/fhir/Patient/1/_history/2") end in Type/id.
        parts = ref.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            return self.by_reference.get(f"{parts[-2]}/{parts[-1]}")
        return None

    def reference_text(self, reference: Any) -> str:
        return _as_str(_as_dict(reference).get("reference")) or _as_str(_as_dict(reference).get("display")) or "?"

    def origin(self, entry: _Entry, suffix: str = "") -> str:
        return f"{self.source}:entry[{entry.index}]:{entry.resource_type}/{entry.key}{suffix}"

    # -- steps --------------------------------------------------------------------------------------------------------

    def collect_entries(self) -> None:
        from fhir.resources.R4B import get_fhir_model_class

        bundle_id = _as_str(self.data.get("id"))
        for index, raw_entry in enumerate(_as_list(self.data.get("entry"))):
            resource = _as_dict(raw_entry).get("resource") if isinstance(raw_entry, dict) else None
            if not isinstance(resource, dict):
                self.problems.append(FhirProblem("Bundle", bundle_id, f"entry[{index}] has no resource object", index))
                continue
            resource_type = _as_str(resource.get("resourceType")) or "(no resourceType)"
            entry = _Entry(
                index, resource_type, _as_str(resource.get("id")), _as_str(raw_entry.get("fullUrl")), resource
            )
            if resource_type not in ("Patient", "Encounter", "Observation", "DiagnosticReport"):
                self.problem(entry, f"resource type {resource_type} is not read by zhujian (entry[{index}])")
                continue
            try:
                get_fhir_model_class(resource_type).model_validate(resource)
            except ValidationError as exc:
                self.problem(entry, f"not a valid FHIR R4 {resource_type}: {_validation_summary(exc)}")
                continue
            self.entries.append(entry)
            if entry.full_url:
                self.by_reference[entry.full_url] = entry
            if entry.resource_id:
                self.by_reference[f"{resource_type}/{entry.resource_id}"] = entry

    def of_type(self, resource_type: str) -> list[_Entry]:
        return [e for e in self.entries if e.resource_type == resource_type]

    def person_id(self, patient: _Entry) -> str | None:
        if patient.index in self.person_ids:
            return self.person_ids[patient.index]
        from zhujian.deid import find_pii

        candidate = patient.resource_id
        if candidate is None and patient.full_url:
            candidate = patient.full_url.rstrip("/").split("/")[-1].split(":")[-1]
        if candidate is not None and any(span.kind in ("id_number", "phone") for span in find_pii(candidate)):
            self.problem(
                patient,
                "Patient id looks like an identity-card or phone number; not used as person_id "
                "(pseudonymize it with `zhujian deid`)",
            )
            candidate = None
        self.person_ids[patient.index] = candidate
        return candidate

    def patient_of(self, entry: _Entry) -> _Entry | None:
        subject = entry.raw.get("subject")
        if subject is None:
            patients = self.of_type("Patient")
            # A single-patient bundle often leaves `subject` out; anything else would be a guess.
            return patients[0] if len(patients) == 1 else None
        found = self.resolve(subject)
        if found is None or found.resource_type != "Patient":
            self.problem(entry, f"subject {self.reference_text(subject)} is not a Patient in this bundle")
            return None
        return found

    def visit(self, key: tuple[Any, ...], visit_id: str, entry: _Entry, patient: _Entry | None) -> _Visit:
        existing = self.visits.get(key)
        if existing is None:
            existing = _Visit(key, visit_id, entry.index, patient)
            self.visits[key] = existing
        elif existing.patient is None:
            existing.patient = patient
        return existing

    def encounter_visit(self, encounter: _Entry, patient: _Entry | None) -> _Visit:
        visit = self.visit(("encounter", encounter.index), encounter.key, encounter, patient)
        if visit.encounter_date is None:
            start = _as_dict(encounter.raw.get("period")).get("start")
            visit.encounter_date, _ = _parse_date(start)
        if visit.patient is None:
            visit.patient = self.patient_of(encounter)
        return visit

    def read_reports(self) -> None:
        for report in self.of_type("DiagnosticReport"):
            status = _as_str(report.raw.get("status"))
            if status in _UNUSABLE_STATUSES:
                self.problem(report, f"status {status}: the report and its results are not used")
                for ref in _as_list(report.raw.get("result")):
                    target = self.resolve(ref)
                    if target is not None and target.resource_type == "Observation":
                        self.observation_visit[target.index] = _VOIDED
                continue
            patient = self.patient_of(report)
            encounter = self.resolve(report.raw.get("encounter")) if report.raw.get("encounter") else None
            if encounter is not None and encounter.resource_type == "Encounter":
                visit = self.encounter_visit(encounter, patient)
            else:
                if report.raw.get("encounter") is not None:
                    self.problem(report, f"encounter {self.reference_text(report.raw['encounter'])} not in bundle")
                identifiers = [_as_str(_as_dict(i).get("value")) for i in _as_list(report.raw.get("identifier"))]
                visit_id = next((i for i in identifiers if i), None) or report.key
                visit = self.visit(("report", report.index), visit_id, report, patient)
            effective = report.raw.get("effectiveDateTime") or _as_dict(report.raw.get("effectivePeriod")).get("start")
            date, why = _parse_date(effective)
            if why:
                self.problem(report, f"effective {why}; the visit date comes from its observations")
            visit.report_date = visit.report_date or date
            visit.issued_date = visit.issued_date or _parse_date(report.raw.get("issued"))[0]
            self.read_report_texts(report, visit)
            for position, ref in enumerate(_as_list(report.raw.get("result"))):
                target = self.resolve(ref)
                if target is None or target.resource_type != "Observation":
                    self.problem(
                        report, f"result[{position}] {self.reference_text(ref)} is not an Observation in this bundle"
                    )
                    continue
                self.assign(target, visit, report)

    def read_report_texts(self, report: _Entry, visit: _Visit) -> None:
        title = _as_str(_as_dict(report.raw.get("code")).get("text")) or _first_display(report.raw.get("code"))
        section = _category_label(report.raw.get("category"))
        conclusion = _as_str(report.raw.get("conclusion"))
        if conclusion is None:
            coded = [_concept_text(c) for c in _as_list(report.raw.get("conclusionCode"))]
            conclusion = "；".join(c for c in coded if c) or None
        if conclusion is not None:
            visit.texts.append(
                TextInput(
                    item=title or "诊断报告结论",
                    section=section,
                    text=conclusion,
                    origin=self.origin(report, ":conclusion"),
                )
            )
        if report.raw.get("presentedForm"):
            self.problem(report, "presentedForm (an attached document) is not read; only `conclusion` is")

    def assign(self, observation: _Entry, visit: _Visit, report: _Entry | None) -> None:
        """Put an observation (and the members of a panel) into a visit, once."""
        stack = [observation]
        while stack:
            current = stack.pop()
            previous = self.observation_visit.get(current.index)
            if previous is not None:
                if previous is _VOIDED:
                    self.problem(current, "also listed by a voided DiagnosticReport; not used")
                elif previous is not visit and report is not None:
                    self.problem(
                        current, f"listed by more than one DiagnosticReport; kept in visit {previous.visit_id}"
                    )
                continue
            self.observation_visit[current.index] = visit
            for member in _as_list(current.raw.get("hasMember")):
                target = self.resolve(member)
                if target is not None and target.resource_type == "Observation":
                    stack.append(target)
                else:
                    self.problem(current, f"hasMember {self.reference_text(member)} is not an Observation in bundle")

    def group_unreported(self) -> None:
        for observation in self.of_type("Observation"):
            if observation.index in self.observation_visit:
                continue
            patient = self.patient_of(observation)
            encounter_ref = observation.raw.get("encounter")
            encounter = self.resolve(encounter_ref) if encounter_ref else None
            if encounter is not None and encounter.resource_type == "Encounter":
                self.assign(observation, self.encounter_visit(encounter, patient), None)
                continue
            if encounter_ref is not None:
                self.problem(
                    observation, f"encounter {self.reference_text(encounter_ref)} not in bundle; grouped by date"
                )
            date, _ = _parse_date(_observation_effective(observation.raw))
            person = patient.index if patient else None
            same_day = [
                v
                for v in self.visits.values()
                if v.key[0] in ("report", "encounter")
                and (v.patient.index if v.patient else None) == person
                and date is not None
                and (v.report_date or v.encounter_date) == date
            ]
            if len(same_day) == 1:
                # One checkup per person and day: results the report did not list still belong to it.
                self.assign(observation, same_day[0], None)
                continue
            person_label = (self.person_id(patient) if patient else None) or "unknown"
            visit_id = f"{person_label}-{date.isoformat()}" if date else f"{person_label}-undated"
            self.assign(observation, self.visit(("date", person, date), visit_id, observation, patient), None)

    def read_observations(self) -> None:
        for observation in self.of_type("Observation"):
            visit = self.observation_visit.get(observation.index)
            if visit is None or visit is _VOIDED:
                if visit is None:
                    self.problem(observation, "belongs to no visit")
                continue
            status = _as_str(observation.raw.get("status"))
            if status in _UNUSABLE_STATUSES:
                self.problem(observation, f"status {status}: the result is not used")
                continue
            date, why = _parse_date(_observation_effective(observation.raw))
            if why:
                self.problem(observation, f"effective {why}")
            if date is not None:
                visit.observation_dates.append(date)
            self.read_observation(observation, visit)

    def read_observation(self, entry: _Entry, visit: _Visit) -> None:
        raw = entry.raw
        label, item_id, loinc = self.resolve_code(raw.get("code"))
        category = _category_code(raw.get("category"))
        section = _category_label(raw.get("category"))
        used = False
        value, unit, why = self.value_of(raw)
        if why is not None:
            self.problem(entry, why)
        if value is not None:
            self.add_value(entry, visit, label, item_id, loinc, value, unit, raw, category, section, "")
            used = True
        for position, component in enumerate(_as_list(raw.get("component"))):
            c_label, c_item, c_loinc = self.resolve_code(component.get("code"))
            c_value, c_unit, c_why = self.value_of(component)
            if c_why is not None:
                self.problem(entry, f"component[{position}] ({c_label}): {c_why}")
            if c_value is None:
                continue
            suffix = f":component[{position}]"
            self.add_value(
                entry, visit, c_label, c_item, c_loinc, c_value, c_unit, component, category, section, suffix
            )
            used = True
        if not used and not raw.get("hasMember") and why is None:
            self.problem(entry, f"{label}: no value, no dataAbsentReason and no components")

    def add_value(
        self,
        entry: _Entry,
        visit: _Visit,
        label: str,
        item_id: str | None,
        loinc: str | None,
        value: str | float | int,
        unit: str | None,
        holder: dict[str, Any],
        category: str | None,
        section: str | None,
        suffix: str,
    ) -> None:
        origin = self.origin(entry, suffix)
        if item_id is None and isinstance(value, str) and _is_description(value, category):
            visit.texts.append(TextInput(item=label, section=section, text=value, origin=origin))
            return
        reference_range, range_note = _reference_range(holder.get("referenceRange"))
        if range_note:
            self.problem(entry, f"{label}: {range_note}")
        visit.items.append(
            ItemInput(
                name=label,
                code=item_id or loinc,
                value=value,
                unit=unit,
                reference_range=reference_range,
                section=section,
                origin=origin,
            )
        )

    def resolve_code(self, code: Any) -> tuple[str, str | None, str | None]:
        """(label as the source wrote it, KB item id or None, LOINC code or None)."""
        concept = _as_dict(code)
        codings = [_as_dict(c) for c in _as_list(concept.get("coding"))]
        loinc = next((_as_str(c.get("code")) for c in codings if c.get("system") == LOINC_SYSTEM), None)
        text = _as_str(concept.get("text"))
        displays = [d for d in (_as_str(c.get("display")) for c in codings) if d]
        local_codes = [c for c in (_as_str(c.get("code")) for c in codings if c.get("system") != LOINC_SYSTEM) if c]
        label = text or (displays[0] if displays else None) or loinc or (local_codes[0] if local_codes else "?")
        item_id = self.loinc.get(loinc) if loinc else None
        if item_id is None:
            for candidate in [*([text] if text else []), *displays, *local_codes]:
                item_id = candidate if candidate in self.kb.items else self.kb.resolve_item(candidate)
                if item_id is not None:
                    break
        return label, item_id, loinc

    def value_of(self, holder: dict[str, Any]) -> tuple[str | float | int | None, str | None, str | None]:
        """(value exactly as given, unit, reason it cannot be used)."""
        if "valueQuantity" in holder:
            quantity = _as_dict(holder["valueQuantity"])
            number = quantity.get("value")
            if number is None:
                return None, None, "valueQuantity has no value"
            unit = _as_str(quantity.get("unit"))
            code = _as_str(quantity.get("code"))
            unit = unit or code
            if unit is not None and normalize_unit(unit) not in self.codes.unit_to_ucum:
                # A UCUM code such as mm[Hg] or Cel is not how the KB spells the unit; write the label it knows.
                unit = self.codes.ucum_to_unit.get(unit, unit)
            comparator = _as_str(quantity.get("comparator"))
            value: str | float | int = number
            if comparator is not None:
                value = f"{comparator}{_number_text(number)}"
            return value, unit, None
        if "valueString" in holder:
            return str(holder["valueString"]), None, None
        if "valueCodeableConcept" in holder:
            text = _concept_text(holder["valueCodeableConcept"])
            return (text, None, None) if text else (None, None, "valueCodeableConcept has no text, display or code")
        if "valueInteger" in holder:
            return int(holder["valueInteger"]), None, None
        if "valueBoolean" in holder:
            return _number_text(holder["valueBoolean"]), None, None
        other = [k for k in holder if k.startswith("value") and not k.startswith("value_")]
        if other:
            return None, None, f"{other[0]} is not a supported value type (Quantity, String, CodeableConcept, Integer)"
        absent = holder.get("dataAbsentReason")
        if absent is not None:
            # Kept as written (e.g. 未查), so the engine reports it as not done instead of losing the item.
            return _concept_text(absent) or "未查", None, None
        return None, None, None

    def build_records(self) -> list[Record]:
        records: list[Record] = []
        used_ids: dict[str, int] = {}
        for visit in sorted(self.visits.values(), key=lambda v: v.first_index):
            patient = visit.patient
            sex: RecordSex = "unknown"
            birth_date: dt.date | None = None
            person_id: str | None = None
            if patient is not None:
                person_id = self.person_id(patient)
                gender = _as_str(patient.raw.get("gender"))
                sex = "male" if gender == "male" else "female" if gender == "female" else "unknown"
                birth_date, why = _parse_date(patient.raw.get("birthDate"))
                if why:
                    self.problem(patient, f"birthDate {why}; age is not derived from it")
            exam_date = (
                visit.report_date
                or visit.encounter_date
                or (min(visit.observation_dates) if visit.observation_dates else None)
                or visit.issued_date
            )
            visit_id = visit.visit_id
            if visit_id in used_ids:
                used_ids[visit_id] += 1
                renamed = f"{visit_id}-{used_ids[visit_id]}"
                self.problems.append(
                    FhirProblem(
                        "Bundle", _as_str(self.data.get("id")), f"visit id {visit_id!r} repeats; renamed {renamed}"
                    )
                )
                visit_id = renamed
            else:
                used_ids[visit_id] = 1
            try:
                records.append(
                    Record(
                        person_id=person_id,
                        visit_id=visit_id,
                        sex=sex,
                        birth_date=birth_date,
                        exam_date=exam_date,
                        items=visit.items,
                        texts=visit.texts,
                    )
                )
            except ValidationError as exc:
                self.problems.append(
                    FhirProblem("Bundle", _as_str(self.data.get("id")), f"visit {visit_id}: {_validation_summary(exc)}")
                )
        return records

    def read_unused_encounters(self) -> None:
        used = {v.key[1] for v in self.visits.values() if v.key[0] == "encounter"}
        for encounter in self.of_type("Encounter"):
            if encounter.index not in used:
                self.problem(encounter, "no Observation or DiagnosticReport refers to this encounter")


def _observation_effective(raw: dict[str, Any]) -> Any:
    return (
        raw.get("effectiveDateTime") or _as_dict(raw.get("effectivePeriod")).get("start") or raw.get("effectiveInstant")
    )


def _concept_text(concept: Any) -> str | None:
    data = _as_dict(concept)
    text = _as_str(data.get("text"))
    if text:
        return text
    for coding in _as_list(data.get("coding")):
        label = _as_str(_as_dict(coding).get("display")) or _as_str(_as_dict(coding).get("code"))
        if label:
            return label
    return None


def _first_display(concept: Any) -> str | None:
    for coding in _as_list(_as_dict(concept).get("coding")):
        display = _as_str(_as_dict(coding).get("display"))
        if display:
            return display
    return None


def _category_code(categories: Any) -> str | None:
    for concept in _as_list(categories):
        for coding in _as_list(_as_dict(concept).get("coding")):
            if _as_dict(coding).get("system") == OBSERVATION_CATEGORY_SYSTEM:
                return _as_str(_as_dict(coding).get("code"))
    return None


def _category_label(categories: Any) -> str | None:
    for concept in _as_list(categories):
        label = _concept_text(concept)
        if label:
            return label
    return None


def _is_description(value: str, category: str | None) -> bool:
    """Free text (an ultrasound conclusion) rather than a short lab result (阴性, 2+) of an item the KB lacks."""
    if category in _TEXT_CATEGORIES:
        return True
    if category in _LAB_CATEGORIES:
        return False
    return len(value) > 12 or any(mark in value for mark in "，。；,;")


def _reference_range(ranges: Any) -> tuple[str | None, str | None]:
    """The first referenceRange as the printed form the engine reads ('3.9-6.1', '>=1.04', '<=5.2'), and a note
    when more ranges were given (only the first is used)."""
    listed = [_as_dict(r) for r in _as_list(ranges)]
    if not listed:
        return None, None
    first = listed[0]
    low = _as_dict(first.get("low")).get("value")
    high = _as_dict(first.get("high")).get("value")
    if low is not None and high is not None:
        text: str | None = f"{_number_text(low)}-{_number_text(high)}"
    elif low is not None:
        text = f">={_number_text(low)}"
    elif high is not None:
        text = f"<={_number_text(high)}"
    else:
        text = _as_str(first.get("text"))
    note = f"{len(listed)} reference ranges given; the first ({text}) is used" if len(listed) > 1 else None
    return text, note


def read_fhir_bundle(
    data: Any, kb: KnowledgeBase, *, source: str = "bundle", codes: FhirCodes | None = None
) -> FhirReadResult:
    """Canonical records from a FHIR R4 Bundle, one per visit, and every problem met on the way.

    Raises FhirInputError only when `data` is not a Bundle at all; a bad resource becomes a problem."""
    if not isinstance(data, dict):
        raise FhirInputError(f"{source}: expected a JSON object (a FHIR Bundle), got {type(data).__name__}")
    if data.get("resourceType") != "Bundle":
        raise FhirInputError(f"{source}: resourceType is {data.get('resourceType')!r}, expected 'Bundle'")
    if "entry" in data and not isinstance(data["entry"], list):
        raise FhirInputError(f"{source}: Bundle.entry must be a list")
    reader = _BundleReader(data, kb, codes or load_fhir_codes(), source)
    reader.collect_entries()
    reader.read_reports()
    reader.group_unreported()
    reader.read_observations()
    reader.read_unused_encounters()
    records = reader.build_records()
    return FhirReadResult(records, reader.problems)


def read_fhir_for_ingest(request: ReadRequest) -> Iterator[ReadRecord]:
    """The FHIR reader behind `zhujian ingest --format fhir`: one ReadRecord per visit, and one rejection per
    resource that could not be used (its entry number as the row)."""
    try:
        data = json.loads(request.path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise IngestError(f"cannot read {request.path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(f"{request.info.file}: not a JSON file ({exc})") from exc
    try:
        result = read_fhir_bundle(data, request.kb, source=request.info.file)
    except FhirInputError as exc:
        raise IngestError(str(exc)) from exc
    request.info.notes.append(f"FHIR Bundle: {len(result.records)} visit(s), {len(result.problems)} problem(s)")
    for number, record in enumerate(result.records, start=1):
        yield ReadRecord(
            first_row=number,
            row_count=1,
            record=record,
            item_keys=[i.name or i.code or "" for i in record.items],
            text_keys=[t.item for t in record.texts],
        )
    for problem in result.problems:
        where = f"{problem.resource_type}/{problem.resource_id or '(no id)'}"
        yield ReadRecord(
            first_row=(problem.entry or 0) + 1,
            row_count=1,
            record=None,
            rejection=Problem("fhir_unusable", str(problem), item=problem.resource_type, field=where),
        )


# ---- FHIR out --------------------------------------------------------------------------------------------------------


class ReportFormatError(ValueError):
    """A report JSON that is not what `zhujian report` writes; the message names the field and the value."""


def _resource_id(visit_id: str, kind: str, index: int = 0) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{visit_id}|{kind}|{index}"))


def _reference(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource['id']}"}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _quantity(value: float, unit: str | None, codes: FhirCodes) -> dict[str, Any]:
    quantity: dict[str, Any] = {"value": value}
    if unit:
        quantity["unit"] = unit
        code = ucum_code(unit, codes)
        if code is not None:
            quantity["system"] = UCUM_SYSTEM
            quantity["code"] = code
    return quantity


def _observation_category(item_section: str | None) -> dict[str, Any]:
    if item_section in _VITAL_SECTIONS:
        code, display = "vital-signs", "Vital Signs"
    elif item_section in _EXAM_SECTIONS:
        code, display = "exam", "Exam"
    else:
        code, display = "laboratory", "Laboratory"
    return {"coding": [_coding(OBSERVATION_CATEGORY_SYSTEM, code, display)]}


def _item_observation(
    item: EvaluatedItem,
    index: int,
    report: Report,
    status: str,
    subject: dict[str, str],
    kb: KnowledgeBase | None,
    codes: FhirCodes,
    problems: Sequence[Problem],
) -> dict[str, Any]:
    definition = kb.items.get(item.item_id) if kb is not None and item.item_id else None
    concept: dict[str, Any] = {"text": item.name}
    if definition is not None and definition.loinc:
        concept["coding"] = [_coding(LOINC_SYSTEM, definition.loinc)]
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _resource_id(report.visit_id, "observation", index),
        "status": status,
    }
    if item.item_id is not None:
        observation["category"] = [_observation_category(definition.section if definition else None)]
    observation["code"] = concept
    observation["subject"] = subject
    if report.exam_date:
        observation["effectiveDateTime"] = report.exam_date
    notes: list[str] = []
    if isinstance(item.value, int | float) and not isinstance(item.value, bool):
        quantity = _quantity(float(item.value), item.unit, codes)
        if item.qualifier in ("<", ">"):
            quantity["comparator"] = item.qualifier
        elif item.qualifier:
            notes.append(f"结果备注：{item.qualifier}")
        observation["valueQuantity"] = quantity
    elif isinstance(item.value, str) and item.item_id is not None:
        observation["valueCodeableConcept"] = {"text": item.value}
    elif isinstance(item.value, str):
        observation["valueString"] = item.value
    elif item.raw_value is not None and item.raw_value.strip() and item.qualifier is None:
        # The engine could not use the printed result; keep it as written so nothing is lost.
        observation["valueString"] = item.raw_value
        notes.append("结果未被引擎采用，见数据质量问题")
    else:
        reason = item.qualifier or ("未检查" if item.raw_value else "无结果")
        observation["dataAbsentReason"] = {
            "coding": [_coding(DATA_ABSENT_REASON_SYSTEM, "not-performed", "Not Performed")],
            "text": reason,
        }
    if item.flag in _FLAG_INTERPRETATION:
        code, display = _FLAG_INTERPRETATION[item.flag]
        observation["interpretation"] = [{"coding": [_coding(INTERPRETATION_SYSTEM, code, display)]}]
    if item.critical:
        notes.append("危急值")
    if item.raw_value is not None and not _same_number(item.raw_value, item.value):
        notes.append(f"原始结果：{item.raw_value}")
    if item.source_name and item.source_name != item.name:
        notes.append(f"原始项目名称：{item.source_name}")
    if item.derived:
        notes.append("由其他项目计算得出")
    for problem in problems:
        if problem.item is not None and problem.item == item.source_name:
            notes.append(f"数据问题：{problem.message}")
    if item.ref_low is not None or item.ref_high is not None:
        reference: dict[str, Any] = {}
        if item.ref_low is not None:
            reference["low"] = _quantity(item.ref_low, item.unit, codes)
        if item.ref_high is not None:
            reference["high"] = _quantity(item.ref_high, item.unit, codes)
        source = {"input": "检验单", "kb": "知识库"}.get(item.ref_source or "")
        if source:
            reference["text"] = f"参考区间来源：{source}"
        observation["referenceRange"] = [reference]
    if notes:
        observation["note"] = [{"text": n} for n in notes]
    return observation


def _same_number(raw: str, value: float | str | None) -> bool:
    if isinstance(value, str):
        return raw.strip() == value
    if value is None:
        return False
    try:
        return float(raw) == float(value)
    except ValueError:
        return False


def _text_observation(
    text: TextInput, index: int, report: Report, status: str, subject: dict[str, str]
) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": _resource_id(report.visit_id, "text", index),
        "status": status,
        "category": [{"coding": [_coding(OBSERVATION_CATEGORY_SYSTEM, "exam", "Exam")]}],
        "code": {"text": text.item},
        "subject": subject,
    }
    if report.exam_date:
        observation["effectiveDateTime"] = report.exam_date
    observation["valueString"] = text.text
    if text.section:
        observation["note"] = [{"text": f"科室/检查：{text.section}"}]
    return observation


def _condition(
    conclusion: Conclusion,
    index: int,
    report: Report,
    signed: bool,
    subject: dict[str, str],
    evidence_refs: list[dict[str, str]],
) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": conclusion.name}
    if conclusion.icd10:
        concept["coding"] = [_coding(ICD10_SYSTEM, conclusion.icd10, conclusion.name)]
    condition: dict[str, Any] = {
        "resourceType": "Condition",
        "id": _resource_id(report.visit_id, "condition", index),
        "clinicalStatus": {"coding": [_coding(CONDITION_CLINICAL_SYSTEM, "active", "Active")]},
        "verificationStatus": {
            "coding": [
                _coding(CONDITION_VERIFICATION_SYSTEM, "confirmed", "Confirmed")
                if signed
                else _coding(CONDITION_VERIFICATION_SYSTEM, "provisional", "Provisional")
            ]
        },
        "category": [{"coding": [_coding(CONDITION_CATEGORY_SYSTEM, "encounter-diagnosis", "Encounter Diagnosis")]}],
        "code": concept,
        "subject": subject,
    }
    if report.exam_date:
        condition["recordedDate"] = report.exam_date
    if evidence_refs:
        condition["evidence"] = [{"detail": evidence_refs}]
    notes: list[str] = []
    descriptions = [e.description for e in conclusion.evidence if e.description]
    if descriptions:
        notes.append("依据：" + "；".join(descriptions))
    if conclusion.advice:
        notes.append("建议：" + conclusion.advice)
    follow = [
        part
        for part in (
            f"复查/随访：{conclusion.follow_up}" if conclusion.follow_up else "",
            f"就诊科室：{conclusion.department}" if conclusion.department else "",
            f"分级：{conclusion.level}类" if conclusion.level else "",
            "危急值" if conclusion.critical else "",
        )
        if part
    ]
    if follow:
        notes.append("；".join(follow))
    if notes:
        condition["note"] = [{"text": n} for n in notes]
    return condition


def report_to_fhir_bundle(
    report: Report,
    record: Record | None = None,
    *,
    kb: KnowledgeBase | None = None,
    signed: bool = False,
    generated_at: dt.datetime | None = None,
    codes: FhirCodes | None = None,
) -> dict[str, Any]:
    """A FHIR R4 `collection` Bundle of one report (plain JSON-ready dict).

    `record` adds the birth date and the free-text results (as exam Observations); `kb` adds LOINC codes and
    categories to item Observations; `signed` marks a physician-signed report (status final, conditions
    confirmed) — a draft from the engine is `preliminary`/`provisional`. Ids are derived from the visit id, so the
    same report always gives the same bundle (apart from the Provenance time, which `generated_at` fixes)."""
    codes = codes or load_fhir_codes()
    status = "final" if signed else "preliminary"
    visit = report.visit_id
    patient: dict[str, Any] = {"resourceType": "Patient"}
    if report.person_id and _FHIR_ID.match(report.person_id):
        patient["id"] = report.person_id
    else:
        patient["id"] = _resource_id(visit, "patient")
        if report.person_id:
            patient["identifier"] = [{"value": report.person_id}]
    patient["gender"] = report.sex if report.sex in ("male", "female") else "unknown"
    if record is not None and record.birth_date is not None:
        patient["birthDate"] = record.birth_date.isoformat()
    # The Patient keeps the pseudonymous person id as its logical id; its fullUrl is a UUID like every other entry
    # (a urn:uuid fullUrl need not agree with Resource.id).
    patient_url = f"urn:uuid:{_resource_id(visit, 'patient')}"
    subject = {"reference": patient_url}

    observations: list[dict[str, Any]] = []
    by_item: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(report.items):
        observation = _item_observation(item, index, report, status, subject, kb, codes, report.problems)
        observations.append(observation)
        if item.item_id is not None:
            by_item.setdefault(item.item_id, observation)
    if record is not None:
        for index, text in enumerate(record.texts):
            observations.append(_text_observation(text, index, report, status, subject))

    diagnostic: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": _resource_id(visit, "report"),
        "identifier": [{"value": visit}],
        "status": status,
        "code": {"text": REPORT_TITLE},
        "subject": subject,
    }
    if report.exam_date:
        diagnostic["effectiveDateTime"] = report.exam_date
    if observations:
        diagnostic["result"] = [_reference(o) for o in observations]
    lines = [f"{n}. {c.name}" for n, c in enumerate(report.conclusions, start=1)]
    if report.critical:
        lines.append("危急值：" + "；".join(alert.reason for alert in report.critical))
    if lines:
        diagnostic["conclusion"] = "\n".join(lines)
    coded = [c for c in report.conclusions if c.icd10]
    if coded:
        diagnostic["conclusionCode"] = [
            {"coding": [_coding(ICD10_SYSTEM, c.icd10, c.name)], "text": c.name} for c in coded
        ]

    conditions: list[dict[str, Any]] = []
    for index, conclusion in enumerate(report.conclusions):
        refs: list[dict[str, str]] = []
        for evidence in conclusion.evidence:
            target = by_item.get(evidence.item_id or "")
            if target is not None and _reference(target) not in refs:
                refs.append(_reference(target))
        if not refs:
            refs.append(_reference(diagnostic))
        conditions.append(_condition(conclusion, index, report, signed, subject, refs))

    device: dict[str, Any] = {
        "resourceType": "Device",
        "id": _resource_id(visit, "device"),
        "deviceName": [{"name": "zhujian 主检引擎", "type": "user-friendly-name"}],
        "version": [
            {"type": {"text": "engine"}, "value": report.engine_version or __version__},
            {"type": {"text": "knowledge base"}, "value": report.kb_version},
        ],
    }
    recorded = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    provenance: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": _resource_id(visit, "provenance"),
        "target": [_reference(diagnostic), *(_reference(c) for c in conditions)],
        "recorded": recorded.isoformat().replace("+00:00", "Z"),
        "agent": [
            {
                "type": {"coding": [_coding(PROVENANCE_PARTICIPANT_SYSTEM, "assembler", "Assembler")]},
                "who": _reference(device),
            }
        ],
    }
    resources_out = [patient, diagnostic, *observations, *conditions, device, provenance]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": patient_url if r is patient else f"urn:uuid:{r['id']}", "resource": r} for r in resources_out
        ],
    }


def validate_fhir_bundle(bundle: dict[str, Any]) -> list[str]:
    """Structural problems of a bundle per the fhir.resources R4B models (an empty list when it validates)."""
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return []


# ---- report JSON → Report --------------------------------------------------------------------------------------------


def _field(data: dict[str, Any], key: str, where: str, kinds: tuple[type, ...], required: bool = True) -> Any:
    if key not in data or data[key] is None:
        if required:
            raise ReportFormatError(f"{where}.{key}: missing")
        return None
    value = data[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        shown = repr(value)[:60]
        raise ReportFormatError(f"{where}.{key}: expected {'/'.join(k.__name__ for k in kinds)}, got {shown}")
    return value


def _objects(data: dict[str, Any], key: str, where: str) -> Iterable[tuple[str, dict[str, Any]]]:
    values = _field(data, key, where, (list,), required=False) or []
    for i, value in enumerate(values):
        if not isinstance(value, dict):
            raise ReportFormatError(f"{where}.{key}[{i}]: expected an object, got {repr(value)[:60]}")
        yield f"{where}.{key}[{i}]", value


_NUMBER = (int, float)
_VALUE = (int, float, str)


def _span(value: list[Any] | None) -> tuple[int, int]:
    if value and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return 0, 0


def _evidence_from(data: dict[str, Any], where: str) -> Evidence:
    span = _field(data, "span", where, (list,), required=False)
    return Evidence(
        kind=_field(data, "kind", where, (str,)),
        description=_field(data, "description", where, (str,), required=False) or "",
        item_id=_field(data, "item_id", where, (str,), required=False),
        finding_id=_field(data, "finding_id", where, (str,), required=False),
        source_item=_field(data, "source_item", where, (str,), required=False),
        span=(int(span[0]), int(span[1])) if span and len(span) == 2 else None,
        rule_id=_field(data, "rule_id", where, (str,), required=False),
        value=_field(data, "value", where, _VALUE, required=False),
        unit=_field(data, "unit", where, (str,), required=False),
        flag=_field(data, "flag", where, (str,), required=False),
    )


def report_from_dict(data: Any) -> Report:
    """The Report behind a report JSON written by `zhujian report` (the fields FHIR export needs, and the rest)."""
    if not isinstance(data, dict):
        raise ReportFormatError(f"report: expected a JSON object, got {type(data).__name__}")
    where = "report"
    conclusions = [
        Conclusion(
            conclusion_id=_field(c, "id", w, (str,)),
            name=_field(c, "name", w, (str,)),
            icd10=_field(c, "icd10", w, (str,), required=False) or "",
            level=_field(c, "level", w, (str,), required=False),
            category=_field(c, "category", w, (str,), required=False) or "",
            system=_field(c, "system", w, (str,), required=False) or "",
            order=order,
            department=_field(c, "department", w, (str,), required=False) or "",
            follow_up=_field(c, "follow_up", w, (str,), required=False) or "",
            advice=_field(c, "advice", w, (str,), required=False) or "",
            explanation=_field(c, "explanation", w, (str,), required=False) or "",
            evidence=[_evidence_from(e, ew) for ew, e in _objects(c, "evidence", w)],
            rules=list(_field(c, "rules", w, (list,), required=False) or []),
            merged=list(_field(c, "merged", w, (list,), required=False) or []),
            critical=bool(_field(c, "critical", w, (bool,), required=False)),
            status=_field(c, "status", w, (str,), required=False),
            status_detail=list(_field(c, "status_detail", w, (list,), required=False) or []),
        )
        for order, (w, c) in enumerate(_objects(data, "conclusions", where))
    ]
    items: list[EvaluatedItem] = []
    for w, i in _objects(data, "items", where):
        flag = _field(i, "flag", w, (str,), required=False) or "unknown"
        if flag not in ("normal", "high", "low", "abnormal", "unknown"):
            raise ReportFormatError(f"{w}.flag: expected normal/high/low/abnormal/unknown, got {flag!r}")
        items.append(
            EvaluatedItem(
                item_id=_field(i, "item_id", w, (str,), required=False),
                name=_field(i, "name", w, (str,)),
                source_name=_field(i, "source_name", w, (str,), required=False) or _field(i, "name", w, (str,)),
                raw_value=_field(i, "raw_value", w, (str,), required=False),
                value=_field(i, "value", w, _VALUE, required=False),
                unit=_field(i, "unit", w, (str,), required=False),
                ref_low=_field(i, "ref_low", w, _NUMBER, required=False),
                ref_high=_field(i, "ref_high", w, _NUMBER, required=False),
                ref_source=_field(i, "ref_source", w, (str,), required=False),
                flag=cast(Flag, flag),
                critical=bool(_field(i, "critical", w, (bool,), required=False)),
                rank=_field(i, "rank", w, (int,), required=False),
                qualifier=_field(i, "qualifier", w, (str,), required=False),
                derived=bool(_field(i, "derived", w, (bool,), required=False)),
                section=_field(i, "section", w, (str,), required=False),
                previous=list(_field(i, "previous", w, (list,), required=False) or []),
                change=_field(i, "change", w, (str,), required=False),
            )
        )
    findings = [
        Finding(
            finding_id=_field(f, "finding_id", w, (str,)),
            name=_field(f, "name", w, (str,)),
            icd10=_field(f, "icd10", w, (str,), required=False) or "",
            site=_field(f, "site", w, (str,), required=False),
            attrs=dict(_field(f, "attrs", w, (dict,), required=False) or {}),
            source_item=_field(f, "source_item", w, (str,), required=False) or "",
            span=_span(_field(f, "span", w, (list,), required=False)),
            evidence_text=_field(f, "evidence_text", w, (str,), required=False) or "",
            uncertain=bool(_field(f, "uncertain", w, (bool,), required=False)),
        )
        for w, f in _objects(data, "findings", where)
    ]
    critical = [
        CriticalAlert(
            level=_field(a, "level", w, (str,), required=False) or "",
            reason=_field(a, "reason", w, (str,)),
            source=_field(a, "source", w, (str,), required=False) or "",
            item_id=_field(a, "item_id", w, (str,), required=False),
            value=_field(a, "value", w, _VALUE, required=False),
            unit=_field(a, "unit", w, (str,), required=False),
            conclusion_id=_field(a, "conclusion_id", w, (str,), required=False),
            rule_id=_field(a, "rule_id", w, (str,), required=False),
        )
        for w, a in _objects(data, "critical", where)
    ]
    problems = [
        Problem(
            code=_field(p, "code", w, (str,)),
            message=_field(p, "message", w, (str,)),
            item=_field(p, "item", w, (str,), required=False),
            value=_field(p, "value", w, (str,), required=False),
            field=_field(p, "field", w, (str,), required=False),
        )
        for w, p in _objects(data, "problems", where)
    ]
    known = {
        "visit_id",
        "person_id",
        "sex",
        "age",
        "exam_date",
        "kb_version",
        "engine_version",
        "critical",
        "conclusions",
        "items",
        "findings",
        "problems",
        "incomplete_texts",
    }
    return Report(
        visit_id=_field(data, "visit_id", where, (str,)),
        person_id=_field(data, "person_id", where, (str,), required=False),
        sex=_field(data, "sex", where, (str,), required=False) or "unknown",
        age=_field(data, "age", where, _NUMBER, required=False),
        exam_date=_field(data, "exam_date", where, (str,), required=False),
        kb_version=_field(data, "kb_version", where, (str,), required=False) or "",
        engine_version=_field(data, "engine_version", where, (str,), required=False) or "",
        conclusions=conclusions,
        items=items,
        findings=findings,
        critical=critical,
        problems=problems,
        incomplete_texts=list(_field(data, "incomplete_texts", where, (list,), required=False) or []),
        extras={k: v for k, v in data.items() if k not in known},
    )
