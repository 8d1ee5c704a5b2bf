"""The layering of docs/architecture.md holds (import-linter contracts in pyproject.toml), and the
check really catches what it is for: an upward import, a network client in the domain, a cycle.

Each case runs ``lint-imports`` on a copy of the package with one deliberate change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (the test extra)")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache", "--no-logo"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "hotpath", tmp_path / "hotpath", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + "\n" + line + "\n")


def test_the_package_keeps_every_contract() -> None:
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 broken" in out.stdout


def test_an_upward_import_breaks_the_layers(copy: Path) -> None:
    _append(copy / "hotpath/voice/vad.py", "from hotpath.actors import voice_host  # deliberate violation")
    out = _lint(copy)
    assert out.returncode != 0
    assert "hotpath.voice is not allowed to import hotpath.actors" in out.stdout, out.stdout
    assert "hotpath.voice.vad -> hotpath.actors.voice_host" in out.stdout


def test_a_network_client_in_the_domain_breaks_purity(copy: Path) -> None:
    _append(copy / "hotpath/coview/windows.py", "import socket  # deliberate violation")
    out = _lint(copy)
    assert out.returncode != 0
    assert "hotpath.coview is not allowed to import socket" in out.stdout, out.stdout


def test_a_cycle_between_siblings_breaks_acyclicity(copy: Path) -> None:
    # voice.stt is imported by voice.engines; importing back closes a cycle inside one layer.
    _append(copy / "hotpath/voice/stt.py", "from hotpath.voice import engines  # deliberate cycle")
    out = _lint(copy)
    assert out.returncode != 0
    assert "No cycles are allowed in hotpath.voice" in out.stdout, out.stdout
