"""The grounded prompt: the tenant's retrieved chunks, numbered, and the rule to answer only from them.

Small models (SmolLM2-135M) wander; the system prompt is short and literal, the context is the top
chunks only, and the answer is asked for in one or two short sentences (it is spoken by TTS).
"""

from __future__ import annotations

from hotpath.cloud.models import Hit

__all__ = ["build_messages", "clean_answer"]

SYSTEM = (
    "You are a workplace safety assistant. Answer the worker's question using only the numbered "
    "context. Reply in one or two short sentences. If the context does not contain the answer, say "
    "you do not know."
)


def build_messages(question: str, hits: list[Hit], *, location: str | None = None,
                   max_context_chars: int = 1800) -> list[dict[str, str]]:
    """OpenAI chat messages for a grounded answer."""
    parts: list[str] = []
    used = 0
    for i, hit in enumerate(hits, 1):
        piece = f"[{i}] {hit.chunk.title}: {hit.chunk.text}"
        if used and used + len(piece) > max_context_chars:
            break
        parts.append(piece[:max_context_chars])
        used += len(piece)
    where = f" (asked at {location})" if location else ""
    user = "Context:\n" + "\n".join(parts) + f"\n\nQuestion{where}: {question}\nAnswer:"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def clean_answer(text: str, *, max_sentences: int = 2, max_chars: int = 300) -> str:
    """The model's reply trimmed for speech: no citation marks, at most two sentences."""
    import re

    text = re.sub(r"\[\d+\]", "", text or "").replace("\n", " ").strip()
    text = re.sub(r"\s+", " ", text)
    sentences = re.split(r"(?<=[.!?])\s+", text)
    out = " ".join(sentences[:max_sentences]).strip()
    if len(out) > max_chars:
        cut = out.rfind(" ", 0, max_chars)
        out = out[: cut if cut > 0 else max_chars].rstrip(",;: ") + "."
    return out
