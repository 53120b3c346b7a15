"""Operator messages: checked against the holder and the 24-hour window, recorded in the
transcript and staged as a `MessageRequested` command in one transaction."""

from __future__ import annotations

import uuid

from baton_operator_api import control, metrics, template_parameters
from baton_operator_api.actions import locate
from baton_operator_api.api.schemas import (
    CommandAccepted,
    OperatorMessageIn,
    TemplateIn,
    window_end,
)
from baton_operator_api.context import PRODUCER, ServiceContext
from baton_operator_api.db import operators, repo, transcript
from baton_operator_api.db.operators import Operator
from baton_operator_api.errors import ControlConflictError, NotFoundError, UnprocessableError
from baton_operator_api.templates import Templates
from baton_shared.db import add_to_outbox
from baton_shared.events import (
    Author,
    MessageRequested,
    OutboundCommand,
    OutboundKind,
    OutboundMedia,
    utcnow,
)

_CLIENT_IDS = uuid.UUID("5b0f3e1c-8a7d-4c2e-9f61-2d4b7a9c0e13")


def command_id_of(conversation_id: str, actor: str, client_id: str | None) -> str:
    """A new command id, or with the client's id for the message the same one every time
    (per conversation and operator), so a repeated request is recognised."""
    if client_id is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(_CLIENT_IDS, f"{conversation_id}\x00{actor}\x00{client_id}"))


def command_for(
    body: OperatorMessageIn, phone_number_id: str, actor: str, epoch: int, command_id: str
) -> OutboundCommand:
    """The outbound command of an operator message."""
    common = {
        "command_id": command_id,
        "phone_number_id": phone_number_id,
        "to": body.customer,
        "author": Author.OPERATOR,
        "operator": actor,
        "control_epoch": epoch,
    }
    if body.template is not None:
        return OutboundCommand(
            **common, kind=OutboundKind.TEMPLATE, template=body.template.model_dump()
        )
    if body.media is not None:
        media = OutboundMedia(
            link=body.media.link,
            id=body.media.id,
            caption=body.media.caption or body.body,
            filename=body.media.filename,
        )
        return OutboundCommand(**common, kind=OutboundKind(body.media.kind), media=media)
    return OutboundCommand(**common, kind=OutboundKind.TEXT, text=body.body)


def check_template(approved: Templates, template: TemplateIn) -> None:
    """Refuse (422) a template the templates file does not list, or one whose body
    parameters do not match the ones it lists."""
    listed = approved.find(template.name, template.language.code)
    if listed is None:
        raise UnprocessableError(
            f"template {template.name} ({template.language.code}) is not one "
            "of the business's approved templates (OPERATOR_API_TEMPLATES_FILE)",
            code="unknown_template",
            hint=f"approved: {approved.names()} (GET /api/v1/templates)",
        )
    template_parameters.check(listed, template.components)


async def send(ctx: ServiceContext, actor: Operator, body: OperatorMessageIn) -> CommandAccepted:
    """Accept an operator message for sending, or refuse it with 404, 409 or 422."""
    async with ctx.db.session() as session:
        conversation_id = await locate(session, body)
        row = await repo.lock(session, conversation_id)
        if row is None:
            raise NotFoundError(f"no conversation {conversation_id}")
        command_id = command_id_of(conversation_id, actor.name, body.client_id)
        if body.client_id is not None and await transcript.has_outbound(session, command_id):
            # A repeat (a retry after a timeout): accepted already, nothing is sent again.
            return CommandAccepted(command_id=command_id, conversation_id=conversation_id)
        state = repo.state_of(row)
        if not control.may_write(state, actor.name, actor.role):
            holder = (
                f"operator {state.operator!r}" if state.operator else f"mode {state.mode.value}"
            )
            raise ControlConflictError(
                f"only the operator holding the conversation may write (it is in {holder})",
                hint="POST /api/v1/takeover first",
            )
        now = utcnow()
        closes = window_end(row.last_inbound_at, ctx.settings.window_hours)
        approved = ctx.templates
        if body.template is None and (closes is None or now > closes):
            raise UnprocessableError(
                f"the customer's last message is older than {ctx.settings.window_hours} hours: "
                "WhatsApp refuses free-form messages outside the customer-service window",
                code="window_closed",
                hint="send an approved template instead (the `template` field)"
                + (f"; approved: {approved.names()}" if approved else ""),
            )
        if body.template is not None and approved is not None:
            check_template(approved, body.template)
        command = command_for(body, row.phone_number_id, actor.name, state.epoch, command_id)
        event = MessageRequested.create(command, producer=PRODUCER, conversation_id=conversation_id)
        await transcript.upsert_outbound(
            session,
            conversation_id,
            command_id=command.command_id,
            author=Author.OPERATOR.value,
            kind=command.kind.value,
            text=command.text
            or (command.media.caption if command.media else None)
            or (body.template.name if body.template else None),
            status="requested",
            operator=actor.name,
            at=now,
        )
        await repo.note_outbound(session, conversation_id, at=now, answered=True)
        await add_to_outbox(session, event)
        await operators.audit(
            session,
            actor.name,
            "message",
            conversation_id,
            command_id=command.command_id,
            kind=command.kind.value,
        )
    metrics.ACTIONS.labels("message").inc()
    return CommandAccepted(command_id=command.command_id, conversation_id=conversation_id)
