"""The confirmation dialog: yes, no, repeat, timeout and barge-in, through the real pipeline."""

from __future__ import annotations

import asyncio
import json

import pytest

from hotpath.intent.types import Intent
from hotpath.voice.dialog import Dialog, classify_answer
from hotpath.voice.keyword_intent import KeywordIntentClassifier
from hotpath.voice.pipeline import NOT_UNDERSTOOD, Pipeline
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.tts import TtsEngine


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Silent(TtsEngine):
    def __init__(self) -> None:
        self.said: list[str] = []

    def synthesize(self, text: str) -> bytes:
        self.said.append(text)
        return b"\0\0" * 160


class Pub:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict | bytes]] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        try:
            self.items.append((topic, json.loads(payload)))
        except (UnicodeDecodeError, json.JSONDecodeError):
            self.items.append((topic, payload))

    def summons(self) -> list[dict]:
        return [p for t, p in self.items if t == "team/summon"]

    def decisions(self) -> list[str]:
        return [p["data"]["decision"] for t, p in self.items if t.endswith("/events") and p["event"] == "decision"]


@pytest.fixture()
def rig():
    clock, tts, pub = Clock(), Silent(), Pub()
    v = VoiceSettings(classifier="keyword", confirm_timeout_s=5.0)
    return Pipeline(v, classifier=KeywordIntentClassifier(), tts=tts, publisher=pub, clock=clock), clock, tts, pub


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("text,answer", [("yes", "yes"), ("yeah do it", "yes"), ("no", "no"), ("cancel that", "no"),
                                         ("repeat", "repeat"), ("say that again", "repeat"),
                                         ("send the medic to dock two", "other"), ("", "other")])
def test_answers_are_classified(text, answer):
    assert classify_answer(text) == answer


def test_unsure_command_is_read_back_and_yes_acts(rig):
    p, clock, tts, pub = rig

    async def go():
        out = await p.handle("w1", "u1", "send a medic to dock nine", 0.0, stt={"source": "grammar-unsure"})
        assert out.decision == "confirm" and out.action is None and not pub.summons()
        assert out.reply == "Send a medic to dock 9?"
        clock.t += 2
        yes = await p.handle("w1", "u2", "yes", 0.0, stt={"source": "grammar"})
        return yes

    yes = run(go())
    assert yes.decision == "confirmed"
    [summon] = pub.summons()
    assert summon["team"] == "medic" and summon["location"] == "dock 9"
    assert pub.decisions() == ["confirm", "confirmed"]


def test_no_cancels(rig):
    p, clock, tts, pub = rig

    async def go():
        await p.handle("w1", "u1", "call technician nguyen", 0.0, stt={"source": "grammar-unsure"})
        return await p.handle("w1", "u2", "no", 0.0, stt={"source": "grammar"})

    out = run(go())
    assert out.decision == "declined" and out.reply == "Cancelled." and not pub.summons()
    assert p.dialog("w1").pending is None


def test_repeat_asks_again_then_yes(rig):
    p, clock, tts, pub = rig

    async def go():
        await p.handle("w1", "u1", "send a medic to dock nine", 0.0, stt={"source": "grammar-unsure"})
        again = await p.handle("w1", "u2", "repeat", 0.0, stt={"source": "grammar"})
        assert again.decision == "repeat" and again.reply == "Send a medic to dock 9?"
        clock.t += 4  # the question is asked anew: its timeout restarts
        return await p.handle("w1", "u3", "yes", 0.0, stt={"source": "grammar"})

    assert run(go()).decision == "confirmed"
    assert len(pub.summons()) == 1


def test_timeout_cancels_and_says_so(rig):
    p, clock, tts, pub = rig

    async def go():
        await p.handle("w1", "u1", "send a medic to dock nine", 0.0, stt={"source": "grammar-unsure"})
        clock.t += 5.5
        closed = await p.tick()
        late = await p.handle("w1", "u2", "yes", 0.0, stt={"source": "grammar"})
        return closed, late

    closed, late = run(go())
    assert closed == 1 and "No answer, cancelled." in tts.said
    assert late.decision != "confirmed" and not pub.summons()
    assert "timeout" in pub.decisions()


def test_barge_in_drops_the_question_and_handles_the_new_command(rig):
    p, clock, tts, pub = rig

    async def go():
        await p.handle("w1", "u1", "send a medic to dock nine", 0.0, stt={"source": "grammar-unsure"})
        return await p.handle("w1", "u2", "call technician nguyen", 0.0, stt={"source": "grammar-unsure"})

    out = run(go())
    assert out.decision == "confirm" and out.reply == "Call technician nguyen?"
    assert "barge-in" in pub.decisions() and not pub.summons()
    assert p.dialog("w1").pending.utterance_id == "u2"


def test_emergency_acts_at_once_and_accepts_cancel(rig):
    p, clock, tts, pub = rig

    async def go():
        unsure = await p.handle("w2", "u0", "man down", 0.0, stt={"source": "grammar-unsure"})
        assert unsure.decision == "confirm" and unsure.reply == "Send an emergency alert?" and not pub.summons()
        out = await p.handle("w1", "u1", "man down", 0.0, stt={"source": "grammar"})
        assert out.decision == "undo-offered" and "cancel" in out.reply.lower()
        assert len(pub.summons()) == 1
        return await p.handle("w1", "u2", "cancel", 0.0, stt={"source": "grammar"})

    out = run(go())
    assert out.decision == "undone"
    assert [t for t, _ in pub.items if t == "team/summon/cancel"]


def test_rejected_and_free_text_commands_never_act(rig):
    p, clock, tts, pub = rig

    async def go():
        r = await p.handle("w1", "u1", "", 0.0, stt={"source": "rejected"})
        assert r.decision == "reject" and r.reply == NOT_UNDERSTOOD
        lm = await p.handle("w2", "u2", "send a medic to dock four", 0.0, stt={"source": "lm"})
        assert lm.decision == "confirm"  # read from free text: asked, never acted
        fire = await p.handle("w3", "u3", "fire fire", 0.0, stt={"source": "lm"})
        assert fire.decision == "confirm" and fire.intent.intent is Intent.EMERGENCY

    run(go())
    assert not pub.summons()


def test_believed_command_acts_without_asking(rig):
    p, clock, tts, pub = rig
    out = run(p.handle("w1", "u1", "send a medic to dock four", 0.0, stt={"source": "grammar"}))
    assert out.decision == "act" and pub.summons()[0]["location"] == "dock 4"


def test_dialog_state_alone():
    clock = Clock()
    d = Dialog(timeout_s=3, clock=clock)
    assert d.answer("yes") is None
    d.ask("Call smith?", "u1", payload="route")
    clock.t += 2.9
    assert d.expire() is None
    clock.t += 0.2
    assert d.expire().utterance_id == "u1" and d.pending is None
