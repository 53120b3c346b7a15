"""What the agent subscribes to: turns, control changes, and sent operator messages."""

from __future__ import annotations

import logging

from baton_agent.context import AgentContext
from baton_agent.handlers.control_changed import handle_control_changed
from baton_agent.handlers.message_sent import handle_message_sent
from baton_agent.handlers.turn_ready import give_up_on_turn, handle_turn_ready
from baton_shared.events import Event, MessageSent, TurnReady
from baton_shared.runtime import Runtime
from baton_shared.streams import names
from baton_shared.streams.consumer import Delivery, Handler
from baton_shared.streams.outages import is_outage

log = logging.getLogger(__name__)


def _turns(ctx: AgentContext) -> Handler:
    async def handle(event: Event, delivery: Delivery) -> None:
        if not isinstance(event, TurnReady):
            return
        try:
            await handle_turn_ready(ctx, event)
        except Exception as exc:
            if delivery.count < ctx.settings.max_deliveries or is_outage(exc):
                raise  # tried again (an outage is waited out, its tries not counted)
            log.exception("turn %s failed at its last delivery", event.payload.turn_id)
            try:
                await give_up_on_turn(ctx, event, exc)
            except Exception:
                log.exception("turn %s: the apology failed too", event.payload.turn_id)
            raise  # dead-lettered with its cause, for someone to look at

    return handle


def _control(ctx: AgentContext) -> Handler:
    async def handle(event: Event, _: Delivery) -> None:
        await handle_control_changed(ctx, event)

    return handle


def _results(ctx: AgentContext) -> Handler:
    async def handle(event: Event, _: Delivery) -> None:
        if isinstance(event, MessageSent):
            await handle_message_sent(ctx, event)

    return handle


def register(runtime: Runtime, ctx: AgentContext) -> None:
    """Register the consumers; up to `AGENT_CONCURRENCY` turns are handled at once.

    Concurrent turns are safe on `conv.turns` because the buffer keeps one turn in flight
    per conversation: the turns handled side by side belong to different conversations.
    """
    runtime.consume(
        names.CONV_TURNS, names.GROUP_AGENT, _turns(ctx), concurrency=ctx.settings.concurrency
    )
    runtime.consume(names.CONV_CONTROL, names.GROUP_AGENT, _control(ctx))
    runtime.consume(names.WA_OUTBOUND_RESULTS, names.GROUP_AGENT, _results(ctx))
