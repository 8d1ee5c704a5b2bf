"""Two tenants on one broker, end to end: the warehouse (industrial context) and a home (lighting
context) each with their own topic prefix, STT grammar and pipeline; each understands only its own
commands. Speech through real Mosquitto into the edge on the local Ray cluster."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from pathlib import Path

import aiomqtt
import pytest

from hotpath.config import Settings
from hotpath.graphs.voice_edge_app import start_voice, stop_voice
from hotpath.streams.mqtt_login import client_login
from hotpath.voice.settings import LimitSettings, SttSettings, TenantSettings, VoiceSettings
from bench.voice_sim import SimulatedWatch

pytestmark = [pytest.mark.ray, pytest.mark.services]

HOME = Path(__file__).resolve().parents[2] / "contexts" / "examples" / "home_lighting.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def edges(settings: Settings, ray_session):
    with socket.socket() as s:
        if s.connect_ex((settings.mqtt.host, settings.mqtt.port)) != 0:
            pytest.fail(f"Mosquitto is not up at {settings.mqtt.host}:{settings.mqtt.port}: run hotpath services up")
    tag = "-ten-" + uuid.uuid4().hex[:6]
    voice = VoiceSettings(
        tenant_id="acme", topic_prefix=f"a{tag}/", classifier="keyword",
        stt=SttSettings(grpc_port=_free_port(), replicas=1),
        limits=LimitSettings(idle_retire_s=3.0, max_devices=4),
        tenants=[TenantSettings(tenant_id="home", topic_prefix=f"h{tag}/", context=HOME, grpc_port=_free_port())],
    )
    s = settings.model_copy(update={"voice": voice})
    lines = start_voice(s, tag=tag, detached=False)
    assert any(line.startswith("voice (home) STT gRPC") for line in lines), lines
    yield s
    stop_voice(s, tag=tag)


async def _say(s: Settings, prefix: str, device: str, pcm: bytes, text: str):
    w = await SimulatedWatch(device, s.mqtt.host, s.mqtt.port, prefix=prefix).__aenter__()
    try:
        spoken = await w.speak(pcm, text=text)
        await w.wait_reply(spoken, 40)
        decision = next((e for _, e in spoken.events if e["event"] == "decision"), None)
        if decision is not None and decision["data"]["decision"] == "confirm":
            yes = await w.speak(_speech_cache["yes"], text="yes")
            await w.wait_reply(yes, 40)
            spoken.events.extend(yes.events)
        return spoken
    finally:
        await w.__aexit__()


_speech_cache: dict[str, bytes] = {}


async def test_each_tenant_understands_only_its_own_commands(edges, speech):
    s = edges
    home, acme = s.voice.tenants[0].topic_prefix, s.voice.topic_prefix
    _speech_cache["yes"] = speech("yes")
    got: list[tuple[str, dict]] = []

    async def collect(client):
        async for msg in client.messages:
            got.append((str(msg.topic), json.loads(msg.payload)))

    async with aiomqtt.Client(s.mqtt.host, s.mqtt.port, **client_login("edge", s)) as c:
        for p in (home, acme):
            await c.subscribe(p + "lights/#", qos=1)
            await c.subscribe(p + "team/summon", qos=1)
        reader = asyncio.get_running_loop().create_task(collect(c))
        try:
            lights = speech("Turn on the kitchen lights")
            summon = speech("Need a supervisor at loading dock 4")
            on_home = await _say(s, home, "h-1", lights, "lights at home")
            await _say(s, home, "h-1", summon, "summon at home")
            await _say(s, acme, "a-1", lights, "lights at the warehouse")
            await asyncio.sleep(1.0)
        finally:
            reader.cancel()
    topics = [t for t, _ in got]
    # home understood its lighting command, and nothing else happened anywhere
    trace = [(e["event"], e.get("data")) for _, e in on_home.events if e["event"] in ("stt-end", "intent", "decision")]
    assert topics == [f"{home}lights/kitchen/set"], (topics, trace)
    assert got[0][1]["state"] == "on" and got[0][1]["tenant_id"] == "home"
