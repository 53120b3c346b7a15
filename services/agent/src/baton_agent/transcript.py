"""What the model reads: customer messages as text, with clear descriptions of what it cannot
see (stickers, reactions, attachments, unsupported messages), and operator messages."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from baton_shared.events import InboundMessage, MessageType, OutboundOutcome

_ATTACHMENTS = {
    MessageType.IMAGE: "an image",
    MessageType.VIDEO: "a video",
    MessageType.AUDIO: "an audio message",
    MessageType.DOCUMENT: "a document",
}


def _obj(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: `raw` is the message as WhatsApp
    sent it, whatever its shape (a string where an object belongs failed the turn for good)."""
    return value if isinstance(value, dict) else {}


def _location(raw: dict[str, Any]) -> str:
    loc = _obj(raw.get("location"))
    where = ", ".join(str(loc[k]) for k in ("name", "address") if loc.get(k))
    coords = f"{loc.get('latitude')}, {loc.get('longitude')}"
    return f"[The customer shared a location: {where + ' — ' if where else ''}{coords}]"


def _contacts(raw: dict[str, Any]) -> str:
    cards = raw.get("contacts")
    names = [
        str(_obj(_obj(c).get("name")).get("formatted_name") or "a contact")
        for c in (cards if isinstance(cards, list) else [])
    ]
    return f"[The customer shared contact cards: {', '.join(names) or 'a contact'}]"


def describe(message: InboundMessage) -> str:
    """One customer message as text the model can read; never empty."""
    kind, text = message.type, (message.text or "").strip()
    if kind in (MessageType.TEXT, MessageType.BUTTON, MessageType.INTERACTIVE) and text:
        return text
    if kind in _ATTACHMENTS:
        voice = message.media is not None and message.media.voice
        what = "a voice note" if voice else _ATTACHMENTS[kind]
        caption = f' with the caption "{text}"' if text else ""
        return f"[The customer sent {what}{caption}; you cannot see or hear it]"
    if kind is MessageType.STICKER:
        return "[The customer sent a sticker]"
    if kind is MessageType.REACTION:
        if not text:
            return "[The customer removed a reaction from an earlier message]"
        return f"[The customer reacted with {text} to an earlier message]"
    if kind is MessageType.LOCATION:
        return _location(message.raw)
    if kind is MessageType.CONTACTS:
        return _contacts(message.raw)
    if kind is MessageType.ORDER:
        return "[The customer sent an order from the catalogue]"
    if text:
        return text
    return f"[The customer sent a message WhatsApp cannot show here (type: {kind.value})]"


BACK_FROM_A_PERSON = (
    "[Since your last answer a person from the team had this conversation (what they wrote "
    "to the customer is above); it is yours again now: answer as usual, with your tools.]"
)


def turn_message(
    turn_id: str, messages: list[InboundMessage], *, back_from_a_person: bool = False
) -> HumanMessage:
    """The customer's burst of messages as one user message, idempotent by turn id; headed by
    a note when the conversation comes back from a person (a handback), so the model knows
    the handoff it may have announced is over."""
    body = "\n".join(describe(m) for m in messages) or "[The customer sent an empty message]"
    if back_from_a_person:
        body = f"{BACK_FROM_A_PERSON}\n{body}"
    return HumanMessage(content=body, id=f"turn:{turn_id}")


def operator_text(outcome: OutboundOutcome) -> str:
    """How a message a human operator sent reads in the thread: who, then what."""
    operator = outcome.details.get("operator")
    who = f"operator {operator}" if operator else "operator"
    text = (outcome.text or f"[a {outcome.kind.value} message]").strip()
    return f"({who}) {text}"


def operator_key(outcome: OutboundOutcome) -> str:
    """What identifies one sent operator message: WhatsApp's id (each part of a long text
    has its own), else the command's."""
    return outcome.wa_message_id or outcome.command_id


def operator_message(key: str, text: str) -> AIMessage:
    """An operator's message in the thread, idempotent by its key (`operator_key`)."""
    return AIMessage(content=text, id=f"operator:{key}")
