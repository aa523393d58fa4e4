"""Batch throughput and memory on Tianchi-like records (`zhujian batch`), and where the engine spends its time.

1. Builds N canonical records by resampling real rows of ../shared/data/tianchi-diabetes/d_train_20180102.csv
   (GB18030; about 40 numeric lab items per row, no text), each with a fresh visit_id, into a JSON-lines file.
   The conversion is deliberately minimal and local to this script: header → item name, 性别 男/女 → male/female,
   年龄 → age, 体检日期 dd/mm/yyyy → ISO date, empty cells skipped, values kept as the strings in the file.
2. Runs the batch on it for each worker count, each run in a fresh process, and reports records/s and peak
   memory: the largest sum of RSS over the batch's process tree (sampled from /proc every 0.1 s), and the largest
   single processes (ru_maxrss of the batch parent and of its workers).
3. Times the engine alone per record on one core (validation, build_report, serialization) and lists the top
   costs of build_report from cProfile.

    python benchmarks/batch_speed.py [--records 100000] [--workers 1 2] [--chunk-size 200] [--profile 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import csv
import datetime as dt
import io
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tianchi-diabetes" / "d_train_20180102.csv"
SOURCE_NAME = DATA.name
SEX = {"男": "male", "女": "female"}


def load_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="gb18030", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def to_record(header: list[str], row: list[str], row_number: int, visit_id: str) -> dict[str, Any]:
    """One CSV row as a canonical record (see zhujian.domain.record.Record)."""
    cells = dict(zip(header, row, strict=False))
    record: dict[str, Any] = {"visit_id": visit_id, "person_id": f"tianchi-{cells['id']}"}
    record["sex"] = SEX.get(cells["性别"].strip(), "unknown")
    # An age or date that does not read is left out, as if the cell were empty: the engine reports it as unknown.
    with contextlib.suppress(ValueError):
        record["age"] = float(cells["年龄"])
    with contextlib.suppress(ValueError):
        record["exam_date"] = dt.datetime.strptime(cells["体检日期"].strip(), "%d/%m/%Y").date().isoformat()
    record["items"] = [
        {"name": name, "value": value.strip(), "origin": f"{SOURCE_NAME}:row {row_number}:column {name}"}
        for name, value in zip(header[4:], row[4:], strict=False)
        if value.strip()
    ]
    return record


def write_records(path: Path, count: int, seed: int) -> int:
    header, rows = load_rows(DATA)
    rng = random.Random(seed)
    items = 0
    with path.open("w", encoding="utf-8") as fh:
        for i in range(count):
            index = rng.randrange(len(rows))
            record = to_record(header, rows[index], index + 2, f"bench-{i:07d}")  # row 1 is the header
            items += len(record["items"])
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    return items


def tree_rss_bytes(root: int) -> int:
    """Sum of RSS over a process and all its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(statm.split()[1]) * page
    total = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure_run(source: Path, output: Path, workers: int, chunk_size: int, kb: str | None) -> dict[str, Any]:
    """One batch in a fresh process (`--child`), with its process tree's peak RSS sampled meanwhile."""
    command = [sys.executable, __file__, "--child", str(source), str(output), str(workers), str(chunk_size)]
    if kb:
        command.append(kb)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, tree_rss_bytes(proc.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"batch with {workers} worker(s) failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    result["peak_tree_rss_mb"] = peak / 2**20
    return result


def child(argv: list[str]) -> int:
    from zhujian.batch import run_batch
    from zhujian.kb.loader import load_kb

    source, output, workers, chunk_size = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    kb = load_kb(Path(argv[4]) if len(argv) > 4 else None)
    summary = run_batch(source, output, workers=workers, chunk_size=chunk_size, kb=kb, resume=False)
    kib = 1024  # ru_maxrss is in KiB on Linux
    print(
        json.dumps(
            {
                "reported": summary.reported,
                "rejected": summary.rejected,
                "elapsed_s": summary.elapsed_s,
                "records_per_s": summary.records_per_s,
                "parent_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 2**20,
                "largest_worker_maxrss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 2**20,
                "output_mb": output.stat().st_size / 2**20,
            }
        )
    )
    return 0


def profile_engine(source: Path, count: int, kb_path: str | None) -> None:
    from zhujian.domain.record import Record
    from zhujian.kb.loader import load_kb
    from zhujian.pipeline.run import build_report

    kb = load_kb(Path(kb_path) if kb_path else None)
    with source.open(encoding="utf-8") as fh:
        lines = [line for _, line in zip(range(count), fh, strict=False)]
    build_report(kb, Record.model_validate_json(lines[0]))  # warm the per-KB caches
    records = [Record.model_validate_json(line) for line in lines]
    timings = {"validate (pydantic)": 0.0, "build_report": 0.0, "to_dict + json.dumps": 0.0}
    for line, record in zip(lines, records, strict=True):
        t0 = time.perf_counter()
        Record.model_validate_json(line)
        t1 = time.perf_counter()
        report = build_report(kb, record)
        t2 = time.perf_counter()
        json.dumps(report.to_dict(), ensure_ascii=False, separators=(",", ":"))
        t3 = time.perf_counter()
        timings["validate (pydantic)"] += t1 - t0
        timings["build_report"] += t2 - t1
        timings["to_dict + json.dumps"] += t3 - t2
    print(f"\nPer-record cost on one core over {len(records)} records (mean):")
    print("| step | ms/record |")
    print("|---|---:|")
    for name, total in timings.items():
        print(f"| {name} | {total / len(records) * 1000:.3f} |")
    total_ms = sum(timings.values()) / len(records) * 1000
    print(f"| total | {total_ms:.3f} |  → at most {1000 / total_ms:,.0f} records/s per core")

    profiler = cProfile.Profile()
    profiler.enable()
    for record in records:
        build_report(kb, record)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print("\ncProfile of build_report, top 15 by own time:")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk-size", type=int, default=200)
    parser.add_argument("--profile", type=int, default=2000, help="records to profile the engine on (0 = skip)")
    parser.add_argument("--seed", type=int, default=20180102)
    parser.add_argument("--kb", help="knowledge-base folder (default: the bundled KB)")
    parser.add_argument("--keep", type=Path, help="keep the generated records in this folder")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"{DATA} is missing: the benchmark needs the Tianchi diabetes data (see shared/data/README.md)")
        return 1

    folder = Path(tempfile.mkdtemp(prefix="zhujian-batch-bench-"))
    try:
        source = (args.keep or folder) / "records.jsonl"
        source.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        items = write_records(source, args.records, args.seed)
        print(
            f"{args.records:,} records ({items / args.records:.1f} items each on average, "
            f"{source.stat().st_size / 2**20:.0f} MB of JSON lines) built from {SOURCE_NAME} "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        print(f"machine: {os.cpu_count()} cores; load average before the runs {os.getloadavg()[0]:.2f}")
        print(
            "\n| workers | records/s (batch) | elapsed s | wall s (with interpreter start) | peak RSS, whole tree MB "
            "| parent maxrss MB | largest worker maxrss MB | output MB |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for workers in args.workers:
            output = folder / f"reports-{workers}.jsonl"
            r = measure_run(source, output, workers, args.chunk_size, args.kb)
            if r["reported"] + r["rejected"] != args.records:
                raise SystemExit(f"expected {args.records} records handled, got {r['reported']} + {r['rejected']}")
            print(
                f"| {workers} | {r['records_per_s']:,.0f} | {r['elapsed_s']:.1f} | {r['wall_s']:.1f} | "
                f"{r['peak_tree_rss_mb']:.0f} | {r['parent_maxrss_mb']:.0f} | {r['largest_worker_maxrss_mb']:.0f} | "
                f"{r['output_mb']:,.0f} |"
            )
            output.unlink(missing_ok=True)
            output.with_name(output.stem + ".rejects.jsonl").unlink(missing_ok=True)
        if args.profile:
            profile_engine(source, args.profile, args.kb)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
