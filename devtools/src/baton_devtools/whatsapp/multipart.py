"""A minimal multipart/form-data parser for media uploads (python-multipart is not installed)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAM = re.compile(r';\s*([\w-]+)=(?:"([^"]*)"|([^;\s]+))')


@dataclass(frozen=True)
class FormPart:
    """One field of a multipart form."""

    name: str
    data: bytes
    filename: str | None
    content_type: str | None


def parse_multipart(body: bytes, content_type: str) -> dict[str, FormPart]:
    """Split a multipart/form-data body into its fields; raise ValueError when malformed."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("expected a multipart/form-data body")
    boundary = _params(content_type).get("boundary")
    if not boundary:
        raise ValueError("multipart body without a boundary")
    parts: dict[str, FormPart] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, separator, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("multipart part without headers")
        headers = _headers(head.decode("utf-8", errors="replace"))
        disposition = _params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is None:
            raise ValueError("multipart part without a name")
        parts[name] = FormPart(
            name=name,
            data=data.removesuffix(b"\r\n"),
            filename=disposition.get("filename"),
            content_type=headers.get("content-type"),
        )
    return parts


def _headers(head: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return headers


def _params(header: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) or m.group(3) for m in _PARAM.finditer(header)}
