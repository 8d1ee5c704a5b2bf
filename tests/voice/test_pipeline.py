"""Intent -> route -> action -> spoken reply, over real ports: espeak-ng TTS, a local HTTP cloud
server, a SIP call answered by sipp. Only the MQTT publisher is a recording list here (the
end-to-end test uses real Mosquitto)."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess

import pytest

from hotpath.voice.audio import parse_payload
from hotpath.clients.cloud import CloudClient, Webhook
from hotpath.voice.keyword_intent import KeywordIntentClassifier
from hotpath.voice.messages import MESSAGES, SummonTeam, TraceEvent
from hotpath.voice.pipeline import CLOUD_UNREACHABLE, Pipeline
from hotpath.voice.settings import ActionSettings, CloudSettings, VoiceSettings
from hotpath.clients.sip import SipDialer
from hotpath.voice.tts import EspeakTts

from .conftest import ListPublisher


def _pipeline(voice, pub, **kw):
    return Pipeline(voice, classifier=KeywordIntentClassifier(), tts=EspeakTts(), publisher=pub, **kw)


def _tts_audio(pub, device):
    frames = [parse_payload(device, p, max_bytes=10**6) for p in pub.on(f"wearable/{device}/tts")]
    return frames


def test_every_message_round_trips():
    samples = {
        TraceEvent: TraceEvent("intent", "w-1", "u1", 1.0, 2.0, {"intent": "SUMMON_TEAM"}),
        SummonTeam: SummonTeam("acme", "w-1", "dock 4", "need a supervisor", 1.0, "supervisor", "u1"),
    }
    for cls in MESSAGES:
        import dataclasses

        msg = samples.get(cls) or cls(**{f.name: ("x" if f.type in ("str", "str | None") else 0.5)
                                         for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING})
        assert cls.from_dict(json.loads(msg.to_json())) == msg
        assert cls.is_type(msg.to_dict())


async def test_summon_publishes_team_summon_and_speaks():
    voice = VoiceSettings(tenant_id="acme", device_locations={"w-17": "warehouse b"})
    pub = ListPublisher()
    out = await _pipeline(voice, pub).handle("w-17", "u1", "need the supervisor at loading dock four", 0.0)
    [summon] = [json.loads(p) for p in pub.on("team/summon")]
    assert (summon["tenant"], summon["device"], summon["location"], summon["team"]) == ("acme", "w-17", "dock 4", "supervisor")
    assert summon["text"] == "need the supervisor at loading dock four" and summon["time"] > 0
    frames = _tts_audio(pub, "w-17")
    assert frames[0].start and frames[-1].stop and not frames[-1].pcm
    assert sum(len(f.pcm) for f in frames) > 16000  # over half a second of speech
    assert [f.seq for f in frames] == list(range(len(frames)))
    kinds = [e["event"] for e in pub.events("w-17")]
    assert kinds == ["stt-end", "intent", "action", "decision", "tts-start", "tts-end"]
    assert out.reply == "Supervisor summoned to dock 4."


async def test_question_goes_to_cloud_with_tenant_key_and_context(cloud_server):
    voice = VoiceSettings(tenant_id="acme", device_locations={"w-3": "zone b"},
                          cloud=CloudSettings(endpoint=cloud_server.url, api_key="k-123"))
    pub = ListPublisher()
    cloud = CloudClient(voice.cloud.endpoint, voice.cloud.api_key.get_secret_value())
    out = await _pipeline(voice, pub, cloud=cloud).handle("w-3", "u2", "what is the ppe policy", 0.0)
    [req] = cloud_server.requests
    assert req["headers"]["Authorization"] == "Bearer k-123" and req["headers"]["X-Tenant-ID"] == "acme"
    assert (req["json"]["tenant_id"], req["json"]["device_id"], req["json"]["location"]) == ("acme", "w-3", "zone b")
    assert req["json"]["text"] == "what is the ppe policy"
    assert out.reply.startswith("PPE in zone B")
    assert not pub.on("team/summon")
    await cloud.close()


async def test_unreachable_cloud_speaks_and_queues_then_delivers_late(cloud_server):
    voice = VoiceSettings(cloud=CloudSettings(endpoint=cloud_server.url, api_key="k"))
    pub = ListPublisher()
    cloud_server.status = 503
    pipe = _pipeline(voice, pub, cloud=CloudClient(voice.cloud.endpoint, "k"))
    out = await pipe.handle("w-4", "u3", "how do i report a broken scanner", 0.0)
    assert out.reply == CLOUD_UNREACHABLE
    assert _tts_audio(pub, "w-4"), "never silence"
    assert len(pipe.retry) == 1 and pipe.counters["cloud_unreachable"] == 1
    assert any(e["event"] == "error" and e["data"]["code"] == "cloud_unreachable" for e in pub.events("w-4"))
    cloud_server.status = 200
    assert await pipe.retry_cloud() == 1
    assert len(pipe.retry) == 0
    assert any(e["event"] == "cloud" and e["data"].get("late") for e in pub.events("w-4"))


async def test_no_cloud_at_all_still_answers():
    pub = ListPublisher()
    out = await _pipeline(VoiceSettings(), pub, cloud=CloudClient(None, "")).handle("w-5", "u", "what time is the shift change", 0.0)
    assert out.reply == CLOUD_UNREACHABLE and _tts_audio(pub, "w-5")


async def test_empty_transcript_is_answered_not_dropped():
    pub = ListPublisher()
    out = await _pipeline(VoiceSettings(), pub).handle("w-6", "u", "  ", 0.0)
    assert out.intent is None and _tts_audio(pub, "w-6")


@pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp is not installed")
async def test_dial_places_a_sip_call_answered_by_sipp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sipp = subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
                             "-timeout", "20s"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await asyncio.sleep(0.5)
        voice = VoiceSettings(actions=ActionSettings(sip_pbx=f"127.0.0.1:{port}"))
        pub = ListPublisher()
        pipe = _pipeline(voice, pub, dialer=SipDialer(voice.actions.sip_pbx, timeout_s=3))
        out = await pipe.handle("w-7", "u", "call technician nguyen", 0.0)
        assert out.action["via"] == ["sip"] and out.action["extension"] == "1001"
        await pipe.drain()
        [result] = [e for e in pub.events("w-7") if e["data"].get("stage") == "sip-result"]
        assert result["data"]["answered"] and result["data"]["status"] == 200
        # sipp's own verdict: exit 0 means the INVITE/ACK/BYE dialog completed as its uas expects
        assert await asyncio.to_thread(sipp.wait, 15) == 0, sipp.stderr.read()
    finally:
        if sipp.poll() is None:
            sipp.kill()


async def test_dial_without_pbx_goes_to_the_webhook(cloud_server):
    voice = VoiceSettings(actions=ActionSettings(dial_webhook=cloud_server.url.replace("query", "dial")))
    pub = ListPublisher()
    pipe = _pipeline(voice, pub, webhook=Webhook())
    out = await pipe.handle("w-8", "u", "dial the safety officer", 0.0)
    await pipe.drain()
    assert out.action["via"] == ["webhook"]
    [req] = cloud_server.requests
    assert req["path"] == "/v1/dial" and req["json"]["person"] == "safety officer" and req["json"]["extension"] == "1002"


async def test_sip_pbx_down_is_an_error_event_not_a_crash():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody answers there
    voice = VoiceSettings(actions=ActionSettings(sip_pbx=f"127.0.0.1:{port}"))
    pub = ListPublisher()
    pipe = _pipeline(voice, pub, dialer=SipDialer(voice.actions.sip_pbx, timeout_s=1))
    await pipe.handle("w-9", "u", "call maintenance", 0.0)
    await pipe.drain()
    assert pipe.counters["dial_failed"] == 1
    assert any(e["event"] == "error" and e["data"]["code"] == "dial_failed" for e in pub.events("w-9"))
