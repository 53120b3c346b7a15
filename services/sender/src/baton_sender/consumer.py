"""What the sender subscribes to: commands, statuses, and inbound messages (for windows)."""

from __future__ import annotations

from functools import partial

from baton_sender.context import SenderContext
from baton_sender.handlers import message_received, message_requested, status_received
from baton_shared.runtime import Runtime
from baton_shared.streams import names


def register(runtime: Runtime, ctx: SenderContext) -> None:
    """Register the sender's consumers (all in group `sender`) on the runtime."""
    runtime.consume(
        names.WA_OUTBOUND,
        names.GROUP_SENDER,
        partial(message_requested.handle, ctx),
        concurrency=ctx.settings.ingest_concurrency,
    )
    runtime.consume(names.WA_STATUSES, names.GROUP_SENDER, partial(status_received.handle, ctx))
    runtime.consume(names.WA_INBOUND, names.GROUP_SENDER, partial(message_received.handle, ctx))
