"""Streaming batch on the local cores: canonical records as JSON lines in, one report per line out.

Flow
    The parent process reads the input line by line (never the whole file). It parses each line with `json.loads`
    only to learn its `visit_id` (about 10 µs against about 1 ms of engine time for a 40-item record), which is what
    makes duplicates and resume decidable before any work is sent. Lines go to the workers in chunks, as raw text.
    Each worker receives the knowledge base once, in the pool initializer: the parent loads and checks it once (a bad
    KB fails before any worker starts), and each worker unpickles that copy from a temporary file (about 0.5 MB,
    10 ms) instead of parsing the YAML again. A worker validates each record with pydantic, runs `build_report`, and
    sends back the chunk's report lines already serialized, so the parent only writes bytes. At most `2 × workers`
    chunks are in flight, so memory stays bounded whatever the input size; what grows with the input is the table of
    visit_ids seen (a few tens of bytes per record), which duplicate detection and resume need. Only the parent
    writes files.

Output
    One line per report: `report.to_dict()` with `visit_id` as its first key, compact JSON, UTF-8. Lines are written
    in the order chunks finish, not in input order.

Rejects (`<out>.rejects.jsonl` unless given)
    One line per input line that produced no report: `{"line", "visit_id", "kind", "reason"}` (plus `error_type`
    and `where` for engine errors). Kinds: `invalid_utf8`, `invalid_json`, `not_an_object`, `invalid_record` (each
    pydantic error with its field and value), `duplicate_visit_id`, `engine_error` (exception type and message; the
    batch goes on), `worker_died` (the worker process died on this record, e.g. killed for lack of memory; the
    record was retried alone to be sure it was the cause). Blank lines are ignored.

Duplicates
    The first input line that carries a visit_id claims it, whether or not its record turns out valid; every later
    line with the same visit_id goes to the rejects as `duplicate_visit_id`, naming the first line. So each
    visit_id is reported at most once, and which line wins never depends on timing.

Resume and crash safety
    Both files are append-only and only ever receive whole lines; after each chunk both are flushed and fsync'ed.
    On start (unless `resume=False`, which empties both files) the existing files are scanned:

    - every complete line of the output must be a report line (fast check: it starts with `{"visit_id":"`, ends
      with `}`, has no NUL byte; otherwise it must parse as a JSON object with a string `visit_id`). Its visit_id
      counts as done and the input lines carrying it are skipped;
    - every complete line of the rejects must parse as a JSON object with an integer `line`; those input line
      numbers count as done;
    - a damaged tail (a last line without its newline, the NUL bytes a power loss can leave, anything that does not
      parse) is what a crash leaves after the last fsync: it is truncated away, and its records are processed again.
      Damage followed by good lines is not a crash artefact, so the batch stops and names the line rather than
      guess.

    Resume keys the output by visit_id and the rejects by input line number, so run it again on the same input
    (appending new lines to the input is fine; editing or reordering it is not). The output file is locked
    (`flock`) while a batch writes it, so two batches cannot interleave their lines. A killed run's worker
    processes never write, so a straggler cannot corrupt the files either.
"""

from __future__ import annotations

import codecs
import gc
import json
import multiprocessing.connection
import os
import pickle
import re
import signal
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from zhujian.domain.record import Record
from zhujian.domain.report import Report
from zhujian.kb.loader import KnowledgeBase, load_center_config, load_kb
from zhujian.pipeline.build_info import engine_build
from zhujian.pipeline.run import build_report

try:  # advisory lock against two batches writing one output; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ReportBuilder = Callable[[KnowledgeBase, Record], Report]
RejectKind = Literal[
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "invalid_record",
    "duplicate_visit_id",
    "engine_error",
    "worker_died",
]
# (input line number, visit_id if the line carries a string one, the line's text)
WorkItem = tuple[int, str | None, str]

DEFAULT_CHUNK_SIZE = 200
CHUNKS_IN_FLIGHT_PER_WORKER = 2
_REPORT_PREFIX = re.compile(rb'\{"visit_id":"((?:[^"\\\n]|\\.)*)"')
_SHORT_VALUE_CHARS = 80


class BatchError(Exception):
    """The batch cannot start or go on: unusable arguments, or output files it must not guess about."""


@dataclass(frozen=True, slots=True)
class Reject:
    """One input line that produced no report, and why."""

    line: int
    visit_id: str | None
    kind: RejectKind
    reason: str
    error_type: str | None = None
    where: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"line": self.line, "visit_id": self.visit_id, "kind": self.kind, "reason": self.reason}
        if self.error_type is not None:
            out["error_type"] = self.error_type
        if self.where is not None:
            out["where"] = self.where
        return out


@dataclass(slots=True)
class ChunkResult:
    """What a worker sends back for one chunk: the report lines, serialized, and the rejects."""

    report_lines: bytes
    reported: int
    rejects: list[Reject]


@dataclass(slots=True)
class BatchSummary:
    """Counts of one run. `lines_read == reported + rejected + skipped_done` (blank lines are not counted)."""

    input_path: Path
    output_path: Path
    rejects_path: Path
    workers: int
    lines_read: int = 0
    reported: int = 0
    rejected: int = 0
    skipped_done: int = 0
    rejected_by_kind: dict[str, int] = field(default_factory=dict)
    truncated_bytes: int = 0
    elapsed_s: float = 0.0
    narration: str | None = None

    @property
    def processed(self) -> int:
        """Records handled in this run (reported or rejected), as opposed to skipped as done by an earlier run."""
        return self.reported + self.rejected

    @property
    def records_per_s(self) -> float:
        return self.processed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> list[str]:
        """Human-readable summary lines."""
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(self.rejected_by_kind.items()))
        lines = [
            f"records read: {self.lines_read:,}",
            f"reported: {self.reported:,} → {self.output_path}",
            f"rejected: {self.rejected:,}" + (f" ({kinds}) → {self.rejects_path}" if self.rejected else ""),
            f"skipped as already done: {self.skipped_done:,}",
        ]
        if self.truncated_bytes:
            lines.append(f"repaired: {self.truncated_bytes:,} bytes of an interrupted write truncated")
        if self.narration:
            lines.append(self.narration)
        lines.append(
            f"elapsed: {self.elapsed_s:.1f} s with {self.workers} worker(s); {self.records_per_s:,.0f} records/s"
        )
        # The same install runs in every local worker; a compiled one is about 1.6 times faster (docs/measurements.md).
        lines.append(f"{engine_build()} (this process)")
        return lines


def default_workers() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_rejects_path(output_path: Path) -> Path:
    """`reports.jsonl` → `reports.rejects.jsonl`."""
    return output_path.with_name(output_path.stem + ".rejects.jsonl")


# ---------------------------------------------------------------------------------------------------------------
# Worker side


_worker_kb: KnowledgeBase | None = None
_worker_build: ReportBuilder = build_report


def _exit_with_parent() -> None:
    """End this worker when the parent dies (SIGKILL, power cut of a container): an orphan would wait forever."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch(sentinel: int) -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(1)

    threading.Thread(target=watch, args=(parent.sentinel,), daemon=True, name="zhujian-parent-watch").start()


def _init_worker(kb_file: str, build: ReportBuilder) -> None:
    global _worker_kb, _worker_build
    # Ctrl-C is the parent's to handle: it stops submitting and the files stay resumable.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    with open(kb_file, "rb") as fh:
        _worker_kb = pickle.load(fh)
    _worker_build = build
    _freeze_long_lived()


def _freeze_long_lived() -> None:
    """The KB lives as long as the worker: move it out of the collector's generations, so that the collections the
    per-record garbage triggers do not traverse its objects again and again (docs/measurements.md, engine speed)."""
    gc.collect()
    gc.freeze()


def json_line(obj: dict[str, Any]) -> bytes:
    try:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (from a "\ud800" escape in the input) cannot be UTF-8: escape it instead of losing it.
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii") + b"\n"


def _short_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return "[…]"
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= _SHORT_VALUE_CHARS else shown[: _SHORT_VALUE_CHARS - 1] + "…"


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(record)"


def describe_validation_error(exc: ValidationError) -> str:
    """Every pydantic problem of a record with its field and the value found."""
    problems = []
    for err in exc.errors(include_url=False):
        text = f"field {_field_path(err['loc'])}: {err['msg']}"
        if err["type"] != "missing":
            text += f" (value: {_short_value(err.get('input'))})"
        problems.append(text)
    return "invalid record: " + "; ".join(problems)


def _where(exc: BaseException) -> str | None:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


def report_one(kb: KnowledgeBase, build: ReportBuilder, item: WorkItem) -> bytes | Reject:
    line_no, visit_id, text = item
    try:
        record = Record.model_validate_json(text)
    except ValidationError as exc:
        return Reject(line_no, visit_id, "invalid_record", describe_validation_error(exc))
    try:
        report = build(kb, record).to_dict()
        # visit_id first, always: resume recognises report lines by this prefix without parsing them whole.
        return json_line({"visit_id": record.visit_id, **report})
    except Exception as exc:  # the engine must never stop the batch; the reject keeps type, message and place
        return Reject(
            line_no,
            record.visit_id,
            "engine_error",
            f"engine error: {type(exc).__name__}: {exc}",
            error_type=type(exc).__name__,
            where=_where(exc),
        )


def classify_line(raw: bytes) -> tuple[str | None, tuple[RejectKind, str] | None, str]:
    """(visit_id, problem, text) of one non-blank input line: the visit_id when the line is a JSON object with a
    string visit_id, the reason when it cannot be a record at all (not UTF-8, not JSON, not an object)."""
    visit_id: str | None = None
    problem: tuple[RejectKind, str] | None = None
    text = ""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
        if isinstance(data, dict):
            candidate = data.get("visit_id")
            visit_id = candidate if isinstance(candidate, str) else None
        else:
            problem = ("not_an_object", f"expected a JSON object (one record), got {type(data).__name__}")
    except UnicodeDecodeError as exc:
        problem = ("invalid_utf8", f"not UTF-8 text (byte {exc.start + 1} of the line: {exc.reason})")
    except json.JSONDecodeError as exc:
        problem = ("invalid_json", f"not valid JSON (column {exc.colno}: {exc.msg})")
    return visit_id, problem, text


def process_chunk(items: list[WorkItem]) -> ChunkResult:
    """Worker task: validate and report each line of a chunk."""
    if _worker_kb is None:
        raise RuntimeError("process_chunk runs in a worker started with _init_worker")
    lines: list[bytes] = []
    rejects: list[Reject] = []
    for item in items:
        outcome = report_one(_worker_kb, _worker_build, item)
        if isinstance(outcome, Reject):
            rejects.append(outcome)
        else:
            lines.append(outcome)
    return ChunkResult(b"".join(lines), len(lines), rejects)


# ---------------------------------------------------------------------------------------------------------------
# Resume: what the existing files already hold


@dataclass(slots=True)
class _Scan:
    keep_bytes: int
    file_bytes: int


def _scan_lines(path: Path, accept: Callable[[bytes], bool]) -> _Scan:
    """Length of the longest prefix of whole, accepted lines. A bad line followed by a good one is an error."""
    keep = 0
    offset = 0
    first_bad: int | None = None
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            offset += len(raw)
            if raw.endswith(b"\n") and accept(raw):
                if first_bad is not None:
                    raise BatchError(
                        f"{path}: line {first_bad} is damaged but later lines are whole; this is not what an "
                        "interrupted batch leaves behind. Repair or remove that line, or run with --no-resume to "
                        "start over."
                    )
                keep = offset
            elif first_bad is None:
                first_bad = line_no
    return _Scan(keep_bytes=keep, file_bytes=offset)


def _read_done_reports(path: Path, done: set[str]) -> _Scan:
    def accept(raw: bytes) -> bool:
        if b"\x00" not in raw:
            match = _REPORT_PREFIX.match(raw)
            if match is not None and raw.rstrip(b"\r\n").endswith(b"}"):
                try:
                    done.add(json.loads(b'"' + match.group(1) + b'"'))
                    return True
                except ValueError:
                    pass
        try:  # not our fast shape: accept any JSON object with a string visit_id
            obj = json.loads(raw)
        except ValueError:
            return False
        if isinstance(obj, dict) and isinstance(obj.get("visit_id"), str):
            done.add(obj["visit_id"])
            return True
        return False

    return _scan_lines(path, accept)


def _read_done_rejects(path: Path, done_lines: set[int]) -> _Scan:
    def accept(raw: bytes) -> bool:
        try:
            obj = json.loads(raw)
        except ValueError:
            return False
        line = obj.get("line") if isinstance(obj, dict) else None
        if isinstance(line, int) and not isinstance(line, bool):
            done_lines.add(line)
            return True
        return False

    return _scan_lines(path, accept)


class _Sink:
    """The output and rejects files: locked, repaired on resume, appended in whole lines, fsync'ed per chunk."""

    def __init__(self, output_path: Path, rejects_path: Path, resume: bool) -> None:
        self.output_path = output_path
        self.rejects_path = rejects_path
        self.done_visit_ids: set[str] = set()
        self.done_lines: set[int] = set()
        self.truncated_bytes = 0
        self._rejects: IO[bytes] | None = None
        self._rejects_dirty = False
        try:
            self._out: IO[bytes] = output_path.open("ab")
        except OSError as exc:
            raise BatchError(f"cannot write {output_path}: {exc.strerror}") from exc
        try:
            self._lock()
            self._prepare(resume)
        except BaseException:
            self._out.close()
            raise

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        try:
            fcntl.flock(self._out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise BatchError(f"{self.output_path} is being written by another batch (it is locked)") from exc

    def _prepare(self, resume: bool) -> None:
        if not resume:
            self._out.truncate(0)
            self.rejects_path.unlink(missing_ok=True)
            return
        scan = _read_done_reports(self.output_path, self.done_visit_ids)
        if scan.keep_bytes < scan.file_bytes:
            self._out.truncate(scan.keep_bytes)
            self.truncated_bytes += scan.file_bytes - scan.keep_bytes
        if self.rejects_path.exists():
            scan = _read_done_rejects(self.rejects_path, self.done_lines)
            if scan.keep_bytes < scan.file_bytes:
                os.truncate(self.rejects_path, scan.keep_bytes)
                self.truncated_bytes += scan.file_bytes - scan.keep_bytes
        self.sync()

    def write_reports(self, lines: bytes) -> None:
        self._out.write(lines)

    def write_reject(self, reject: Reject) -> None:
        if self._rejects is None:
            try:
                self._rejects = self.rejects_path.open("ab")
            except OSError as exc:
                raise BatchError(f"cannot write {self.rejects_path}: {exc.strerror}") from exc
        self._rejects.write(json_line(reject.to_dict()))
        self._rejects_dirty = True

    def sync(self) -> None:
        """Make everything written so far durable: after this, a crash loses nothing already counted."""
        self._out.flush()
        os.fsync(self._out.fileno())
        if self._rejects is not None and self._rejects_dirty:
            self._rejects.flush()
            os.fsync(self._rejects.fileno())
            self._rejects_dirty = False

    def close(self) -> None:
        try:
            self.sync()
        finally:
            if self._rejects is not None:
                self._rejects.close()
            self._out.close()  # also releases the lock


# ---------------------------------------------------------------------------------------------------------------
# Parent side


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} lines/s" if speed else "… lines/s", style="progress.data.speed")


def count_lines(path: Path) -> int:
    """Number of lines (a last line without a newline counts), by counting newlines in 1 MiB blocks."""
    count = 0
    last = b"\n"
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (0 if last == b"\n" else 1)


@contextmanager
def _progress_bar(input_path: Path) -> Iterator[Callable[[int], None]]:
    total = count_lines(input_path)
    columns = (
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("lines"),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("batch", total=total)
        yield lambda n: bar.advance(task, n)


_KB_FILE_PREFIX = "zhujian-kb-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _remove_stale_kb_files(folder: Path) -> None:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return
    for path in folder.glob(f"{_KB_FILE_PREFIX}*-*.pickle"):
        pid = path.name.removeprefix(_KB_FILE_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            path.unlink(missing_ok=True)


def _write_kb_file(kb: KnowledgeBase) -> str:
    """The KB pickled to a temporary file named after this process, for the workers to load."""
    _remove_stale_kb_files(Path(tempfile.gettempdir()))
    prefix = f"{_KB_FILE_PREFIX}{os.getpid()}-"
    with tempfile.NamedTemporaryFile(prefix=prefix, suffix=".pickle", delete=False) as fh:
        pickle.dump(kb, fh, protocol=pickle.HIGHEST_PROTOCOL)
        return fh.name


class _Pool:
    """A process pool that can be replaced when a worker dies.

    The knowledge base reaches the workers as a pickle file, not as an initializer argument: spawn writes the
    arguments into a pipe that it only closes once they are written, so a worker dying before it reads 0.5 MB of
    them would block the parent forever. A path is small enough for the pipe buffer. The file is removed when the
    pool closes; a run killed with SIGKILL cannot do that, so the next run removes the files of dead processes.
    """

    def __init__(self, workers: int, kb: KnowledgeBase, build: ReportBuilder) -> None:
        self._workers = workers
        self._build = build
        self._kb_file = _write_kb_file(kb)
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent may have threads (the progress bar, a web server embedding this) and forking
        # a threaded process can deadlock the child.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(self._kb_file, self._build),
        )

    def submit(self, items: list[WorkItem]) -> Future[ChunkResult]:
        return self._executor.submit(process_chunk, items)

    def restart(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._start()

    def __enter__(self) -> _Pool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # On an error or Ctrl-C do not wait for the queued chunks: what is written is whole and resumable.
        try:
            self._executor.shutdown(wait=exc_type is None, cancel_futures=exc_type is not None)
        finally:
            Path(self._kb_file).unlink(missing_ok=True)


class _BatchRun:
    def __init__(
        self,
        input_path: Path,
        sink: _Sink,
        pool: _Pool,
        summary: BatchSummary,
        chunk_size: int,
        advance: Callable[[int], None],
        post_process: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.post_process = post_process
        self.input_path = input_path
        self.sink = sink
        self.pool = pool
        self.summary = summary
        self.chunk_size = chunk_size
        self.advance = advance
        self.max_in_flight = CHUNKS_IN_FLIGHT_PER_WORKER * summary.workers
        self.first_line_of: dict[str, int] = {}
        self.rejected_by_kind: Counter[str] = Counter()
        self.in_flight: dict[Future[ChunkResult], list[WorkItem]] = {}

    def run(self) -> None:
        for chunk in self._chunks():
            self._submit(chunk)
            while len(self.in_flight) >= self.max_in_flight:
                self._collect()
        while self.in_flight:
            self._collect()
        self.summary.rejected_by_kind = dict(self.rejected_by_kind)

    # -- reading -----------------------------------------------------------------------------------------------

    def _chunks(self) -> Iterator[list[WorkItem]]:
        chunk: list[WorkItem] = []
        with self.input_path.open("rb") as source:
            for line_no, raw in enumerate(source, start=1):
                item = self._triage(line_no, raw)
                if item is None:
                    self.advance(1)
                    continue
                chunk.append(item)
                if len(chunk) >= self.chunk_size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def _triage(self, line_no: int, raw: bytes) -> WorkItem | None:
        """The line as work for a worker, or None when it is blank, already done, or rejected here."""
        if line_no == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            return None
        self.summary.lines_read += 1
        visit_id, problem, text = classify_line(raw)

        first_line = self.first_line_of.setdefault(visit_id, line_no) if visit_id is not None else line_no
        if line_no in self.sink.done_lines:
            self.summary.skipped_done += 1
            return None
        if problem is not None:
            self._reject(Reject(line_no, visit_id, *problem))
            return None
        if first_line != line_no:
            reason = f"duplicate visit_id {visit_id!r}: line {first_line} has it already (the first line wins)"
            self._reject(Reject(line_no, visit_id, "duplicate_visit_id", reason))
            return None
        if visit_id is not None and visit_id in self.sink.done_visit_ids:
            self.summary.skipped_done += 1
            return None
        return (line_no, visit_id, text)

    # -- writing -----------------------------------------------------------------------------------------------

    def _reject(self, reject: Reject) -> None:
        self.sink.write_reject(reject)
        self.summary.rejected += 1
        self.rejected_by_kind[reject.kind] += 1

    def _commit(self, result: ChunkResult, lines: int) -> None:
        report_lines = result.report_lines
        if self.post_process is not None and report_lines:
            report_lines = self.post_process(report_lines)
        self.sink.write_reports(report_lines)
        for reject in result.rejects:
            self._reject(reject)
        self.sink.sync()
        self.summary.reported += result.reported
        self.advance(lines)

    def _submit(self, chunk: list[WorkItem]) -> None:
        try:
            self.in_flight[self.pool.submit(chunk)] = chunk
        except BrokenProcessPool:  # the pool died since the last collection
            self._recover([chunk])

    def _collect(self) -> None:
        done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED)
        lost: list[list[WorkItem]] = []
        for future in done:
            chunk = self.in_flight.pop(future)
            try:
                self._commit(future.result(), len(chunk))
            except BrokenProcessPool:
                lost.append(chunk)
        if lost:
            self._recover(lost)

    def _recover(self, lost: list[list[WorkItem]]) -> None:
        """A worker died. Every chunk still in flight dies with the pool: keep what finished before, start a new
        pool, and find the culprit by running the lost records one at a time."""
        for future, chunk in self.in_flight.items():
            try:
                self._commit(future.result(), len(chunk))
            except BrokenProcessPool:
                lost.append(chunk)
        self.in_flight.clear()
        self._restart_pool()
        for chunk in lost:
            for item in chunk:
                self._run_alone(item)

    def _restart_pool(self) -> None:
        self.pool.restart()
        try:  # an empty chunk: does a fresh worker even start? If not, no record is to blame.
            self.pool.submit([]).result()
        except BrokenProcessPool as exc:
            raise BatchError(
                "worker processes die as they start, before any record: check that the knowledge base and the "
                "report function load in a new Python process, and that the main module can be imported (workers "
                "are spawned, so a script piped to stdin or typed interactively cannot start them)"
            ) from exc

    def _run_alone(self, item: WorkItem) -> None:
        try:
            result = self.pool.submit([item]).result()
        except BrokenProcessPool:
            line_no, visit_id, _ = item
            reason = "the worker process died while reporting this record alone (killed or crashed, e.g. out of memory)"
            self._reject(Reject(line_no, visit_id, "worker_died", reason))
            self.sink.sync()
            self.advance(1)
            self._restart_pool()
            return
        self._commit(result, 1)


def _check_paths(input_path: Path, output_path: Path, rejects_path: Path) -> None:
    if not input_path.is_file():
        raise BatchError(f"input {input_path} does not exist or is not a file")
    if not os.access(input_path, os.R_OK):
        raise BatchError(f"input {input_path} is not readable")
    resolved = {"input": input_path.resolve(), "output": output_path.resolve(), "rejects": rejects_path.resolve()}
    if len(set(resolved.values())) < len(resolved):
        raise BatchError(
            f"input, output and rejects must be three different files (got {input_path}, {output_path}, {rejects_path})"
        )
    if not output_path.parent.is_dir():
        raise BatchError(f"the folder of the output {output_path} does not exist")


def run_batch(
    input_path: Path | str,
    output_path: Path | str,
    *,
    workers: int | None = None,
    rejects_path: Path | str | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    kb_path: Path | None = None,
    center: Path | None = None,
    kb: KnowledgeBase | None = None,
    resume: bool = True,
    progress: bool = False,
    build: ReportBuilder = build_report,
    narrator: str | None = None,
    narration_cache: Path | None = None,
) -> BatchSummary:
    """Report every record of a JSON-lines file on a local process pool; see the module docstring for the contract.

    `kb` (an already loaded knowledge base) takes precedence over `kb_path`/`center`. `build` is the per-record
    function (the engine by default); it must be importable by name, since workers are spawned processes.
    Raises BatchError for unusable arguments or an output it must not guess about, KBError for a bad KB.

    `narrator` ('template' or 'llm') adds the `narrative` object to every report line (zhujian.narration.batch):
    workers attach the template narrative; with 'llm' the parent asks the model for each chunk before writing it,
    caching results in `narration_cache` (default `<out>.narration-cache.jsonl`).
    """
    started = time.perf_counter()
    source = Path(input_path)
    output = Path(output_path)
    rejects = Path(rejects_path) if rejects_path is not None else default_rejects_path(output)
    worker_count = default_workers() if workers is None else workers
    if worker_count < 1:
        raise BatchError(f"workers must be at least 1, not {worker_count}")
    if chunk_size < 1:
        raise BatchError(f"chunk size must be at least 1, not {chunk_size}")
    _check_paths(source, output, rejects)
    if kb is None:
        kb = load_kb(kb_path, load_center_config(center) if center else None)

    narration = None
    if narrator is not None:
        from zhujian.narration.batch import BatchNarration, build_report_with_narrative, default_cache_path

        if narrator not in ("template", "llm"):
            raise BatchError(f"unknown narrator {narrator!r}; known: template, llm")
        if build is build_report:
            build = build_report_with_narrative
        if narrator == "llm":
            from zhujian.narration.llm import LLMNarrator

            narration = BatchNarration(LLMNarrator(kb=kb), narration_cache or default_cache_path(output))

    summary = BatchSummary(input_path=source, output_path=output, rejects_path=rejects, workers=worker_count)
    sink = _Sink(output, rejects, resume)
    try:
        summary.truncated_bytes = sink.truncated_bytes
        bar: AbstractContextManager[Callable[[int], None]] = (
            _progress_bar(source) if progress else nullcontext(lambda _n: None)
        )
        with bar as advance, _Pool(worker_count, kb, build) as pool:
            post_process = narration.process if narration is not None else None
            _BatchRun(source, sink, pool, summary, chunk_size, advance, post_process).run()
    finally:
        sink.close()
        if narration is not None:
            narration.close()
            summary.narration = narration.describe()
        summary.elapsed_s = time.perf_counter() - started
    return summary
