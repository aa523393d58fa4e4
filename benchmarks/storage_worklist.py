"""Worklist and report-opening speed of the storage services on PostgreSQL with many reports.

Creates a scratch database (random name) on the PostgreSQL server of --database-url (default: ZHUJIAN_DATABASE_URL
when it is a PostgreSQL URL, else the local test server), migrates it, stores a few real reports through
`submit_record` (golden cases: critical values, class A, class B, ordinary), then clones them with COPY into
--reports reports with new visit ids, persons, exam dates spread over two years, statuses and levels in realistic
shares. It then times the services as the web layer calls them (a new session per call) and prints p50/p95/max:

- `worklist` first page (50 rows): unfiltered, status "draft", level "B", level "A" + status "signed", page 100;
- `worklist` searches (a whole visit id, a fragment from the middle of many ids) and `worklist_count` of a search
  without a match;
- `worklist_count` unfiltered and by status;
- `get_report` of random reports (the full JSON, 10–80 kB).

The scratch database is dropped at the end unless --keep.

    python benchmarks/storage_worklist.py [--reports 100000] [--runs 200] [--database-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.engine import make_url

from zhujian.domain.record import Record
from zhujian.kb.loader import default_kb
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.storage.edits import AddConclusion
from zhujian.storage.migrate import upgrade_database
from zhujian.storage.models import RawRecord, Report, Visit
from zhujian.storage.services import edit_report, get_report, submit_record, worklist, worklist_count
from zhujian.storage.users import create_user, ensure_admin
from zhujian.storage.values import Actor

CASES = Path(__file__).resolve().parents[1] / "tests" / "cases"
LOCAL_TEST_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FIRST_ID = 1000  # cloned rows get explicit ids from here; the seeded templates use the first few
# (template case, share of all reports): critical values are rare, most reports have no class A/B finding.
TEMPLATES = [
    ("05_critical_potassium", 0.01),
    ("07_critical_blood_pressure", 0.01),
    ("02_female_healthy", 0.03),  # a physician added a class-A conclusion: class A, not a critical value
    ("04_new_grade2_hypertension", 0.10),
    ("18_thyroid_tirads_4", 0.10),
    ("17_elderly_woman_many_findings", 0.40),
    ("01_male_healthy", 0.35),
]
STATUSES = [
    ("draft", 0.40),
    ("edited", 0.15),
    ("signed", 0.10),
    ("reviewed", 0.10),
    ("published", 0.20),
    ("rejected", 0.05),
]


def _server_url(args: argparse.Namespace) -> str:
    if args.database_url:
        return str(args.database_url)
    env = os.environ.get("ZHUJIAN_DATABASE_URL", "")
    return env if env.startswith("postgresql") else LOCAL_TEST_SERVER


def _libpq(url: str, database: str) -> str:
    return make_url(url).set(drivername="postgresql", database=database).render_as_string(hide_password=False)


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   max {ordered[-1] * 1000:7.2f} ms"
    )


def _seed(url: str) -> tuple[Actor, list[int]]:
    """Users and the template reports, stored through the services."""
    kb = default_kb()
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    template_ids = []
    with session_scope(factory) as session:
        admin = ensure_admin(session, Settings(admin_password="benchmark password"), hasher=cheap)
        assert admin is not None
        chief = create_user(
            session,
            username="chief",
            password="benchmark password",
            display_name="主检医生",
            role="chief_physician",
            actor=admin.as_actor(),
            hasher=cheap,
        ).as_actor()
        for name, _ in TEMPLATES:
            record = Record.model_validate(json.loads((CASES / name / "input.json").read_text(encoding="utf-8")))
            summary = submit_record(session, record, kb=kb, actor=chief)
            if name == "02_female_healthy":
                edit_report(
                    session, summary.report_id, [AddConclusion("ecg_c_vt")], expected_version=1, actor=chief, kb=kb
                )
            template_ids.append(summary.report_id)
    engine.dispose()
    return chief, template_ids


def _clone(url: str, database: str, template_ids: list[int], count: int, seed: int) -> None:
    """COPY `count` reports cloned from the templates (explicit ids, then the sequences are moved past them)."""
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    templates: list[dict[str, Any]] = []
    with factory() as session:
        for report_id in template_ids:
            report = session.get(Report, report_id)
            assert report is not None
            visit = session.get(Visit, report.visit_pk)
            raw = session.scalars(select(RawRecord).where(RawRecord.id == report.raw_record_id)).one()
            assert visit is not None
            templates.append(
                {
                    "visit_id": visit.visit_id,
                    "sex": visit.sex,
                    "age": visit.age,
                    "record": json.dumps(raw.record, ensure_ascii=False),
                    "record_hash": raw.record_hash,
                    "content": json.dumps(report.content, ensure_ascii=False),
                    "content_hash": report.content_hash,
                    "highest_level": report.highest_level,
                    "critical": report.critical,
                    "priority": report.priority,
                    "summary": report.summary,
                    "conclusion_count": report.conclusion_count,
                }
            )
    engine.dispose()

    rng = random.Random(seed)
    weights = [share for _, share in TEMPLATES]
    status_names = [s for s, _ in STATUSES]
    status_weights = [w for _, w in STATUSES]
    start = dt.date(2025, 1, 1)
    now = dt.datetime.now(dt.UTC)
    persons = max(1, count // 3)  # about three visits per person
    with psycopg.connect(_libpq(url, database)) as connection:
        with connection.cursor() as cursor:
            with cursor.copy("COPY persons (id, pseudonym, created_at) FROM STDIN") as copy:
                for p in range(persons):
                    copy.write_row((FIRST_ID + p, f"BP-{p:07d}", now))
            with cursor.copy(
                "COPY visits (id, visit_id, person_id, exam_date, sex, age, created_at, updated_at) FROM STDIN"
            ) as visits_copy:
                chosen: list[tuple[int, int, dt.date]] = []
                for i in range(count):
                    t = rng.choices(range(len(templates)), weights)[0]
                    exam_date = start + dt.timedelta(days=rng.randrange(730))
                    chosen.append((i, t, exam_date))
                    template = templates[t]
                    visits_copy.write_row(
                        (
                            FIRST_ID + i,
                            f"BENCH-{i:07d}",
                            FIRST_ID + rng.randrange(persons),
                            exam_date,
                            template["sex"],
                            template["age"],
                            now,
                            now,
                        )
                    )
            with cursor.copy(
                "COPY raw_records (id, visit_pk, version, record, record_hash, received_at) FROM STDIN"
            ) as raw_copy:
                for i, t, _ in chosen:
                    template = templates[t]
                    record = template["record"].replace(template["visit_id"], f"BENCH-{i:07d}")
                    raw_copy.write_row((FIRST_ID + i, FIRST_ID + i, 1, record, template["record_hash"], now))
            columns = (
                "id, visit_pk, status, version, highest_level, critical, priority, sort_date, summary, "
                "conclusion_count, has_newer_data, content, content_hash, raw_record_id, created_at, updated_at"
            )
            with cursor.copy(f"COPY reports ({columns}) FROM STDIN") as report_copy:
                for i, t, exam_date in chosen:
                    template = templates[t]
                    content = template["content"].replace(template["visit_id"], f"BENCH-{i:07d}")
                    report_copy.write_row(
                        (
                            FIRST_ID + i,
                            FIRST_ID + i,
                            rng.choices(status_names, status_weights)[0],
                            1,
                            template["highest_level"],
                            template["critical"],
                            template["priority"],
                            exam_date,
                            template["summary"],
                            template["conclusion_count"],
                            False,
                            content,
                            template["content_hash"],
                            FIRST_ID + i,
                            now,
                            now,
                        )
                    )
            for table in ("persons", "visits", "raw_records", "reports"):
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def _time(label: str, runs: int, call: Callable[[int], object], results: dict[str, str]) -> None:
    for i in range(min(10, runs)):  # warm the pool and the caches
        call(i)
    samples = []
    for i in range(runs):
        began = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - began)
    results[label] = _percentiles(samples)
    print(f"{label:<44} {results[label]}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=100_000, help="number of cloned reports (default 100000)")
    parser.add_argument("--runs", type=int, default=200, help="timed calls per query (default 200)")
    parser.add_argument("--database-url", help="PostgreSQL server to use (a scratch database is created on it)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()

    server = _server_url(args)
    database = f"zhujian_bench_{uuid.uuid4().hex[:10]}"
    url = make_url(server).set(database=database).render_as_string(hide_password=False)
    admin_db = make_url(server).database or "postgres"
    with psycopg.connect(_libpq(server, admin_db), autocommit=True, connect_timeout=5) as connection:
        connection.execute(f"CREATE DATABASE {database}".encode())
    print(f"scratch database {database} on {make_url(server).render_as_string(hide_password=True)}", flush=True)
    try:
        began = time.perf_counter()
        upgrade_database(url)
        chief, template_ids = _seed(url)
        _clone(url, database, template_ids, args.reports, args.seed)
        print(f"loaded {args.reports} reports in {time.perf_counter() - began:.1f} s", flush=True)

        engine = create_db_engine(url, pool_size=5)
        factory = create_session_factory(engine)
        with psycopg.connect(_libpq(url, database)) as connection:
            size = connection.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()
            shares = connection.execute(
                "SELECT priority, count(*) FROM reports GROUP BY priority ORDER BY priority"
            ).fetchall()
        print(f"database size {size[0] if size else '?'}; reports by priority (0 critical, 1 A, 2 B, 3 rest): {shares}")

        rng = random.Random(args.seed)
        max_id = FIRST_ID + args.reports

        def listing(**filters: Any) -> Callable[[int], object]:
            def call(_: int) -> object:
                with factory() as session:
                    rows = worklist(session, actor=chief, limit=50, **filters)
                    assert rows, filters
                    return rows

            return call

        def counting(**filters: Any) -> Callable[[int], object]:
            def call(_: int) -> object:
                with factory() as session:
                    return worklist_count(session, actor=chief, **filters)

            return call

        def opening(_: int) -> object:
            with factory() as session:
                return get_report(session, rng.randrange(FIRST_ID, max_id), actor=chief)

        results: dict[str, str] = {}
        _time("worklist first page, no filter", args.runs, listing(), results)
        _time("worklist first page, status=draft", args.runs, listing(status="draft"), results)
        _time("worklist first page, level=B", args.runs, listing(level="B"), results)
        _time("worklist first page, status=signed level=A", args.runs, listing(status="signed", level="A"), results)
        deep = min(4950, args.reports // 2)
        _time(f"worklist deep page (offset {deep}), no filter", args.runs, listing(offset=deep), results)
        _time(
            "worklist date range (one month)",
            args.runs,
            listing(date_from=dt.date(2025, 6, 1), date_to=dt.date(2025, 6, 30)),
            results,
        )
        # Searches match any part of the visit id or person id (a LIKE '%…%' that no b-tree index serves): the
        # visits and persons tables are scanned once per search.
        probe = args.reports // 2
        _time("worklist search, a whole visit id", args.runs, listing(search=f"BENCH-{probe:07d}"), results)
        _time("worklist search, middle of the ids", args.runs, listing(search=f"H-{probe // 100:05d}"), results)
        _time("worklist_count, search without a match", args.runs, counting(search="NO-SUCH-ID"), results)
        _time("worklist_count, no filter", args.runs, counting(), results)
        _time("worklist_count, status=draft", args.runs, counting(status="draft"), results)
        _time("get_report (random report, full JSON)", args.runs, opening, results)
        engine.dispose()
    finally:
        if not args.keep:
            with psycopg.connect(_libpq(server, admin_db), autocommit=True) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)".encode())
            print(f"dropped {database}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
