"""Tokenizer edge cases: empty, very long, non-ASCII, numbers; batch padding."""

from __future__ import annotations

import numpy as np
import pytest

from hotpath.errors import ModelError
from hotpath.intent.settings import SHIPPED_MODEL_DIR
from hotpath.intent.tokenizer import IntentTokenizer


@pytest.fixture(scope="module")
def tok() -> IntentTokenizer:
    return IntentTokenizer(SHIPPED_MODEL_DIR / "vocab.txt", max_length=32)


def test_empty_text_is_cls_sep(tok: IntentTokenizer) -> None:
    assert tok.tokens("") == ["[CLS]", "[SEP]"]
    ids, mask = tok.encode("")
    assert ids.shape == (1, 2) and mask.tolist() == [[1, 1]]
    assert tok.tokens("   \t\n") == ["[CLS]", "[SEP]"]


def test_long_text_is_truncated_to_max_length(tok: IntentTokenizer) -> None:
    text = "call technician nguyen at loading dock four " * 40
    ids, mask = tok.encode(text)
    assert ids.shape == (1, 32)
    tokens = tok.tokens(text)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and len(tokens) == 32
    assert tokens[1:4] == ["call", "technician", "nguyen"]
    # one enormous "word" is a single unknown token, not an error
    assert tok.tokens("x" * 5000) == ["[CLS]", "[UNK]", "[SEP]"]


def test_non_ascii_folds_accents_and_never_fails(tok: IntentTokenizer) -> None:
    assert tok.tokens("Gọi kỹ thuật viên Nguyễn")[-2] == "nguyen"
    assert tok.tokens("Call NGUYỄN") == tok.tokens("call nguyen")
    for text in ["🔥 fire in aisle 5 🔥", "火事だ", "Zürich straße", "đức", "\u200b\u00a0call\u3000john"]:
        ids, mask = tok.encode(text)
        assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < tok.vocab_size
        assert mask.sum() == ids.shape[1]
    assert "call" in tok.tokens("\u200b\u00a0call\u3000john")


def test_numbers_are_kept(tok: IntentTokenizer) -> None:
    assert tok.tokens("call 911") == ["[CLS]", "call", "911", "[SEP]"]
    assert tok.tokens("dock #4") == ["[CLS]", "dock", "#", "4", "[SEP]"]
    assert "3" in tok.tokens("lift 3.5 tons") and "5" in tok.tokens("lift 3.5 tons")
    assert tok.tokens("aisle 12") != tok.tokens("aisle 13")


def test_batch_pads_to_longest_with_zero_mask(tok: IntentTokenizer) -> None:
    ids, mask = tok.encode_batch(["hi", "call technician nguyen now", ""])
    assert ids.shape == mask.shape == (3, 6)
    assert mask.sum(axis=1).tolist() == [3, 6, 2]
    assert (ids[mask == 0] == tok.pad_id).all()
    single, _ = tok.encode("call technician nguyen now")
    assert ids[1].tolist() == single[0].tolist()


def test_missing_vocab_is_a_model_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        IntentTokenizer(tmp_path / "nope.txt")
