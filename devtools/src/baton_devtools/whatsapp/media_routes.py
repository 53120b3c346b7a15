"""Media endpoints: upload, retrieve URL, download, delete; and injected media faults."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response

from baton_devtools.whatsapp.deps import StateDep, bearer_token, graph_preamble
from baton_devtools.whatsapp.errors import GraphError, param_error, unknown_object
from baton_devtools.whatsapp.faults import DETAILS
from baton_devtools.whatsapp.media import URL_TTL_SECONDS, MediaFault, check_upload
from baton_devtools.whatsapp.multipart import parse_multipart

DOWNLOAD_PATH = "/whatsapp_business/attachments/"
download_router = APIRouter(tags=["media"])
router = APIRouter(tags=["media"])
FAULTS_PATH = "/_emulator/media/faults"
UNKNOWN_OBJECT = 100


@router.post(FAULTS_PATH, tags=["emulator"])
async def add_media_fault(fault: MediaFault, state: StateDep) -> dict[str, Any]:
    """Make the next matching media retrievals or downloads fail (or hand out expired URLs)."""
    state.media.add_fault(fault)
    return {"faults": _faults(state)}


@router.get(FAULTS_PATH, tags=["emulator"])
async def list_media_faults(state: StateDep) -> dict[str, Any]:
    """Active media faults with their remaining counts."""
    return {"faults": _faults(state)}


@router.delete(FAULTS_PATH, tags=["emulator"])
async def clear_media_faults(state: StateDep) -> dict[str, bool]:
    """Remove every media fault."""
    state.media.faults.clear()
    return {"success": True}


def _faults(state: StateDep) -> list[dict[str, Any]]:
    return [
        {**fault.model_dump(exclude_none=True), "remaining": remaining}
        for fault, remaining in state.media.faults
    ]


@download_router.get(DOWNLOAD_PATH, response_model=None)
async def download_media(
    request: Request,
    state: StateDep,
    mid: str = "",
    ext: int = 0,
    signature: str = Query("", alias="hash"),
) -> Response:
    """The lookaside-style URL `GET /{media_id}` hands out; needs the bearer token."""
    if bearer_token(request) != state.settings.wa_access_token:
        return PlainTextResponse("Unauthorized", status_code=401)
    item = state.media.resolve_download(mid, ext, signature)
    if item is None:
        return PlainTextResponse("Not Found", status_code=404)
    fault = state.media.take_fault("download", item.id)
    if fault is not None and fault.http_status is not None:
        return PlainTextResponse("Injected fault", status_code=fault.http_status)
    state.media.downloads[item.id] += 1
    return Response(item.data, media_type=item.mime_type)


@router.post("/{version}/{phone_number_id}/media")
async def upload_media(
    version: str, phone_number_id: str, request: Request, state: StateDep
) -> dict[str, str]:
    """Multipart upload (`messaging_product`, `file`, optional `type`) → `{"id": ...}`."""
    await graph_preamble(request, state, version, phone_number_id)
    try:
        form = parse_multipart(await request.body(), request.headers.get("content-type", ""))
    except ValueError as exc:
        raise param_error("The parameter file is required.") from exc
    product = form.get("messaging_product")
    if product is None:
        raise param_error("The parameter messaging_product is required.")
    if product.data.decode(errors="replace") != "whatsapp":
        raise param_error("Param messaging_product must be one of {WHATSAPP}.")
    upload = form.get("file")
    if upload is None:
        raise param_error("The parameter file is required.")
    declared = form.get("type")
    mime_type = declared.data.decode() if declared else (upload.content_type or "")
    check_upload(mime_type, len(upload.data))
    item = state.media.add(upload.data, mime_type, phone_number_id)
    return {"id": item.id}


@router.get("/{version}/{media_id}")
async def retrieve_media(
    version: str, media_id: str, request: Request, state: StateDep
) -> dict[str, Any]:
    """Media metadata with a download URL valid for five minutes."""
    await graph_preamble(request, state, version)
    item = state.media.get(media_id)
    if item is None:
        raise unknown_object(media_id, "get")
    fault = state.media.take_fault("retrieve", media_id)
    if fault is not None and fault.code == UNKNOWN_OBJECT:
        raise unknown_object(media_id, "get")
    if fault is not None and fault.code is not None:
        raise GraphError(fault.code, DETAILS.get(fault.code, "Injected fault"))
    # An expired URL, as one fetched more than five minutes before its download.
    issued = time.time() - URL_TTL_SECONDS - 1 if fault is not None else None
    base = str(request.base_url).rstrip("/")
    return {
        "messaging_product": "whatsapp",
        "url": f"{base}{DOWNLOAD_PATH}?{state.media.signed_query(item.id, issued)}",
        "mime_type": item.mime_type,
        "sha256": item.sha256,
        "file_size": len(item.data),
        "id": item.id,
    }


@router.delete("/{version}/{media_id}")
async def delete_media(
    version: str, media_id: str, request: Request, state: StateDep
) -> dict[str, bool]:
    """Delete uploaded media."""
    await graph_preamble(request, state, version)
    if not state.media.delete(media_id):
        raise unknown_object(media_id, "delete")
    return {"success": True}
