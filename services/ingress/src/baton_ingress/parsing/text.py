"""The readable text of each message type: what a human (or the model) should read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from baton_ingress.parsing.fields import items, obj, text


def _caption(body: dict[str, Any]) -> str | None:
    return text(body.get("caption"))


def _document(body: dict[str, Any]) -> str | None:
    return text(body.get("caption")) or text(body.get("filename"))


def _location(body: dict[str, Any]) -> str:
    place = ", ".join(p for p in (text(body.get("name")), text(body.get("address"))) if p)
    coords = f"({body.get('latitude')}, {body.get('longitude')})"
    return f"Location: {place} {coords}" if place else f"Location: {coords}"


def _contact(card: object) -> str:
    card = obj(card)
    name = text(obj(card.get("name")).get("formatted_name")) or "unnamed"
    phones = [p for p in (text(obj(x).get("phone")) for x in items(card.get("phones"))) if p]
    return f"{name} ({', '.join(phones)})" if phones else name


def _interactive(body: dict[str, Any]) -> str | None:
    kind = text(body.get("type")) or ""
    reply = obj(body.get(kind))
    if kind == "nfm_reply":
        return text(reply.get("body")) or text(reply.get("response_json"))
    return text(reply.get("title"))


def _button(body: dict[str, Any]) -> str | None:
    return text(body.get("text")) or text(body.get("payload"))


def _order(body: dict[str, Any]) -> str:
    products = items(body.get("product_items"))
    summary = ", ".join(
        f"{obj(p).get('quantity', 1)} x {obj(p).get('product_retailer_id', '?')}" for p in products
    )
    note = text(body.get("text"))
    return f"Order: {summary}" + (f" ({note})" if note else "")


_EXTRACTORS: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "text": lambda b: text(b.get("body")),
    "image": _caption,
    "video": _caption,
    "document": _document,
    "location": _location,
    "interactive": _interactive,
    "button": _button,
    "reaction": lambda b: text(b.get("emoji")),
    "order": _order,
    "system": lambda b: text(b.get("body")),
}


def readable_text(message: dict[str, Any], kind: str) -> str | None:
    """The text of a message of type `kind`, or None when it has none (audio, sticker...)."""
    if kind == "contacts":
        cards = items(message.get("contacts"))
        return "Contact: " + "; ".join(_contact(c) for c in cards) if cards else None
    extractor = _EXTRACTORS.get(kind)
    return extractor(obj(message.get(kind))) if extractor else None
