"""PostgreSQL: engines per service schema, inbox and outbox, migrations."""

from baton_shared.db.engine import Database, async_url, sync_url
from baton_shared.db.inbox import InboxPruner, claim_inbox
from baton_shared.db.outbox import (
    OutboxRelay,
    Staged,
    add_to_outbox,
    publish_committed,
    stage_entries,
)

__all__ = [
    "Database",
    "InboxPruner",
    "OutboxRelay",
    "Staged",
    "add_to_outbox",
    "async_url",
    "claim_inbox",
    "publish_committed",
    "stage_entries",
    "sync_url",
]
