"""What happens to one utterance after speech-to-text: intent -> route -> action -> spoken reply.

:class:`Pipeline` is plain async code over injected ports — a :class:`Publisher` (MQTT in
production, a list in tests), a TTS engine, a cloud client, a SIP dialer, a webhook poster — so it
runs the same inside a Ray actor, the CLI or a unit test. Every step emits a trace event on
``wearable/{id}/events`` with ``since_end_ms`` (time since the utterance ended); every utterance
ends in a spoken reply, never silence.

What the STT engine says about its own transcript decides how far a command may go (``stt["source"]``,
see :mod:`hotpath.voice.rejection`): ``grammar`` (believed) acts when the intent is confident;
``grammar-unsure``, and a command read from the free-form LM text, are read back first through the
device's :class:`~hotpath.voice.dialog.Dialog` ("Send a medic to dock 9?" -> yes / no / repeat; timeout
cancels); ``rejected`` gets "Sorry, say that again?". EMERGENCY acts at once, speaks back what it did
and accepts "cancel". Callers that pass no ``source`` (other engines) keep the confidence rule alone.
Every decision is a ``decision`` trace event. Timed-out questions are closed by :meth:`Pipeline.tick`
(the pipeline also schedules it itself when it runs inside an event loop).

The tenant's command context (:mod:`hotpath.voice.context`, settings ``voice.context``) decides what
is a command here: a transcript one of its expressions matches runs that intent's action (MQTT
publish, webhook, SIP dial or cloud) under its confirmation policy and speaks its reply template;
the built-in intents (DIAL_PERSON, SUMMON_TEAM, EMERGENCY, CANCEL) are commands only when the context
has them (the industrial default does), so a tenant understands only its own commands. The context is
reloaded between utterances when its file changes (:class:`~hotpath.voice.context_live.LiveContext`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Awaitable, Callable, Protocol

from hotpath.errors import HotpathError
from hotpath.intent.types import Intent, IntentClassifier, IntentResult, Slots
from hotpath.voice.audio import encode_framed
from hotpath.intent.types import COMMAND_INTENTS
from hotpath.voice.retry import CloudPort as CloudClient, RetryQueue  # the HTTP client: hotpath.clients.cloud
from hotpath.voice.context_compile import Compiled, Match, render_action, render_reply
from hotpath.voice.context_live import LiveContext
from hotpath.voice.dialog import Dialog
from hotpath.voice.messages import CloudAnswer, CloudQuery, Counters, DialRequest, SummonTeam, TraceEvent, events_topic, tts_topic
from hotpath.voice.routing import Route, fill_slots, route
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.tts import TtsEngine, chunk_pcm

__all__ = ["Publisher", "Pipeline", "Outcome", "ContextCommand", "CLOUD_UNREACHABLE", "NOT_UNDERSTOOD"]

log = logging.getLogger(__name__)

CLOUD_UNREACHABLE = "Sorry, I couldn't reach the assistant. I will try again and tell you."
NOT_UNDERSTOOD = "Sorry, say that again?"
_BELIEVED = {"grammar": 1.0, "grammar-unsure": 0.6, "lm": 0.6, "lm-full": 0.6}
"""The speech verdict caps the intent's confidence (a command read from free text is never more
than plausible)."""


_BUILT_IN = {i.value for i in Intent}


@dataclass(frozen=True, slots=True)
class ContextCommand:
    """A command of the tenant's context (an intent beyond the built-in ones), as read back or done."""

    compiled: Compiled
    intent: str
    slots: dict
    text: str


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
    decision: str = ""
    """act, confirm, confirmed, declined, undo, cloud, reject, barge-in (see Pipeline.handle)."""
    proposed: dict | None = None
    """The action read back for a yes/no (decision ``confirm``)."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """since the utterance ended: stt, intent, action, tts_first, tts_end."""
    command: ContextCommand | None = None
    """The tenant context's command, when one of its own intents (not a built-in one) matched."""


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
        clock: Callable[[], float] = time.monotonic,
        context: LiveContext | None = None,
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
        self.clock = clock
        self._timers: set[asyncio.Task] = set()
        self.dialogs: dict[str, Dialog] = {}
        """device id -> its confirmation dialog (created on first use)."""
        self._people = list(voice.people) + list(voice.actions.directory)
        self._timers_of: dict[str, set[asyncio.Task]] = {}
        if context is None:
            from hotpath.voice.grammar import tenant_values

            context = LiveContext(voice.context, tenant_values(
                people=voice.people, teams=voice.teams, directory=list(voice.actions.directory), prompt=voice.initial_prompt))
        self.context = context
        """The tenant's command context, reloaded between utterances when its file changes."""

    def dialog(self, device_id: str) -> Dialog:
        d = self.dialogs.get(device_id)
        if d is None:
            d = self.dialogs[device_id] = Dialog(self.voice.confirm_timeout_s, self.clock)
            while len(self.dialogs) > self.voice.limits.max_devices:
                self.dialogs.pop(next(iter(self.dialogs)))
        return d

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
        stt = stt or {}
        source = stt.get("source")
        out.timings_ms["stt"] = await self.event("stt-end", device_id, utterance_id, ended_at, text=text, **stt)
        await self.tick(device_id)
        dialog = self.dialog(device_id)
        if dialog.pending is not None and text.strip() and source != "rejected":
            if await self._answer(dialog, out, ended_at):
                return out
        if not text.strip() or source == "rejected":
            self.counters["rejected" if source == "rejected" else "empty_transcript"] += 1
            out.reply, out.decision = NOT_UNDERSTOOD, "reject"
            await self._decide(out, ended_at, why=source or "empty transcript")
            await self.speak(device_id, utterance_id, out.reply, ended_at, out)
            return out
        ctx = self.context.get()  # one version of the context for the whole utterance
        match = ctx.matcher.match(text)
        if match is not None and match.intent not in _BUILT_IN:
            return await self._handle_command(out, ctx, match, source, ended_at)
        result = self.classifier.predict(text)
        if result.intent in COMMAND_INTENTS and result.intent.value not in ctx.context.intents:
            # a built-in command this tenant's context does not have: not a command here
            result = replace(result, intent=Intent.GENERAL_QUERY,
                             reason=f"{result.intent.value} is not a command of context {ctx.context.context}")
        if match is not None and match.intent == result.intent.value:
            # the context's slot parser reads the sentence its own expression matched: its normalised
            # values are the slots (a grammar transcript always is such a sentence)
            got = match.slots
            result = replace(result, slots=Slots(person=got.get("person"), team=got.get("team"),
                                                 location=got.get("location") or result.slots.location))
        if result.intent in COMMAND_INTENTS:
            result = fill_slots(result, teams=self.voice.teams, people=self._people)
        out.intent = result
        where = self.voice.device_locations.get(device_id)
        out.route = r = route(result, threshold=self.voice.command_threshold, device_location=where)
        out.timings_ms["intent"] = await self.event(
            "intent", device_id, utterance_id, ended_at, intent=result.intent.value,
            confidence=round(result.confidence, 4), route=r.kind, location=r.location,
            slots={k: getattr(result.slots, k) for k in ("person", "team", "location")},
        )
        confidence = min(result.confidence, _BELIEVED.get(source, 1.0)) if source else result.confidence
        bar = self.voice.confirm_below.get(result.intent.value, 0.0)
        from_text = source in ("lm", "lm-full")
        believed = source in (None, "grammar")
        if r.kind == "action" and result.intent is Intent.EMERGENCY and believed:
            out.reply, out.action = await self._act(device_id, utterance_id, r, ended_at)
            out.timings_ms["action"] = await self.event("action", device_id, utterance_id, ended_at, **out.action)
            out.decision = "undo-offered"
            out.reply += " Say cancel to call it off."
            dialog.offer_undo(out.reply, utterance_id, out.action)
            self._schedule_timeout(device_id)
        elif r.kind == "action" and believed and confidence >= bar:
            out.reply, out.action = await self._act(device_id, utterance_id, r, ended_at)
            out.timings_ms["action"] = await self.event("action", device_id, utterance_id, ended_at, **out.action)
            out.decision = "act"
        elif (result.intent in COMMAND_INTENTS and result.intent is not Intent.CANCEL and result.confidence > 0.5
              and (r.kind == "action" or from_text)):
            out.reply, out.proposed = self._read_back(r), _describe(r)
            out.decision = "confirm"
            dialog.ask(out.reply, utterance_id, r)
            self._schedule_timeout(device_id)
        elif result.intent is Intent.CANCEL:  # an unsure "cancel" with nothing to cancel: ask again
            out.reply, out.decision = NOT_UNDERSTOOD, "reject"
        else:
            out.decision = "cloud"
            await self._decide(out, ended_at, why="not a command")
            out.reply = await self._ask_cloud(device_id, utterance_id, r, ended_at)
            await self.speak(device_id, utterance_id, out.reply, ended_at, out)
            self.counters["utterances"] += 1
            return out
        await self._decide(out, ended_at, why=f"confidence {confidence:.2f}, bar {bar:.2f}, speech {source or '-'}")
        await self.speak(device_id, utterance_id, out.reply, ended_at, out)
        self.counters["utterances"] += 1
        return out

    async def _handle_command(self, out: Outcome, ctx: Compiled, m: Match, source: str | None, ended_at: float) -> Outcome:
        """A command of the tenant's own context: act, read back or offer an undo, by its policy."""
        dev, utt = out.device_id, out.utterance_id
        it = ctx.context.intents[m.intent]
        cmd = out.command = ContextCommand(ctx, m.intent, dict(m.slots), out.text)
        confidence = _BELIEVED.get(source, 1.0) if source else 1.0
        believed = source in (None, "grammar")
        out.timings_ms["intent"] = await self.event(
            "intent", dev, utt, ended_at, intent=m.intent, context=ctx.context.context, confidence=confidence,
            route="action", slots=m.slots)
        policy = it.confirm
        dialog = self.dialog(dev)
        if it.action.type == "cloud":
            out.decision = "cloud"
            await self._decide(out, ended_at, why=f"context {ctx.context.context}: {m.intent} goes to the cloud")
            res = IntentResult(out.text, Intent.GENERAL_QUERY, confidence)
            out.reply = await self._ask_cloud(dev, utt, Route("cloud", res, self.voice.device_locations.get(dev)), ended_at)
            await self.speak(dev, utt, out.reply, ended_at, out)
            self.counters["utterances"] += 1
            return out
        act_now = believed and (policy in ("never", "undo") or (isinstance(policy, float) and confidence >= policy))
        if act_now:
            out.reply, out.action = await self._act_command(dev, utt, cmd)
            out.timings_ms["action"] = await self.event("action", dev, utt, ended_at, **out.action)
            out.decision = "act"
            if policy == "undo":
                out.decision = "undo-offered"
                if "cancel" not in out.reply.lower():
                    out.reply += " Say cancel to call it off."
                dialog.offer_undo(out.reply, utt, out.action)
                self._schedule_timeout(dev)
        elif it.action.type == "cancel":
            out.reply, out.decision = NOT_UNDERSTOOD, "reject"
        else:
            prompt = render_reply(it.read_back, m.slots) if it.read_back else render_reply(it.reply, m.slots).rstrip(".!") + "?"
            out.reply, out.proposed, out.decision = prompt, {"action": m.intent, **m.slots}, "confirm"
            dialog.ask(prompt, utt, cmd)
            self._schedule_timeout(dev)
        await self._decide(out, ended_at, why=f"context {ctx.context.context}, policy {policy}, speech {source or '-'}")
        await self.speak(dev, utt, out.reply, ended_at, out)
        self.counters["utterances"] += 1
        return out

    async def _act_command(self, device_id: str, utterance_id: str, cmd: ContextCommand) -> tuple[str, dict]:
        """Run a context command's action; returns (the reply, the action as traced)."""
        v, ctx = self.voice, cmd.compiled.context
        it = ctx.intents[cmd.intent]
        a = render_action(ctx, cmd.intent, cmd.slots, directory=v.actions.directory)
        meta = {"intent": cmd.intent, "tenant_id": v.tenant_id, "device_id": device_id,
                "utterance_id": utterance_id, "text": cmd.text, "at": time.time()}
        done = {"action": cmd.intent, "context": ctx.context, "type": a["type"], "slots": cmd.slots}
        reply = render_reply(it.reply, cmd.slots)
        if a["type"] == "mqtt":
            await self.pub.publish(v.topic_prefix + a["topic"], json.dumps({**a["payload"], **meta}).encode(), qos=a["qos"])
            return reply, {**done, "topic": a["topic"]}
        if a["type"] == "webhook":
            if self.webhook is None:
                self.counters["webhook_unroutable"] += 1
                return "Sorry, I can't do that from here.", {**done, "via": []}

            async def post() -> None:
                try:
                    await self.webhook(a["url"], {**a["body"], **meta})
                except HotpathError as exc:
                    await self.error(device_id, "webhook_failed", exc.one_line(), utterance_id)

            self._spawn(post())
            return reply, {**done, "url": a["url"], "via": ["webhook"]}
        if a["type"] == "sip":
            if self.dialer is None or not a["extension"]:
                self.counters["dial_unroutable"] += 1
                return f"Sorry, I can't call {a['to'] or 'them'} from here.", {**done, "via": []}
            req = DialRequest(v.tenant_id, device_id, a["to"], a["extension"], None, cmd.text, time.time())
            self._spawn(self._dial(device_id, utterance_id, req))
            return reply, {**done, "extension": a["extension"], "via": ["sip"]}
        return reply, done  # cancel: nothing pending to call off

    async def _decide(self, out: Outcome, ended_at: float | None, why: str) -> None:
        self.counters[f"decision_{out.decision}"] += 1
        await self.event("decision", out.device_id, out.utterance_id, ended_at, decision=out.decision, why=why,
                         action=out.action, proposed=out.proposed)

    @staticmethod
    def _read_back(r: Route) -> str:
        s = r.result.slots
        if r.result.intent is Intent.DIAL_PERSON:
            return f"Call {s.person or 'someone'}?"
        if r.result.intent is Intent.SUMMON_TEAM:
            where = f" to {r.location}" if r.location else ""
            team = s.team or "the team"
            article = "" if team.startswith("the ") else ("an " if team[0] in "aeiou" else "a ")
            return f"Send {article}{team}{where}?"
        if r.result.intent is Intent.EMERGENCY:
            return "Send an emergency alert?"
        return "Cancel?"

    async def _answer(self, dialog: Dialog, out: Outcome, ended_at: float) -> bool:
        """A pending question meets an utterance; True when the utterance was its answer."""
        got = dialog.answer(out.text)
        if got is None:
            return False
        answer, p = got
        dev, utt = out.device_id, out.utterance_id
        if answer == "other":  # barge-in: the question is dropped, the utterance is handled as itself
            out.decision = "barge-in"
            await self._decide(out, ended_at, why=f"{p.kind} of {p.utterance_id} dropped")
            out.decision = ""
            return False
        if answer == "repeat":
            out.reply, out.decision = p.prompt, "repeat"
        elif p.kind == "undo":  # an emergency called off
            msg = {"type": "cancel", "tenant_id": self.voice.tenant_id, "device_id": dev,
                   "utterance_id": p.utterance_id, "at": time.time()}
            topic = (p.payload or {}).get("topic") if isinstance(p.payload, dict) else None
            await self.pub.publish(self.voice.topic_prefix + (topic or self.voice.actions.summon_topic) + "/cancel",
                                   json.dumps(msg).encode(), qos=1)
            out.reply, out.decision, out.action = "Emergency alert cancelled.", "undone", {"action": "CANCEL", "of": p.utterance_id}
        elif answer == "yes" and isinstance(p.payload, ContextCommand):
            out.reply, out.action = await self._act_command(dev, utt, p.payload)
            out.timings_ms["action"] = await self.event("action", dev, utt, ended_at, confirmed=p.utterance_id, **out.action)
            out.decision = "confirmed"
        elif answer == "yes":
            out.reply, out.action = await self._act(dev, utt, p.payload, ended_at)
            out.timings_ms["action"] = await self.event("action", dev, utt, ended_at, confirmed=p.utterance_id, **out.action)
            out.decision = "confirmed"
        else:
            out.reply, out.decision = "Cancelled.", "declined"
        await self._decide(out, ended_at, why=f"answer {answer} to {p.kind} of {p.utterance_id}")
        await self.speak(dev, utt, out.reply, ended_at, out)
        return True

    async def tick(self, device_id: str | None = None) -> int:
        """Close timed-out questions (of one device, or all): a confirmation is cancelled and says so."""
        closed = 0
        for dev in [device_id] if device_id is not None else list(self.dialogs):
            d = self.dialogs.get(dev)
            p = d.expire() if d is not None else None
            if p is None:
                continue
            closed += 1
            if p.kind == "confirm":
                self.counters["confirm_timeout"] += 1
                await self.event("decision", dev, p.utterance_id, decision="timeout", why="no answer")
                await self.speak(dev, p.utterance_id, "No answer, cancelled.", None)
        return closed

    def _schedule_timeout(self, device_id: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def later():
            await asyncio.sleep(self.voice.confirm_timeout_s + 0.05)
            await self.tick(device_id)

        task = loop.create_task(later())
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        mine = self._timers_of.setdefault(device_id, set())
        mine.add(task)
        task.add_done_callback(mine.discard)

    async def _act(self, device_id: str, utterance_id: str, r: Route, ended_at: float) -> tuple[str, dict]:
        res, now, v = r.result, time.time(), self.voice
        if res.intent in (Intent.SUMMON_TEAM, Intent.EMERGENCY):
            team = res.slots.team or ("emergency response" if res.intent is Intent.EMERGENCY else "team")
            msg = SummonTeam(v.tenant_id, device_id, r.location, res.text, now, team, utterance_id)
            await self.pub.publish(v.topic_prefix + v.actions.summon_topic, msg.to_json(), qos=1)
            where = f" to {r.location}" if r.location else ""
            reply = self._reply(res.intent, {"team": team, "location": r.location}) or (
                "Emergency alert sent. Help is on the way." if res.intent is Intent.EMERGENCY
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
            return (self._reply(res.intent, {"person": person}) or f"Calling {person}.",
                    {"action": "DIAL_PERSON", "person": person, "extension": ext, "via": how})
        if res.intent is Intent.CANCEL:
            return self._reply(res.intent, {}) or "Cancelled.", {"action": "CANCEL"}
        return "Done.", {"action": res.intent.value}

    def _reply(self, intent: Intent, slots: dict) -> str | None:
        """The context's reply template for a built-in intent (None when the context has none)."""
        it = self.context.current.context.intents.get(intent.value)
        return render_reply(it.reply, slots) if it is not None else None

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

    def close_dialogs(self, device_id: str | None = None) -> None:
        """Stop the timers of pending questions: of one device (its session retired; its dialog is
        dropped) or of all (the pipeline is going away)."""
        if device_id is not None:
            for t in list(self._timers_of.pop(device_id, ())):
                t.cancel()
            self.dialogs.pop(device_id, None)
            return
        for t in list(self._timers):
            t.cancel()
        self._timers_of.clear()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background actions (SIP calls, webhooks) to finish."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)


def _describe(r: Route) -> dict:
    s = r.result.slots
    return {"action": r.result.intent.value, "team": s.team, "person": s.person, "location": r.location}
