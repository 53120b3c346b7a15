"""What the operator-api subscribes to: customer messages, outbound results, control."""

from __future__ import annotations

from baton_operator_api.context import ServiceContext
from baton_operator_api.handlers import intervention_requested, message_received, outbound_result
from baton_shared.events import (
    DeliveryStatusChanged,
    Event,
    InterventionRequested,
    MessageFailed,
    MessageReceived,
    MessageSent,
    MessageSuppressed,
)
from baton_shared.streams import names
from baton_shared.streams.consumer import Delivery


class Handlers:
    """The stream handlers bound to one service context."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def inbound(self, event: Event, _: Delivery) -> None:
        """`wa.inbound`: customer messages."""
        if isinstance(event, MessageReceived):
            await message_received.handle(self.ctx, event)

    async def results(self, event: Event, _: Delivery) -> None:
        """`wa.outbound.results`: sent, failed, suppressed, status changed."""
        if isinstance(
            event, MessageSent | MessageFailed | MessageSuppressed | DeliveryStatusChanged
        ):
            await outbound_result.handle(self.ctx, event)

    async def control(self, event: Event, _: Delivery) -> None:
        """`conv.control`: the AI's intervention requests (our own changes are already applied)."""
        if isinstance(event, InterventionRequested):
            await intervention_requested.handle(self.ctx, event)


def register(ctx: ServiceContext) -> Handlers:
    """Register the three consumers (group `operator-api`) on the runtime."""
    handlers = Handlers(ctx)
    group = names.GROUP_OPERATOR_API
    ctx.runtime.consume(names.WA_INBOUND, group, handlers.inbound)
    ctx.runtime.consume(names.WA_OUTBOUND_RESULTS, group, handlers.results)
    ctx.runtime.consume(names.CONV_CONTROL, group, handlers.control)
    return handlers
