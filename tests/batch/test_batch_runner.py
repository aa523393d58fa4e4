"""The streaming batch as a library: every record reported once, bad lines rejected with reasons, resume after damage.

Workers are spawned processes, so each `run_batch` costs about a second of start-up; the tests share runs where they
can. The per-record functions below are module-level so that spawned workers can import them by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from zhujian.batch import BatchError, BatchSummary, run_batch
from zhujian.batch.runner import count_lines, default_rejects_path
from zhujian.domain.record import Record
from zhujian.domain.report import Report
from zhujian.kb.loader import KnowledgeBase, load_kb
from zhujian.pipeline.run import build_report


def glucose_record(visit_id: str, glucose: str, sex: str = "male") -> dict[str, Any]:
    return {"visit_id": visit_id, "sex": sex, "age": 50, "items": [{"name": "空腹血糖", "value": glucose}]}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def exploding_build(kb: KnowledgeBase, record: Record) -> Report:
    if record.visit_id == "boom":
        raise ZeroDivisionError("deliberate failure for visit boom")
    return build_report(kb, record)


def dying_build(kb: KnowledgeBase, record: Record) -> Report:
    if record.visit_id == "die":
        os._exit(3)  # a worker killed mid-record, as the OOM killer would
    return build_report(kb, record)


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_kb()


# -- one mixed batch, several questions ----------------------------------------------------------------------

MIXED_INPUT = [
    dumps(glucose_record("high-1", "7.8")),  # line 1
    dumps(glucose_record("normal-1", "5.0")),  # line 2
    "{not json",  # line 3
    dumps(glucose_record("bad-sex", "5.0", sex="男")),  # line 4
    dumps(glucose_record("high-1", "5.0")),  # line 5: duplicate of line 1
    "",  # line 6: blank, ignored
    dumps([1, 2]),  # line 7
    dumps({"sex": "female", "age": 40}),  # line 8: no visit_id
    dumps(glucose_record("boom", "5.0")),  # line 9: the engine raises
    *[dumps(glucose_record(f"v{i:03d}", "7.8" if i % 2 else "5.0", "female" if i % 3 else "male")) for i in range(40)],
]
MIXED_VALID_IDS = {"high-1", "normal-1"} | {f"v{i:03d}" for i in range(40)}


@pytest.fixture(scope="module")
def mixed_run(kb: KnowledgeBase, tmp_path_factory: pytest.TempPathFactory) -> tuple[BatchSummary, Path]:
    folder = tmp_path_factory.mktemp("mixed")
    source = write_lines(folder / "records.jsonl", MIXED_INPUT)
    output = folder / "reports.jsonl"
    summary = run_batch(source, output, workers=2, chunk_size=7, kb=kb, build=exploding_build)
    return summary, output


def test_every_valid_record_is_reported_exactly_once(mixed_run: tuple[BatchSummary, Path]) -> None:
    summary, output = mixed_run
    reports = read_jsonl(output)
    ids = [r["visit_id"] for r in reports]
    assert sorted(ids) == sorted(MIXED_VALID_IDS)
    assert summary.reported == len(MIXED_VALID_IDS) == 42
    # 49 input lines, one blank: 48 records read, 42 reported, 6 rejected.
    assert (summary.lines_read, summary.rejected, summary.skipped_done) == (48, 6, 0)


def test_reports_carry_the_engine_conclusions(mixed_run: tuple[BatchSummary, Path]) -> None:
    _, output = mixed_run
    by_id = {r["visit_id"]: r for r in read_jsonl(output)}

    def glucose_codes(visit_id: str) -> list[str]:
        return [c["icd10"] for c in by_id[visit_id]["conclusions"] if c["icd10"].startswith(("E1", "R73"))]

    # CDS 2020: fasting glucose ≥ 7.0 mmol/L is in the diabetes range; 5.0 is below the 6.1 limit of normal.
    assert glucose_codes("high-1"), by_id["high-1"]["conclusions"]
    assert glucose_codes("v001")
    assert glucose_codes("normal-1") == []
    assert glucose_codes("v000") == []
    assert by_id["high-1"]["items"][0]["raw_value"] == "7.8"
    # line 1 won the duplicate: its 7.8 was reported, not line 5's 5.0
    assert by_id["high-1"]["sex"] == "male"


def test_rejects_name_the_line_and_the_reason(mixed_run: tuple[BatchSummary, Path]) -> None:
    summary, output = mixed_run
    rejects = {r["line"]: r for r in read_jsonl(default_rejects_path(output))}
    assert sorted(rejects) == [3, 4, 5, 7, 8, 9]
    assert rejects[3]["kind"] == "invalid_json" and rejects[3]["visit_id"] is None
    assert rejects[4]["kind"] == "invalid_record" and rejects[4]["visit_id"] == "bad-sex"
    assert "sex" in rejects[4]["reason"] and "男" in rejects[4]["reason"]
    assert rejects[5]["kind"] == "duplicate_visit_id" and "line 1" in rejects[5]["reason"]
    assert rejects[7]["kind"] == "not_an_object"
    assert rejects[8]["kind"] == "invalid_record" and "visit_id" in rejects[8]["reason"]
    assert rejects[9]["kind"] == "engine_error" and rejects[9]["visit_id"] == "boom"
    assert rejects[9]["error_type"] == "ZeroDivisionError"
    assert "deliberate failure for visit boom" in rejects[9]["reason"]
    assert summary.rejected_by_kind == {
        "invalid_json": 1,
        "invalid_record": 2,
        "duplicate_visit_id": 1,
        "not_an_object": 1,
        "engine_error": 1,
    }


def test_running_again_skips_everything_done(mixed_run: tuple[BatchSummary, Path], kb: KnowledgeBase) -> None:
    _, output = mixed_run
    before = (output.read_bytes(), default_rejects_path(output).read_bytes())
    again = run_batch(output.parent / "records.jsonl", output, workers=1, kb=kb, build=exploding_build)
    assert (again.reported, again.rejected, again.skipped_done) == (0, 0, 48)
    assert (output.read_bytes(), default_rejects_path(output).read_bytes()) == before


# -- crashes -------------------------------------------------------------------------------------------------


def test_a_worker_that_dies_costs_only_its_record(kb: KnowledgeBase, tmp_path: Path) -> None:
    ids = [f"w{i:02d}" for i in range(30)]
    ids.insert(13, "die")
    source = write_lines(tmp_path / "in.jsonl", [dumps(glucose_record(i, "5.5")) for i in ids])
    output = tmp_path / "out.jsonl"
    summary = run_batch(source, output, workers=2, chunk_size=4, kb=kb, build=dying_build)
    reported = [r["visit_id"] for r in read_jsonl(output)]
    assert sorted(reported) == sorted(i for i in ids if i != "die")
    rejects = read_jsonl(default_rejects_path(output))
    assert [(r["line"], r["visit_id"], r["kind"]) for r in rejects] == [(14, "die", "worker_died")]
    assert (summary.reported, summary.rejected) == (30, 1)


def _complete_run(kb: KnowledgeBase, folder: Path, count: int) -> tuple[Path, Path]:
    source = write_lines(folder / "in.jsonl", [dumps(glucose_record(f"r{i:02d}", "6.0")) for i in range(count)])
    output = folder / "out.jsonl"
    run_batch(source, output, workers=1, kb=kb)
    return source, output


def test_a_partial_last_line_is_truncated_and_its_record_redone(kb: KnowledgeBase, tmp_path: Path) -> None:
    source, output = _complete_run(kb, tmp_path, 12)
    lines = output.read_bytes().splitlines(keepends=True)
    cut = lines[-1][: len(lines[-1]) // 2]  # what a kill in the middle of a write leaves
    lost_id = json.loads(lines[-1])["visit_id"]
    output.write_bytes(b"".join(lines[:-1]) + cut)

    summary = run_batch(source, output, workers=1, kb=kb)
    assert summary.truncated_bytes == len(cut)
    assert (summary.reported, summary.skipped_done) == (1, 11)
    reports = read_jsonl(output)  # every line parses again
    assert sorted(r["visit_id"] for r in reports) == [f"r{i:02d}" for i in range(12)]
    assert reports[-1]["visit_id"] == lost_id


def test_nul_bytes_left_by_a_power_loss_are_truncated(kb: KnowledgeBase, tmp_path: Path) -> None:
    source, output = _complete_run(kb, tmp_path, 5)
    size = output.stat().st_size
    with output.open("ab") as fh:
        fh.write(b"\x00" * 4096)
    summary = run_batch(source, output, workers=1, kb=kb)
    assert summary.truncated_bytes == 4096 and summary.skipped_done == 5 and summary.reported == 0
    assert output.stat().st_size == size


def test_damage_followed_by_whole_lines_stops_the_batch(kb: KnowledgeBase, tmp_path: Path) -> None:
    source, output = _complete_run(kb, tmp_path, 3)
    lines = output.read_bytes().splitlines(keepends=True)
    output.write_bytes(lines[0] + b"garbage\n" + lines[2])
    with pytest.raises(BatchError, match="line 2"):
        run_batch(source, output, workers=1, kb=kb)
    assert output.read_bytes() == lines[0] + b"garbage\n" + lines[2]  # nothing guessed, nothing changed


def test_duplicates_resolve_the_same_way_after_a_crash(kb: KnowledgeBase, tmp_path: Path) -> None:
    source = write_lines(
        tmp_path / "in.jsonl",
        [
            dumps(glucose_record("same", "7.8")),
            dumps(glucose_record("other", "5.0")),
            dumps(glucose_record("same", "5.0")),
        ],
    )
    output = tmp_path / "out.jsonl"
    rejects = default_rejects_path(output)
    run_batch(source, output, workers=1, kb=kb)
    assert [r["line"] for r in read_jsonl(rejects)] == [3]

    # Crash case 1: the duplicate's reject was written, the first line's report was not.
    output.write_text("", encoding="utf-8")
    summary = run_batch(source, output, workers=1, kb=kb)
    assert (summary.reported, summary.rejected, summary.skipped_done) == (2, 0, 1)
    same = next(r for r in read_jsonl(output) if r["visit_id"] == "same")
    assert same["items"][0]["raw_value"] == "7.8"  # still line 1 that wins

    # Crash case 2: the report was written, the reject was not.
    rejects.unlink()
    summary = run_batch(source, output, workers=1, kb=kb)
    assert (summary.reported, summary.rejected, summary.skipped_done) == (0, 1, 2)
    assert [(r["line"], r["kind"]) for r in read_jsonl(rejects)] == [(3, "duplicate_visit_id")]
    assert sorted(r["visit_id"] for r in read_jsonl(output)) == ["other", "same"]


def test_no_resume_starts_over(kb: KnowledgeBase, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, output = _complete_run(kb, tmp_path, 4)
    write_lines(default_rejects_path(output), [dumps({"line": 99, "visit_id": None, "kind": "x", "reason": "old"})])
    capsys.readouterr()
    summary = run_batch(source, output, workers=1, kb=kb, resume=False, progress=True)
    assert (summary.reported, summary.skipped_done) == (4, 0)
    assert len(read_jsonl(output)) == 4
    assert not default_rejects_path(output).exists()
    assert "4/4 lines" in capsys.readouterr().err  # the progress bar, on stderr


# -- arguments -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workers": 0}, "workers must be at least 1"),
        ({"chunk_size": 0}, "chunk size must be at least 1"),
    ],
)
def test_unusable_numbers_are_refused(kb: KnowledgeBase, tmp_path: Path, kwargs: dict[str, int], message: str) -> None:
    source = write_lines(tmp_path / "in.jsonl", [dumps(glucose_record("a", "5"))])
    with pytest.raises(BatchError, match=message):
        run_batch(source, tmp_path / "out.jsonl", kb=kb, **kwargs)  # type: ignore[arg-type]


def test_paths_are_checked_before_anything_is_written(kb: KnowledgeBase, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [dumps(glucose_record("a", "5"))])
    with pytest.raises(BatchError, match="does not exist"):
        run_batch(tmp_path / "missing.jsonl", tmp_path / "out.jsonl", kb=kb)
    with pytest.raises(BatchError, match="three different files"):
        run_batch(source, source, kb=kb)
    with pytest.raises(BatchError, match="three different files"):
        run_batch(source, tmp_path / "out.jsonl", rejects_path=tmp_path / "out.jsonl", kb=kb)
    assert not (tmp_path / "out.jsonl").exists()


def test_helpers(tmp_path: Path) -> None:
    assert default_rejects_path(Path("x/reports.jsonl")) == Path("x/reports.rejects.jsonl")
    assert count_lines(write_lines(tmp_path / "a", ["1", "2", "3"])) == 3
    (tmp_path / "b").write_bytes(b"1\n2")
    assert count_lines(tmp_path / "b") == 2
