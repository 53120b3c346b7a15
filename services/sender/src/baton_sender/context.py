"""What the sender's handlers and dispatcher share within one process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from baton_sender.coalesce import Coalescer
from baton_sender.dispatch.order import RecordedBound
from baton_sender.ratelimit import RateLimiter
from baton_sender.settings import SenderSettings
from baton_sender.whatsapp.client import WhatsAppClient
from baton_shared.db import Database
from baton_shared.streams.bus import Bus


@dataclass
class SenderContext:
    """Settings, database, bus, the pooled WhatsApp client and the rate limiter.

    Attributes:
        work: set when new messages may be ready, so the dispatcher looks at once.
        recorded: which `wa.outbound` entries are recorded: what the dispatcher may claim
            (`dispatch.order`).
        batches: the process's group-commit batchers (`coalesce.Coalescer`) by name, made on
            first use by the modules that own them (`dispatch.record`, `fencing`).
    """

    settings: SenderSettings
    db: Database
    bus: Bus
    client: WhatsAppClient
    limiter: RateLimiter
    recorded: RecordedBound
    work: asyncio.Event = field(default_factory=asyncio.Event)
    batches: dict[str, Coalescer[Any, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: SenderSettings, db: Database, bus: Bus) -> SenderContext:
        """The context of one process, with its one pooled WhatsApp client."""
        client = WhatsAppClient(
            settings.wa_graph_url,
            settings.wa_api_version,
            settings.wa_access_token,
            timeout=settings.wa_http_timeout,
            max_connections=max(10, settings.dispatch_concurrency),
            http_client=settings.wa_http_client,
        )
        limiter = RateLimiter(
            bus,
            number_mps=settings.wa_rate_limit_mps,
            customer_per_minute=settings.customer_rate_per_minute,
            customer_burst=settings.customer_burst,
            number_mps_by_number=settings.wa_rate_limit_mps_by_number,
        )
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            client=client,
            limiter=limiter,
            recorded=RecordedBound(bus),
        )
