"""WhatsApp's documented size limits for outbound messages, checked before any call."""

from __future__ import annotations

TEXT_BODY = 4096
CAPTION = 1024
BUTTONS = 3
BUTTON_TITLE = 20
BUTTON_ID = 256
INTERACTIVE_BODY = 1024
LIST_BODY = 4096
FOOTER = 60
HEADER_TEXT = 60
LIST_BUTTON = 20
LIST_SECTIONS = 10
LIST_ROWS = 10
SECTION_TITLE = 24
ROW_TITLE = 24
ROW_ID = 200
ROW_DESCRIPTION = 72
CAPTIONED = frozenset({"image", "video", "document"})
MEDIA_KINDS = frozenset({"image", "audio", "video", "document", "sticker"})


def split_text(text: str, limit: int = TEXT_BODY) -> list[str]:
    """Cut `text` into parts of at most `limit` characters, at a line break or space if any."""
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = max(rest.rfind("\n", 0, limit + 1), rest.rfind(" ", 0, limit + 1))
        if cut <= limit // 2:
            cut = limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not parts:
        parts.append(rest)
    return parts
