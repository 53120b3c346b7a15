"""Network errors: a request that never left is retried; one that may have reached WhatsApp
(written, then no answer) is not sent again (the API has no idempotency key), and ends as
`outcome_unknown`, which a status webhook can still correct."""

from __future__ import annotations

import socket

import pytest

from baton_sender.context import SenderContext
from baton_sender.whatsapp.client import WhatsAppClient
from baton_sender.whatsapp.errors import NetworkError
from baton_shared.events import MessageFailed
from baton_shared.streams.bus import Bus
from baton_shared.testing import wait_until

from .conftest import TOKEN, Emulator, command, new_customer, open_window, results

pytestmark = pytest.mark.integration

BODY = {"messaging_product": "whatsapp", "to": "34600000000", "type": "text", "text": {"body": "x"}}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


@pytest.mark.parametrize("kind", ["lean", "httpx"])
async def test_a_request_that_never_left_may_be_sent_again(kind: str) -> None:
    client = WhatsAppClient(
        f"http://127.0.0.1:{closed_port()}", "v23.0", TOKEN, timeout=2, http_client=kind
    )
    with pytest.raises(NetworkError) as raised:
        await client.send("1000200030004", BODY)
    assert raised.value.maybe_sent is False
    await client.aclose()


@pytest.mark.parametrize("kind", ["lean", "httpx"])
async def test_a_request_without_an_answer_may_have_arrived(emulator: Emulator, kind: str) -> None:
    to = new_customer()
    await emulator.fault(to=to, delay_ms=1500, count=1)
    client = WhatsAppClient(emulator.url, "v23.0", TOKEN, timeout=0.3, http_client=kind)
    with pytest.raises(NetworkError) as raised:
        await client.send("1000200030004", {**BODY, "to": to})
    assert raised.value.maybe_sent is True
    await client.aclose()


async def test_a_message_that_may_have_arrived_is_not_sent_twice(
    ctx: SenderContext, bus: Bus, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    to = new_customer()
    await open_window(ctx, to)
    await emulator.fault(to=to, delay_ms=1500, count=1)  # WhatsApp takes it, answers late
    impatient = WhatsAppClient(emulator.url, ctx.settings.wa_api_version, TOKEN, timeout=0.3)
    monkeypatch.setattr(ctx, "client", impatient)
    event = command(to, text="your order shipped")
    await bus.publish(event)

    (done,) = await wait_until(lambda: results(bus, event.payload.command_id), timeout=15)
    assert isinstance(done, MessageFailed)
    assert done.payload.reason == "outcome_unknown"
    assert "network_error" in done.payload.details
    await wait_until(lambda: emulator.messages(to), what="the late call recorded")
    assert len(await emulator.messages(to)) == 1  # received once, not sent again
    await impatient.aclose()
