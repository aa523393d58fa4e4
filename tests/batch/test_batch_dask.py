"""`zhujian batch --engine dask` gives the same reports and rejects as the local engine — on a LocalCluster, and on
a scheduler with two workers started as separate processes — resumes after being killed, and writes Parquet."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zhujian.batch.distributed import plan_partitions, run_batch_dask
from zhujian.batch.runner import run_batch

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"


def _records_file(path: Path) -> Path:
    """Every golden case, twice over with new visit ids, plus the lines a real file has: a duplicate visit_id, an
    invalid record, broken JSON, a non-object and a blank line."""
    lines = []
    for round_ in range(2):
        for case in sorted(CASES.iterdir()):
            record = json.loads((case / "input.json").read_text(encoding="utf-8"))
            record["visit_id"] = f"{record['visit_id']}-{round_}"
            lines.append(json.dumps(record, ensure_ascii=False))
    lines.insert(5, lines[2])  # duplicate: the later line is rejected
    lines.insert(9, json.dumps({"visit_id": "bad-1", "sex": "robot"}))
    lines.insert(12, '{"visit_id": "broken"')
    lines.insert(15, "[1, 2]")
    lines.insert(20, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _by_visit(path: Path) -> dict[str, dict]:
    reports = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    by_visit = {r["visit_id"]: r for r in reports}
    assert len(by_visit) == len(reports), "each visit reported once"
    return by_visit


def _rejects(path: Path) -> list[tuple[int, str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted((r["line"], r["kind"], r["reason"]) for r in rows)


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    folder = tmp_path_factory.mktemp("local")
    records = _records_file(folder / "records.jsonl")
    out = folder / "reports.jsonl"
    run_batch(records, out, workers=1)
    return records, out, folder / "reports.rejects.jsonl"


def test_partitions_cover_the_file_and_end_at_line_ends(local_result: tuple[Path, Path, Path]) -> None:
    records = local_result[0]
    data = records.read_bytes()
    partitions = plan_partitions(records, 4000)
    assert partitions[0].start == 0 and partitions[-1].end == len(data)
    for before, after in itertools.pairwise(partitions):
        assert before.end == after.start
        assert data[before.end - 1 : before.end] == b"\n"


def test_local_cluster_matches_the_local_engine(local_result: tuple[Path, Path, Path], tmp_path: Path) -> None:
    records, local_out, local_rejects = local_result
    out = tmp_path / "reports.jsonl"
    summary = run_batch_dask(records, out, workers=2, partition_bytes=6000)
    assert _by_visit(out) == _by_visit(local_out)
    assert _rejects(tmp_path / "reports.rejects.jsonl") == _rejects(local_rejects)
    assert {kind for _, kind, _ in _rejects(local_rejects)} == {
        "duplicate_visit_id",
        "invalid_record",
        "invalid_json",
        "not_an_object",
    }
    assert summary.reported == len(_by_visit(local_out))
    assert not (tmp_path / "reports.jsonl.parts").exists()


def test_resume_reuses_finished_partitions(local_result: tuple[Path, Path, Path], tmp_path: Path) -> None:
    records, local_out, _ = local_result
    out = tmp_path / "reports.jsonl"
    finished: list[int] = []

    def stop_after_two(counts: dict[str, int]) -> None:
        finished.append(counts["partition"])
        if len(finished) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch_dask(records, out, workers=1, partition_bytes=6000, on_partition=stop_after_two)
    assert not out.exists()
    summary = run_batch_dask(records, out, workers=1, partition_bytes=6000)
    assert summary.skipped_done >= 2
    assert _by_visit(out) == _by_visit(local_out)


def _cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "zhujian", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def test_killed_cli_run_resumes_exactly_once(local_result: tuple[Path, Path, Path], tmp_path: Path) -> None:
    records, local_out, local_rejects = local_result
    command = _cli(
        "batch", str(records), "--out", "reports.jsonl", "--engine", "dask", "--workers", "1",
        "--partition-bytes", "3000", "--no-progress", cwd=tmp_path,
    )
    process = subprocess.Popen(command, cwd=tmp_path, env=_env(), start_new_session=True)
    parts = tmp_path / "reports.jsonl.parts"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(parts.glob("part-*.jsonl"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    assert len(list(parts.glob("part-*.jsonl"))) >= 2, "the run was killed after some partitions were finished"
    assert not (tmp_path / "reports.jsonl").exists()
    again = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _by_visit(tmp_path / "reports.jsonl") == _by_visit(local_out)
    assert _rejects(tmp_path / "reports.rejects.jsonl") == _rejects(local_rejects)


@pytest.mark.skipif(shutil.which("dask", path=str(Path(sys.executable).parent)) is None, reason="dask CLI missing")
def test_scheduler_and_two_worker_processes(local_result: tuple[Path, Path, Path], tmp_path: Path) -> None:
    records, local_out, local_rejects = local_result
    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    started = [
        subprocess.Popen(
            [str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(scheduler_file)],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not scheduler_file.exists():
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
        for _ in range(2):
            started.append(
                subprocess.Popen(
                    [str(bin_dir / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                     "--no-dashboard", "--host", "127.0.0.1"],
                    env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
            )
        result = subprocess.run(
            _cli("batch", str(records), "--out", "reports.parquet", "--engine", "dask", "--scheduler", address,
                 "--partition-bytes", "6000", "--no-progress", cwd=tmp_path),
            cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            process.wait(30)
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "reports.parquet")
    from_parquet = {row["visit_id"]: json.loads(row["report_json"]) for row in table.to_pylist()}
    assert from_parquet == _by_visit(local_out)
    first = table.to_pylist()[0]
    assert first["conclusion_count"] == len(first["conclusions"]) == len(json.loads(first["report_json"])["conclusions"])
    assert _rejects(tmp_path / "reports.rejects.jsonl") == _rejects(local_rejects)
