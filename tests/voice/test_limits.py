"""Bounds without Ray: the ingress refuses bad input per device, a stream's queue is bounded."""

from __future__ import annotations

import asyncio
import json

from hotpath.voice.device import VoiceStream
from hotpath.voice.ingress import VoiceIngress
from hotpath.config import load_settings
from hotpath.clients.stt import SttClient
from hotpath.voice.audio import AudioChunk, encode_framed
from hotpath.voice.keyword_intent import KeywordIntentClassifier
from hotpath.voice.ingress import FloodGuard, device_from_topic
from hotpath.voice.pipeline import Pipeline
from hotpath.voice.settings import LimitSettings, VoiceSettings
from hotpath.voice.tts import EspeakTts

from .conftest import ListPublisher


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_flood_guard_allows_real_time_and_cuts_a_flood():
    clock = Clock()
    g = FloodGuard(rate=1.5, burst_s=3.0, clock=clock)
    assert all(g.allow(0.2) for _ in range(15))  # 3 s burst
    assert not g.allow(0.2)
    clock.t += 1.0  # one second later: 1.5 s of audio allowed again
    assert sum(g.allow(0.2) for _ in range(10)) == 7


def test_topics():
    assert device_from_topic("wearable/w-17/audio") == "w-17"
    assert device_from_topic("site/wearable/w-17/audio", "site/") == "w-17"
    for bad in ("wearable/w 17/audio", "wearable/w-17/tts", "wearable//audio", "x/w-1/audio", "wearable/" + "a" * 70 + "/audio"):
        assert device_from_topic(bad) is None


async def test_ingress_refuses_per_device_and_caps_devices():
    pub = ListPublisher()
    got: dict[str, list] = {}

    class Sink:
        def __init__(self, d):
            self.d = d

        def push(self, chunk):
            got.setdefault(self.d, []).append(chunk)

    ing = VoiceIngress(VoiceSettings(limits=LimitSettings(max_devices=2)), publisher=pub, spawn=Sink)
    ok = encode_framed(b"\x00\x00" * 3200, seq=0)
    assert ing.on_message("wearable/a/audio", ok)
    assert ing.on_message("wearable/b/audio", ok)
    assert not ing.on_message("wearable/c/audio", ok)  # third device: refused
    assert not ing.on_message("wearable/a/audio", b"\x01")
    assert not ing.on_message("wearable/a/audio", encode_framed(b"\x00\x00", seq=1, rate=44100))
    assert not ing.on_message("not/a/topic", ok)
    await asyncio.sleep(0.05)
    assert [c.arrival for c in got["a"]] == [1] and [c.arrival for c in got["b"]] == [1]
    c = ing.counters
    assert (c["too_many_devices"], c["bad_payload"], c["bad_sample_rate"], c["bad_topic"]) == (1, 1, 1, 1)
    codes = [json.loads(p)["data"]["code"] for t, p in pub.sent]
    assert sorted(codes) == ["bad_payload", "bad_sample_rate", "too_many_devices"]


async def test_stream_queue_is_bounded_and_restores_arrival_order():
    voice = VoiceSettings(limits=LimitSettings(max_inflight_chunks=4))
    pub = ListPublisher()
    pipe = Pipeline(voice, classifier=KeywordIntentClassifier(), tts=EspeakTts(), publisher=pub)
    stream = VoiceStream("w-1", voice, publisher=pub, stt=SttClient("127.0.0.1:9"), pipeline=pipe)
    chunks = [AudioChunk("w-1", b"\x00\x00" * 3200, arrival=n) for n in (2, 1, 3, 4, 5, 6)]
    accepted = [stream.push(c) for c in chunks]  # no await between: the worker has not run yet
    assert accepted == [True, True, True, True, False, False]
    assert stream.counters["flood_dropped"] == 2
    await stream.drain(2.0)
    assert stream.stream.samples_in == 4 * 3200  # 2,1,3,4 processed in the order 1,2,3,4
    await asyncio.sleep(0.05)
    assert any(json.loads(p)["data"].get("code") == "flood_dropped" for _, p in pub.sent)


def test_voice_settings_load_from_environment(monkeypatch):
    monkeypatch.setenv("HOTPATH_VOICE__TENANT_ID", "acme")
    monkeypatch.setenv("HOTPATH_VOICE__STT__REPLICAS", "3")
    monkeypatch.setenv("HOTPATH_VOICE__DEVICE_LOCATIONS", '{"w-17": "warehouse b"}')
    monkeypatch.setenv("HOTPATH_VOICE__CLOUD__API_KEY", "secret")
    s = load_settings()
    assert (s.voice.tenant_id, s.voice.stt.replicas, s.voice.device_locations) == ("acme", 3, {"w-17": "warehouse b"})
    assert s.voice.cloud.api_key.get_secret_value() == "secret" and "secret" not in repr(s.voice)
    assert s.voice.vad_silence_s == 0.7 and s.voice.max_utterance_s == 15.0
