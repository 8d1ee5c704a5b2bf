"""TTS engines: espeak-ng (real), and the Piper engine loading a voice the test builds.

No Piper voice can be downloaded here, so the Piper test writes a tiny ONNX graph with a Piper
voice's signature (``input``, ``input_lengths``, ``scales`` -> audio) plus its ``.onnx.json``. It
proves the engine loads a voice by path and runs piper-tts's own pipeline (espeak phonemizer, phoneme
ids, ONNX session, resampling to 16 kHz) — not that the voice sounds like speech: the graph makes a
tone whose length follows the phoneme count.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hotpath.errors import ConfigError
from hotpath.voice.settings import TtsSettings
from hotpath.voice.tts import EspeakTts, PiperTts, chunk_pcm, create_tts, resample


def test_espeak_speaks_16k_pcm():
    pcm = EspeakTts().synthesize("Supervisor summoned to dock 4.")
    samples = np.frombuffer(pcm, dtype="<i2")
    assert 1.0 < len(samples) / 16000 < 4.0
    assert np.abs(samples).max() > 3000  # not silence


def test_resample_and_chunking():
    x = np.sin(np.linspace(0, 100, 22050)).astype(np.float32)
    assert len(resample(x, 22050)) == 16000
    chunks = chunk_pcm(b"\x00\x00" * 16000, 100)
    assert len(chunks) == 10 and all(len(c) == 3200 for c in chunks)


def _tiny_piper_voice(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [
            helper.make_node("Cast", ["input"], ["x"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["x", "axes"], ["y"]),
            helper.make_node("Tile", ["y", "reps"], ["z"]),
            helper.make_node("Mul", ["z", "k"], ["zk"]),
            helper.make_node("Sin", ["zk"], ["w"]),
            helper.make_node("Mul", ["w", "gain"], ["wg"]),
            helper.make_node("Reshape", ["wg", "shape"], ["output"]),
        ],
        "tiny_piper",
        [
            helper.make_tensor_value_info("input", TensorProto.INT64, [1, None]),
            helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
            helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, None])],
        initializer=[
            helper.make_tensor("axes", TensorProto.INT64, [1], [2]),
            helper.make_tensor("reps", TensorProto.INT64, [3], [1, 1, 256]),
            helper.make_tensor("k", TensorProto.FLOAT, [256], list(np.arange(256) * 0.05)),
            helper.make_tensor("gain", TensorProto.FLOAT, [], [0.5]),
            helper.make_tensor("shape", TensorProto.INT64, [4], [1, 1, 1, -1]),
        ],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    symbols = ["_", "^", "$", " "] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + [
        chr(c) for c in list(range(0x250, 0x2B0)) + list(range(0x2B0, 0x370))] + list(".,!?;:'-") + ["æ", "ð", "θ", "ŋ", "ç"]
    config = {
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "en-us"},
        "num_symbols": len(symbols),
        "num_speakers": 1,
        "phoneme_id_map": {s: [i] for i, s in enumerate(symbols)},
    }
    (tmp_path / "tiny.onnx.json").write_text(json.dumps(config))
    return path


def test_piper_loads_a_voice_by_path_and_synthesizes(tmp_path):
    path = _tiny_piper_voice(tmp_path)
    tts = create_tts(TtsSettings(engine="piper", piper_model=path))
    assert isinstance(tts, PiperTts)
    short = np.frombuffer(tts.synthesize("Calling."), dtype="<i2")
    long = np.frombuffer(tts.synthesize("Calling technician Nguyen at the loading dock."), dtype="<i2")
    assert len(short) > 0 and len(long) > 2 * len(short)  # length follows the phonemes
    assert np.abs(long).max() > 1000


def test_piper_without_a_voice_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        create_tts(TtsSettings(engine="piper", piper_model=tmp_path / "missing.onnx"))
    with pytest.raises(ConfigError):
        PiperTts(tmp_path / "missing.onnx")


def test_repeated_replies_come_from_the_cache_and_voices_do_not_mix():
    """Replies are templated and repeat: the second time a voice says a text costs no synthesis."""
    calls = []

    class Counting(EspeakTts):
        def _render(self, text):
            calls.append((self.voice, text))
            return super()._render(text)

    from hotpath.voice.tts import ReplyCache

    us, gb = Counting("en-us"), Counting("en-gb")
    us.cache = gb.cache = ReplyCache(2)  # one cache shared by two voices: the key holds the voice
    a = us.synthesize("Medic summoned to bay 3.")
    assert us.synthesize("Medic summoned to bay 3.") == a and len(calls) == 1
    b = gb.synthesize("Medic summoned to bay 3.")
    assert len(calls) == 2 and b != a, "another voice is synthesized, not served from the first's entry"
    us.synthesize("Cancelled.")  # the LRU holds 2: the least recently used entry (en-us medic) goes
    us.synthesize("Medic summoned to bay 3.")
    assert len(calls) == 4 and us.cache.hits == 1


def test_create_tts_shares_one_engine_per_voice_and_process():
    s = TtsSettings(engine="espeak-ng")
    assert create_tts(s) is create_tts(s) and create_tts(s).cache is not None
    assert create_tts(s, shared=False) is not create_tts(s)
    assert create_tts(TtsSettings(engine="espeak-ng", cache_size=0)).cache is None
