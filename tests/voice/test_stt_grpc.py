"""The gRPC STT service with real pocketsphinx replicas, streamed real (espeak-ng) speech."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hotpath.clients.stt import SttClient, SttFailed
from hotpath.deployments.stt import serve
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.engines import create_engine
from hotpath.voice.stt import SttEngine, SttHints, SttStream

SILENCE = b"\x00\x00" * 8000


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _say(client: SttClient, pcm: bytes, device="w-1"):
    call = await client.open(device_id=device, tenant_id="demo", initial_prompt="Alpha-7")
    for i in range(0, len(pcm), 6400):
        await call.send(pcm[i : i + 6400])
    return await call.stop()


class BrokenEngine(SttEngine):
    """A replica whose decoder crashes mid-stream (as a segfaulting or OOM-killed one would)."""

    name = "broken"

    def open(self, hints: SttHints) -> SttStream:
        class S(SttStream):
            def accept(self, pcm):
                raise RuntimeError("decoder crashed")

            def finish(self):
                raise RuntimeError("decoder crashed")

        return S()


@pytest.fixture(scope="module")
def voice():
    return VoiceSettings()


async def test_streams_commands_and_questions(speech, voice):
    port = _port()
    server, servicer = await serve(lambda: create_engine(voice), host="127.0.0.1", port=port, replicas=2)
    client = SttClient(f"127.0.0.1:{port}")
    try:
        cmd, question = await asyncio.gather(
            _say(client, SILENCE + speech("Need a supervisor at loading dock 4") + SILENCE),
            _say(client, SILENCE + speech("What is the PPE policy for zone B?") + SILENCE),
        )
        assert cmd.source in ("grammar", "grammar-unsure") and "supervisor" in cmd.text and "dock four" in cmd.text, cmd
        assert cmd.partials, "partial transcripts stream while audio flows"
        assert question.source in ("lm", "lm-full") and question.text.startswith("what"), question
        health = await client.health()
        assert (health.engine, health.replicas, health.free) == ("pocketsphinx", 2, 2)
    finally:
        await client.close()
        await server.stop(None)


async def test_dead_replica_is_retired_and_others_keep_working(speech, voice):
    built = []

    def factory():
        built.append(1)
        return BrokenEngine() if len(built) == 1 else create_engine(voice)

    port = _port()
    server, servicer = await serve(factory, host="127.0.0.1", port=port, replicas=2)
    client = SttClient(f"127.0.0.1:{port}")
    pcm = SILENCE + speech("Call technician Nguyen") + SILENCE
    try:
        # the first lease gets the broken replica (the pool hands them out in order)
        with pytest.raises(SttFailed) as err:
            await _say(client, pcm)
        assert err.value.code == "replica-failed"
        ok = await _say(client, pcm)
        assert "nguyen" in ok.text
        assert servicer.pool.failed == 1
        for _ in range(100):  # the retired replica is rebuilt in the background
            if servicer.pool.free == 2:
                break
            await asyncio.sleep(0.1)
        assert servicer.pool.free == 2
    finally:
        await client.close()
        await server.stop(None)


async def test_busy_and_bad_requests_are_answered_with_errors(voice, speech):
    port = _port()
    server, _ = await serve(lambda: create_engine(voice), host="127.0.0.1", port=port, replicas=1, lease_timeout_s=0.2)
    client = SttClient(f"127.0.0.1:{port}")
    try:
        held = await client.open(device_id="w-1", tenant_id="demo")
        await held.send(SILENCE)
        with pytest.raises(SttFailed) as err:
            await _say(client, SILENCE, device="w-2")
        assert err.value.code == "busy"
        held.cancel()
        with pytest.raises(SttFailed) as err:
            call = await client.open(device_id="w-3", tenant_id="demo", sample_rate=8000)
            await call.stop()
        assert err.value.code == "bad-request"
    finally:
        await client.close()
        await server.stop(None)


async def test_unreachable_service_is_an_error_not_a_hang():
    client = SttClient(f"127.0.0.1:{_port()}", timeout_s=2.0)
    with pytest.raises(SttFailed):
        await _say(client, SILENCE)
    await client.close()
