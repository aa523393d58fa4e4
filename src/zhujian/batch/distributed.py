"""Batch on Dask distributed: the same reports and rejects as the local engine, on a LocalCluster or on a center's
own cluster (`dask scheduler` / `dask worker`).

Flow
    The client only plans: it cuts the input into byte ranges that end at line ends (`partition_bytes` each) and
    sends each worker a range to read itself, never the records (shipping Python objects from the client is what
    makes Dask slow). Each worker loads the knowledge base once (from the same `--kb`/`--center` paths, or the
    bundled KB of its own installation) and refuses to work when its KB version differs from the client's: every
    worker must run the same KB. A task reads its range, reports every line exactly as the local engine would
    (same validation, same engine, same report lines, same reject reasons) and writes the outcome of each line to
    its own part file, atomically (write, fsync, rename). The client gets back only counts.

Duplicates, output and exactly-once
    When every part exists, the client merges them in input order: the first line carrying a visit_id claims it,
    as in the local engine, and later lines with it become `duplicate_visit_id` rejects naming the first line. The
    output and the rejects file are written whole and renamed into place, so they exist complete or not at all;
    then the part files are removed.

Resume
    A killed run leaves its finished part files (and a plan naming the input's size and modification time). Run the
    same command again: finished partitions are skipped, the rest are computed, then the merge. A changed input
    with an unfinished plan stops with a clear error instead of mixing two inputs.
"""

from __future__ import annotations

import codecs
import gc
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhujian.batch.runner import (
    BatchError,
    BatchSummary,
    Reject,
    WorkItem,
    classify_line,
    default_rejects_path,
    json_line,
    report_one,
)
from zhujian.kb.loader import KnowledgeBase, load_center_config, load_kb
from zhujian.pipeline.run import build_report

DEFAULT_PARTITION_BYTES = 8 * 1024 * 1024
PLAN_FILE = "plan.json"


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    start: int
    end: int


def plan_partitions(path: Path, partition_bytes: int) -> list[Partition]:
    """Byte ranges of about `partition_bytes`, each ending just after a newline (or at the end of the file)."""
    size = path.stat().st_size
    partitions: list[Partition] = []
    start = 0
    with path.open("rb") as source:
        while start < size:
            target = start + partition_bytes
            if target >= size:
                end = size
            else:
                source.seek(target)
                source.readline()
                end = min(source.tell(), size)
            partitions.append(Partition(len(partitions), start, end))
            start = end
    return partitions


# ------------------------------------------------------------------------------------------------------ workers

_WORKER_KB: dict[tuple[str | None, str | None], KnowledgeBase] = {}


def _worker_kb(kb_path: str | None, center: str | None) -> KnowledgeBase:
    """The KB of this worker process, loaded once and kept for every later task."""
    key = (kb_path, center)
    if key not in _WORKER_KB:
        config = load_center_config(Path(center)) if center else None
        _WORKER_KB[key] = load_kb(Path(kb_path) if kb_path else None, config)
        # The KB lives as long as the worker: out of the collector's generations (see runner._init_worker).
        gc.collect()
        gc.freeze()
    return _WORKER_KB[key]


def _write_atomically(path: Path, chunks: Iterator[bytes]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def report_partition(
    input_path: str,
    partition: Partition,
    parts_dir: str,
    kb_path: str | None,
    center: str | None,
    kb_version: str,
) -> dict[str, int]:
    """Worker task: report the lines of one byte range into `part-NNNNN.jsonl`. Returns the partition's counts."""
    kb = _worker_kb(kb_path, center)
    if kb.version != kb_version:
        raise BatchError(
            f"worker {os.uname().nodename}:{os.getpid()} runs knowledge base {kb.version}, the batch needs {kb_version}"
        )
    with open(input_path, "rb") as source:
        source.seek(partition.start)
        data = source.read(partition.end - partition.start)
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    reported = rejected = 0

    def outcomes() -> Iterator[bytes]:
        nonlocal reported, rejected
        yield json_line({"partition": partition.index, "lines": len(lines), "kb_version": kb_version})
        for offset, raw in enumerate(lines, start=1):
            if partition.start == 0 and offset == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if not raw.strip():
                continue
            visit_id, problem, text = classify_line(raw + b"\n")
            entry: dict[str, Any] = {"line": offset, "visit_id": visit_id}
            if problem is not None:
                entry["reject"] = Reject(offset, visit_id, *problem).to_dict()
                rejected += 1
            else:
                item: WorkItem = (offset, visit_id, text)
                outcome = report_one(kb, build_report, item)
                if isinstance(outcome, Reject):
                    entry["reject"] = outcome.to_dict()
                    rejected += 1
                else:
                    entry["report"] = outcome.decode("utf-8").rstrip("\n")
                    reported += 1
            yield json_line(entry)

    _write_atomically(Path(parts_dir) / f"part-{partition.index:05d}.jsonl", outcomes())
    return {"partition": partition.index, "lines": len(lines), "reported": reported, "rejected": rejected}


# ------------------------------------------------------------------------------------------------------- client


def _parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def _load_or_write_plan(parts: Path, source: Path, partitions: list[Partition], kb_version: str) -> None:
    stat = source.stat()
    plan = {
        "input": str(source.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "partitions": len(partitions),
        "kb_version": kb_version,
    }
    plan_path = parts / PLAN_FILE
    if plan_path.exists():
        existing = json.loads(plan_path.read_text(encoding="utf-8"))
        if existing != plan:
            raise BatchError(
                f"{parts} holds an unfinished batch of another input or knowledge base ({existing.get('input')}, "
                f"{existing.get('size')} bytes, KB {existing.get('kb_version')}); remove the folder to start over"
            )
        return
    _write_atomically(plan_path, iter([json.dumps(plan, ensure_ascii=False).encode("utf-8")]))


def _part_done(path: Path, partition: Partition) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        first = handle.readline()
    try:
        return int(json.loads(first)["partition"]) == partition.index
    except (ValueError, KeyError, TypeError):
        return False


def _merge(
    parts: Path, partitions: list[Partition], output: Path, rejects: Path, summary: BatchSummary
) -> None:
    """Write the output and rejects in input order from the part files; the first line with a visit_id wins."""
    first_line_of: dict[str, int] = {}
    rejected_by_kind: dict[str, int] = {}
    report_lines: list[bytes] = []
    reject_lines: list[bytes] = []
    line_base = 0

    def reject(entry: dict[str, Any]) -> None:
        reject_lines.append(json_line(entry))
        rejected_by_kind[entry["kind"]] = rejected_by_kind.get(entry["kind"], 0) + 1

    for partition in partitions:
        path = parts / f"part-{partition.index:05d}.jsonl"
        with path.open("rb") as handle:
            meta = json.loads(handle.readline())
            for raw in handle:
                entry = json.loads(raw)
                line_no = line_base + int(entry["line"])
                summary.lines_read += 1
                visit_id = entry.get("visit_id")
                first = first_line_of.setdefault(visit_id, line_no) if visit_id is not None else line_no
                if first != line_no:
                    reject(
                        {
                            "line": line_no,
                            "visit_id": visit_id,
                            "kind": "duplicate_visit_id",
                            "reason": (
                                f"duplicate visit_id {visit_id!r}: line {first} has it already (the first line wins)"
                            ),
                        }
                    )
                elif "reject" in entry:
                    reject({**entry["reject"], "line": line_no})
                else:
                    report_lines.append(entry["report"].encode("utf-8") + b"\n")
        line_base += int(meta["lines"])
    _write_atomically(rejects, iter(reject_lines))
    _write_atomically(output, iter(report_lines))
    summary.reported = len(report_lines)
    summary.rejected = len(reject_lines)
    summary.rejected_by_kind = rejected_by_kind


def run_batch_dask(
    input_path: Path | str,
    output_path: Path | str,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    rejects_path: Path | str | None = None,
    kb_path: Path | None = None,
    center: Path | None = None,
    partition_bytes: int = DEFAULT_PARTITION_BYTES,
    resume: bool = True,
    progress: bool = False,
    on_partition: Callable[[dict[str, int]], None] | None = None,
) -> BatchSummary:
    """Report a JSON-lines file on Dask: a LocalCluster of `workers` processes, or the cluster at `scheduler`
    (tcp://host:port). Workers read the input and write part files themselves, so input and output folders must be
    reachable by the same path on every worker (a shared file system on a multi-machine cluster)."""
    import importlib

    # Imported by name: distributed's API is not typed.
    dask_distributed: Any = importlib.import_module("dask.distributed")
    client_class, cluster_class = dask_distributed.Client, dask_distributed.LocalCluster
    as_completed = dask_distributed.as_completed

    started = time.perf_counter()
    source = Path(input_path).resolve()
    output = Path(output_path).resolve()
    rejects = Path(rejects_path).resolve() if rejects_path is not None else default_rejects_path(output)
    if not source.is_file():
        raise BatchError(f"input {source} does not exist or is not a file")
    if partition_bytes < 1:
        raise BatchError(f"partition size must be at least 1 byte, not {partition_bytes}")
    kb = load_kb(kb_path, load_center_config(center) if center else None)  # a bad KB fails before any worker starts
    parts = _parts_dir(output)
    if not resume and parts.exists():
        for stale in parts.iterdir():
            stale.unlink()
    parts.mkdir(exist_ok=True)
    partitions = plan_partitions(source, partition_bytes)
    _load_or_write_plan(parts, source, partitions, kb.version)
    todo = [p for p in partitions if not _part_done(parts / f"part-{p.index:05d}.jsonl", p)]

    cluster: Any = None
    if scheduler is None:
        count = workers or max(1, os.cpu_count() or 1)
        cluster = cluster_class(n_workers=count, threads_per_worker=1, processes=True, dashboard_address=None)
        client = client_class(cluster)
    else:
        client = client_class(scheduler)
    summary = BatchSummary(
        input_path=source,
        output_path=output,
        rejects_path=rejects,
        workers=len(client.scheduler_info().get("workers", {})) or (workers or 1),
    )
    summary.skipped_done = len(partitions) - len(todo)
    try:
        futures = [
            client.submit(
                report_partition,
                str(source),
                partition,
                str(parts),
                str(kb_path) if kb_path else None,
                str(center) if center else None,
                kb.version,
                key=f"zhujian-partition-{partition.index}-{kb.version}-{source.stat().st_mtime_ns}",
                pure=False,
                retries=1,
            )
            for partition in todo
        ]
        bar = _bar(len(partitions), len(partitions) - len(todo)) if progress else None
        for future in as_completed(futures):
            counts = future.result()
            if on_partition is not None:
                on_partition(counts)
            if bar is not None:
                bar.advance(bar.task_ids[0])
        if bar is not None:
            bar.stop()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    _merge(parts, partitions, output, rejects, summary)
    for part in parts.iterdir():
        part.unlink()
    parts.rmdir()
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _bar(total: int, done: int) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("partitions"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
    bar.add_task("dask", total=total, completed=done)
    bar.start()
    return bar
