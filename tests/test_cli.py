"""The CLI turns hotpath errors into one line on stderr, never a stack trace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _hotpath(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith("HOTPATH_")}
    full_env = {**base, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "hotpath.cli", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_help_lists_groups() -> None:
    out = _hotpath("--help")
    assert out.returncode == 0
    assert "bench" in out.stdout


def test_bad_config_is_one_line_without_traceback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("redis:\n  port: -3\n")
    out = _hotpath("services", "status", env={"HOTPATH_CONFIG": str(cfg)})
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "redis.port" in lines[0]
