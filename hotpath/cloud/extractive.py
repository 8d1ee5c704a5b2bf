"""The extractive answer: the best one or two sentences of the top chunks, with their citations.

Used when no LLM is configured, when it is down or slower than its timeout. Sentences are scored by
the query's content words they contain (a crude stem: lowercase, plural ``s`` dropped), weighted by
how rare the word is among the candidate sentences, plus the chunk's retrieval rank; the best one,
and the sentence after it when that one also matches and the pair stays short, are the answer.
Pure Python over a handful of sentences: well under a millisecond.
"""

from __future__ import annotations

import math
import re

from hotpath.cloud.chunking import split_sentences
from hotpath.cloud.models import Hit

__all__ = ["extract_answer", "content_words"]

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it its me my of on or our should so "
    "that the their there this to us was we what when where which who why will with you your "
    "tell please about any if into than then them they have has had been being not no yes".split()
)


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


def extract_answer(question: str, hits: list[Hit], *, max_chunks: int = 2,
                   max_chars: int = 260) -> tuple[str, list[Hit]]:
    """(answer text, the hits it was taken from); ``("", [])`` when there are no hits."""
    if not hits:
        return "", []
    q = set(content_words(question))
    cands: list[tuple[int, int, str, set[str]]] = []  # (hit index, sentence index, sentence, words)
    for hi, hit in enumerate(hits[:max_chunks]):
        for si, s in enumerate(split_sentences(hit.chunk.text)):
            s = s.lstrip("-*0123456789. ").strip()
            if len(s) >= 3:
                cands.append((hi, si, s, set(content_words(s))))
    if not cands:
        return "", []
    df: dict[str, int] = {}
    for *_, words in cands:
        for w in words & q:
            df[w] = df.get(w, 0) + 1
    n = len(cands)

    def score(c: tuple[int, int, str, set[str]]) -> float:
        hi, si, s, words = c
        overlap = sum(math.log(1 + n / df[w]) for w in words & q)
        return overlap - 0.6 * hi - 0.02 * si - 0.002 * max(0, len(s) - 160)

    scored = sorted(range(n), key=lambda i: score(cands[i]), reverse=True)
    best = cands[scored[0]]
    parts = [best[2]]
    used = {best[0]}
    nxt = next((c for c in cands if c[0] == best[0] and c[1] == best[1] + 1), None)
    if nxt is not None and (nxt[3] & q) and len(best[2]) + len(nxt[2]) < max_chars:
        parts.append(nxt[2])
    text = " ".join(p if p[-1:] in ".!?" else p + "." for p in parts)
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars)
        text = text[: cut if cut > 0 else max_chars].rstrip(",;: ") + "."
    return text, [hits[i] for i in sorted(used)]
