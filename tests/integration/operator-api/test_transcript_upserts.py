"""The transcript's upserts keep working once PostgreSQL switches a prepared statement to its
generic plan (after five executions on one connection), where a bound parameter in the
ON CONFLICT predicate can no longer be matched to the partial unique index."""

from __future__ import annotations

import uuid

import pytest

from baton_operator_api.context import ServiceContext
from baton_operator_api.db import repo, transcript
from baton_shared.events import utcnow
from baton_shared.events.ids import conversation_id_for

from .conftest import PHONE_NUMBER_ID, new_wa_id

pytestmark = pytest.mark.integration

EXECUTIONS = 12  # well past PostgreSQL's five custom plans


async def test_upserts_survive_the_generic_plan_of_a_reused_connection(
    ctx: ServiceContext,
) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    async with ctx.db.session() as session:  # one connection: its prepared statements repeat
        await repo.ensure(session, conversation_id, PHONE_NUMBER_ID, wa_id)
        for i in range(EXECUTIONS):
            assert await transcript.add_inbound(
                session,
                conversation_id,
                wa_message_id=f"wamid.{uuid.uuid4().hex}",
                kind="text",
                text=f"message {i}",
                at=utcnow(),
            )
            command_id = str(uuid.uuid4())
            for status in ("requested", "sent"):
                await transcript.upsert_outbound(
                    session,
                    conversation_id,
                    command_id=command_id,
                    author="operator",
                    kind="text",
                    status=status,
                    text=f"answer {i}",
                    at=utcnow(),
                )
        rows = await transcript.page(session, conversation_id, after=0, limit=200)
    assert len(rows) == 2 * EXECUTIONS
    assert {r.status for r in rows if r.direction == "out"} == {"sent"}


@pytest.mark.parametrize(
    ("statuses", "final"),
    [
        (["requested", "sent", "read", "played", "delivered"], "played"),  # a voice note
        (["requested", "sent", "failed", "played"], "failed"),  # failed stays final
    ],
)
async def test_outbound_status_only_moves_forward(
    ctx: ServiceContext, statuses: list[str], final: str
) -> None:
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    command_id = str(uuid.uuid4())
    async with ctx.db.session() as session:
        await repo.ensure(session, conversation_id, PHONE_NUMBER_ID, wa_id)
        for status in statuses:
            await transcript.upsert_outbound(
                session,
                conversation_id,
                command_id=command_id,
                author="ai",
                kind="audio",
                status=status,
                at=utcnow(),
            )
        [row] = await transcript.page(session, conversation_id, after=0, limit=10)
    assert row.status == final
