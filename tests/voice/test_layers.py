"""Domain modules of the voice edge import no Ray and no network client."""

from __future__ import annotations

import subprocess
import sys

DOMAIN = [
    "hotpath.voice.audio", "hotpath.voice.vad", "hotpath.voice.keyword_intent",
    "hotpath.voice.routing", "hotpath.voice.messages", "hotpath.voice.pipeline",
    "hotpath.voice.stt", "hotpath.voice.stt_pocketsphinx", "hotpath.voice.grammar", "hotpath.voice.tts",
    "hotpath.voice.settings", "hotpath.voice.device", "hotpath.voice.ingress", "hotpath.voice.retry",
    "hotpath.voice.engines", "hotpath.voice.context", "hotpath.voice.context_compile", "hotpath.voice.context_rhino",
    "hotpath.voice.context_live",
]


def test_domain_imports_no_ray_or_network_clients():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in DOMAIN)
        + "bad = [m for m in ('ray', 'grpc', 'aiomqtt', 'paho', 'httpx', 'redis') if m in sys.modules]\n"
        + "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_stubs_are_rebuilt_when_missing(tmp_path):
    import shutil

    from hotpath.proto.build import ensure_generated

    pkg = tmp_path / "x" / "proto"  # ensure_generated writes beside the .proto
    pkg.mkdir(parents=True)
    shutil.copy(__import__("hotpath.proto", fromlist=["x"]).__path__[0] + "/stt.proto", pkg / "stt.proto")
    assert ensure_generated(pkg) == ["stt.proto"]
    assert (pkg / "stt_pb2.py").exists() and (pkg / "stt_pb2_grpc.py").exists()
    assert ensure_generated(pkg) == []  # up to date: nothing to do
