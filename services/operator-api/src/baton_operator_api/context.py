"""What request handlers and stream handlers share: runtime, settings, fence."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from baton_operator_api.feed import Feeds
from baton_operator_api.fencing import Fence
from baton_operator_api.settings import OperatorApiSettings
from baton_operator_api.templates import Templates
from baton_shared.db import Database
from baton_shared.runtime import Runtime

PRODUCER = "operator-api"


@dataclass(frozen=True, slots=True)
class ServiceContext:
    """The operator-api's shared resources.

    Attributes:
        runtime: database, bus and workers.
        settings: this service's settings.
        fence: the Redis fencing state writer.
        templates: the approved message templates, when a templates file is configured.
        media_wake: set when customer media was recorded, to wake this process's downloader.
        feeds: the live feeds' own Redis pool and their cap.
    """

    runtime: Runtime
    settings: OperatorApiSettings
    fence: Fence
    feeds: Feeds
    templates: Templates | None = None
    media_wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def db(self) -> Database:
        """The operator schema's database."""
        return self.runtime.db
