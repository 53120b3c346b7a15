"""The three endpoints existing users script against: takeover, operator-message, handback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, status

from baton_operator_api import actions, messaging
from baton_operator_api.api.deps import Context, CurrentOperator
from baton_operator_api.api.schemas import (
    CommandAccepted,
    ConversationOut,
    HandbackIn,
    OperatorMessageIn,
    TakeoverIn,
)
from baton_operator_api.errors import UnprocessableError, responses

router = APIRouter(
    prefix="/api/v1", tags=["control"], responses=responses(400, 401, 403, 404, 409, 413, 422, 503)
)


@router.post("/takeover", response_model=ConversationOut)
async def takeover(body: TakeoverIn, ctx: Context, me: CurrentOperator) -> ConversationOut:
    """Take the conversation over: the AI stays silent from this answer until handback."""
    row = await actions.takeover(ctx, me, body, reason=body.reason, force=body.force)
    return ConversationOut.of(row, ctx.settings.window_hours)


@router.post(
    "/operator-message", response_model=CommandAccepted, status_code=status.HTTP_202_ACCEPTED
)
async def operator_message(
    body: OperatorMessageIn,
    ctx: Context,
    me: CurrentOperator,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, description="as `client_id`")
    ] = None,
) -> CommandAccepted:
    """Send a message as the operator holding the conversation; answers the command id.

    With `client_id` (or `Idempotency-Key`), a repeat of the request sends nothing again."""
    if idempotency_key is not None:
        if body.client_id not in (None, idempotency_key):
            raise UnprocessableError(
                "`client_id` and the Idempotency-Key header differ", code="invalid_request"
            )
        body = body.model_copy(update={"client_id": idempotency_key})
    return await messaging.send(ctx, me, body)


@router.post("/handback", response_model=ConversationOut)
async def handback(body: HandbackIn, ctx: Context, me: CurrentOperator) -> ConversationOut:
    """Hand the conversation back to the AI, which resumes with the whole transcript."""
    row = await actions.handback(ctx, me, body, note=body.note)
    return ConversationOut.of(row, ctx.settings.window_hours)
