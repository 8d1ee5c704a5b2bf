"""Silero VAD (the onnx inside faster-whisper) and the segmentation state machine, on real speech."""

from __future__ import annotations

import numpy as np

from hotpath.voice.audio import AudioChunk, encode_framed, parse_payload
from hotpath.voice.settings import VoiceSettings
from hotpath.voice.vad import DeviceStream
from hotpath.voice.vad import FRAME, Segmenter, SileroVad, SpeechAudio, SpeechEnd, SpeechStart

from .conftest import SILENCE_1S


def _chunks(pcm: bytes, ms: int = 200):
    step = 16000 * 2 * ms // 1000
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def _run(stream: DeviceStream, pcm: bytes):
    events = []
    for c in _chunks(pcm):
        events.extend(stream.push(AudioChunk("w-1", c)))
    return events


def test_silero_scores_speech_high_and_silence_low(speech):
    vad = SileroVad()
    pcm = speech("Need a supervisor at loading dock 4")
    samples = np.frombuffer(SILENCE_1S + pcm + SILENCE_1S, dtype="<i2").astype(np.float32) / 32768
    samples = samples[: len(samples) // FRAME * FRAME]
    probs = vad(samples)
    assert len(probs) == len(samples) // FRAME
    assert probs[:25].max() < 0.2  # leading second of silence
    assert (probs[35:70] > 0.5).mean() > 0.5  # speech in the middle


def test_chunked_scoring_matches_one_pass(speech):
    pcm = speech("Call technician Nguyen")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    samples = samples[: len(samples) // FRAME * FRAME]
    whole = SileroVad()(samples)
    v = SileroVad()
    parts = np.concatenate([v(samples[i : i + 4 * FRAME]) for i in range(0, len(samples), 4 * FRAME)])
    np.testing.assert_allclose(parts, whole, atol=1e-4)


def test_one_utterance_ends_after_silence_window(speech):
    s = VoiceSettings()
    stream = DeviceStream("w-1", s)
    pcm = speech("Need a supervisor at loading dock 4")
    events = _run(stream, SILENCE_1S + pcm + SILENCE_1S * 2)
    starts = [e for e in events if isinstance(e, SpeechStart)]
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert len(starts) == 1 and len(ends) == 1
    assert ends[0].reason == "silence"
    speech_end = (16000 + len(pcm) // 2)
    # closes about vad_silence_s (0.7 s) after the last speech, never before it
    assert ends[0].at_sample >= ends[0].speech_samples + starts[0].at_sample
    lag = (ends[0].at_sample - speech_end) / 16000
    assert 0.3 < lag < 1.0, lag
    audio = b"".join(e.pcm for e in events if isinstance(e, SpeechAudio))
    assert len(audio) >= len(pcm) * 0.8


def test_never_ending_speech_is_cut_at_max_length(speech):
    s = VoiceSettings(max_utterance_s=3.0)
    stream = DeviceStream("w-1", s)
    talk = speech("Please keep talking about the loading dock and the forklift and the scanner and the aisle")
    events = _run(stream, talk * 3)
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert ends and ends[0].reason == "max-length"
    first_len = ends[0].at_sample - [e for e in events if isinstance(e, SpeechStart)][0].at_sample
    assert first_len <= 3.0 * 16000 + FRAME


def test_device_stop_flag_closes_utterance(speech):
    stream = DeviceStream("w-1", VoiceSettings())
    pcm = speech("Emergency help")
    events = []
    for i, c in enumerate(_chunks(SILENCE_1S + pcm)):
        events.extend(stream.push(parse_payload("w-1", encode_framed(c, seq=i), max_bytes=64000)))
    events.extend(stream.push(parse_payload("w-1", encode_framed(b"", seq=i + 1, stop=True), max_bytes=64000)))
    assert isinstance(events[-1], SpeechEnd) and events[-1].reason == "device-stop"


def test_short_click_is_marked_too_short():
    seg = Segmenter(silence_s=0.1, min_speech_s=0.25)
    frame = b"\x00\x00" * FRAME
    events = seg.push(frame, 0.9)
    for _ in range(5):
        events += seg.push(frame, 0.0)
    assert isinstance(events[0], SpeechStart)
    assert isinstance(events[-1], SpeechEnd) and events[-1].reason == "too-short"


def _cut(stream: DeviceStream, pcm: bytes):
    events = _run(stream, pcm)
    return ([(type(e).__name__, e.at_sample) for e in events if isinstance(e, (SpeechStart, SpeechEnd))],
            b"".join(e.pcm for e in events if isinstance(e, SpeechAudio)))


def test_quiet_chunks_are_not_scored_and_utterances_cut_the_same(speech):
    """The energy gate: silence between utterances costs no model call, and the utterances come out
    as without the gate (starts within a frame, ends within two, the same speech audio)."""
    on, off = VoiceSettings(), VoiceSettings(vad_gate_dbfs=None)
    assert on.vad_gate_dbfs == -60.0
    rng = np.random.default_rng(3)
    room = (rng.standard_normal(16000) * 10 ** (-70 / 20) * 32768).astype("<i2").tobytes()  # -70 dBFS
    pcm = b"".join(SILENCE_1S + room + speech(t) + SILENCE_1S * 2
                   for t in ("Need a supervisor at loading dock 4", "Emergency help"))
    gated, plain = DeviceStream("w-1", on), DeviceStream("w-1", off)
    (ev_g, audio_g), (ev_p, audio_p) = _cut(gated, pcm), _cut(plain, pcm)
    assert [k for k, _ in ev_g] == [k for k, _ in ev_p] == ["SpeechStart", "SpeechEnd"] * 2
    for (k, a), (_, b) in zip(ev_g, ev_p):
        assert abs(a - b) <= (FRAME if k == "SpeechStart" else 2 * FRAME), (k, a, b)
    assert abs(len(audio_g) - len(audio_p)) <= 3 * FRAME * 2
    middle = audio_p[4 * FRAME * 2: len(audio_p) // 2]
    assert middle in audio_g
    total = gated.samples_in // FRAME
    assert gated.frames_gated > 0.5 * total and gated.vad.frames_scored < 0.5 * total
    assert plain.frames_gated == 0


def test_quiet_speech_and_factory_noise_are_still_scored(speech):
    pcm = np.frombuffer(speech("Send security to zone B"), dtype="<i2").astype(np.float32)
    rms = np.sqrt(np.mean(pcm ** 2))
    quiet = (pcm * (10 ** (-45 / 20) * 32768 / rms)).astype("<i2").tobytes()  # speech at -45 dBFS RMS
    stream = DeviceStream("w-1", VoiceSettings())
    events = _run(stream, SILENCE_1S + quiet + SILENCE_1S * 2)
    assert any(isinstance(e, SpeechStart) for e in events), "quiet speech still opens an utterance"
    rng = np.random.default_rng(4)
    noise = (rng.standard_normal(32000) * 10 ** (-35 / 20) * 32768).astype("<i2").tobytes()
    stream = DeviceStream("w-2", VoiceSettings())
    _run(stream, noise)
    assert stream.frames_gated == 0 and stream.vad.frames_scored == len(noise) // 2 // FRAME
