"""Fixtures for the service-control tests: an isolated runtime folder on shifted ports.

Destructive tests (start, stop, ports taken) never touch the shared services other suites use:
they run with their own ``runtime_dir`` and every port moved by an offset at which all of them are
free, passed to subprocesses as ``HOTPATH_*`` variables and in-process as ``load_settings``
overrides.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotpath.cluster import process
from hotpath.config import Settings, load_settings

# Every port setting, at its default; the isolated copies add an offset to each.
DEFAULT_PORTS = {
    "REDIS__PORT": 16379,
    "MQTT__PORT": 11883,
    "KAFKA__PORT": 19092,
    "KAFKA__CONTROLLER_PORT": 19093,
    "CASSANDRA__PORT": 19042,
    "CASSANDRA__STORAGE_PORT": 17000,
    "CASSANDRA__JMX_PORT": 17199,
    "ZOOKEEPER__PORT": 12181,
    "DRUID__BROKER_PORT": 18082,
    "DRUID__COORDINATOR_PORT": 18081,
    "DRUID__HISTORICAL_PORT": 18083,
    "DRUID__INDEXER_PORT": 18091,
    "DRUID__DERBY_PORT": 18084,
    "RAY__PORT": 16390,
    "RAY__DASHBOARD_PORT": 18265,
    "SERVE__HTTP_PORT": 18000,
    "SERVE__GRPC_PORT": 19000,
    "CLOUD__POSTGRES__PORT": 15432,
    "CLOUD__LLM__PORT": 18581,
}
# Ray also takes RAY__PORT+1..+9 and its worker range; every candidate stays below 32768.
OFFSETS = (10000, 11000, 12000, 13000, 7000)
_RAY_EXTRA = range(1, 10)


@dataclass
class Isolated:
    settings: Settings
    env: dict[str, str]
    """``HOTPATH_*`` variables selecting the same runtime folder and ports in a subprocess."""
    up_output: str = ""
    up_seconds: float = 0.0

    def hotpath(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env, timeout=timeout)


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("HOTPATH_")}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hotpath.cli", *args], capture_output=True, text=True, env=full, timeout=timeout
    )


def _all_free(offset: int) -> bool:
    ports = [p + offset for p in DEFAULT_PORTS.values()]
    ports += [DEFAULT_PORTS["RAY__PORT"] + offset + i for i in _RAY_EXTRA]
    return all(process.port_free("127.0.0.1", p) for p in ports)


def make_isolated(runtime: Path) -> Isolated:
    offset = next((o for o in OFFSETS if _all_free(o)), None)
    if offset is None:
        pytest.fail(f"no free port block for an isolated runtime at offsets {OFFSETS}")
    runtime.mkdir(parents=True, exist_ok=True)
    shared_jars = load_settings().runtime_dir / "jars"
    if shared_jars.is_dir() and not (runtime / "jars").exists():
        (runtime / "jars").symlink_to(shared_jars)  # reuse the downloaded jars: no second mvn run
    env = {"HOTPATH_RUNTIME_DIR": str(runtime), "HOTPATH_PROFILE": "embedded"}
    env.update({f"HOTPATH_{key}": str(port + offset) for key, port in DEFAULT_PORTS.items()})
    overrides: dict[str, dict] = {}
    for key, port in DEFAULT_PORTS.items():
        *path, field = key.lower().split("__")
        node = overrides
        for part in path:
            node = node.setdefault(part, {})
        node[field] = port + offset
    settings = load_settings(runtime_dir=runtime, **overrides)
    return Isolated(settings, env)


@pytest.fixture
def isolated(tmp_path: Path) -> Isolated:
    """A fresh runtime folder on shifted ports, for one test; stops whatever the test started."""
    iso = make_isolated(tmp_path / "runtime")
    try:
        yield iso
    finally:
        stop_isolated(iso)


def stop_isolated(iso: Isolated) -> None:
    """Stop whatever runs in the isolated runtime; drop Ray's temp dir when it lives in /tmp."""
    from hotpath.cluster import manager
    from hotpath.cluster.ray_head import RayService

    manager.down(iso.settings)
    temp = RayService(iso.settings).temp_dir
    if not temp.is_relative_to(iso.settings.runtime_dir):
        shutil.rmtree(temp, ignore_errors=True)
