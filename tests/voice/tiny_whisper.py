"""Build a tiny Whisper model in CTranslate2 format with random weights (no download, no torch).

It exists to prove that the faster-whisper engine loads a model directory, streams audio into it and
passes the tenant's ``initial_prompt`` — it transcribes nothing meaningful: random weights give
random tokens. Accuracy is not and cannot be tested here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

D, HEADS, LAYERS, MELS, FFN = 64, 2, 2, 80, 128
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
            "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]


def _vocab() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    base = sorted(ByteLevel.alphabet())  # the 256 byte-level symbols
    timestamps = ["<|%.2f|>" % (i * 0.02) for i in range(1501)]
    return base + SPECIALS + timestamps


def _tokenizer(vocab: list[str], out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    ids = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.BPE(vocab={t: i for t, i in ids.items() if not t.startswith("<|")}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS + [t for t in vocab if t.startswith("<|") and t not in SPECIALS])
    tok.save(str(out))
    for t in ("<|startoftranscript|>", "<|notimestamps|>", "<|endoftext|>"):
        assert tok.token_to_id(t) == ids[t], t


def build_tiny_whisper(out: Path, seed: int = 0) -> Path:
    from ctranslate2.specs import whisper_spec

    rng = np.random.default_rng(seed)
    vocab = _vocab()
    V = len(vocab)

    def w(*shape, scale=0.05):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def ln(spec):
        spec.gamma = np.ones(D, np.float32)
        spec.beta = np.zeros(D, np.float32)

    def lin(spec, o, i):
        spec.weight = w(o, i)
        spec.bias = np.zeros(o, np.float32)

    def attn(spec, self_attention):
        ln(spec.layer_norm)
        if self_attention:
            lin(spec.linear[0], 3 * D, D)
            lin(spec.linear[1], D, D)
        else:
            lin(spec.linear[0], D, D)
            lin(spec.linear[1], 2 * D, D)
            lin(spec.linear[2], D, D)

    def ffn(spec):
        ln(spec.layer_norm)
        lin(spec.linear_0, FFN, D)
        lin(spec.linear_1, D, FFN)

    spec = whisper_spec.WhisperSpec(LAYERS, HEADS, LAYERS, HEADS)
    enc = spec.encoder
    enc.conv1.weight, enc.conv1.bias = w(D, MELS, 3), np.zeros(D, np.float32)
    enc.conv2.weight, enc.conv2.bias = w(D, D, 3), np.zeros(D, np.float32)
    enc.position_encodings.encodings = w(1500, D)
    ln(enc.layer_norm)
    for layer in enc.layer:
        attn(layer.self_attention, True)
        ffn(layer.ffn)
    dec = spec.decoder
    dec.embeddings.weight = w(V, D)
    dec.position_encodings.encodings = w(448, D)
    ln(dec.layer_norm)
    lin(dec.projection, V, D)
    # Tilt the output layer toward one letter so greedy decoding visibly emits text ("hhhh...") instead
    # of a random timestamp or end token: it shows tokens flow through decoder and tokenizer.
    dec.projection.bias[vocab.index("h")] = 8.0
    for layer in dec.layer:
        attn(layer.self_attention, True)
        attn(layer.attention, False)
        ffn(layer.ffn)
    eot = vocab.index("<|endoftext|>")
    spec.config.suppress_ids = []
    spec.config.suppress_ids_begin = [eot]
    spec.config.lang_ids = []
    spec.config.alignment_heads = [(1, 0), (1, 1)]
    spec.register_vocabulary(vocab)
    spec.validate()
    spec.optimize(quantization=None)
    out.mkdir(parents=True, exist_ok=True)
    spec.save(str(out))
    _tokenizer(vocab, out / "tokenizer.json")
    (out / "preprocessor_config.json").write_text(json.dumps({"feature_size": MELS, "sampling_rate": 16000}))
    return out
