"""The voice edge application: the STT gRPC service actor and the MQTT ingress actor (which owns a few
session-host actors, devices sharded over them by id). ``start_voice(settings)`` is what ``hotpath up`` calls.

    watch ─MQTT {prefix}wearable/{id}/audio─▶ VoiceIngressActor ─▶ VoiceSessionHost (many devices each:
          VAD, utterances) ─gRPC stream─▶ SttServiceActor (engine replicas) ─▶ intent ─▶ route
          ├─ command ─▶ team/summon | SIP INVITE | webhook
          └─ otherwise ─▶ cloud query client (HTTPS, tenant API key; retry queue)
          ─▶ TTS ─▶ {prefix}wearable/{id}/tts (framed PCM); trace events ─▶ {prefix}wearable/{id}/events

All actors take ``num_cpus=0``: they are I/O-bound shells, and session hosts must not wait for
CPU slots on a 2-core laptop. The STT actor takes a GPU when the engine is faster-whisper and the
cluster has one.

Tenants: ``voice.tenants`` lists more tenants on the same broker. Each gets its own STT actor (its
context's grammar), ingress and session hosts under its own topic prefix, so each understands only
its own commands. ``hotpath up`` (``start``) adds the demo's home-lighting tenant when the list is unset.
"""

from __future__ import annotations

from typing import Callable

from hotpath.cluster.connect import connect_ray
from hotpath.config import Settings

__all__ = ["start_voice", "stop_voice", "start", "STT_ACTOR", "INGRESS_ACTOR"]

STT_ACTOR = "voice-stt"
INGRESS_ACTOR = "voice-ingress"
_owned: dict[str, list] = {}
"""Handles of non-detached deployments (tests): Ray kills an actor whose last handle is dropped."""


def tenant_settings(settings: Settings) -> list[tuple[str, Settings]]:
    """(tag suffix, settings) of every further tenant in ``voice.tenants``."""
    from hotpath.errors import ConfigError

    v = settings.voice
    out, prefixes = [], {v.topic_prefix}
    for i, t in enumerate(v.tenants or []):
        if t.topic_prefix in prefixes:
            raise ConfigError(f"voice.tenants[{i}] ({t.tenant_id}): topic prefix {t.topic_prefix!r} is already used",
                              hint="give every tenant on one broker its own topic_prefix")
        prefixes.add(t.topic_prefix)
        stt = v.stt.model_copy(update={"grpc_port": t.grpc_port or v.stt.grpc_port + i + 1, "replicas": t.replicas})
        tv = v.model_copy(update={"tenant_id": t.tenant_id, "topic_prefix": t.topic_prefix, "context": t.context,
                                  "classifier": t.classifier or v.classifier, "stt": stt, "tenants": [],
                                  "device_locations": {}})
        out.append((f"-{t.tenant_id}", settings.model_copy(update={"voice": tv})))
    return out


def start_voice(settings: Settings, *, tag: str = "", detached: bool = True) -> list[str]:
    """Deploy (or find) the voice edge actors of the tenant and of ``voice.tenants``; returns what they
    expose, one line each."""
    lines = _start_one(settings, tag=tag, detached=detached)
    for suffix, s in tenant_settings(settings):
        lines += [line.replace("voice ", f"voice ({s.voice.tenant_id}) ", 1)
                  for line in _start_one(s, tag=tag + suffix, detached=detached)]
    return lines


def _start_one(settings: Settings, *, tag: str, detached: bool) -> list[str]:
    ray = connect_ray(settings)
    from hotpath.actors.voice_ingress import VoiceIngressActor
    from hotpath.deployments.stt_actor import SttServiceActor

    voice = settings.voice
    life = {"lifetime": "detached"} if detached else {}
    gpus = 1 if voice.stt.engine == "faster-whisper" and ray.cluster_resources().get("GPU", 0) >= 1 else 0
    stt = ray.remote(SttServiceActor).options(
        name=STT_ACTOR + tag, get_if_exists=True, num_cpus=0, num_gpus=gpus, max_concurrency=1000, **life
    ).remote(voice)
    address = ray.get(stt.start.remote(), timeout=120)
    ingress = ray.remote(VoiceIngressActor).options(
        name=INGRESS_ACTOR + tag, get_if_exists=True, num_cpus=0, max_concurrency=1000, **life
    ).remote(voice, settings.mqtt.host, settings.mqtt.port)
    audio = ray.get(ingress.start.remote(), timeout=60)
    if not detached:
        _owned[tag] = [stt, ingress]
    p = voice.topic_prefix
    return [
        f"voice STT gRPC ({voice.stt.engine} x{voice.stt.replicas}{', GPU' if gpus else ''}): {address}",
        f"voice MQTT in: {audio} @ {settings.mqtt.host}:{settings.mqtt.port}",
        f"voice MQTT out: {p}wearable/{{id}}/tts, {p}wearable/{{id}}/events, {p}{voice.actions.summon_topic}",
    ]


def stop_voice(settings: Settings, *, tag: str = "") -> None:
    if settings.voice.tenants is None:  # what ``start`` would have added (absent actors are skipped)
        from hotpath.voice.settings import DEMO_TENANTS

        settings = settings.model_copy(update={"voice": settings.voice.model_copy(update={"tenants": list(DEMO_TENANTS)})})
    for suffix, s in tenant_settings(settings):
        _stop_one(s, tag=tag + suffix)
    _stop_one(settings, tag=tag)


def _stop_one(settings: Settings, *, tag: str) -> None:
    ray = connect_ray(settings)
    for name in (INGRESS_ACTOR + tag, STT_ACTOR + tag):
        try:
            handle = ray.get_actor(name)
        except ValueError:
            continue
        try:
            ray.get(handle.stop.remote(), timeout=30)
        except Exception:
            pass
        ray.kill(handle)
    _owned.pop(tag, None)


def start(settings: Settings, say: Callable[[str], None]) -> list:
    """The ``hotpath up`` app-starter form (see :mod:`hotpath.cluster.apps`)."""
    from hotpath.cluster.apps import Endpoint
    from hotpath.voice.settings import DEMO_TENANTS

    if settings.voice.tenants is None:  # the demo: a second tenant on the same broker
        demo = [t for t in DEMO_TENANTS if t.context is None or t.context.is_file()]
        if len(demo) < len(DEMO_TENANTS):
            say("  voice: the demo's second tenant is skipped (contexts/examples is not in this install)")
        settings = settings.model_copy(update={"voice": settings.voice.model_copy(update={"tenants": demo})})
    lines = start_voice(settings)
    for line in lines:
        say(line)
    return [Endpoint("voice", line.split(":", 1)[0], line.split(":", 1)[1].strip()) for line in lines]
