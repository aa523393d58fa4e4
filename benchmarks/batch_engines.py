"""Records per second and peak memory of `zhujian batch` with the local engine (1 and 2 workers) and the Dask engine
(LocalCluster of 2 workers), on the same input, one after the other; and what that means for re-running 30 million
records in an 8-hour night.

    python benchmarks/batch_engines.py --records records.jsonl [--limit 5000]

`records.jsonl`: canonical records, e.g. from `zhujian ingest ../shared/data/tianchi-diabetes/d_train_20180102.csv
--format wide-csv --out records.jsonl`. Peak memory is the largest resident set of any worker process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from zhujian.batch.distributed import run_batch_dask
from zhujian.batch.runner import run_batch

NIGHT_S = 8 * 3600
NATIONAL_RECORDS = 30_000_000


def _subset(source: Path, limit: int, folder: Path) -> Path:
    target = folder / "input.jsonl"
    with source.open("rb") as reader, target.open("wb") as writer:
        for number, line in enumerate(reader):
            if number >= limit:
                break
            writer.write(line)
    return target


def _worker_peak_mib() -> float:
    # ru_maxrss of reaped children, in KiB on Linux: the largest worker of the runs so far.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        source = _subset(args.records, args.limit, folder)
        rows = []
        for label, workers in (("local, 1 worker", 1), ("local, 2 workers", 2)):
            started = time.perf_counter()
            summary = run_batch(source, folder / f"local{workers}.jsonl", workers=workers, resume=False)
            elapsed = time.perf_counter() - started
            rows.append((label, summary.reported, elapsed, _worker_peak_mib()))
        started = time.perf_counter()
        summary = run_batch_dask(source, folder / "dask.jsonl", workers=2, resume=False)
        elapsed = time.perf_counter() - started

        rows.append(("dask LocalCluster, 2 workers", summary.reported, elapsed, _worker_peak_mib()))
    print(f"{'engine':<30} {'records':>8} {'seconds':>8} {'records/s':>10} {'peak worker MiB':>16}")
    for label, reported, elapsed, peak in rows:
        print(f"{label:<30} {reported:>8} {elapsed:>8.1f} {reported / elapsed:>10.0f} {peak:>16.0f}")
    per_core = rows[0][1] / rows[0][2]
    cores = NATIONAL_RECORDS / (per_core * NIGHT_S)
    print(
        f"30 M records in 8 h need {NATIONAL_RECORDS / NIGHT_S:,.0f} records/s: at {per_core:,.0f} records/s per core "
        f"that is {cores:,.1f} cores (before any loss to coordination)"
    )


if __name__ == "__main__":
    main()
