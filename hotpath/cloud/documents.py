"""Document bodies to text: Markdown and plain text as they are, PDF through pypdf (a parser, no I/O).

    text = document_text(raw_bytes, "application/pdf")
"""

from __future__ import annotations

import io

from hotpath.errors import BadInput

__all__ = ["document_text", "CONTENT_TYPES", "content_type_for"]

CONTENT_TYPES = ("text/markdown", "text/plain", "application/pdf")
_BY_SUFFIX = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain", ".pdf": "application/pdf"}


def content_type_for(name: str) -> str:
    """The content type of a file by its suffix; BadInput for one we do not ingest."""
    for suffix, ctype in _BY_SUFFIX.items():
        if name.lower().endswith(suffix):
            return ctype
    raise BadInput(f"cannot ingest {name!r}: use Markdown (.md), text (.txt) or PDF (.pdf)")


def document_text(data: bytes | str, content_type: str) -> str:
    """The text of a document body; BadInput when it cannot be read as ``content_type``."""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise BadInput(f"unsupported content type {content_type!r}: use one of {', '.join(CONTENT_TYPES)}")
    if ctype == "application/pdf":
        if isinstance(data, str):
            raise BadInput("a PDF must be sent as bytes (base64 in JSON)")
        return _pdf_text(data)
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInput(f"the document is not UTF-8 text (byte {exc.start})") from None
    return data


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise BadInput(f"the PDF cannot be read: {type(exc).__name__}: {exc}") from None
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise BadInput("the PDF holds no extractable text (a scan needs OCR first)")
    return text
