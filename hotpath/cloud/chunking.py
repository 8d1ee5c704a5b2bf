"""Documents to chunks: Markdown-aware sections, packed paragraphs, sentence-boundary overlap.

A section is the text under one heading (its title is the heading path, ``PPE policy > Zone B``).
Paragraphs of a section are packed into chunks of at most ``max_chars``; a paragraph longer than that
is cut at sentence ends (a sentence longer still, at a word). Each chunk after the first of a section
starts with the last sentences (at most ``overlap_chars``) of the one before, so an answer that
straddles a cut is whole in one of them. Chunk ids are ``{doc_id}#{n}``: re-ingesting a document
yields the same ids, and the store replaces the document's chunks as a whole.

    chunks = chunk_document("ppe-policy", "PPE policy", markdown_text, max_chars=700, overlap_chars=120)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from hotpath.cloud.models import Chunk
from hotpath.errors import BadInput

__all__ = ["chunk_document", "split_sentences", "sections", "embed_text"]

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a paragraph (a cut after . ! ? followed by a capital or digit); list items stay whole."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        out.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return out


def sections(text: str, title: str) -> Iterator[tuple[str, list[str]]]:
    """(heading path, paragraphs) for each Markdown section; text before any heading goes under ``title``."""
    path: list[tuple[int, str]] = []
    paras: list[str] = []
    current: list[str] = []

    def heading() -> str:
        names = [t for _, t in path]
        if names and names[0].lower() == title.lower():
            names = names[1:]
        return " > ".join([title, *names]) if title else " > ".join(names)

    def flush_para() -> None:
        if current:
            paras.append("\n".join(current).strip())
            current.clear()

    for raw in text.replace("\r\n", "\n").split("\n"):
        m = _HEADING.match(raw)
        if m:
            flush_para()
            if paras:
                yield heading(), list(paras)
                paras.clear()
            level = len(m.group(1))
            while path and path[-1][0] >= level:
                path.pop()
            path.append((level, m.group(2).strip()))
        elif not raw.strip():
            flush_para()
        else:
            current.append(raw.rstrip())
    flush_para()
    if paras:
        yield heading(), list(paras)


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph as pieces of at most ``max_chars`` (sentence cuts, then word cuts)."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    out: list[str] = []
    for sentence in split_sentences(paragraph):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > max_chars // 2 else max_chars
            out.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            out.append(sentence)
    return out


def _tail(text: str, overlap_chars: int) -> str:
    """The last whole sentences of ``text`` that fit in ``overlap_chars`` ('' when none fits)."""
    if overlap_chars <= 0:
        return ""
    kept: list[str] = []
    size = 0
    for s in reversed(split_sentences(text)):
        if size + len(s) + 1 > overlap_chars:
            break
        kept.insert(0, s)
        size += len(s) + 1
    return " ".join(kept)


def chunk_document(
    doc_id: str,
    title: str,
    text: str,
    *,
    max_chars: int = 700,
    overlap_chars: int = 120,
    source: str = "",
) -> list[Chunk]:
    """The chunks of one document, in order. BadInput when it holds no text."""
    if overlap_chars >= max_chars:
        raise BadInput(f"chunk overlap ({overlap_chars}) must be smaller than the chunk size ({max_chars})")
    if not text or not text.strip():
        raise BadInput(f"document {doc_id!r} holds no text")
    chunks: list[Chunk] = []
    for head, paras in sections(text, title):
        pieces = [p for para in paras for p in _pieces(para, max_chars)]
        body: list[str] = []
        size = 0
        prev = ""

        def emit() -> None:
            nonlocal prev
            joined = "\n".join(body).strip()
            if not joined:
                return
            lead = _tail(prev, overlap_chars) if prev else ""
            full = f"{lead}\n{joined}" if lead else joined
            chunks.append(Chunk(f"{doc_id}#{len(chunks)}", doc_id, len(chunks), head, full, source))
            prev = joined

        for piece in pieces:
            if body and size + len(piece) + 1 > max_chars - min(overlap_chars, max_chars // 4):
                emit()
                body, size = [], 0
            body.append(piece)
            size += len(piece) + 1
        emit()
    if not chunks:
        raise BadInput(f"document {doc_id!r} holds no text")
    return chunks


def embed_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading path, then its text (the heading carries the topic)."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text
