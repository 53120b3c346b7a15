"""Validators for the non-interactive message objects (text, media, reaction, template, ...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from baton_devtools.whatsapp.checks import (
    check_keys,
    optional_bool,
    optional_obj,
    optional_str,
    require_enum,
    require_list,
    require_number,
    require_obj,
    require_str,
    sub,
)
from baton_devtools.whatsapp.errors import GraphError, invalid_value, missing_value

TEXT_MAX = 4096
CAPTION_MAX = 1024
# Which optional keys each media type allows beside `id` / `link`.
MEDIA_EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "image": ("caption",),
    "video": ("caption",),
    "document": ("caption", "filename"),
    "audio": ("voice",),
    "sticker": (),
}
PARAMETER_TYPES = (
    "text", "currency", "date_time", "image", "document", "video", "location", "payload",
    "coupon_code", "action", "product",
)  # fmt: skip


def validate_text(obj: dict[str, Any], path: str) -> None:
    """`text`: body (required, at most 4096 characters) and preview_url."""
    check_keys(obj, ["body", "preview_url"], path)
    require_str(obj, "body", sub(path, "body"), max_len=TEXT_MAX)
    optional_bool(obj, "preview_url", sub(path, "preview_url"))


def validate_media(obj: dict[str, Any], path: str, media_type: str | None = None) -> None:
    """Media by exactly one of `id` or `link`, with the extras the media type allows."""
    kind = media_type or path
    check_keys(obj, ("id", "link", *MEDIA_EXTRA_KEYS[kind]), path)
    media_id = optional_str(obj, "id", sub(path, "id"))
    link = optional_str(obj, "link", sub(path, "link"))
    if media_id and link:
        raise invalid_value(f"Param {path} must contain only one of 'id' or 'link'.")
    if not media_id and not link:
        raise missing_value(f"Param {path} must contain one of 'id' or 'link'.")
    if media_id is not None and not media_id.isdigit():
        raise GraphError(
            100, f"Param {sub(path, 'id')} is not a valid whatsapp business account media ID"
        )
    if link is not None and not link.startswith(("http://", "https://")):
        raise invalid_value(f"Param {sub(path, 'link')} must be an http or https URL.")
    optional_str(obj, "caption", sub(path, "caption"), max_len=CAPTION_MAX)
    optional_str(obj, "filename", sub(path, "filename"), max_len=240)
    optional_bool(obj, "voice", sub(path, "voice"))


def validate_reaction(obj: dict[str, Any], path: str) -> None:
    """`reaction`: message_id and emoji; an empty emoji removes the reaction."""
    check_keys(obj, ["message_id", "emoji"], path)
    require_str(obj, "message_id", sub(path, "message_id"))
    emoji = optional_str(obj, "emoji", sub(path, "emoji"))
    if emoji is None:
        raise missing_value(f"The parameter {sub(path, 'emoji')} is required.")
    if len(emoji) > 10:
        raise invalid_value("Reaction emoji must be a single emoji.")


def validate_location(obj: dict[str, Any], path: str) -> None:
    """`location`: latitude, longitude, optional name and address."""
    check_keys(obj, ["latitude", "longitude", "name", "address"], path)
    latitude = require_number(obj, "latitude", sub(path, "latitude"))
    longitude = require_number(obj, "longitude", sub(path, "longitude"))
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise invalid_value("Latitude or longitude is out of range.")
    optional_str(obj, "name", sub(path, "name"), max_len=1000)
    optional_str(obj, "address", sub(path, "address"), max_len=1000)


def validate_contacts(obj: Any, path: str) -> None:
    """`contacts`: each card needs name.formatted_name."""
    cards = obj if isinstance(obj, list) else [obj]
    for index, card in enumerate(cards):
        card_path = sub(path, index)
        if not isinstance(card, dict):
            raise invalid_value(f"Param {card_path} must be a JSON object.")
        name = require_obj(card, "name", sub(card_path, "name"))
        require_str(name, "formatted_name", sub(sub(card_path, "name"), "formatted_name"))


def validate_template(obj: dict[str, Any], path: str) -> None:
    """`template`: name, language.code and components with typed parameters."""
    check_keys(obj, ["name", "language", "components", "namespace"], path)
    require_str(obj, "name", sub(path, "name"), max_len=512)
    language = require_obj(obj, "language", sub(path, "language"))
    check_keys(language, ["code", "policy"], sub(path, "language"))
    require_str(language, "code", sub(sub(path, "language"), "code"))
    if "components" in obj:
        for index, component in enumerate(require_list(obj, "components", sub(path, "components"))):
            _validate_component(component, sub(sub(path, "components"), index))


def _validate_component(component: Any, path: str) -> None:
    if not isinstance(component, dict):
        raise invalid_value(f"Param {path} must be a JSON object.")
    check_keys(component, ["type", "sub_type", "index", "parameters", "cards"], path)
    kind = require_enum(
        component, "type", sub(path, "type"), ["header", "body", "button", "carousel"]
    )
    if kind == "button":
        require_str(component, "sub_type", sub(path, "sub_type"))
        if component.get("index") is None:
            raise missing_value(f"The parameter {sub(path, 'index')} is required.")
    parameters = component.get("parameters", [])
    if not isinstance(parameters, list):
        raise invalid_value(f"Param {sub(path, 'parameters')} must be an array.")
    for index, parameter in enumerate(parameters):
        _validate_parameter(parameter, sub(sub(path, "parameters"), index))


def _validate_parameter(parameter: Any, path: str) -> None:
    if not isinstance(parameter, dict):
        raise invalid_value(f"Param {path} must be a JSON object.")
    kind = require_enum(parameter, "type", sub(path, "type"), PARAMETER_TYPES)
    check_keys(parameter, ["type", kind, "parameter_name"], path)
    if kind in ("text", "payload", "coupon_code"):
        require_str(parameter, kind, sub(path, kind), max_len=32768)
    elif kind in ("image", "document", "video"):
        media = require_obj(parameter, kind, sub(path, kind))
        validate_media(media, sub(path, kind), kind)
    else:
        optional_obj(parameter, kind, sub(path, kind))


TYPE_VALIDATORS: dict[str, Callable[[Any, str], None]] = {
    "text": validate_text,
    "image": validate_media,
    "video": validate_media,
    "audio": validate_media,
    "document": validate_media,
    "sticker": validate_media,
    "reaction": validate_reaction,
    "location": validate_location,
    "contacts": validate_contacts,
    "template": validate_template,
}
