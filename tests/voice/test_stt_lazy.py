"""The pocketsphinx engine's lazy general-LM path, on real (espeak-ng) speech.

In ``lm_mode="lazy"`` only the command grammar decodes while audio streams; the general LM is brought
in (from the kept audio) only when the grammar's fit is unconvincing. Commands must come out of the
grammar, questions must still reach the LM's free-form transcript, both when the LM starts mid-stream
and when it only runs at the end of the utterance. Since the rejection work (docs/voice.md) the LM is
the grammar's competitor and always decodes: lazy mode only moves it to the end of the utterance.
"""

from __future__ import annotations

import pytest

from hotpath.voice.settings import VoiceSettings
from hotpath.voice.engines import create_engine
from hotpath.voice.stt import SttHints

SILENCE = b"\x00\x00" * 8000
COMMANDS = ["Need a supervisor at loading dock 4", "Send security to zone B", "Emergency help"]
QUESTION = "What is the PPE policy for zone B?"


def _engine(**stt):
    v = VoiceSettings()
    return create_engine(v.model_copy(update={"stt": v.stt.model_copy(update=stt)}))


def _decode(engine, pcm: bytes):
    s = engine.open(SttHints(device_id="lazy-test"))
    partials = [p for i in range(0, len(pcm), 6400) if (p := s.accept(pcm[i : i + 6400]))]
    t = s.finish()
    return t, partials


@pytest.fixture(scope="module")
def audio(speech):
    return {t: SILENCE + speech(t) + SILENCE for t in COMMANDS + [QUESTION]}


@pytest.fixture(scope="module")
def lazy(audio):
    e = _engine(lm_mode="lazy")  # parallel is the default now
    assert e.lazy
    for t in COMMANDS + [QUESTION]:  # the live cepstral mean settles on the first utterances
        _decode(e, audio[t])
    return e


def test_commands_are_always_checked_by_the_lm(lazy, audio):
    runs = lazy.lm_runs
    for phrase in COMMANDS:
        t, partials = _decode(lazy, audio[phrase])
        assert t.source in ("grammar", "grammar-unsure") and t.alternatives["lm_at"] in ("end", "stream"), (phrase, t)
        assert partials, "partial transcripts still stream (from the grammar)"
    assert "supervisor" in _decode(lazy, audio[COMMANDS[0]])[0].text
    assert lazy.lm_runs == runs + len(COMMANDS) + 1, "no command is believed without its competitor"


def test_question_starts_the_lm_while_streaming(lazy, audio):
    runs = lazy.lm_runs
    t, _ = _decode(lazy, audio[QUESTION])
    assert t.source in ("lm", "lm-full") and t.text.startswith("what"), t
    assert t.alternatives["lm_at"] == "stream", t
    assert lazy.lm_runs == runs + 1


def test_lm_at_the_end_decodes_the_kept_audio(audio):
    # never start mid-stream, never trust the grammar alone: every utterance takes the end-of-speech path
    e = _engine(lm_mode="lazy", lm_start_score=-1e9)
    for t in COMMANDS + [QUESTION]:
        _decode(e, audio[t])
    cmd, _ = _decode(e, audio[COMMANDS[0]])
    assert cmd.source in ("grammar", "grammar-unsure") and "supervisor" in cmd.text and cmd.alternatives["lm_at"] == "end", cmd
    assert cmd.alternatives["lm"], "the LM decoded the kept audio"
    q, _ = _decode(e, audio[QUESTION])
    assert q.source in ("lm", "lm-full") and q.text.startswith("what") and q.alternatives["lm_at"] == "end", q


def test_parallel_mode_runs_both_decoders(audio):
    e = _engine(lm_mode="parallel")
    assert not e.lazy
    for t in COMMANDS + [QUESTION]:
        _decode(e, audio[t])
    runs = e.lm_runs
    cmd, _ = _decode(e, audio[COMMANDS[0]])
    q, _ = _decode(e, audio[QUESTION])
    assert cmd.source in ("grammar", "grammar-unsure") and cmd.alternatives["lm_at"] == "parallel" and cmd.alternatives["lm"], cmd
    assert q.source in ("lm", "lm-full") and q.text.startswith("what"), q
    assert e.lm_runs == runs + 2


def test_cancel_mid_stream_leaves_the_engine_usable(lazy, audio):
    s = lazy.open(SttHints(device_id="lazy-test"))
    pcm = audio[QUESTION]
    for i in range(0, len(pcm) // 2, 6400):
        s.accept(pcm[i : i + 6400])
    s.cancel()
    t, _ = _decode(lazy, audio[COMMANDS[0]])
    assert t.source in ("grammar", "grammar-unsure") and "supervisor" in t.text, t
