"""Fixtures of the QC tests."""

from __future__ import annotations

import pytest

from zhujian.kb.loader import KnowledgeBase, default_kb


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return default_kb()
