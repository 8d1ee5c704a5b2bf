"""faster-whisper engine on a tiny Whisper model the test builds (random weights, CTranslate2 format).

This proves loading a model directory, streaming audio through the gRPC service into it, and passing
the tenant's ``initial_prompt`` to the decoder. It does NOT test accuracy: random weights transcribe
nothing meaningful (the builder tilts the output layer so the decoder visibly emits "hhhh...").
No Whisper weights can be downloaded here.
"""

from __future__ import annotations

import socket

import pytest

from hotpath.clients.stt import SttClient
from hotpath.deployments.stt import serve
from hotpath.errors import ConfigError
from hotpath.voice.settings import SttSettings, VoiceSettings
from hotpath.voice.engines import create_engine
from hotpath.voice.stt import SttHints
from hotpath.voice.stt_whisper import WhisperEngine

from .tiny_whisper import build_tiny_whisper


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_whisper(tmp_path_factory.mktemp("tiny-whisper"))


def test_loads_and_decodes_with_the_initial_prompt(tiny_model, speech):
    engine = WhisperEngine(tiny_model, device="cpu", max_new_tokens=12)
    stream = engine.open(SttHints(initial_prompt="Emergency, Help, Alpha-7, Warehouse-B"))
    pcm = speech("Emergency help")
    for i in range(0, len(pcm), 6400):
        assert stream.accept(pcm[i : i + 6400]) is None
    t = stream.finish()
    assert t.engine == "faster-whisper" and t.text.startswith("hh")
    assert 0 < t.audio_s < 3
    # faster-whisper's own record of the options the decode ran with
    assert stream.options.initial_prompt == "Emergency, Help, Alpha-7, Warehouse-B"


def test_bad_model_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        WhisperEngine(tmp_path)


async def test_grpc_service_streams_into_whisper_replicas(tiny_model, speech):
    voice = VoiceSettings(stt=SttSettings(engine="faster-whisper", model_path=tiny_model, device="cpu"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, servicer = await serve(lambda: create_engine(voice), host="127.0.0.1", port=port, replicas=1)
    client = SttClient(f"127.0.0.1:{port}")
    try:
        call = await client.open(device_id="w-9", tenant_id="acme", initial_prompt="Alpha-7, Warehouse-B")
        pcm = speech("Call technician Nguyen")
        for i in range(0, len(pcm), 6400):
            await call.send(pcm[i : i + 6400])
        final = await call.stop()
        assert final.engine == "faster-whisper"
        assert final.text.startswith("hh")
        assert final.alternatives["initial_prompt"] == "Alpha-7, Warehouse-B"
    finally:
        await client.close()
        await server.stop(None)
