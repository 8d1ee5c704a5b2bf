"""gRPC stubs are generated at build time (hotpath.proto.build), never at import: a read-only install
imports, and a checkout without stubs gets one clear error and no files written."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "site"
    shutil.copytree(ROOT / "hotpath", dst / "hotpath",
                    ignore=shutil.ignore_patterns("__pycache__", "*_pb2.py", "*_pb2_grpc.py", "*_pb2.pyi"))
    return dst


def _run(site: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=site, capture_output=True, text=True, timeout=120)


def _read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_a_read_only_install_with_built_stubs_imports(tmp_path: Path) -> None:
    site = _copy(tmp_path)
    build = _run(site, "from hotpath.proto.build import ensure_generated; print(ensure_generated())")
    assert build.returncode == 0 and "stt.proto" in build.stdout, build.stderr
    _read_only(site)
    try:
        out = _run(site, "import hotpath.clients.stt, hotpath.deployments.stt; print('ok')")
    finally:
        _writable(site)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_missing_stubs_are_one_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    site = _copy(tmp_path)
    before = sorted(p.name for p in (site / "hotpath/proto").iterdir())
    out = _run(site, "import hotpath.clients.stt")
    assert out.returncode != 0
    assert "the generated protobuf stub hotpath.proto.stt_pb2 is missing" in out.stderr
    assert sorted(p.name for p in (site / "hotpath/proto").iterdir()) == before
