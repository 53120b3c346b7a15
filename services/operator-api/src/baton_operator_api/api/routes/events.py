"""`GET /api/v1/events`: the live feed as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from baton_operator_api import feed
from baton_operator_api.api.deps import Context, CurrentOperator
from baton_operator_api.db import operators
from baton_operator_api.errors import responses

router = APIRouter(prefix="/api/v1", tags=["events"], responses=responses(401, 422, 503))


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
    """Messages in and out, delivery statuses and mode changes as they happen, in order.

    503 `too_many_feeds` when this replica serves `OPERATOR_API_FEED_MAX_CLIENTS` already."""
    slot = ctx.feeds.take()
    token = (request.headers.get("authorization") or "").partition(" ")[2].strip()

    async def still_allowed() -> bool:
        """The feed's token is still valid (not revoked, its operator still active)."""
        async with ctx.db.session() as session:
            return await operators.by_token(session, token) is not None

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            since = feed.parse_position(last_event_id)
            items = feed.follow(
                ctx.feeds.bus,
                ctx.runtime.stop,
                conversation_id=conversation_id,
                since=since,
                allowed=still_allowed,
                recheck_seconds=ctx.settings.feed_recheck_seconds,
            )
            async for item in items:
                if await request.is_disconnected():
                    break
                yield {"id": item.id, "event": item.kind, "data": json.dumps(item.data)}
        finally:
            slot.release()

    return EventSourceResponse(stream(), ping=15, background=BackgroundTask(slot.release))
