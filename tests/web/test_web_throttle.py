"""Login throttling: per account a growing delay, never a lock that outlasts it; per client address a higher limit
that counts failures across user names; X-Forwarded-For believed only from configured proxies; the counters in the
database, shared by every worker process and exact under concurrent failures."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from web_helpers import SECRET_KEY

from db_testing import PASSWORD, Team, make_team
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.models import LoginThrottleEntry
from zhujian.web.app import create_app
from zhujian.web.security import LoginThrottle, ThrottlePolicy

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class Bench:
    factory: sessionmaker[Session]
    clock: Clock
    team: Team
    make: Any  # (peer address, settings overrides) -> TestClient

    def client(self, address: str = "10.1.1.1", **settings: Any) -> TestClient:
        client: TestClient = self.make(address, **settings)
        return client


def _bench(url: str, kb: KnowledgeBase, policy: ThrottlePolicy) -> Iterator[Bench]:
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    clock = Clock()

    def make(address: str, **settings: Any) -> TestClient:
        # A separate app (and throttle object) per client, sharing only the database: like separate worker processes.
        throttle = LoginThrottle(factory, SECRET_KEY, policy, clock=clock)
        app = create_app(
            Settings(database_url=url, secret_key=SECRET_KEY, **settings), kb=kb, session_factory=factory, throttle=throttle
        )
        return TestClient(app, client=(address, 40000))

    yield Bench(factory, clock, team, make)
    engine.dispose()


@pytest.fixture
def bench(sqlite_url: str, kb: KnowledgeBase) -> Iterator[Bench]:
    yield from _bench(sqlite_url, kb, ThrottlePolicy(account_failures=5, address_failures=10, max_delay=dt.timedelta(seconds=60)))


def _token(client: TestClient, username: str, password: str, headers: dict[str, str] | None = None) -> Any:
    return client.post("/api/auth/token", json={"username": username, "password": password}, headers=headers)


def test_account_delay_grows_but_the_right_password_gets_in_after_it(bench: Bench) -> None:
    client = bench.client()
    for _ in range(5):  # the free failures
        assert _token(client, "chief", "wrong-wrong").status_code == 401
    assert _token(client, "chief", "wrong-wrong").status_code == 401  # the 6th failure sets a 2 s delay
    blocked = _token(client, "chief", PASSWORD)
    assert blocked.status_code == 429
    assert blocked.headers["Retry-After"] == "2"
    assert "登录失败次数过多" in blocked.json()["error"]["message"]
    bench.clock.advance(2.5)
    assert _token(client, "chief", PASSWORD).status_code == 200, "a delay, not a 15-minute lock"


def test_delays_double_up_to_the_cap(bench: Bench) -> None:
    client = bench.client()
    throttle: LoginThrottle = client.app.state.throttle  # type: ignore[attr-defined]
    waits = []
    for n in range(12):
        # Each guess from a new address: the account counter counts them all, no address reaches its limit.
        guesser = bench.client(f"198.51.100.{n + 1}")
        wait = throttle.retry_after("chief", "192.0.2.1")
        if wait is not None:
            bench.clock.advance(wait)
        assert _token(guesser, "chief", "wrong-wrong").status_code == 401
        waits.append(throttle.retry_after("chief", "192.0.2.1") or 0)
    # 5 free failures, then 2, 4, 8, 16, 32 s and the cap (60 s in this test; ZHUJIAN_LOGIN_MAX_DELAY_SECONDS).
    assert waits == [0, 0, 0, 0, 0, 2, 4, 8, 16, 32, 60, 60]


def test_refused_tries_do_not_extend_the_delay(bench: Bench) -> None:
    client = bench.client()
    for _ in range(6):
        _token(client, "chief", "wrong-wrong")
    for _ in range(20):  # hammering while refused
        refused = _token(client, "chief", "wrong-wrong")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    bench.clock.advance(2)
    assert _token(client, "chief", PASSWORD).status_code == 200


def test_a_known_address_is_not_held_back_by_someone_elses_failures(bench: Bench) -> None:
    at_desk = bench.client("10.1.1.1")
    assert _token(at_desk, "chief", PASSWORD).status_code == 200  # the physician's usual workstation
    attacker = bench.client("203.0.113.9")
    for _ in range(9):
        _token(attacker, "chief", "guess-guess")
    assert _token(attacker, "chief", PASSWORD).status_code == 429, "the guesser waits"
    assert _token(bench.client("10.9.9.9"), "chief", PASSWORD).status_code == 429, "so does any new address"
    assert _token(at_desk, "chief", PASSWORD).status_code == 200, "the physician at the usual desk does not"


def test_colleagues_behind_one_address_are_not_locked_out_by_one_account(bench: Bench) -> None:
    nat = bench.client("10.1.1.1")
    for _ in range(8):
        _token(nat, "chief", "wrong-wrong")
    assert _token(nat, "chief", PASSWORD).status_code == 429
    # Fewer failures than the address limit (10): the rest of the department logs in.
    assert _token(nat, "reviewer", PASSWORD).status_code == 200
    assert _token(nat, "auditor", PASSWORD).status_code == 200


def test_spraying_across_user_names_is_throttled_per_address(bench: Bench) -> None:
    sprayer = bench.client("203.0.113.9")
    for n in range(10):
        assert _token(sprayer, f"user{n:02d}", "Spring2026!!").status_code == 401
    # Address limit reached: every further try from it waits, whatever the name — even a right password.
    assert _token(sprayer, "user99", "Spring2026!!").status_code == 401  # the 11th failure sets the delay
    blocked = _token(sprayer, "chief", PASSWORD)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
    assert _token(bench.client("10.1.1.1"), "chief", PASSWORD).status_code == 200, "other addresses are unaffected"


def test_rotating_x_forwarded_for_does_not_evade_the_address_limit(bench: Bench) -> None:
    # No trusted proxy configured (the default): the header is the client's word and is ignored.
    sprayer = bench.client("127.0.0.1")
    for n in range(11):
        response = _token(sprayer, f"user{n:02d}", "Spring2026!!", {"X-Forwarded-For": f"198.51.100.{n}"})
        assert response.status_code == 401
    assert _token(sprayer, "user50", "Spring2026!!", {"X-Forwarded-For": "198.51.100.200"}).status_code == 429


def test_forwarded_client_counts_only_behind_a_trusted_proxy(bench: Bench) -> None:
    proxy = bench.client("10.0.0.2", trusted_proxies="10.0.0.2")
    for n in range(11):
        _token(proxy, f"user{n:02d}", "Spring2026!!", {"X-Forwarded-For": "198.51.100.7"})
    assert _token(proxy, "chief", PASSWORD, {"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    # Another client behind the same proxy is another address.
    assert _token(proxy, "chief", PASSWORD, {"X-Forwarded-For": "198.51.100.8"}).status_code == 200
    # A client that prepends a fake address is still counted as itself (the proxy appends the real one).
    spoofed = _token(proxy, "reviewer", PASSWORD, {"X-Forwarded-For": "198.51.100.8, 198.51.100.7"})
    assert spoofed.status_code == 429


def test_throttle_state_is_shared_by_worker_processes_and_stores_no_typed_name(bench: Bench) -> None:
    first, second = bench.client("10.1.1.1"), bench.client("10.1.1.1")  # two apps, two throttle objects
    typed = "110101199003071234"  # someone typed an ID number into the user-name field
    for n in range(11):
        _token(first if n % 2 else second, typed if n == 0 else f"user{n:02d}", "x" * 12)
    assert _token(second, "chief", PASSWORD).status_code == 429
    assert _token(first, "chief", PASSWORD).status_code == 429
    with bench.factory() as session:
        rows = session.scalars(select(LoginThrottleEntry)).all()
        dump = " ".join(f"{r.scope} {r.key_hash}" for r in rows)
    assert typed not in dump and "10.1.1.1" not in dump and "user01" not in dump
    assert {r.scope for r in rows} == {"account", "address"}


def test_forgotten_counters_are_dropped_at_a_successful_login(bench: Bench) -> None:
    client = bench.client("10.1.1.1")
    for n in range(3):
        _token(bench.client(f"198.51.100.{n + 1}"), f"user{n:02d}", "x" * 12)
    bench.clock.advance(2 * 24 * 3600)  # two days later
    assert _token(client, "chief", PASSWORD).status_code == 200
    with bench.factory() as session:
        rows = session.scalars(select(LoginThrottleEntry)).all()
    assert [r.scope for r in rows] == ["known"], "only this login's own record stays"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_failures_are_all_counted(backend: str, request: pytest.FixtureRequest, kb: KnowledgeBase) -> None:
    from db_testing import emptied

    url = request.getfixturevalue("sqlite_url") if backend == "sqlite" else emptied(request.getfixturevalue("postgres_database"))
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    policy = ThrottlePolicy(account_failures=1000, address_failures=1000)
    throttles = [LoginThrottle(factory, SECRET_KEY, policy) for _ in range(8)]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def fail_five(throttle: LoginThrottle) -> None:
        start.wait()
        try:
            for _ in range(5):
                throttle.record_failure("chief", "10.1.1.1")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail_five, args=(t,)) for t in throttles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert errors == []
        with engine.connect() as connection:
            counts = dict(connection.execute(text("SELECT scope, failures FROM login_throttle")).all())
        assert counts == {"account": 40, "address": 40}
    finally:
        engine.dispose()
