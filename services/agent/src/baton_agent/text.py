"""Splitting long answers into WhatsApp-sized messages at sentence boundaries."""

from __future__ import annotations

import re

from baton_shared.whatsapp_limits import TEXT_BODY

# A sentence ends with . ! ? … (or CJK stops) and the whitespace after it; paragraphs too.
_SENTENCE_END = re.compile(r"(?<=[.!?…。\uff01\uff1f])\s+|\n{2,}")


def _sentences(text: str) -> list[str]:
    """The text cut after every sentence end, keeping the separators with the sentence."""
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [p for p in pieces if p]


def _hard_cut(piece: str, limit: int) -> list[str]:
    """Cut a sentence longer than `limit` at the last space before it, or anywhere."""
    parts: list[str] = []
    while len(piece) > limit:
        cut = piece.rfind(" ", 0, limit)
        cut = cut if cut > 0 else limit
        parts.append(piece[:cut])
        piece = piece[cut:].lstrip()
    return [*parts, piece] if piece else parts


def split_text(text: str, limit: int = TEXT_BODY) -> list[str]:
    """Messages of at most `limit` characters, cut between sentences where possible."""
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    chunks: list[str] = []
    current = ""
    for sentence in _sentences(text):
        for piece in _hard_cut(sentence, limit) if len(sentence) > limit else [sentence]:
            if current and len(current) + len(piece) > limit:
                chunks.append(current.strip())
                current = ""
            current += piece
    if current.strip():
        chunks.append(current.strip())
    return [c for c in chunks if c]
