"""WhatsApp's documented size limits for outbound messages (reference, sections 5 and 7):
the sender checks every message against them before any call, and the agent builds its
messages within them."""

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
