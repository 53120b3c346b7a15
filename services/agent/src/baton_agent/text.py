"""Splitting long answers into WhatsApp-sized messages at sentence boundaries."""

from __future__ import annotations

import re

from baton_shared.whatsapp_limits import TEXT_BODY

# A sentence ends with . ! ? … and the whitespace after it; paragraphs too. Scripts with
# their own stops end a sentence with or without whitespace (Chinese and Japanese write none):
# the ideographic full stop and full-width ! ? (CJK), the danda and double danda (Devanagari
# and other scripts of India), the Arabic question mark and full stop (Arabic, Urdu), the
# Armenian, Ethiopic and Myanmar full stops.
_SENTENCE_END = re.compile(
    r"(?<=[.!?…])\s+|(?<=[。\uff01\uff1f\uff61\u0964\u0965\u061f\u06d4\u0589\u1362\u104b])\s*|\n{2,}"
)


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
