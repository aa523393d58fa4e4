"""The worklist: critical first, then class A, class B, the rest; then oldest exam date; filters and paging."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from db_testing import Team, load_case
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.edits import AddConclusion
from zhujian.storage.services import edit_report, submit_record, worklist, worklist_count

# visit id → (exam date, what the report is)
CASES = {
    "07_critical_blood_pressure": dt.date(2026, 3, 1),  # class A critical value (BP ≥ 180/110)
    "05_critical_potassium": dt.date(2026, 3, 5),  # class A critical value (K 2.5)
    "02_female_healthy": dt.date(2026, 3, 10),  # no finding; a physician adds a class-A conclusion
    "04_new_grade2_hypertension": dt.date(2026, 3, 2),  # class B
    "18_thyroid_tirads_4": dt.date(2026, 3, 20),  # class B
    "01_male_healthy": dt.date(2026, 2, 1),  # nothing important, the oldest exam
}
EXPECTED_ORDER = [
    "07_critical_blood_pressure",  # critical, 1 March
    "05_critical_potassium",  # critical, 5 March
    "02_female_healthy",  # class A (not a critical value), though its exam is the newest but one
    "04_new_grade2_hypertension",  # class B, 2 March
    "18_thyroid_tirads_4",  # class B, 20 March
    "01_male_healthy",  # ordinary, though the oldest exam
]


@pytest.fixture
def filled(session: Session, team: Team, kb: KnowledgeBase) -> Team:
    for visit_id, exam_date in CASES.items():
        update: dict[str, object] = {"exam_date": exam_date}
        if visit_id == "18_thyroid_tirads_4":
            update["person_id"] = "P-777"
        summary = submit_record(session, load_case(visit_id).model_copy(update=update), kb=kb, actor=team.chief)
        if visit_id == "02_female_healthy":
            edit_report(
                session, summary.report_id, [AddConclusion("ecg_c_vt")], expected_version=1, actor=team.chief, kb=kb
            )
    session.commit()
    return team


def _visit_ids(rows: list) -> list[str]:  # type: ignore[type-arg]
    return [row.visit_id for row in rows]


def test_order_critical_then_level_then_exam_date(session: Session, filled: Team) -> None:
    rows = worklist(session, actor=filled.chief)
    assert _visit_ids(rows) == EXPECTED_ORDER
    flags = [(r.highest_level, r.critical) for r in rows]
    assert flags == [("A", True), ("A", True), ("A", False), ("B", False), ("B", False), (None, False)]
    assert rows[2].status == "edited" and rows[2].summary == "室性心动过速"
    assert rows[0].exam_date == dt.date(2026, 3, 1)


def test_status_level_and_date_filters(session: Session, filled: Team) -> None:
    chief = filled.chief
    assert _visit_ids(worklist(session, actor=chief, status="edited")) == ["02_female_healthy"]
    assert _visit_ids(worklist(session, actor=chief, status=["draft", "edited"])) == EXPECTED_ORDER
    assert worklist(session, actor=chief, status="signed") == []
    assert _visit_ids(worklist(session, actor=chief, level="A")) == EXPECTED_ORDER[:3]
    assert _visit_ids(worklist(session, actor=chief, level="B")) == EXPECTED_ORDER[3:5]
    assert _visit_ids(worklist(session, actor=chief, level="none")) == ["01_male_healthy"]
    between = worklist(session, actor=chief, date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 10))
    assert _visit_ids(between) == ["05_critical_potassium", "02_female_healthy", "04_new_grade2_hypertension"]
    assert worklist_count(session, actor=chief, level="A") == 3
    assert worklist_count(session, actor=chief) == 6


def test_search_by_any_part_of_visit_or_person_id(session: Session, filled: Team) -> None:
    chief = filled.chief
    assert _visit_ids(worklist(session, actor=chief, search="05_")) == ["05_critical_potassium"]
    assert _visit_ids(worklist(session, actor=chief, search="0")) == [v for v in EXPECTED_ORDER if "0" in v]
    assert _visit_ids(worklist(session, actor=chief, search="P-7")) == ["18_thyroid_tirads_4"]
    # A fragment from the middle of an id, in either letter case, of the visit id or of the person id.
    assert _visit_ids(worklist(session, actor=chief, search="critical")) == EXPECTED_ORDER[:2]
    assert _visit_ids(worklist(session, actor=chief, search="TIRADS")) == ["18_thyroid_tirads_4"]
    assert _visit_ids(worklist(session, actor=chief, search="77")) == ["18_thyroid_tirads_4"]
    assert worklist_count(session, actor=chief, search="healthy") == 2
    # LIKE wildcards are matched literally: as wildcards, "h_r" would match "thyroid" and "%" everything.
    assert worklist(session, actor=chief, search="%") == []
    assert worklist(session, actor=chief, search="h_r") == []
    assert _visit_ids(worklist(session, actor=chief, search="4_n")) == ["04_new_grade2_hypertension"]


def test_paging(session: Session, filled: Team) -> None:
    assert _visit_ids(worklist(session, actor=filled.chief, limit=2, offset=2)) == EXPECTED_ORDER[2:4]
    assert worklist(session, actor=filled.chief, limit=2, offset=6) == []
    with pytest.raises(ValueError, match="limit"):
        worklist(session, actor=filled.chief, limit=0)
    with pytest.raises(ValueError, match="offset"):
        worklist(session, actor=filled.chief, offset=-1)


def test_the_database_reads_the_worklist_in_index_order(session: Session, filled: Team) -> None:
    """The ordering columns are in one index, so the database walks it instead of sorting all reports."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # Six rows would be read sequentially anyway: ask for the plan the planner uses on a large table.
        session.execute(text("SET LOCAL enable_seqscan = off"))
    explain = "EXPLAIN" if postgres else "EXPLAIN QUERY PLAN"
    for index, where in {"ix_reports_worklist": "", "ix_reports_status_worklist": "WHERE r.status = 'draft'"}.items():
        rows = session.execute(
            text(
                f"{explain} SELECT r.id, v.visit_id FROM reports r JOIN visits v ON v.id = r.visit_pk "
                f"{where} ORDER BY r.priority, r.sort_date, r.id LIMIT 50"
            )
        )
        plan = "\n".join(str(row[0] if postgres else row[-1]) for row in rows)
        assert index in plan, plan
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
