"""Per-tenant contexts at run time: two tenants on one broker, hot reload between utterances, a bad
reload keeps the old context, a context's own confirmation policies and actions."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest

from hotpath.voice.context import DEFAULT_CONTEXT, ContextError
from hotpath.voice.context_live import LiveContext
from hotpath.voice.keyword_intent import KeywordIntentClassifier
from hotpath.voice.pipeline import Pipeline
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.tts import TtsEngine

from .conftest import ListPublisher

EXAMPLES = Path(__file__).resolve().parents[2] / "contexts" / "examples"

LIGHTS = """\
context: lights
slots:
  room: {values: [kitchen, hall, living room]}
intents:
  lights_on:
    expressions: ["[please] (turn | switch) on the $room [lights]"]
    action: {type: mqtt, topic: "home/{room}/light", payload: {state: "on"}}
    reply: "{room} lights on."
  alarm:
    expressions: ["sound the alarm"]
    action: {type: mqtt, topic: "home/alarm", payload: {}}
    confirm: always
    reply: "Alarm sounding."
    read_back: "Sound the alarm?"
"""


class _Silent(TtsEngine):
    name = "silent"

    def synthesize(self, text: str) -> bytes:
        return b"\0\0" * 160


def _pipe(pub, *, prefix="", context=None, tenant="demo"):
    voice = VoiceSettings(tenant_id=tenant, topic_prefix=prefix, context=context)
    return Pipeline(voice, classifier=KeywordIntentClassifier(), tts=_Silent(), publisher=pub)


def _topics(pub) -> list[str]:
    return [t for t, _ in pub.sent if "/tts" not in t and "/events" not in t]


async def test_two_tenants_on_one_broker_each_understand_only_their_own(tmp_path):
    lights = tmp_path / "lights.yaml"
    lights.write_text(LIGHTS)
    broker = ListPublisher()  # one broker, two topic prefixes
    site = _pipe(broker, prefix="site-a/", tenant="acme")
    home = _pipe(broker, prefix="site-b/", context=lights, tenant="home")
    out = await site.handle("w-1", "u1", "send a medic to loading dock four", 0.0)
    assert out.decision == "act" and _topics(broker) == ["site-a/team/summon"]
    out = await home.handle("w-2", "u2", "send a medic to loading dock four", 0.0)
    assert out.action is None and out.decision == "cloud"  # not a command of the lighting context
    out = await site.handle("w-1", "u3", "turn on the kitchen lights", 0.0)
    assert out.action is None  # not a command of the industrial one
    out = await home.handle("w-2", "u4", "please switch on the living room lights", 0.0)
    assert out.decision == "act" and out.reply == "Living room lights on."
    assert _topics(broker) == ["site-a/team/summon", "site-b/home/living room/light"]
    msg = json.loads(broker.on("site-b/home/living room/light")[0])
    assert msg["state"] == "on" and msg["tenant_id"] == "home" and msg["device_id"] == "w-2"


async def test_a_context_intent_follows_its_confirmation_policy(tmp_path):
    lights = tmp_path / "lights.yaml"
    lights.write_text(LIGHTS)
    pub = ListPublisher()
    p = _pipe(pub, context=lights)
    out = await p.handle("w-1", "u1", "sound the alarm", 0.0)
    assert out.decision == "confirm" and out.reply == "Sound the alarm?" and not _topics(pub)
    out = await p.handle("w-1", "u2", "yes", 0.0)
    assert out.decision == "confirmed" and _topics(pub) == ["home/alarm"]
    # an unsure speech verdict reads a 'never' command back instead of acting
    out = await p.handle("w-1", "u3", "turn on the hall lights", 0.0, stt={"source": "grammar-unsure"})
    assert out.decision == "confirm" and out.reply == "Hall lights on?"
    out = await p.handle("w-1", "u4", "no", 0.0)
    assert out.decision == "declined" and _topics(pub) == ["home/alarm"]


async def test_the_imported_hospital_context_runs_code_blue_with_an_undo(tmp_path):
    pub = ListPublisher()
    p = _pipe(pub, context=EXAMPLES / "hospital_ward.yaml")
    out = await p.handle("w-1", "u1", "code blue room twelve", 0.0)
    assert out.decision == "undo-offered" and _topics(pub) == ["ward/code-blue"]
    out = await p.handle("w-1", "u2", "cancel", 0.0)
    assert out.decision == "undone" and _topics(pub)[-1] == "ward/code-blue/cancel"


def _touch_later(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    if path.stat().st_mtime_ns == before:  # coarse clocks: make the change visible
        os.utime(path, ns=(before + 10_000_000, before + 10_000_000))


async def test_hot_reload_between_utterances_and_a_bad_file_keeps_the_old(tmp_path, caplog):
    path = tmp_path / "site.yaml"
    shutil.copy(DEFAULT_CONTEXT, path)
    pub = ListPublisher()
    live = LiveContext(path, check_every_s=0.0)
    p = Pipeline(VoiceSettings(), classifier=KeywordIntentClassifier(), tts=_Silent(), publisher=pub, context=live)
    assert (await p.handle("w-1", "u1", "send a medic to loading dock four", 0.0)).decision == "act"
    # the site adds its lighting commands: no restart
    _touch_later(path, DEFAULT_CONTEXT.read_text() + """
  lights_on:
    expressions: ["(turn | switch) on the lights [in] $location"]
    action: {type: mqtt, topic: "lights/{location}", payload: {state: "on"}}
    reply: "Lights on in {location}."
""")
    out = await p.handle("w-1", "u2", "turn on the lights in aisle three", 0.0)
    assert live.reloads == 1 and out.decision == "act" and out.reply == "Lights on in aisle 3."
    # a broken edit: one log line, the old context stays, utterances keep working
    _touch_later(path, path.read_text().replace('topic: "lights/{location}"', 'topic: "lights/{place}"'))
    with caplog.at_level(logging.WARNING, logger="hotpath.voice.context_live"):
        out = await p.handle("w-1", "u3", "turn on the lights in aisle four", 0.0)
        again = await p.handle("w-1", "u4", "turn on the lights in aisle five", 0.0)
    assert out.decision == "act" and again.decision == "act" and live.failures == 1
    lines = [r for r in caplog.records if "not reloaded" in r.getMessage()]
    assert len(lines) == 1 and "site.yaml" in lines[0].getMessage() and "{place}" in lines[0].getMessage()


async def test_an_utterance_in_flight_keeps_the_context_it_started_with(tmp_path):
    path = tmp_path / "site.yaml"
    path.write_text(LIGHTS)
    live = LiveContext(path, check_every_s=0.0)
    first = live.get()
    _touch_later(path, LIGHTS.replace("kitchen, hall", "kitchen, hall, garage"))
    second = live.get()
    assert second is not first and first.matcher.match("turn on the garage lights") is None
    assert second.matcher.match("turn on the garage lights").slots == {"room": "garage"}


def test_a_bad_context_at_start_up_is_one_clear_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(LIGHTS.replace("$room [lights]", "$rom [lights]"))
    with pytest.raises(ContextError, match=r"bad.yaml:6: .*unknown slot type \$rom"):
        LiveContext(path)


def test_the_stt_grammar_reloads_between_utterances(tmp_path, caplog):
    from hotpath.voice.stt import SttHints
    from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine

    path = tmp_path / "site.yaml"
    path.write_text(LIGHTS)
    e = PocketsphinxEngine.from_settings(VoiceSettings(context=path))
    assert "<intent_lights_on>" in e.jsgf and "garage" not in e.jsgf
    _touch_later(path, LIGHTS.replace("kitchen, hall", "kitchen, hall, garage"))
    e._checked = 0.0
    e.open(SttHints(device_id="w-1")).cancel()
    assert e.reloads == 1 and "garage" in e.jsgf
    _touch_later(path, LIGHTS.replace("$room [lights]", "$rom [lights]"))
    e._checked = 0.0
    with caplog.at_level(logging.WARNING, logger="hotpath.voice.stt_pocketsphinx"):
        e.open(SttHints(device_id="w-1")).cancel()
    assert e.reloads == 1 and "garage" in e.jsgf
    assert any("not reloaded" in r.getMessage() and "$rom" in r.getMessage() for r in caplog.records)


def test_further_tenants_get_their_own_prefix_port_and_context():
    from hotpath.config import Settings
    from hotpath.errors import ConfigError
    from hotpath.graphs.voice_edge_app import tenant_settings
    from hotpath.voice.settings import SttSettings, TenantSettings

    home = EXAMPLES / "home_lighting.yaml"
    s = Settings().model_copy(update={"voice": VoiceSettings(
        topic_prefix="a/", stt=SttSettings(grpc_port=20000),
        tenants=[TenantSettings(tenant_id="home", topic_prefix="h/", context=home)])})
    [(suffix, t)] = tenant_settings(s)
    assert suffix == "-home" and t.voice.topic_prefix == "h/" and t.voice.context == home
    assert t.voice.stt.grpc_port == 20001 and t.voice.stt.replicas == 1 and t.voice.tenants == []
    clash = s.model_copy(update={"voice": s.voice.model_copy(update={
        "tenants": [TenantSettings(tenant_id="x", topic_prefix="a/")]})})
    with pytest.raises(ConfigError, match="already used"):
        tenant_settings(clash)
    assert tenant_settings(Settings()) == []  # unset: only `hotpath up` adds the demo's second tenant


def test_the_broker_acl_lets_the_edge_publish_every_tenants_action_topics():
    from hotpath.cluster.mqtt_auth import ServiceUser, render_acl
    from hotpath.voice.context_compile import tenant_action_topics
    from hotpath.voice.settings import TenantSettings

    v = VoiceSettings(topic_prefix="site/", tenants=[TenantSettings(
        tenant_id="ward", topic_prefix="ward/", context=EXAMPLES / "hospital_ward.yaml")])
    more, topics = tenant_action_topics(v)
    assert more == ["ward/"]
    assert {"team/summon", "team/summon/cancel", "ward/call", "ward/code-blue", "ward/code-blue/cancel"} <= set(topics)
    acl = render_acl({}, [ServiceUser("edge", "edge", "x")], prefix="site/", more_prefixes=more, action_topics=topics)
    for rule in ("topic read ward/wearable/+/audio", "topic readwrite ward/ward/code-blue/cancel",
                 "topic readwrite site/team/summon", "topic readwrite site/team/summon/cancel"):
        assert rule in acl.splitlines(), rule
