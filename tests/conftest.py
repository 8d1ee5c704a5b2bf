"""Shared fixtures: settings, and connections to the servers `hotpath services up` started.

Area-specific fixtures live in tests/<area>/conftest.py.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # as the local head runs (hotpath/cluster/ray_head.py)

from hotpath.config import Settings, load_settings  # noqa: E402


@pytest.fixture(scope="session")
def settings() -> Settings:
    """The settings the services were started with (defaults + HOTPATH_* env)."""
    return load_settings()


@pytest.fixture(scope="session")
def ray_session(settings: Settings):
    """A driver connected to the local Ray cluster started by `hotpath services up`."""
    from hotpath.cluster.connect import connect_ray

    yield connect_ray(settings, namespace=f"{settings.ray.namespace}-tests")
