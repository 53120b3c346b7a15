"""Cutting a text to WhatsApp's size limit (the limits: `baton_shared.whatsapp_limits`)."""

from __future__ import annotations

from baton_shared.whatsapp_limits import TEXT_BODY


def split_text(text: str, limit: int = TEXT_BODY) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, at a line break or space if any."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(rest.rfind("\n", 0, limit + 1), rest.rfind(" ", 0, limit + 1))
        if cut <= limit // 2:
            cut = limit
        part = rest[:cut].rstrip()
        if part:  # a cut inside a run of blanks at the start leaves nothing to send
            parts.append(part)
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts
