"""Helpers of the web tests: the app's test secret key, API tokens and example records (database helpers are in
tests/db_testing.py)."""

from __future__ import annotations

import copy
from typing import Any

from zhujian.examples import load_example
from zhujian.storage.values import Actor
from zhujian.web.security import create_api_token

SECRET_KEY = "test-secret-key-" + "x" * 32


def bearer(actor: Actor) -> dict[str, str]:
    token, _ = create_api_token(SECRET_KEY, actor.user_id)
    return {"Authorization": f"Bearer {token}"}


def example_record(name: str = "female_67_critical", visit_id: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(load_example(name))
    if visit_id is not None:
        record["visit_id"] = visit_id
    return record
