"""Fixtures shared by the contract suites: unique names so parallel and repeated runs never collide."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def uniq() -> str:
    """A short unique token for key prefixes, topic names and channel names."""
    return uuid.uuid4().hex[:10]
