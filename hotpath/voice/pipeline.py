"""What happens to one utterance after speech-to-text: intent -> route -> action -> spoken reply.

:class:`Pipeline` is plain async code over injected ports — a :class:`Publisher` (MQTT in
production, a list in tests), a TTS engine, a cloud client, a SIP dialer, a webhook poster — so it
runs the same inside a Ray actor, the CLI or a unit test. Every step emits a trace event on
``wearable/{id}/events`` with ``since_end_ms`` (time since the utterance ended); every utterance
ends in a spoken reply, never silence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Protocol

from hotpath.errors import HotpathError
from hotpath.intent.types import Intent, IntentClassifier, IntentResult
from hotpath.voice.audio import encode_framed
from hotpath.voice.retry import CloudPort as CloudClient, RetryQueue  # the HTTP client: hotpath.clients.cloud
from hotpath.voice.limits import Counters
from hotpath.voice.messages import CloudAnswer, CloudQuery, DialRequest, SummonTeam, TraceEvent, events_topic, tts_topic
from hotpath.voice.routing import Route, route
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.tts import TtsEngine, chunk_pcm

__all__ = ["Publisher", "Pipeline", "Outcome", "CLOUD_UNREACHABLE"]

log = logging.getLogger(__name__)

CLOUD_UNREACHABLE = "Sorry, I couldn't reach the assistant. I will try again and tell you."
NOT_UNDERSTOOD = "Sorry, I didn't catch that. Please say it again."


class Publisher(Protocol):
    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None: ...


@dataclass
class Outcome:
    """What one utterance led to (for tests, the CLI and the benchmark)."""

    device_id: str
    utterance_id: str
    text: str
    intent: IntentResult | None = None
    route: Route | None = None
    reply: str = ""
    action: dict | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    """since the utterance ended: stt, intent, action, tts_first, tts_end."""


class Pipeline:
    def __init__(
        self,
        voice: VoiceSettings,
        *,
        classifier: IntentClassifier,
        tts: TtsEngine,
        publisher: Publisher,
        cloud: CloudClient | None = None,
        dialer=None,
        webhook: Callable[[str, dict], Awaitable[None]] | None = None,
        retry: RetryQueue | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.voice = voice
        self.classifier = classifier
        self.tts = tts
        self.pub = publisher
        self.cloud = cloud
        self.dialer = dialer
        self.webhook = webhook
        self.retry = retry if retry is not None else RetryQueue(voice.cloud.retry_queue_size, voice.cloud.max_attempts)
        self.counters = counters if counters is not None else Counters()
        self._tts_seq: dict[str, int] = {}
        self._background: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ events
    async def event(self, name: str, device_id: str, utterance_id: str = "", ended_at: float | None = None, **data) -> float:
        now = time.time()
        since = None if ended_at is None else round((now - ended_at) * 1000, 2)
        ev = TraceEvent(name, device_id, utterance_id, now, since, data)
        try:
            await self.pub.publish(events_topic(device_id, self.voice.topic_prefix), ev.to_json())
        except Exception as exc:  # an event lost must not stop the utterance
            self.counters["event_publish_failed"] += 1
            log.warning("trace event %s for %s not published: %r", name, device_id, exc)
        return since or 0.0

    async def error(self, device_id: str, code: str, text: str, utterance_id: str = "", speak: bool = False) -> None:
        self.counters[code] += 1
        await self.event("error", device_id, utterance_id, code=code, text=text)
        if speak:
            await self.speak(device_id, utterance_id, NOT_UNDERSTOOD, None)

    # ------------------------------------------------------------------ the utterance
    async def handle(self, device_id: str, utterance_id: str, text: str, ended_at: float, *, stt: dict | None = None) -> Outcome:
        out = Outcome(device_id, utterance_id, text)
        out.timings_ms["stt"] = await self.event("stt-end", device_id, utterance_id, ended_at, text=text, **(stt or {}))
        if not text.strip():
            self.counters["empty_transcript"] += 1
            out.reply = NOT_UNDERSTOOD
            await self.speak(device_id, utterance_id, out.reply, ended_at, out)
            return out
        result = self.classifier.predict(text)
        out.intent = result
        where = self.voice.device_locations.get(device_id)
        out.route = r = route(result, threshold=self.voice.command_threshold, device_location=where)
        out.timings_ms["intent"] = await self.event(
            "intent", device_id, utterance_id, ended_at, intent=result.intent.value,
            confidence=round(result.confidence, 4), route=r.kind, location=r.location,
            slots={k: getattr(result.slots, k) for k in ("person", "team", "location")},
        )
        if r.kind == "action":
            out.reply, out.action = await self._act(device_id, utterance_id, r, ended_at)
            out.timings_ms["action"] = await self.event("action", device_id, utterance_id, ended_at, **out.action)
        else:
            out.reply = await self._ask_cloud(device_id, utterance_id, r, ended_at)
        await self.speak(device_id, utterance_id, out.reply, ended_at, out)
        self.counters["utterances"] += 1
        return out

    async def _act(self, device_id: str, utterance_id: str, r: Route, ended_at: float) -> tuple[str, dict]:
        res, now, v = r.result, time.time(), self.voice
        if res.intent in (Intent.SUMMON_TEAM, Intent.EMERGENCY):
            team = res.slots.team or ("emergency response" if res.intent is Intent.EMERGENCY else "team")
            msg = SummonTeam(v.tenant_id, device_id, r.location, res.text, now, team, utterance_id)
            await self.pub.publish(v.topic_prefix + v.actions.summon_topic, msg.to_json(), qos=1)
            where = f" to {r.location}" if r.location else ""
            reply = ("Emergency alert sent. Help is on the way." if res.intent is Intent.EMERGENCY
                     else f"{team.capitalize()} summoned{where}.")
            return reply, {"action": res.intent.value, "topic": v.actions.summon_topic, "team": team, "location": r.location}
        if res.intent is Intent.DIAL_PERSON:
            person = res.slots.person or "someone"
            ext = v.actions.directory.get(person) or next(
                (e for name, e in v.actions.directory.items() if name in person or person in name), None)
            req = DialRequest(v.tenant_id, device_id, person, ext, r.location, res.text, now)
            how = []
            if self.dialer is not None and ext:
                self._spawn(self._dial(device_id, utterance_id, req))
                how.append("sip")
            if self.webhook is not None and v.actions.dial_webhook:
                self._spawn(self._post_webhook(device_id, utterance_id, req))
                how.append("webhook")
            if not how:
                self.counters["dial_unroutable"] += 1
                return f"Sorry, I can't call {person} from here.", {"action": "DIAL_PERSON", "person": person, "via": []}
            return f"Calling {person}.", {"action": "DIAL_PERSON", "person": person, "extension": ext, "via": how}
        if res.intent is Intent.CANCEL:
            return "Cancelled.", {"action": "CANCEL"}
        return "Done.", {"action": res.intent.value}

    async def _dial(self, device_id: str, utterance_id: str, req: DialRequest) -> None:
        try:
            result = await self.dialer.dial(req.extension)
        except HotpathError as exc:
            await self.error(device_id, "dial_failed", exc.one_line(), utterance_id)
            return
        await self.event("action", device_id, utterance_id, action="DIAL_PERSON", stage="sip-result",
                         answered=result.answered, status=result.status, setup_ms=round(result.setup_ms, 2))
        if not result.answered:
            self.counters["dial_unanswered"] += 1

    async def _post_webhook(self, device_id: str, utterance_id: str, req: DialRequest) -> None:
        try:
            await self.webhook(self.voice.actions.dial_webhook, req.to_dict())
        except HotpathError as exc:
            await self.error(device_id, "webhook_failed", exc.one_line(), utterance_id)

    async def _ask_cloud(self, device_id: str, utterance_id: str, r: Route, ended_at: float) -> str:
        res = r.result
        q = CloudQuery(self.voice.tenant_id, device_id, res.text, r.location, res.intent.value,
                       round(res.confidence, 4), utterance_id, time.time())
        if self.cloud is None:
            self.retry.put(q)
            await self.error(device_id, "cloud_unreachable", "no cloud client configured", utterance_id)
            return CLOUD_UNREACHABLE
        try:
            answer = await self.cloud.ask(q)
        except HotpathError as exc:
            self.retry.put(q)
            await self.error(device_id, "cloud_unreachable", exc.one_line(), utterance_id)
            return CLOUD_UNREACHABLE
        await self.event("cloud", device_id, utterance_id, ended_at, answered=True)
        return answer.text

    async def retry_cloud(self) -> int:
        """One pass over queued cloud queries; late answers are spoken to their device."""
        if self.cloud is None or not len(self.retry):
            return 0

        async def deliver(q: CloudQuery, a: CloudAnswer) -> None:
            await self.event("cloud", q.device_id, q.utterance_id, answered=True, late=True)
            await self.speak(q.device_id, q.utterance_id, a.text, None)

        return await self.retry.retry(self.cloud, deliver)

    # ------------------------------------------------------------------ the reply
    async def speak(self, device_id: str, utterance_id: str, text: str, ended_at: float | None, out: Outcome | None = None) -> None:
        try:
            pcm = await asyncio.to_thread(self.tts.synthesize, text)
        except HotpathError as exc:
            self.counters["tts_failed"] += 1
            await self.event("error", device_id, utterance_id, code="tts_failed", text=exc.one_line())
            return
        chunks = chunk_pcm(pcm, self.voice.tts.chunk_ms) or [b""]
        topic = tts_topic(device_id, self.voice.topic_prefix)
        seq = self._tts_seq.get(device_id, 0)
        first = True
        for c in chunks:
            await self.pub.publish(topic, encode_framed(c, seq=seq, start=first, utterance=utterance_id), qos=0)
            if first:
                t = await self.event("tts-start", device_id, utterance_id, ended_at, text=text, audio_s=round(len(pcm) / 32000, 3))
                if out is not None:
                    out.timings_ms["tts_first"] = t
            first = False
            seq += 1
        await self.pub.publish(topic, encode_framed(b"", seq=seq, stop=True, utterance=utterance_id), qos=0)
        self._tts_seq[device_id] = seq + 1
        t = await self.event("tts-end", device_id, utterance_id, ended_at)
        if out is not None:
            out.timings_ms["tts_end"] = t

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background actions (SIP calls, webhooks) to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
