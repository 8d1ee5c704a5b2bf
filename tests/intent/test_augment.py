"""Paraphrase noise and the teacher head used to distil on it (hotpath/intent/augment.py)."""

from __future__ import annotations

import numpy as np

from hotpath.intent.augment import common_words, fit_head, head_probs, neighbour_table, paraphrase_noise


def _toy() -> tuple[list[str], np.ndarray]:
    vocab = ["[PAD]", "[UNK]", "##s", "book", "reserve", "cancel", "drop", "a", "hotel", "motel", "x1"]
    rng = np.random.default_rng(0)
    base = {w: rng.normal(size=8) for w in ("book", "cancel", "a", "hotel")}
    emb = np.stack([
        base.get(w, rng.normal(size=8)) if w not in ("reserve", "drop", "motel")
        else base[{"reserve": "book", "drop": "cancel", "motel": "hotel"}[w]] + 0.05 * rng.normal(size=8)
        for w in vocab
    ]).astype(np.float32)
    return vocab, emb


def test_neighbours_are_close_whole_words_only() -> None:
    vocab, emb = _toy()
    near = neighbour_table(vocab, emb, ["book", "cancel", "hotel", "x1", "unknownword", "##s"], k=1, min_similarity=0.9)
    assert near == {"book": ["reserve"], "cancel": ["drop"], "hotel": ["motel"]}
    assert common_words(vocab, 3) == ["book", "reserve", "cancel"]


def test_paraphrase_noise_is_deterministic_and_changes_lines() -> None:
    vocab, emb = _toy()
    near = neighbour_table(vocab, emb, ["book", "cancel", "hotel"], k=1, min_similarity=0.9)
    texts = ["book a hotel", "cancel a hotel"]
    a = paraphrase_noise(texts, near, copies=3, seed=1, p_substitute=0.5)
    assert a == paraphrase_noise(texts, near, copies=3, seed=1, p_substitute=0.5)
    assert len(a) == 6 and not set(a) & set(texts)
    words = {w for line in a for w in line.split()}
    assert words <= {"book", "reserve", "cancel", "drop", "a", "hotel", "motel"}
    assert {"reserve", "drop", "motel"} & words
    r = paraphrase_noise(texts, {}, copies=4, seed=2, p_random=1.0, random_words=["zzz"], p_drop=0.0, p_swap=0.0)
    assert r == ["zzz zzz zzz"] * 8  # every word replaced by the random pool's


def test_teacher_head_fits_and_gives_probabilities() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + 0.3 * rng.normal(size=(120, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = fit_head(x, y, 3)
    p = head_probs(w, x)
    assert p.shape == (120, 3) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert (p.argmax(1) == y).mean() > 0.95


def test_training_distils_on_paraphrase_noise_with_soft_labels() -> None:
    """The teacher path end to end on a toy set: noisy copies are added (unlabelled), embedded by
    MiniLM, soft-labelled by the teacher head, and the student trains on them."""
    from hotpath.intent.artifact import DEFAULT_VOCAB
    from hotpath.intent.data import Example
    from hotpath.intent.tokenizer import IntentTokenizer
    from hotpath.intent.train import TrainConfig, train_model
    from hotpath.intent.types import label_of

    rows = {"book_flight": ["book a flight", "reserve a plane ticket", "get me a flight please", "book a flight today"],
            "cancel_flight": ["cancel my flight", "drop my plane ticket", "call off my flight", "cancel the flight now"],
            "oos": ["what is the capital of peru", "sing me a song", "how tall is big ben", "tell me a joke"]}
    train = [Example(t, label_of(k)) for k, texts in rows.items() for t in texts]
    lines: list[str] = []
    cfg = TrainConfig(hidden=32, layers=1, heads=2, intermediate=64, max_length=16, epochs=2, batch_size=8,
                      teacher="yes", augment=2, soft_weight=1.0, label_smoothing=0.1)
    model = train_model(train, train[:3], IntentTokenizer(DEFAULT_VOCAB, 16), cfg, log=lines.append)
    assert model.teacher_used and model.labels == ["book_flight", "cancel_flight", "oos"]
    assert any(line.startswith("paraphrase noise: 24 variants") for line in lines)
    assert any("MiniLM embeddings of 36 utterances" in line for line in lines)
    head = next(line for line in lines if line.startswith("teacher head: fitted on 12 lines"))
    assert "training accuracy 1.0000" in head
    assert all(np.isfinite(v).all() for v in model.params.values()) and len(model.history) == 2
