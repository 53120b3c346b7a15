"""What the buffer subscribes to: customer messages and the agent's turn completions."""

from __future__ import annotations

from baton_buffer.context import BufferContext
from baton_buffer.handlers import message_received, turn_completed
from baton_shared.runtime import Runtime
from baton_shared.streams import names


def register(runtime: Runtime, ctx: BufferContext) -> None:
    """Consume `wa.inbound` and `conv.turns.done` in the `buffer` group."""
    runtime.consume(names.WA_INBOUND, names.GROUP_BUFFER, message_received.make_handler(ctx))
    runtime.consume(names.CONV_TURNS_DONE, names.GROUP_BUFFER, turn_completed.make_handler(ctx))
