"""The needs-attention queue, one conversation, its transcript, and resolving it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator

from baton_operator_api import actions
from baton_operator_api.api.deps import Context, CurrentOperator, SessionDep
from baton_operator_api.api.schemas import (
    ConversationOut,
    ConversationPage,
    MessageOut,
    MessagePage,
    ResolveIn,
)
from baton_operator_api.db import queries, repo, transcript
from baton_operator_api.errors import ApiError, NotFoundError, responses

router = APIRouter(
    prefix="/api/v1/conversations", tags=["conversations"], responses=responses(401, 404, 422)
)

ConversationId = Annotated[str, Path(min_length=1, max_length=64)]


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; one that UTC cannot express (0001-01-01T00:00+01:00) is refused."""
    try:
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        raise ValueError("out of the range of dates that can be stored") from None


Instant = Annotated[datetime, AfterValidator(_in_utc)]


@router.get("", response_model=ConversationPage)
async def list_conversations(
    session: SessionDep,
    ctx: Context,
    _: CurrentOperator,
    mode: Literal["ai", "operator", "pending_human", "resolved"] | None = None,
    needs_attention: bool | None = None,
    operator: Annotated[str | None, Query(max_length=100)] = None,
    updated_since: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ConversationPage:
    """Conversations, the customer who has waited longest first."""
    rows = await queries.queue(
        session,
        mode=mode,
        attention=needs_attention,
        operator=operator,
        updated_since=updated_since,
        limit=limit,
    )
    hours = ctx.settings.window_hours
    return ConversationPage(items=[ConversationOut.of(r, hours) for r in rows])


@router.get("/{conversation_id}", response_model=ConversationOut)
async def get_conversation(
    conversation_id: ConversationId, session: SessionDep, ctx: Context, _: CurrentOperator
) -> ConversationOut:
    """One conversation."""
    row = await repo.get(session, conversation_id)
    if row is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    return ConversationOut.of(row, ctx.settings.window_hours)


@router.get("/{conversation_id}/messages", response_model=MessagePage, responses=responses(400))
async def get_messages(
    conversation_id: ConversationId,
    session: SessionDep,
    _: CurrentOperator,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
    before: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    """The transcript in the order things happened, with each outbound message's delivery
    status and each customer attachment's download status and URL: from the oldest message
    (or just after message `after`), or the newest (`before=0`, or just before message
    `before`), a page at a time."""
    if after and before is not None:
        raise ApiError("pass `after` or `before`, not both")
    if await repo.get(session, conversation_id) is None:
        raise NotFoundError(f"no conversation {conversation_id}")
    rows = await transcript.page(session, conversation_id, after=after, before=before, limit=limit)
    items = [MessageOut.from_row(r) for r in rows]
    full = len(items) == limit
    if before is not None:
        return MessagePage(items=items, next_after=None, next_before=items[0].id if full else None)
    return MessagePage(items=items, next_after=items[-1].id if full else None)


@router.post(
    "/{conversation_id}/resolve",
    response_model=ConversationOut,
    responses=responses(400, 403, 409, 413, 503),
)
async def resolve(
    conversation_id: ConversationId,
    ctx: Context,
    me: CurrentOperator,
    body: ResolveIn | None = None,
) -> ConversationOut:
    """Mark the conversation resolved; the customer's next message reopens it to the AI."""
    row = await actions.resolve(ctx, me, conversation_id, note=body.note if body else None)
    return ConversationOut.of(row, ctx.settings.window_hours)
