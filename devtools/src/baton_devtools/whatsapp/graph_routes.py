"""`POST /{version}/{phone_number_id}/messages`: sends, reactions, templates, mark-as-read.

Checked at once (a Graph error answers the call): the body's shape, templates against the
registry, faults and limits. Checked after the 200 + wamid (a `failed` status webhook):
media ids and links (`media_check`), reaction targets (`reactions`), webhook-mode faults
and window refusals."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from baton_devtools.whatsapp.deps import StateDep, graph_preamble
from baton_devtools.whatsapp.errors import GraphError
from baton_devtools.whatsapp.media_check import check_media_ids, media_refs
from baton_devtools.whatsapp.payloads import new_wamid
from baton_devtools.whatsapp.reactions import reaction_error
from baton_devtools.whatsapp.state import MessageRecord, WaState
from baton_devtools.whatsapp.statuses import deliver_statuses
from baton_devtools.whatsapp.validation import SendRequest, is_business_scoped, validate_send

router = APIRouter(tags=["graph"])


@router.post("/{version}/{phone_number_id}/messages")
async def send_message(
    version: str, phone_number_id: str, request: Request, state: StateDep
) -> dict[str, Any]:
    """Validate and accept a message like the Cloud API; statuses follow in the background."""
    await graph_preamble(request, state, version, phone_number_id)
    body = await _json_body(request)
    send = validate_send(body, state.settings.wa_display_phone_number)
    if send.type == "audio":
        _check_voice(state, body["audio"])
    elif send.type == "template":
        state.templates.check(body["template"])
    failure = await _apply_fault(state, send)
    failure = _enforce_limits(state, phone_number_id, send) or failure
    if send.kind == "read":
        _record_read(state, send, phone_number_id, version, body)
        return {"success": True}
    media = list(media_refs(send.type, body))
    if failure is None and media:
        failure = check_media_ids(state.media, media)
    if failure is None and send.type == "reaction":
        failure = reaction_error(state, body)
    record = MessageRecord(
        id=new_wamid(),
        to=send.to,
        phone_number_id=phone_number_id,
        type=send.type,
        body=body,
        api_version=version,
        callback_data=send.callback_data,
    )
    state.record_sent(record)
    state.spawn(deliver_statuses(state, record, failure, media))
    message: dict[str, Any] = {"id": record.id}
    if send.type == "template":
        message["message_status"] = "accepted"
    return {
        "messaging_product": "whatsapp",
        "contacts": [_contact(send.to_input or "", send.to or "")],
        "messages": [message],
    }


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError as exc:
        raise GraphError(100, "Request body is not valid JSON.") from exc


async def _apply_fault(state: WaState, send: SendRequest) -> GraphError | None:
    """Wait and fail as an injected fault says; return the error for a webhook-mode fault."""
    fault = state.faults.take(send.to, send.type)
    if fault is None:
        return None
    if fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault.code is None:
        return None
    if fault.mode == "sync" or send.kind == "read":
        raise fault.error()
    return fault.error()


def _check_voice(state: WaState, audio: dict[str, Any]) -> None:
    """A voice note must be OGG/OPUS: an uploaded file of another type is refused (131053)."""
    item = state.media.get(str(audio["id"])) if audio.get("voice") and "id" in audio else None
    if item is not None and item.mime_type.split(";")[0].strip().lower() != "audio/ogg":
        raise GraphError(
            131053, f"Voice messages must be audio/ogg (OPUS codec), not {item.mime_type}."
        )


def _enforce_limits(state: WaState, phone_number_id: str, send: SendRequest) -> GraphError | None:
    """Raise 130429 / 131056 / sync 131047 as WhatsApp would; return a webhook-mode 131047."""
    config = state.config
    limits = state.limits
    error = limits.check_throughput(phone_number_id, config.throughput_mps)
    if error is None and send.kind == "message" and send.to is not None:
        if config.pair_limit:
            error = limits.check_pair(
                phone_number_id, send.to, config.pair_interval_seconds, config.pair_burst
            )
        if error is None and config.enforce_window:
            closed = limits.window_closed(phone_number_id, send.to, send.type, config.window_hours)
            if closed is not None and config.window_mode == "webhook":
                return closed
            error = closed
    if error is not None:
        raise error
    return None


def _record_read(
    state: WaState, send: SendRequest, phone_number_id: str, version: str, body: dict[str, Any]
) -> None:
    message_id = send.message_id or ""
    state.reads.append(
        MessageRecord(
            id=message_id,
            to=state.inbound_senders.get(message_id),
            phone_number_id=phone_number_id,
            type="typing_indicator" if "typing_indicator" in body else "read",
            body=body,
            api_version=version,
        )
    )


def _contact(given: str, resolved: str) -> dict[str, str]:
    """The answer's contact: the WhatsApp id, or for a business-scoped recipient its user id."""
    key = "user_id" if is_business_scoped(resolved) else "wa_id"
    return {"input": given, key: resolved}
