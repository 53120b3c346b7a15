"""Webhook payload builders: the envelope Meta posts and the `statuses[]` items."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.settings import WaEmulatorSettings
from baton_devtools.whatsapp.state import MessageRecord
from baton_devtools.whatsapp.validation import is_business_scoped

ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"
CONVERSATION_TTL_SECONDS = 24 * 3600


def new_wamid() -> str:
    """A fresh, unique WhatsApp message id."""
    return "wamid.HBgM" + secrets.token_hex(20).upper()


def now_timestamp() -> str:
    """Unix seconds as a string, as webhooks carry them."""
    return str(int(time.time()))


def envelope(
    settings: WaEmulatorSettings, phone_number_id: str, items: dict[str, Any]
) -> dict[str, Any]:
    """Wrap `messages`/`contacts`/`statuses` items in Meta's webhook envelope."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": settings.wa_display_phone_number,
            "phone_number_id": phone_number_id,
        },
        **items,
    }
    change = {"field": "messages", "value": value}
    entry = {"id": settings.wa_business_account_id, "changes": [change]}
    return {"object": "whatsapp_business_account", "entry": [entry]}


def status_item(record: MessageRecord, status: str, error: GraphError | None) -> dict[str, Any]:
    """One `statuses[]` item for `record`; conversation is omitted from v24.0 on."""
    to = record.to or ""
    item: dict[str, Any] = {"id": record.id, "status": status, "timestamp": now_timestamp()}
    if is_business_scoped(to):  # a user known by username: no phone number to show
        item["recipient_user_id"] = to
    else:
        item["recipient_id"] = to
    if record.callback_data is not None:
        item["biz_opaque_callback_data"] = record.callback_data
    category = "utility" if record.type == "template" else "service"
    if status in ("sent", "delivered") and _major(record.api_version) < 24:
        conversation_id = hashlib.sha256(f"{record.phone_number_id}:{to}".encode()).hexdigest()[:32]
        conversation: dict[str, Any] = {"id": conversation_id, "origin": {"type": category}}
        if status == "sent":
            expires = int(record.received_at.timestamp()) + CONVERSATION_TTL_SECONDS
            conversation = {"id": conversation_id, "expiration_timestamp": str(expires),
                            "origin": {"type": category}}  # fmt: skip
        item["conversation"] = conversation
    if status in ("sent", "delivered"):
        free = record.type != "template"
        item["pricing"] = {
            "billable": not free,
            "pricing_model": "PMP",
            "type": "free_customer_service" if free else "regular",
            "category": category,
        }
    if status == "failed" and error is not None:
        item["errors"] = [_error_item(error)]
    return item


def _error_item(error: GraphError) -> dict[str, Any]:
    title = error.message.split(") ", 1)[-1]
    return {
        "code": error.code,
        "title": title,
        "message": title,
        "error_data": {"details": error.details},
        "href": ERROR_HREF,
    }


def _major(api_version: str) -> int:
    match = re.match(r"v(\d+)", api_version)
    return int(match.group(1)) if match else 0
