"""Load test of the workbench over loopback: a real `zhujian serve` process, a bounded asyncio client (httpx2 to
set up, a minimal HTTP/1.1 client on asyncio streams for the load itself, see `RawClient`).

1. Seeds a scratch database (SQLite file in a temporary folder, or a scratch PostgreSQL database that is dropped at
   the end) with a chief physician and --reports reports (variants of the bundled examples, through the services).
2. Starts `python -m zhujian serve --workers W` on a free 127.0.0.1 port and waits for /api/health.
3. Steady phase: an open-loop client sends --rate requests/s for --duration s, half `GET /api/worklist?limit=50`
   (varied offsets and filters), half `GET /api/reports/{id}` (the full report JSON). Latency counts from the
   moment a request was due, so a slow server cannot hide behind a slow client. Target: 0 errors, p99 ≤
   --max-p99-ms, at least 95 % of the rate achieved.
4. Overload phase: --overload-clients closed-loop clients hammer the same mix for --overload-seconds; every answer
   must be 200 or 503 with Retry-After (no other status, no timeout), and /api/health must keep answering.
5. Recovery: from the moment the overload stops, one request every 100 ms; recovered when 5 in a row answer 200
   within --max-p99-ms. Must happen within --recovery-limit s; then 5 s at --rate must be error-free again.

    python benchmarks/web_load.py [--database sqlite|postgresql] [--workers 2] [--rate 200] [--duration 60]
        [--overload-clients 600] [--overload-seconds 10] [--check] [--json results.json]

A CI-size run (a few seconds, tests/web/test_web_concurrency.py): --duration 3 --rate 30 --overload-seconds 2.
With --check the exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx

CHIEF = "chief"
LOCAL_TEST_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROBE_INTERVAL = 0.1
RECOVERED_AFTER = 5  # consecutive good probes
IDLE_SECONDS = 10.0  # idle client connections older than this are not reused


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, of the 200 answers
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # answers that are neither 200 nor 503 with Retry-After
    sent: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # seconds, all server processes
    client_cpu: float = 0.0

    def count(self, key: str) -> None:
        self.statuses[key] = self.statuses.get(key, 0) + 1

    @property
    def errors(self) -> int:
        return self.sent - self.statuses.get("200", 0)

    def percentile(self, share: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "seconds": round(self.seconds, 2),
            "rate": round(self.sent / self.seconds, 1) if self.seconds else 0.0,
            "statuses": dict(sorted(self.statuses.items())),
            "problems": self.problems[:10],
            "p50_ms": round(statistics.median(self.latencies) * 1000, 1) if self.latencies else None,
            "p95_ms": round(self.percentile(0.95) * 1000, 1) if self.latencies else None,
            "p99_ms": round(self.percentile(0.99) * 1000, 1) if self.latencies else None,
            "max_ms": round(max(self.latencies) * 1000, 1) if self.latencies else None,
            "server_cpu_ms_per_request": round(self.server_cpu / self.sent * 1000, 2) if self.sent else None,
            "client_cpu_ms_per_request": round(self.client_cpu / self.sent * 1000, 2) if self.sent else None,
        }


# ------------------------------------------------------------------------------------------------ set-up


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scratch_postgres(server_url: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"zhujian_load_{uuid.uuid4().hex[:10]}"
    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f"CREATE DATABASE {name}".encode())
    return make_url(server_url).set(database=name).render_as_string(hide_password=False), name


def _drop_postgres(server_url: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def seed(url: str, reports: int, password: str) -> list[int]:
    """Migrate, create the chief physician, store `reports` records; returns the report ids."""
    from argon2 import PasswordHasher

    from zhujian.kb.loader import default_kb
    from zhujian.settings import Settings
    from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
    from zhujian.storage.migrate import upgrade_database
    from zhujian.storage.services import submit_record
    from zhujian.storage.users import create_user, ensure_admin
    from zhujian.web.demo import demo_records

    upgrade_database(url)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    kb = default_kb()
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the password is not what is measured
    ids = []
    with session_scope(factory) as session:
        admin = ensure_admin(session, Settings(admin_password=password), hasher=hasher)
        assert admin is not None
        actor = admin.as_actor()
        create_user(
            session, username=CHIEF, password=password, display_name="压测主检", role="chief_physician", actor=actor,
            hasher=hasher,
        )
        for record in demo_records(reports):
            ids.append(submit_record(session, record, kb=kb, actor=actor).report_id)
    engine.dispose()
    return ids


def start_server(url: str, port: int, workers: int, log: Path, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ZHUJIAN_DATABASE_URL": url,
        "ZHUJIAN_SECRET_KEY": secrets.token_urlsafe(48),
        **extra_env,
    }
    env.pop("ZHUJIAN_ADMIN_PASSWORD", None)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "zhujian", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (the server and its worker processes),
    from /proc; 0.0 where /proc is not available."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        total += times.get(current, 0.0)
        stack.extend(children.get(current, []))
    return total


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


async def wait_for_health(client: httpx.AsyncClient, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before answering")
        try:
            if (await client.get("/api/health", timeout=2)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the server did not answer /api/health within {seconds:.0f} s")


# ------------------------------------------------------------------------------------------------ load


class ClientError(Exception):
    """A request that got no HTTP answer (timeout, connection closed or refused); the name says which."""


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    """A minimal HTTP/1.1 GET client on asyncio streams with persistent connections (at most `size`). The load
    generator shares the server's two cores: httpx costs 3–5 ms of CPU per request there, this about a tenth,
    which leaves the CPU to the server being measured."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(size)

    async def get(self, path: str, headers: dict[str, str], timeout: float) -> Answer:
        async with self.slots:
            try:
                return await asyncio.wait_for(self._get(path, headers), timeout)
            except TimeoutError as exc:
                raise ClientError("timeout") from exc

    async def _get(self, path: str, headers: dict[str, str]) -> Answer:
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        request += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        for attempt in (1, 2):
            kept = self._kept() if attempt == 1 else None
            reused = kept is not None
            reader, writer = kept if kept is not None else await self._connect()
            try:
                writer.write(request.encode("latin-1"))
                await writer.drain()
                answer, keep = await self._read(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                writer.close()
                # A kept-alive connection the server closed before reading: retried once on a new one (GET).
                if reused and attempt == 1:
                    continue
                raise ClientError(type(exc).__name__) from exc
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return answer
        raise AssertionError("unreachable")

    def _kept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The most recently used idle connection; those idle longer than IDLE_SECONDS are closed (the server
        closes them after its keep-alive timeout, 30 s)."""
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < IDLE_SECONDS:
                return reader, writer
            writer.close()
        return None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise ClientError(type(exc).__name__) from exc

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = {}
        for line in head[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")
            body = b"".join(c[:-2] for c in chunks)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Answer(status, headers, body), headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


class Load:
    def __init__(
        self, client: RawClient, token: str, report_ids: list[int], seed: int, server_pid: int
    ) -> None:
        self.server_pid = server_pid
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}
        self.report_ids = report_ids
        self.random = random.Random(seed)

    def next_request(self, n: int) -> str:
        if n % 2 == 0:
            offset = self.random.choice((0, 0, 0, 50, 100))
            extra = self.random.choice(("", "", "&status=draft", "&level=A", "&level=B"))
            return f"/api/worklist?limit=50&offset={offset}{extra}"
        return f"/api/reports/{self.random.choice(self.report_ids)}"

    async def one(self, phase: Phase, path: str, due: float, timeout: float) -> tuple[int | None, float]:
        phase.sent += 1
        try:
            response = await self.client.get(path, self.headers, timeout)
        except ClientError as exc:
            phase.count(str(exc))
            phase.problems.append(f"{exc}: {path}")
            return None, time.monotonic() - due
        elapsed = time.monotonic() - due
        phase.count(str(response.status_code))
        if response.status_code == 200:
            phase.latencies.append(elapsed)
        elif response.status_code != 503 or "retry-after" not in response.headers:
            phase.problems.append(f"{response.status_code}: {path}")
        return response.status_code, elapsed

    async def open_loop(self, name: str, rate: float, seconds: float, in_flight: int) -> Phase:
        """`rate` requests/s for `seconds`, each sent when due (at most `in_flight` at once)."""
        phase = Phase(name)
        gate = asyncio.Semaphore(in_flight)
        tasks = []
        cpu = (tree_cpu_seconds(self.server_pid), client_cpu_seconds())
        start = time.monotonic()
        total = int(rate * seconds)

        async def send(n: int, due: float) -> None:
            async with gate:
                await self.one(phase, self.next_request(n), due, timeout=30)

        for n in range(total):
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(n, due)))
        await asyncio.gather(*tasks)
        phase.seconds = time.monotonic() - start
        phase.server_cpu = tree_cpu_seconds(self.server_pid) - cpu[0]
        phase.client_cpu = client_cpu_seconds() - cpu[1]
        return phase

    async def closed_loop(self, name: str, clients: int, seconds: float) -> tuple[Phase, float]:
        """`clients` clients, each sending its next request when the last one is answered; returns the phase and
        the moment the load stopped (no new request after it)."""
        phase = Phase(name)
        stop_at = time.monotonic() + seconds

        async def client(k: int) -> None:
            n = k
            while time.monotonic() < stop_at:
                await self.one(phase, self.next_request(n), time.monotonic(), timeout=30)
                n += clients

        start = time.monotonic()
        await asyncio.gather(*(client(k) for k in range(clients)))
        phase.seconds = time.monotonic() - start
        return phase, stop_at

    async def health_while(self, running: asyncio.Task[Any], results: dict[str, Any]) -> None:
        latencies: list[float] = []
        failures = 0
        while not running.done():
            started = time.monotonic()
            try:
                response = await self.client.get("/api/health", {}, 5)
                if response.status_code != 200:
                    failures += 1
            except ClientError:
                failures += 1
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.5)
        results.update(
            probes=len(latencies), failures=failures, max_ms=round(max(latencies, default=0.0) * 1000, 1)
        )

    async def recovery(self, stopped_at: float, max_latency: float, limit: float) -> float | None:
        """Seconds from `stopped_at` until RECOVERED_AFTER probes in a row answered 200 within `max_latency`."""
        good = 0
        first_good: float | None = None
        phase = Phase("recovery")
        while time.monotonic() - stopped_at < limit + 30:
            due = time.monotonic()
            status, elapsed = await self.one(phase, self.next_request(phase.sent), due, timeout=10)
            if status == 200 and elapsed <= max_latency:
                if good == 0:
                    first_good = due
                good += 1
                if good >= RECOVERED_AFTER:
                    assert first_good is not None
                    return max(0.0, first_good - stopped_at)
            else:
                good = 0
            await asyncio.sleep(max(0.0, PROBE_INTERVAL - (time.monotonic() - due)))
        return None


async def run(args: argparse.Namespace, port: int, token: str, report_ids: list[int], pid: int) -> dict[str, Any]:
    client = RawClient("127.0.0.1", port, size=args.overload_clients + 50)
    prober = RawClient("127.0.0.1", port, size=1)  # health is asked on its own connection, not behind the load
    try:
        load = Load(client, token, report_ids, seed=20261203, server_pid=pid)
        max_latency = args.max_p99_ms / 1000
        await load.open_loop("warm-up", max(1.0, args.rate / 4), min(2.0, args.duration), args.in_flight)
        steady = await load.open_loop("steady", args.rate, args.duration, args.in_flight)
        print(f"steady   {json.dumps(steady.summary(), ensure_ascii=False)}", flush=True)

        health: dict[str, Any] = {}
        overload_task = asyncio.create_task(load.closed_loop("overload", args.overload_clients, args.overload_seconds))
        health_task = asyncio.create_task(Load(prober, token, report_ids, 0, pid).health_while(overload_task, health))
        overload, stopped_at = await overload_task
        await health_task
        print(f"overload {json.dumps(overload.summary(), ensure_ascii=False)}", flush=True)
        print(f"health during overload {json.dumps(health)}", flush=True)
        # The overload's last answers may come after it stopped: recovery counts from the stop.
        recovered = await load.recovery(stopped_at, max_latency, args.recovery_limit)
        print(f"recovered after {recovered if recovered is None else round(recovered, 2)} s", flush=True)
        after = await load.open_loop("after", args.rate, min(5.0, args.duration), args.in_flight)
        print(f"after    {json.dumps(after.summary(), ensure_ascii=False)}", flush=True)
    finally:
        client.close()
        prober.close()
    return {
        "steady": steady.summary(),
        "overload": overload.summary(),
        "health_during_overload": health,
        "recovery_seconds": recovered,
        "after_recovery": after.summary(),
        "_phases": (steady, overload, after),
    }


def verdict(args: argparse.Namespace, results: dict[str, Any]) -> list[str]:
    steady, overload, after = results["_phases"]
    missed = []
    if steady.errors:
        missed.append(f"steady phase: {steady.errors} requests did not answer 200 ({steady.statuses})")
    if steady.percentile(0.99) * 1000 > args.max_p99_ms:
        missed.append(f"steady phase: p99 {steady.percentile(0.99) * 1000:.0f} ms > {args.max_p99_ms:.0f} ms")
    if steady.sent / steady.seconds < 0.95 * args.rate:
        missed.append(f"steady phase: {steady.sent / steady.seconds:.0f} requests/s < 95 % of {args.rate}")
    if overload.problems:
        missed.append(f"overload: answers other than 200 or 503 with Retry-After: {overload.problems[:5]}")
    health = results["health_during_overload"]
    if health.get("failures") or not health.get("probes"):
        missed.append(f"overload: /api/health failed {health}")
    if results["recovery_seconds"] is None or results["recovery_seconds"] > args.recovery_limit:
        missed.append(f"no recovery within {args.recovery_limit} s (got {results['recovery_seconds']})")
    if after.errors:
        missed.append(f"after recovery: {after.errors} requests did not answer 200 ({after.statuses})")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("ZHUJIAN_TEST_POSTGRES_URL", LOCAL_TEST_SERVER),
                        help="server on which the scratch PostgreSQL database is created")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--pool-size", type=int, default=None, help="ZHUJIAN_DB_POOL_SIZE of the server")
    parser.add_argument("--pool-timeout", type=float, default=None, help="ZHUJIAN_DB_POOL_TIMEOUT of the server")
    parser.add_argument("--reports", type=int, default=120)
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the steady phase")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the steady phase")
    parser.add_argument("--in-flight", type=int, default=500, help="most client requests open at once")
    parser.add_argument("--overload-clients", type=int, default=600)
    parser.add_argument("--overload-seconds", type=float, default=10.0)
    parser.add_argument("--recovery-limit", type=float, default=10.0, help="seconds allowed to recover")
    parser.add_argument("--max-p99-ms", type=float, default=500.0)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="zhujian-load-"))
    password = secrets.token_urlsafe(16)
    scratch: str | None = None
    if args.database == "sqlite":
        url = f"sqlite:///{folder / 'load.db'}"
    else:
        url, scratch = _scratch_postgres(args.postgres_url)
    process: subprocess.Popen[bytes] | None = None
    try:
        started = time.monotonic()
        report_ids = seed(url, args.reports, password)
        print(f"seeded {len(report_ids)} reports in {time.monotonic() - started:.1f} s ({args.database})", flush=True)
        extra = {}
        if args.pool_size is not None:
            extra["ZHUJIAN_DB_POOL_SIZE"] = str(args.pool_size)
        if args.pool_timeout is not None:
            extra["ZHUJIAN_DB_POOL_TIMEOUT"] = str(args.pool_timeout)
        port = _free_port()
        process = start_server(url, port, args.workers, folder / "server.log", extra)
        base = f"http://127.0.0.1:{port}"

        async def go() -> dict[str, Any]:
            async with httpx.AsyncClient(base_url=base) as client:
                await wait_for_health(client, process, 180)
                login = await client.post("/api/auth/token", json={"username": CHIEF, "password": password})
                login.raise_for_status()
                token = login.json()["access_token"]
            return await run(args, port, token, report_ids, process.pid)

        results = asyncio.run(go())
        missed = verdict(args, results)
        results.pop("_phases")
        results["settings"] = {k: v for k, v in vars(args).items() if k not in ("json", "postgres_url")}
        results["missed"] = missed
        if args.json:
            args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
        print("targets met" if not missed else "targets missed:\n  " + "\n  ".join(missed), flush=True)
        return 1 if missed and args.check else 0
    finally:
        if process is not None:
            stop_server(process)
            if process.returncode not in (0, -signal.SIGTERM):
                print((folder / "server.log").read_text(encoding="utf-8", errors="replace")[-3000:], file=sys.stderr)
        if scratch is not None:
            _drop_postgres(args.postgres_url, scratch)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
