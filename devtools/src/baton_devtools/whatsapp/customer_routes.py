"""The emulator playing customers: signed webhooks posted to ingress."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from baton_devtools.whatsapp.deps import StateDep
from baton_devtools.whatsapp.inbound import InboundRequest, build_inbound
from baton_devtools.whatsapp.payloads import envelope

router = APIRouter(prefix="/_emulator", tags=["customers"])


@router.post("/inbound")
async def inbound(request: InboundRequest, state: StateDep) -> JSONResponse:
    """Build a real customer-message webhook, sign it and post it to ingress."""
    settings = state.settings
    contact, message = build_inbound(request, state.media, settings.wa_display_phone_number)
    state.inbound_senders[message["id"]] = request.from_
    state.limits.record_inbound(request.phone_number_id, request.from_, float(message["timestamp"]))
    payload = envelope(
        settings, request.phone_number_id, {"contacts": [contact], "messages": [message]}
    )
    return await _post(state, payload, {"message_id": message["id"]}, signed=True)


@router.post("/webhook")
async def webhook(
    state: StateDep, payload: dict[str, Any] = Body(...), sign: bool = True
) -> JSONResponse:
    """Sign and post an arbitrary payload (batches, statuses); `?sign=false` omits the header.

    Customer messages in it open their customer-service windows, as real ones would."""
    state.limits.record_webhook(payload)
    return await _post(state, payload, {}, signed=sign)


async def _post(
    state: StateDep, payload: dict[str, Any], extra: dict[str, Any], *, signed: bool
) -> JSONResponse:
    try:
        status = await state.webhook.post(payload, signed=signed)
    except httpx.HTTPError as exc:
        body = {**extra, "webhook_status": None, "error": f"{type(exc).__name__}: {exc}"}
        return JSONResponse(body, status_code=502)
    return JSONResponse({**extra, "webhook_status": status})
