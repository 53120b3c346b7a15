"""`offer_choices`: a question with tappable answers, as WhatsApp reply buttons or a list.

Up to three short answers become reply buttons; more (up to ten), or longer ones, a list
message whose rows carry the whole answer as their description when it does not fit the
title. The customer's tap comes back as an ordinary inbound message (a button or list reply
with the answer's title), so the model reads it as their next turn.
"""

from __future__ import annotations

from typing import Any

from baton_shared.whatsapp_limits import (
    BUTTON_TITLE,
    BUTTONS,
    INTERACTIVE_BODY,
    LIST_BUTTON,
    LIST_ROWS,
    ROW_DESCRIPTION,
    ROW_TITLE,
)

DEFAULT_BUTTON = "Choose"


class ChoicesError(ValueError):
    """The model's arguments cannot make a choice message; the text says how to fix them."""


def choice_message(text: str, choices: list[str], button: str | None = None) -> dict[str, Any]:
    """The WhatsApp `interactive` object asking `text` with `choices` as the answers."""
    question = text.strip()
    if not question:
        raise ChoicesError("the question text is empty")
    if len(question) > INTERACTIVE_BODY:
        raise ChoicesError(
            f"the question is {len(question)} characters; keep it under {INTERACTIVE_BODY}"
        )
    answers = list(dict.fromkeys(c.strip() for c in choices if c.strip()))
    if not 2 <= len(answers) <= LIST_ROWS:
        raise ChoicesError(f"give 2 to {LIST_ROWS} different choices, not {len(answers)}")
    if len(answers) <= BUTTONS and all(len(a) <= BUTTON_TITLE for a in answers):
        buttons = [
            {"type": "reply", "reply": {"id": f"choice-{n}", "title": answer}}
            for n, answer in enumerate(answers, start=1)
        ]
        return {"type": "button", "body": {"text": question}, "action": {"buttons": buttons}}
    rows: list[dict[str, str]] = []
    for n, answer in enumerate(answers, start=1):
        row = {"id": f"choice-{n}", "title": _shorten(answer, ROW_TITLE)}
        if len(answer) > ROW_TITLE:
            row["description"] = _shorten(answer, ROW_DESCRIPTION)
        rows.append(row)
    label = _shorten((button or "").strip() or DEFAULT_BUTTON, LIST_BUTTON)
    return {
        "type": "list",
        "body": {"text": question},
        "action": {"button": label, "sections": [{"rows": rows}]},
    }


def as_text(interactive: dict[str, Any]) -> str:
    """The question and its numbered answers, for the transcript and the thread."""
    action = interactive["action"]
    if interactive["type"] == "button":
        titles = [b["reply"]["title"] for b in action["buttons"]]
    else:
        titles = [r.get("description", r["title"]) for r in action["sections"][0]["rows"]]
    lines = [f"{n}. {title}" for n, title in enumerate(titles, start=1)]
    return "\n".join([interactive["body"]["text"], *lines])


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
