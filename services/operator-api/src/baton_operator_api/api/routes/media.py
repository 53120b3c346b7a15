"""Customer media as the operator-api stored it: the bytes, with their type and checksum."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Path
from fastapi.responses import Response

from baton_operator_api.api.deps import CurrentOperator, SessionDep
from baton_operator_api.db import media
from baton_operator_api.errors import ApiError, ErrorOut, NotFoundError, responses

router = APIRouter(prefix="/api/v1/media", tags=["media"])

MediaId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9._-]+$")]
BINARY = {"schema": {"type": "string", "format": "binary"}}
SERVED_TYPES = ("image/*", "audio/*", "video/*", "application/*", "text/*")
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the file, with the type WhatsApp reported (voice notes: audio/ogg), "
        "`ETag` = its SHA-256, `Cache-Control: private`, and `Content-Disposition` with its "
        "filename (`attachment` for documents)",
        "content": dict.fromkeys(SERVED_TYPES, BINARY),
    },
    304: {"description": "`If-None-Match` names the current ETag: the file is unchanged"},
    **responses(401, 422),
    404: {"model": ErrorOut, "description": "no media with this id (`not_found`)"},
    409: {
        "model": ErrorOut,
        "description": "not downloaded: `media_pending` (still to come; retry later) or "
        "`media_failed` (final; `detail` says why)",
    },
    410: {
        "model": ErrorOut,
        "description": "`media_expired`: deleted after the retention period",
    },
}


class MediaNotReadyError(ApiError):
    """The media is known but its bytes are not stored (yet, or ever)."""

    status = 409

    def __init__(self, status: str, reason: str | None) -> None:
        failed = status == media.FAILED
        self.code = "media_failed" if failed else "media_pending"
        detail = f"download failed: {reason}" if failed else f"download {status}"
        if not failed and reason:
            detail += f" (last try: {reason})"
        hint = None if failed else "customer media is downloaded within seconds; retry shortly"
        super().__init__(detail, hint=hint)


class MediaExpiredError(ApiError):
    """The bytes were deleted after the retention period."""

    status = 410
    code = "media_expired"

    def __init__(self) -> None:
        super().__init__(
            "the file was deleted after the retention period (OPERATOR_API_MEDIA_RETENTION_DAYS)"
        )


@router.get("/{media_id}", response_class=Response, responses=RESPONSES)
async def get_media(
    media_id: MediaId,
    session: SessionDep,
    _: CurrentOperator,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """A customer's image, voice note, video, document or sticker, as stored by the
    operator-api (downloaded from WhatsApp when the message arrived)."""
    row = await media.get(session, media_id, content=True)
    if row is None:
        raise NotFoundError(f"no media {media_id}")
    if row.status == media.EXPIRED:
        raise MediaExpiredError()
    if row.status != media.DOWNLOADED or row.content is None:
        raise MediaNotReadyError(row.status, row.reason)
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, max-age=86400",
        "Content-Disposition": _disposition(row.kind, row.filename or media_id),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if if_none_match is not None and etag in (t.strip() for t in if_none_match.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(bytes(row.content), media_type=row.mime_type, headers=headers)


def _disposition(kind: str, filename: str) -> str:
    """`attachment` for documents (they are files to save), `inline` for what a page shows;
    an ASCII filename plus the exact one (RFC 6266)."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    mode = "attachment" if kind == "document" else "inline"
    return f"{mode}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
