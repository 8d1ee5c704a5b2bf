"""End to end, as a watch would: espeak-ng speech published through real Mosquitto into the voice
edge on the local Ray cluster (ingress actor -> per-device stream actors -> gRPC STT actor with
pocketsphinx replicas -> intent -> action -> espeak-ng reply), plus the bad-input cases over MQTT."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import aiomqtt
import pytest

from hotpath.config import Settings
from hotpath.graphs.voice_edge_app import stop_voice, start_voice
from hotpath.streams.mqtt_login import client_login
from hotpath.voice.audio import encode_framed
from hotpath.voice.settings import CloudSettings, LimitSettings, SttSettings, VoiceSettings
from bench.voice_sim import SimulatedWatch

from .conftest import CloudServer

pytestmark = [pytest.mark.ray, pytest.mark.services]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cloud():
    s = CloudServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def edge(settings: Settings, ray_session, cloud):
    with socket.socket() as s:
        if s.connect_ex((settings.mqtt.host, settings.mqtt.port)) != 0:
            pytest.fail(f"Mosquitto is not up at {settings.mqtt.host}:{settings.mqtt.port}: run hotpath services up")
    tag = "-test-" + uuid.uuid4().hex[:6]
    voice = VoiceSettings(
        tenant_id="acme",
        topic_prefix=f"t{tag}/",
        device_locations={"w-17": "warehouse b", "w-3": "zone b"},
        stt=SttSettings(grpc_port=_free_port(), replicas=2),
        cloud=CloudSettings(endpoint=cloud.url, api_key="acme-key"),
        limits=LimitSettings(idle_retire_s=3.0, max_devices=6),
    )
    s = settings.model_copy(update={"voice": voice})
    lines = start_voice(s, tag=tag, detached=False)
    assert any("gRPC" in line for line in lines)
    yield s
    stop_voice(s, tag=tag)


async def _watch(s: Settings, device: str) -> SimulatedWatch:
    return await SimulatedWatch(device, s.mqtt.host, s.mqtt.port, prefix=s.voice.topic_prefix).__aenter__()


async def test_command_and_question_end_to_end(edge, speech, cloud):
    s = edge
    summons: list[dict] = []

    async def collect(client):
        async for msg in client.messages:
            summons.append(json.loads(msg.payload))

    async with aiomqtt.Client(s.mqtt.host, s.mqtt.port, **client_login("edge", s)) as team:
        await team.subscribe(s.voice.topic_prefix + "team/summon", qos=1)
        reader = asyncio.get_running_loop().create_task(collect(team))
        w17, w3 = await _watch(s, "w-17"), await _watch(s, "w-3")
        try:
            cmd, question = await asyncio.gather(
                w17.speak(speech("Need a supervisor at loading dock 4"), text="cmd"),
                w3.speak(speech("What is the PPE policy for zone B?"), text="q"),
            )
            await asyncio.gather(w17.wait_reply(cmd, 30), w3.wait_reply(question, 30))
            acted = cmd
            decision = next((e for _, e in cmd.events if e["event"] == "decision"), None)
            if decision is not None and decision["data"]["decision"] == "confirm":
                # an unsure command is read back ("Send a supervisor to dock 4?"): the wearer says yes
                assert decision["data"]["proposed"]["location"] == "dock 4", decision
                yes = await w17.speak(speech("yes"), text="yes")
                await w17.wait_reply(yes, 30)
                acted = yes
            for _ in range(50):
                if summons:
                    break
                await asyncio.sleep(0.1)
        finally:
            reader.cancel()
            await w17.__aexit__()
            await w3.__aexit__()
    assert len(summons) == 1, [e for _, e in cmd.events]
    summon = summons[0]
    # the published action and its slots
    assert (summon["tenant"], summon["device"], summon["team"], summon["location"]) == ("acme", "w-17", "supervisor", "dock 4")
    assert "supervisor" in summon["text"]
    # the spoken reply: framed PCM, start..stop, over half a second of audio
    assert cmd.tts[0][1].start and cmd.tts[-1][1].stop and len(cmd.reply_pcm) > 16000
    intent = cmd.event("intent")
    assert intent["data"]["intent"] == "SUMMON_TEAM" and intent["data"]["route"] == "action"
    names = [e["event"] for _, e in cmd.events] + [e["event"] for _, e in acted.events]
    for step in ("vad-start", "vad-end", "stt-end", "intent", "decision", "action", "tts-start", "tts-end"):
        assert step in names, names
    assert acted.event("action")["since_end_ms"] >= 0
    # the question reached the cloud client with the tenant key, and its answer was spoken
    [req] = [r for r in cloud.requests if r["json"].get("device_id") == "w-3"]
    assert req["headers"]["Authorization"] == "Bearer acme-key" and req["json"]["tenant_id"] == "acme"
    assert req["json"]["text"].startswith("what") and req["json"]["location"] == "zone b"
    assert question.event("tts-start")["data"]["text"].startswith("PPE in zone B")
    assert len(question.reply_pcm) > 16000


async def test_bad_input_gets_error_events_and_others_keep_working(edge, speech):
    s = edge
    bad, good = await _watch(s, "w-bad"), await _watch(s, "w-good")
    try:
        bad.current = None
        await bad.publish_raw(b"\x01\x02\x03")  # odd-length PCM
        await bad.publish_raw(b"\x00" * 200_000)  # oversized
        await bad.publish_raw(encode_framed(b"\x00\x00" * 800, seq=0, rate=8000))  # wrong sample rate
        await bad.publish_raw(encode_framed(b"\x00\x00", seq=0)[:7])  # truncated header
        for i in range(60):  # a flood: 60 x 200 ms at once, far beyond real time
            await bad.publish_raw(encode_framed(b"\x00\x00" * 3200, seq=100 + i))
        spoken = await good.speak(speech("Emergency help"), text="e")
        await good.wait_reply(spoken, 30)
        await asyncio.sleep(0.5)
    finally:
        await bad.__aexit__()
        await good.__aexit__()
    codes = {e["data"]["code"] for e in bad.errors}
    assert {"bad_payload", "bad_sample_rate", "flood_dropped"} <= codes, codes
    assert spoken.event("intent")["data"]["intent"] == "EMERGENCY"
    assert len(spoken.reply_pcm) > 8000
    import ray

    stats = ray.get(ray.get_actor("voice-ingress" + s.voice.topic_prefix[1:-1]).stats.remote())
    c = stats["counters"]
    assert c["bad_payload"] >= 3 and c["bad_sample_rate"] >= 1 and c["flood_dropped"] >= 1


async def test_idle_streams_are_retired(edge, speech):
    import ray

    ingress = ray.get_actor("voice-ingress" + edge.voice.topic_prefix[1:-1])
    w = await _watch(edge, "w-idle")
    try:
        await w.publish_raw(encode_framed(b"\x00\x00" * 3200, seq=0))
        await asyncio.sleep(0.5)
        assert "w-idle" in ray.get(ingress.stats.remote())["devices"]
        for _ in range(40):
            await asyncio.sleep(0.5)
            if "w-idle" not in ray.get(ingress.stats.remote())["devices"]:
                break
        assert "w-idle" not in ray.get(ingress.stats.remote())["devices"]
    finally:
        await w.__aexit__()


def test_voice_say_cli_does_the_same_by_hand(edge, monkeypatch, capsys):
    """``hotpath voice say "..." --device w-17`` against the running edge (its topic prefix via env)."""
    from hotpath.cli import main

    monkeypatch.setenv("HOTPATH_VOICE__TOPIC_PREFIX", edge.voice.topic_prefix)
    try:
        main(["voice", "say", "Need a supervisor at loading dock 4", "--device", "w-17", "--json"])
    except SystemExit as done:
        assert done.code in (0, None)
    out = json.loads(capsys.readouterr().out)
    [summon] = out["summons"]
    assert (summon["device"], summon["team"], summon["location"]) == ("w-17", "supervisor", "dock 4")
    assert any(e["event"] == "tts-start" for e in out["events"])
