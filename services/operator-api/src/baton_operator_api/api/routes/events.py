"""`GET /api/v1/events`: the live feed as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from baton_operator_api import feed
from baton_operator_api.api.deps import Context, CurrentOperator
from baton_operator_api.errors import responses

router = APIRouter(prefix="/api/v1", tags=["events"], responses=responses(401, 422))


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "the live feed"}},
)
async def events(
    request: Request,
    ctx: Context,
    _: CurrentOperator,
    conversation_id: Annotated[str | None, Query(max_length=64)] = None,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> EventSourceResponse:
    """Messages in and out, delivery statuses and mode changes as they happen, in order."""

    async def stream() -> AsyncIterator[dict[str, str]]:
        since = feed.parse_position(last_event_id)
        items = feed.follow(
            ctx.runtime.bus, ctx.runtime.stop, conversation_id=conversation_id, since=since
        )
        async for item in items:
            if await request.is_disconnected():
                break
            yield {"id": item.id, "event": item.kind, "data": json.dumps(item.data)}

    return EventSourceResponse(stream(), ping=15)
