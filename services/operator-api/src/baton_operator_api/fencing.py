"""The fencing state in Redis: `control:<conversation_id>` = {mode, epoch, operator}.

PostgreSQL is the truth; Redis is the copy the sender reads right before every AI send.
Writes are compare-and-set on the epoch, so a slow writer never replaces a newer state with
an older one, and the copy is re-synced from PostgreSQL at start and periodically.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sqlalchemy import select

from baton_operator_api import metrics
from baton_operator_api.control import ControlState
from baton_operator_api.db.models import conversations
from baton_shared.db import Database
from baton_shared.events import Mode
from baton_shared.streams import names
from baton_shared.streams.bus import Bus

log = logging.getLogger(__name__)

# Write the hash only when the new epoch is newer than the stored one (or none is stored).
_WRITE_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'epoch')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'mode', ARGV[2], 'operator', ARGV[3])
return 1
"""


def fencing_mode(mode: Mode) -> str:
    """The mode the sender sees: a resolved conversation is held by nobody, so the AI answers."""
    return Mode.AI.value if mode == Mode.RESOLVED else mode.value


class Fence:
    """Writes and reads the fencing hashes of conversations."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._write = bus.redis.register_script(_WRITE_IF_NEWER)

    def key(self, conversation_id: str) -> str:
        """The Redis key of a conversation's fencing hash."""
        return self.bus.key(names.control_state(conversation_id))

    async def write(self, conversation_id: str, state: ControlState) -> bool:
        """Store `state` unless Redis already has this epoch or a newer one; True if written."""
        written = await self._write(
            keys=[self.key(conversation_id)],
            args=[state.epoch, fencing_mode(state.mode), state.operator or ""],
        )
        return bool(written)

    async def past(self, conversation_id: str, state: ControlState) -> ControlState:
        """`state`, under an epoch above the one Redis holds; call under the row lock, before
        saving a new control state.

        Redis is ahead of PostgreSQL only after PostgreSQL lost changes (restored from a
        backup while Redis kept its copy). The compare-and-set would then refuse the new
        state: a takeover would answer 200 while the sender still saw the AI holding the
        conversation (invariant 4), and resync could never heal it. So the new state moves
        past Redis's epoch, which keeps epochs increasing as everything downstream expects."""
        fenced = await self.bus.redis.hget(self.key(conversation_id), "epoch")
        if fenced is None or int(fenced) < state.epoch:
            return state
        log.warning(
            "fence of %s is at epoch %s, ahead of PostgreSQL's %d (restored from a backup?): "
            "the new state takes epoch %d",
            conversation_id,
            fenced,
            state.epoch - 1,
            int(fenced) + 1,
            extra={"conversation_id": conversation_id},
        )
        metrics.FENCE_AHEAD.inc()
        return replace(state, epoch=int(fenced) + 1)

    async def read(self, conversation_id: str) -> ControlState | None:
        """The stored state, or None when the conversation has none."""
        fields: dict[str, str] = await self.bus.redis.hgetall(self.key(conversation_id))  # type: ignore[assignment]
        if not fields:
            return None
        mode = fields.get("mode", "")
        return ControlState(
            mode=Mode(mode) if mode in Mode._value2member_map_ else Mode.UNKNOWN,
            epoch=int(fields.get("epoch", 0)),
            operator=fields.get("operator") or None,
        )


async def resync(db: Database, fence: Fence) -> int:
    """Copy every changed conversation's control state from PostgreSQL; returns rows seen."""
    seen = 0
    query = select(
        conversations.c.id, conversations.c.mode, conversations.c.epoch, conversations.c.operator
    ).where(conversations.c.epoch > 0)
    async with db.sessions() as session:
        result = await session.stream(query.execution_options(yield_per=500))
        async for row in result:
            await fence.write(row.id, ControlState(Mode(row.mode), row.epoch, row.operator))
            seen += 1
    return seen
