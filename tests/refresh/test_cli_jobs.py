"""``hotpath jobs``: durations, the cron schedule, and one clear line when the cluster is not there."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hotpath.clients.ray_jobs import parse_duration, runtime_env
from hotpath.config import load_settings
from hotpath.errors import BadInput


def _hotpath(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HOTPATH_")}
    return subprocess.run([sys.executable, "-m", "hotpath.cli", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=120)  # fmt: skip


def test_parse_duration() -> None:
    assert parse_duration("24h") == 86400
    assert parse_duration("90m") == 5400
    assert parse_duration("45") == 45
    assert parse_duration("2d") == 172800
    for bad in ("", "3x", "-1h", "0"):
        with pytest.raises(BadInput):
            parse_duration(bad)


def test_runtime_env_ships_the_code_not_a_local_path() -> None:
    env = runtime_env(load_settings())
    assert os.path.isdir(env["working_dir"]) and ".hotpath" in env["excludes"] and ".venv" in env["excludes"]
    assert "HOTPATH_JOB_SETTINGS" in env["env_vars"]


def test_schedule_cron_lines() -> None:
    out = _hotpath("jobs", "schedule", "--cron", "--daily-at", "04:30", "--every", "4h")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "CRON_TZ=UTC"
    assert lines[1] == "30 4 * * * hotpath jobs submit semantic-refresh --wait"
    assert lines[2].startswith("30 0,8,12,16,20 * * * ") and lines[2].endswith("--micro-batch --wait")


def test_bad_input_and_no_cluster_are_one_line() -> None:
    out = _hotpath("jobs", "submit", "semantic-refresh", "--hot-since", "soon")
    assert out.returncode == 2 and "invalid --hot-since" in out.stderr and "Traceback" not in out.stderr
    out = _hotpath("jobs", "status", "raysubmit_x", env={"HOTPATH_RAY__DASHBOARD_PORT": "1"})
    assert out.returncode == 2 and "no Ray job API at http://127.0.0.1:1" in out.stderr
    assert "Traceback" not in out.stderr
