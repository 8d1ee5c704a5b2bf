"""Rejection: the command grammar must not turn what was not said into an action.

Real pocketsphinx decodes of espeak-ng speech (the conftest fixture), real Silero VAD for noise.
"""

from __future__ import annotations

import asyncio

import pytest

from hotpath.voice.corpus import Utterance, load_recipe
from hotpath.voice.evaluate import _exact, evaluate, summarise
from hotpath.voice.keyword_intent import KeywordIntentClassifier
from hotpath.voice.rejection import Features, RejectionPolicy, backed_share, judge, slot_words
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.stt import SttHints
from hotpath.voice.stt_pocketsphinx import PocketsphinxEngine

from .test_dialog import Pub, Silent

SILENCE = b"\x00\x00" * 8000


@pytest.fixture(scope="module")
def engine():
    return PocketsphinxEngine.from_settings(VoiceSettings())


def decode(engine, pcm: bytes):
    s = engine.open(SttHints(device_id="t"))
    pcm = SILENCE + pcm + SILENCE
    for i in range(0, len(pcm), 3200):
        s.accept(pcm[i : i + 3200])
    return s.finish()


@pytest.mark.parametrize("question", [
    "what is the p p e policy for zone b",
    "what should i do if the fire alarm sounds during a delivery",
    "where is the nearest eye wash station",
])
def test_a_question_forced_into_a_command_is_refused(engine, speech, question):
    t = decode(engine, speech(question))
    if question.startswith("what is"):  # this one the grammar does force into a command (measured)
        assert t.alternatives["grammar"], t.alternatives
    assert t.source in ("lm", "lm-full", "rejected"), t.alternatives
    from hotpath.voice.pipeline import Pipeline

    pub = Pub()
    p = Pipeline(VoiceSettings(classifier="keyword"), classifier=KeywordIntentClassifier(), tts=Silent(), publisher=pub)
    out = asyncio.run(p.handle("w1", "u1", t.text, 0.0, stt={"source": t.source}))
    assert out.decision in ("cloud", "reject", "confirm") and out.action is None and not pub.summons()


def test_a_clear_command_is_believed(engine, speech):
    t = decode(engine, speech("send the medic to dock four"))
    assert t.source in ("grammar", "grammar-unsure") and t.text.endswith("dock four"), t.alternatives


def test_slot_words_must_be_heard_for_acceptance():
    assert slot_words("send a medic to dock four") == ["medic", "dock", "four"]
    assert backed_share("send a medic to dock four", "and a medic to dock for") == 1.0
    assert backed_share("send a medic to dock nine", "and a medic to dock for") == pytest.approx(2 / 3)
    strict = RejectionPolicy(accept_backed=1.0)
    good = Features("send a medic to dock four", "send a medic to the dock for", -40.0, 20.0, 1.0, 1.0)
    assert judge(good, strict) == "grammar"
    # the wrong-slot case: the LM did not hear "nine" -> never acted on without a read-back
    wrong = Features("send a medic to dock nine", "send a medic to the dock for", -40.0, 20.0, 1.0,
                     backed_share("send a medic to dock nine", "send a medic to the dock for"))
    assert judge(wrong, strict) == "grammar-unsure"
    forced = Features("get the floor lead to aisle two", "get the floor lead here now", -80.0, 5.0, 0.9, 0.4)
    assert judge(forced, strict) == "lm"
    question = Features("call smith", "what is the policy", -45.0, 10.0, 1.0, 0.0)
    assert judge(question, strict) == "lm"
    assert judge(Features("", "", float("-inf"), float("-inf"), 0.0, 1.0), strict) == "rejected"


def test_a_letter_place_is_always_read_back():
    # measured on held-out Piper speech: "zone d" decoded as "zone b" with a convincing score
    f = Features("bring a floor lead to zone b now", "bring a floor lead to", -23.6, 20.3, 1.05, 1.0)
    assert judge(f, RejectionPolicy()) == "grammar-unsure"
    assert judge(Features("bring a floor lead to dock two now", "", -23.6, 20.3, 1.05, 1.0), RejectionPolicy()) == "grammar"


def test_a_wrong_slot_counts_as_an_error():
    teams = {"medic", "floor lead", "maintenance"}
    exp = {"intent": "SUMMON_TEAM", "team": "floor lead", "location": "aisle 2"}
    assert _exact({"action": "SUMMON_TEAM", "team": "the floor lead", "location": "aisle 2"}, "SUMMON_TEAM", exp, teams)
    assert not _exact({"action": "SUMMON_TEAM", "team": "floor lead", "location": "aisle 3"}, "SUMMON_TEAM", exp, teams)
    assert not _exact({"action": "SUMMON_TEAM", "team": "medic", "location": "aisle 2"}, "SUMMON_TEAM", exp, teams)
    assert not _exact({"action": "SUMMON_TEAM", "team": "floor lead", "location": None}, "SUMMON_TEAM", exp, teams)
    assert _exact({"action": "SUMMON_TEAM", "team": "maintenance team", "location": None}, "SUMMON_TEAM",
                  {"intent": "SUMMON_TEAM", "team": "maintenance"}, teams)


def test_noise_only_audio_makes_no_utterance_and_no_action(tmp_path, engine):
    recipe = load_recipe()
    rows = [Utterance(f"noi-t{i}", "noise", "", None, "tune", "none", n, i % 2 == 1) for i, n in
            enumerate(["hum", "pink", "clank", "mix"])]
    rows.append(Utterance("sil-t0", "silence", "", None, "tune", "none"))
    v = VoiceSettings(classifier="keyword")
    results = evaluate(rows, recipe, tmp_path, v, engine=engine, classifier=KeywordIntentClassifier())
    assert all(not r.actions and not r.proposed for r in results), [(r.id, r.texts, r.decisions) for r in results]
    figures = summarise(results, rows, v.teams)
    assert figures["overall"]["false_action_rate"] == 0.0
    assert results[-1].utterances == 0  # digital silence opens no utterance


def test_a_command_fitted_on_a_fragment_of_the_speech_never_acts():
    # #12's last false action (held-out piper-joe-fast, 10 dB): the question "why is the scanner showing
    # an error" decoded by the grammar as "fire fire" with a convincing score and margin -> EMERGENCY.
    f = Features("fire fire", "why is this fayetteville", -37.4, 23.3, 0.67, 1.0)
    assert f.spoken < 0.5
    assert judge(f, RejectionPolicy()) == "lm"
    # the same command when the LM heard about as much speech is still believed
    real = Features("fire fire", "firefight", -37.4, 23.3, 0.67, 1.0)
    assert judge(real, RejectionPolicy()) == "grammar"
    assert judge(Features("emergency help", "emergencies harold", -30.0, 25.0, 0.9, 1.0), RejectionPolicy()) == "grammar"
