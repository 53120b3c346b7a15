"""The emulator playing customers: signed webhooks posted to ingress.

A webhook ingress does not answer 200 is delivered again in the background on the
`webhook_retry_ms` schedule, as Meta does; the call answers with the first attempt's
status (and `"retrying": true`). `?retry=false` posts once."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from baton_devtools.whatsapp.delivery import OK, redeliver_later
from baton_devtools.whatsapp.deps import StateDep
from baton_devtools.whatsapp.inbound import InboundRequest, build_inbound
from baton_devtools.whatsapp.limits import customer_messages
from baton_devtools.whatsapp.payloads import envelope

router = APIRouter(prefix="/_emulator", tags=["customers"])


@router.post("/inbound")
async def inbound(request: InboundRequest, state: StateDep, retry: bool = True) -> JSONResponse:
    """Build a real customer-message webhook, sign it and post it to ingress."""
    settings = state.settings
    contact, message = build_inbound(request, state.media, settings.wa_display_phone_number)
    state.inbound_senders[message["id"]] = request.from_
    state.note_inbound(message)
    state.limits.record_inbound(request.phone_number_id, request.from_, float(message["timestamp"]))
    payload = envelope(
        settings, request.phone_number_id, {"contacts": [contact], "messages": [message]}
    )
    return await _post(state, payload, {"message_id": message["id"]}, signed=True, retry=retry)


@router.post("/webhook")
async def webhook(
    state: StateDep, payload: dict[str, Any] = Body(...), sign: bool = True, retry: bool = True
) -> JSONResponse:
    """Sign and post an arbitrary payload (batches, statuses); `?sign=false` omits the header
    (and is never redelivered: Meta signs every webhook).

    Customer messages in it open their customer-service windows, as real ones would."""
    state.limits.record_webhook(payload)
    for _number, message in customer_messages(payload):
        state.note_inbound(message)
    return await _post(state, payload, {}, signed=sign, retry=retry and sign)


async def _post(
    state: StateDep, payload: dict[str, Any], extra: dict[str, Any], *, signed: bool, retry: bool
) -> JSONResponse:
    try:
        status: int | None = await state.webhook.post(payload, signed=signed)
        error = None
    except httpx.HTTPError as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"
    body: dict[str, Any] = {**extra, "webhook_status": status}
    if error is not None:
        body["error"] = error
    if status != OK and retry:
        note: dict[str, Any] = {"webhook_status": status, "attempts": 1}
        if redeliver_later(state, payload, note):
            body["retrying"] = True
    return JSONResponse(body, status_code=502 if error is not None else 200)
