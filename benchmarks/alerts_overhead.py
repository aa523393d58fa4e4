"""Cost the alert loop adds to storing a record (SQLite file, one process): `submit_record` of a critical record
(opens alerts), of a normal record, and of a person's next visit while earlier tasks are open (the comparison that
closes them builds the earlier visit's report again).

    PYTHONPATH=src python benchmarks/alerts_overhead.py --records 40 [--without-loop]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from db_testing import load_case, make_team
from zhujian.kb.loader import default_kb
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.migrate import upgrade_database
from zhujian.storage.services import sign_report, submit_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=40)
    parser.add_argument("--without-loop", action="store_true", help="skip the alert hook, for comparison")
    args = parser.parse_args()
    if args.without_loop:
        import zhujian.alerts.hooks as hooks

        hooks.report_stored = lambda *a, **k: None  # type: ignore[assignment]
    kb = default_kb()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade_database(url)
        engine = create_db_engine(url)
        factory = create_session_factory(engine)
        with factory() as session:
            team = make_team(session)
            timings: dict[str, list[float]] = {"critical": [], "normal": [], "next visit, open tasks": []}
            for i in range(args.records):
                for label, case in (("critical", "05_critical_potassium"), ("normal", "01_male_healthy")):
                    record = load_case(case).model_copy(
                        update={"visit_id": f"{label}-{i}", "person_id": f"{label}-{i}"}
                    )
                    start = time.perf_counter()
                    submit_record(session, record, kb=kb, actor=team.manager)
                    session.commit()
                    timings[label].append(time.perf_counter() - start)
                first = load_case("10_impaired_fasting_glucose").model_copy(
                    update={"visit_id": f"ifg-{i}-a", "person_id": f"ifg-{i}", "exam_date": dt.date(2025, 3, 1)}
                )
                sign_report(
                    session, submit_record(session, first, kb=kb, actor=team.manager).report_id, actor=team.chief
                )
                session.commit()
                second = first.model_copy(update={"visit_id": f"ifg-{i}-b", "exam_date": dt.date(2026, 3, 1)})
                start = time.perf_counter()
                submit_record(session, second, kb=kb, actor=team.manager)
                session.commit()
                timings["next visit, open tasks"].append(time.perf_counter() - start)
        engine.dispose()
    for label, values in timings.items():
        values.sort()
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"{label:24s} n={len(values)} median {statistics.median(values) * 1000:.1f} ms  p95 {p95 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
