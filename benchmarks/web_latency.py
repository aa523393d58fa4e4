"""Workbench latency over loopback: worklist page and review page p50/p95 with N reports in PostgreSQL, and
POST /api/records requests per second.

Reuses the storage benchmark's loader (`benchmarks/storage_worklist.py`: scratch database, golden cases stored
through the services, cloned with COPY to N reports), then starts uvicorn on a free 127.0.0.1 port in a thread and
times real HTTP requests with a logged-in chief physician. The scratch database is dropped at the end.

    python benchmarks/web_latency.py [--reports 20000] [--runs 100] [--posts 50] [--database-url URL]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import re
import socket
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import psycopg
import storage_worklist as loader
from sqlalchemy.engine import make_url

from zhujian.examples import load_example
from zhujian.kb.loader import default_kb
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.migrate import upgrade_database

PASSWORD = "benchmark password"  # set by the storage benchmark's seeding


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    import uvicorn

    from zhujian.web.app import create_app

    server_url = loader._server_url(argparse.Namespace(database_url=args.database_url))
    database = f"zhujian_webbench_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=database).render_as_string(hide_password=False)
    admin_db = make_url(server_url).database or "postgres"
    with psycopg.connect(loader._libpq(server_url, admin_db), autocommit=True, connect_timeout=5) as connection:
        connection.execute(f"CREATE DATABASE {database}".encode())
    try:
        started = time.perf_counter()
        upgrade_database(url)
        _, template_ids = loader._seed(url)
        loader._clone(url, database, template_ids, args.reports, 20261122)
        report_ids = list(range(loader.FIRST_ID, loader.FIRST_ID + args.reports))
        print(f"loaded {args.reports} reports in {time.perf_counter() - started:.1f} s", flush=True)
        engine = create_db_engine(url, pool_size=5)
        factory = create_session_factory(engine)
        app = create_app(
            Settings(database_url=url, secret_key="benchmark-" + "k" * 40), kb=default_kb(), session_factory=factory
        )
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        login_page = opener.open(f"{base}/login").read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)  # type: ignore[union-attr]
        body = urllib.parse.urlencode({"username": "chief", "password": PASSWORD, "csrf_token": token}).encode()
        opener.open(f"{base}/login", data=body).read()

        def timed(path: str) -> float:
            start = time.perf_counter()
            with opener.open(base + path) as response:
                response.read()
            return time.perf_counter() - start

        timed("/")  # warm-up
        print(f"worklist page ({args.runs} runs): {_percentiles([timed('/') for _ in range(args.runs)])}")
        sample = random.Random(1).choices(report_ids, k=args.runs)
        print(f"review page ({args.runs} runs): {_percentiles([timed(f'/reports/{rid}') for rid in sample])}")

        token_body = json.dumps({"username": "chief", "password": PASSWORD}).encode()
        request = urllib.request.Request(
            f"{base}/api/auth/token", data=token_body, headers={"Content-Type": "application/json"}
        )
        api_token = json.loads(urllib.request.urlopen(request).read())["access_token"]
        record: dict[str, Any] = load_example("male_56_metabolic")
        started = time.perf_counter()
        for n in range(args.posts):
            record["visit_id"] = f"BENCH-POST-{n}"
            post = urllib.request.Request(
                f"{base}/api/records",
                data=json.dumps(record).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_token}"},
            )
            urllib.request.urlopen(post).read()
        elapsed = time.perf_counter() - started
        print(f"POST /api/records: {args.posts / elapsed:.1f} requests/s ({args.posts} sequential requests)")
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
    finally:
        with psycopg.connect(loader._libpq(server_url, admin_db), autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)".encode())


if __name__ == "__main__":
    main()
