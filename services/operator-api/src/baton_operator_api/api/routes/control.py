"""The three endpoints existing users script against: takeover, operator-message, handback."""

from __future__ import annotations

from fastapi import APIRouter, status

from baton_operator_api import actions, messaging
from baton_operator_api.api.deps import Context, CurrentOperator
from baton_operator_api.api.schemas import (
    CommandAccepted,
    ConversationOut,
    HandbackIn,
    OperatorMessageIn,
    TakeoverIn,
)
from baton_operator_api.errors import responses

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
    body: OperatorMessageIn, ctx: Context, me: CurrentOperator
) -> CommandAccepted:
    """Send a message as the operator holding the conversation; answers the command id."""
    return await messaging.send(ctx, me, body)


@router.post("/handback", response_model=ConversationOut)
async def handback(body: HandbackIn, ctx: Context, me: CurrentOperator) -> ConversationOut:
    """Hand the conversation back to the AI, which resumes with the whole transcript."""
    row = await actions.handback(ctx, me, body, note=body.note)
    return ConversationOut.of(row, ctx.settings.window_hours)
