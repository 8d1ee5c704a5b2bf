"""Voice fixtures: speech synthesized with espeak-ng (resampled with sox to PCM16 mono 16 kHz)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from hotpath.voice.settings import VoiceSettings

SILENCE_1S = b"\x00\x00" * 16000


def synthesize(text: str, cache: Path) -> bytes:
    """PCM16 mono 16 kHz of ``text`` spoken by espeak-ng (cached by text)."""
    key = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = cache / f"{key}.wav"
    if not out.exists():
        raw = cache / f"{key}.raw.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True, timeout=30)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True, timeout=30)
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.readframes(w.getnframes())


@pytest.fixture(scope="session")
def speech(tmp_path_factory):
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.fail("espeak-ng and sox are needed to synthesize test speech")
    cache = tmp_path_factory.mktemp("speech")
    return lambda text: synthesize(text, cache)


@pytest.fixture()
def voice_settings() -> VoiceSettings:
    return VoiceSettings()


class CloudServer:
    """A real local HTTP server standing in for the cloud assistant (and for webhooks)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[dict] = []
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"{}")})
                payload = json.dumps({"text": "PPE in zone B means a hard hat and gloves."}).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1/query"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def cloud_server():
    s = CloudServer()
    yield s
    s.close()


class ListPublisher:
    """The Publisher port, recording instead of sending (the MQTT one is tested end to end)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        self.sent.append((topic, payload))

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p in self.sent if t == topic]

    def events(self, device: str) -> list[dict]:
        import json

        return [json.loads(p) for p in self.on(f"wearable/{device}/events")]
