"""The scripted, deterministic model: what it answers to the latest turn."""

from __future__ import annotations

import re
from typing import Any

from baton_devtools.gemini.validation import field

HUMAN = re.compile(r"\bhuman\b", re.IGNORECASE)
SAMPLE = re.compile(r"\bsamples?\b", re.IGNORECASE)
OPTIONS = re.compile(r"\b(options|choices)\b", re.IGNORECASE)
BACKTICKED = re.compile(r"`([A-Za-z0-9_.:\-]+)`")
ID_LABEL = re.compile(r"\bids?\b\s*[:=]\s*[\"']?([A-Za-z0-9_.:\-]+)", re.IGNORECASE)
INTERVENTION = "request_intervention"
MEDIA = "respond_with_media"
CHOICES = "offer_choices"
SCRIPTED_CHOICES = {"text": "How would you like to get it?", "choices": ["Pickup", "Delivery"]}
DEFAULT_MEDIA_ID = "sample-1"
TOOL_DONE_TEXT = "Done."


def scripted_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Model parts answering the request.

    A function result as the latest content gets "Done."; otherwise the latest user text
    decides: "human" calls `request_intervention`, "sample" calls `respond_with_media`,
    "options" or "choices" calls `offer_choices` (when those functions are offered), anything
    else is quoted back as "You said: ...".
    """
    contents: list[dict[str, Any]] = body["contents"]
    if any(field(part, "functionResponse") is not None for part in contents[-1]["parts"]):
        return [{"text": TOOL_DONE_TEXT}]
    text = latest_user_text(contents)
    declarations = function_declarations(body)
    if HUMAN.search(text) and INTERVENTION in declarations:
        return [_call(INTERVENTION, {"reason": "customer asked for a human"})]
    if SAMPLE.search(text) and MEDIA in declarations:
        return [_call(MEDIA, {"media_ids": [first_media_id(declarations[MEDIA])]})]
    if OPTIONS.search(text) and CHOICES in declarations:
        return [_call(CHOICES, SCRIPTED_CHOICES)]
    return [{"text": f"You said: {text}"}]


def latest_user_text(contents: list[dict[str, Any]]) -> str:
    """All text parts of the latest user content, joined by newlines."""
    for content in reversed(contents):
        if content.get("role") in (None, "", "user"):
            texts = [part["text"] for part in content["parts"] if isinstance(part.get("text"), str)]
            return "\n".join(text for text in texts if text)
    return ""


def function_declarations(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Offered function declarations by name."""
    found: dict[str, dict[str, Any]] = {}
    for tool in body.get("tools") or []:
        for declaration in field(tool, "functionDeclarations") or []:
            found[declaration["name"]] = declaration
    return found


def first_media_id(declaration: dict[str, Any]) -> str:
    """First media id the declaration names: an enum value, a `backticked` or `id: x` token."""
    schema = field(declaration, "parameters") or field(declaration, "parametersJsonSchema") or {}
    enum = _first_enum(schema)
    if enum is not None:
        return enum
    for text in [declaration.get("description", ""), *_descriptions(schema)]:
        match = BACKTICKED.search(text) or ID_LABEL.search(text)
        if match:
            return match.group(1)
    return DEFAULT_MEDIA_ID


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"functionCall": {"name": name, "args": args}}


def _first_enum(node: Any) -> str | None:
    if isinstance(node, dict):
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            return str(enum[0])
        for value in node.values():
            found = _first_enum(value)
            if found is not None:
                return found
    elif isinstance(node, list):
        for item in node:
            found = _first_enum(item)
            if found is not None:
                return found
    return None


def _descriptions(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["description"]] if isinstance(node.get("description"), str) else []
        return own + [text for value in node.values() for text in _descriptions(value)]
    if isinstance(node, list):
        return [text for item in node for text in _descriptions(item)]
    return []
