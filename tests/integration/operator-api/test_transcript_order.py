"""The transcript lists messages in the order they happened, whatever order the operator-api
recorded them in (complaint #8: a bot's reply shown above the customer's message under
load), and its pages follow that order without gaps or repeats."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api.context import ServiceContext
from baton_operator_api.db import repo, transcript
from baton_shared.events import Author, MessageSent, OutboundKind, OutboundOutcome, utcnow
from baton_shared.events.ids import conversation_id_for
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import PHONE_NUMBER_ID, NewOperator, auth, inbound, new_wa_id

pytestmark = pytest.mark.integration


async def items(
    client: httpx.AsyncClient, token: str, conversation_id: str, **params: int
) -> dict[str, Any]:
    """One page of the transcript, as the API answers it."""
    r = await client.get(
        f"/api/v1/conversations/{conversation_id}/messages", params=params, headers=auth(token)
    )
    assert r.status_code == 200, r.text
    page: dict[str, Any] = r.json()
    return page


async def test_an_answer_recorded_before_the_message_it_answers_is_listed_after_it(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    # The operator-api's consumer of customer messages lags behind its consumer of outbound
    # results: the AI's answer is recorded first.
    token = await new_operator()
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    answer = OutboundOutcome(
        command_id=str(uuid.uuid4()),
        phone_number_id=PHONE_NUMBER_ID,
        to=wa_id,
        author=Author.AI,
        kind=OutboundKind.TEXT,
        text="Your order ships tomorrow.",
        wa_message_id="wamid.answer",
    )
    sent = MessageSent.create(answer, producer="sender", conversation_id=conversation_id)
    await bus.publish(sent)

    async def recorded(n: int) -> list[dict[str, object]] | None:
        r = await client.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=auth(token)
        )
        found: list[dict[str, object]] = r.json()["items"] if r.status_code == 200 else []
        return found if len(found) == n else None

    await wait_until(lambda: recorded(1), what="the answer in the transcript")
    question = inbound(wa_id, "where is my order?", at=sent.occurred_at - timedelta(seconds=3))
    await bus.publish(question)
    listed = await wait_until(lambda: recorded(2), what="the question in the transcript")

    assert [(m["author"], m["text"]) for m in listed] == [
        ("customer", "where is my order?"),
        ("ai", "Your order ships tomorrow."),
    ]
    # Recorded the other way round: ids alone would have listed the answer first.
    assert int(str(listed[0]["id"])) > int(str(listed[1]["id"]))


async def test_pages_follow_the_order_things_happened_without_gaps_or_repeats(
    ctx: ServiceContext, client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    token = await new_operator()
    conversation_id = await shuffled_conversation(ctx)

    whole = (await items(client, token, conversation_id, limit=200))["items"]
    times = [datetime.fromisoformat(m["occurred_at"]) for m in whole]
    assert times == sorted(times)
    assert [m["text"] for m in whole if m["occurred_at"] == whole[4]["occurred_at"]] == [
        "message 3",
        "message 4",
    ]  # the same instant: the order they were recorded in

    paged: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await items(client, token, conversation_id, after=after, limit=3)
        paged += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert [m["id"] for m in paged] == [m["id"] for m in whole]


async def test_a_cursor_that_names_no_message_of_the_conversation_starts_from_the_oldest(
    ctx: ServiceContext, client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    # A deleted message (retention) or one of another conversation: every message kept
    # comes after it.
    token = await new_operator()
    wa_id, other = new_wa_id(), new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    other_id = conversation_id_for(PHONE_NUMBER_ID, other)
    start = utcnow()
    async with ctx.db.session() as session:
        await repo.ensure(session, conversation_id, PHONE_NUMBER_ID, wa_id)
        await repo.ensure(session, other_id, PHONE_NUMBER_ID, other)
        for i in range(3):
            await record(session, conversation_id, i, start + timedelta(seconds=i))
        await record(session, other_id, 9, start + timedelta(seconds=1))
    foreign = (await items(client, token, other_id))["items"][0]["id"]

    for after in (foreign, 2**62):
        page = await items(client, token, conversation_id, after=after)
        assert [m["text"] for m in page["items"]] == ["message 0", "message 1", "message 2"]


async def test_an_outbound_message_keeps_the_time_of_its_first_report(
    ctx: ServiceContext,
) -> None:
    # "Delivered" processed before "sent" (two results of one message handled concurrently):
    # the message stays where it was sent, not where it was delivered.
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    sent_at = utcnow()
    command_id = str(uuid.uuid4())
    async with ctx.db.session() as session:
        await repo.ensure(session, conversation_id, PHONE_NUMBER_ID, wa_id)
        for status, at in (("delivered", sent_at + timedelta(seconds=2)), ("sent", sent_at)):
            await transcript.upsert_outbound(
                session,
                conversation_id,
                command_id=command_id,
                author="ai",
                kind="text",
                status=status,
                text="hello",
                at=at,
            )
        rows = await transcript.page(session, conversation_id, after=0, limit=10)
    assert [(r.status, r.occurred_at) for r in rows] == [("delivered", sent_at)]


async def shuffled_conversation(ctx: ServiceContext) -> str:
    """A new conversation of 11 messages recorded in an order unlike the one they happened in
    (messages 3 and 4 at the same instant); its id."""
    wa_id = new_wa_id()
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    start = utcnow()
    async with ctx.db.session() as session:
        await repo.ensure(session, conversation_id, PHONE_NUMBER_ID, wa_id)
        for i, s in enumerate([5, 1, 9, 3, 3, 0, 7, 2, 8, 6, 4]):
            await record(session, conversation_id, i, start + timedelta(seconds=s))
    return conversation_id


async def record(session: AsyncSession, conversation_id: str, i: int, at: datetime) -> None:
    """Message `i`, a customer's (even) or an operator's (odd), that happened at `at`."""
    if i % 2 == 0:
        await transcript.add_inbound(
            session,
            conversation_id,
            wa_message_id=f"wamid.{uuid.uuid4().hex}",
            kind="text",
            text=f"message {i}",
            at=at,
        )
    else:
        await transcript.upsert_outbound(
            session,
            conversation_id,
            command_id=str(uuid.uuid4()),
            author="operator",
            kind="text",
            status="sent",
            text=f"message {i}",
            at=at,
        )


async def test_paging_back_from_the_newest_gives_the_same_transcript(
    ctx: ServiceContext, client: httpx.AsyncClient, new_operator: NewOperator
) -> None:
    # A long conversation opened at its end, then scrolled up a page at a time.
    token = await new_operator()
    conversation_id = await shuffled_conversation(ctx)
    whole = [m["id"] for m in (await items(client, token, conversation_id, limit=200))["items"]]

    newest = await items(client, token, conversation_id, before=0, limit=4)
    assert [m["id"] for m in newest["items"]] == whole[-4:]
    assert newest["next_after"] is None
    pages = [newest["items"]]
    while newest["next_before"] is not None:
        newest = await items(client, token, conversation_id, before=newest["next_before"], limit=4)
        pages.insert(0, newest["items"])
    assert [m["id"] for page in pages for m in page] == whole
    assert len(pages) == 3  # 4 + 4 + 3: the last (oldest) page is short, and says so

    # A message that is gone (or not this conversation's) has nothing kept before it.
    assert (await items(client, token, conversation_id, before=2**62))["items"] == []


async def test_after_and_before_together_are_refused(
    client: httpx.AsyncClient, bus: Bus, new_operator: NewOperator
) -> None:
    token = await new_operator()
    wa_id = new_wa_id()
    await bus.publish(inbound(wa_id))
    conversation_id = conversation_id_for(PHONE_NUMBER_ID, wa_id)
    url = f"/api/v1/conversations/{conversation_id}/messages"

    async def recorded() -> bool:
        return (await client.get(url, headers=auth(token))).status_code == 200

    await wait_until(recorded, what="the conversation")
    r = await client.get(url, params={"after": 1, "before": 5}, headers=auth(token))
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"
    assert "not both" in r.json()["detail"]
