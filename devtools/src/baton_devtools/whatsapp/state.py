"""Everything the WhatsApp emulator remembers: sent messages, reads, media, faults, config."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from baton_devtools.whatsapp.faults import FaultBook
from baton_devtools.whatsapp.limits import Limits
from baton_devtools.whatsapp.media import MediaStore
from baton_devtools.whatsapp.media_check import LinkFetcher
from baton_devtools.whatsapp.settings import (
    DEFAULT_REACHABLE_MEDIA_HOSTS,
    DEFAULT_WEBHOOK_RETRY_MS,
    WaEmulatorSettings,
    check_retry_schedule,
)
from baton_devtools.whatsapp.templates import (
    DEFAULT_TEMPLATES,
    TemplateRegistry,
    load_templates_file,
)
from baton_devtools.whatsapp.webhooks import WebhookClient

StatusName = Literal["sent", "delivered", "read"]
ALL_STATUSES: tuple[StatusName, ...] = ("sent", "delivered", "read")


class EmulatorConfig(BaseModel):
    """Behaviour switches (`POST /_emulator/config` updates the fields it names).

    Attributes:
        statuses: status webhooks delivered after each successful send, in order.
        status_delay_ms: wait before each status webhook.
        latency_ms: latency added to every Graph API call.
        throughput_mps: calls per second per business number before 130429; None = off.
        pair_limit: whether one number messaging one customer too fast gets 131056.
        pair_interval_seconds: the pair rate: one message per this many seconds...
        pair_burst: ...with bursts up to this many (borrowing future quota).
        enforce_window: whether free-form messages need an inbound message within
            `window_hours` (131047 otherwise; templates always pass).
        window_mode: "sync" answers 131047 at once; "webhook" answers 200 + wamid and then
            delivers a failed status with 131047.
        webhook_retry_ms: waits before each redelivery of a webhook (status or customer
            message) the receiver did not answer 200; [] = delivered once.
        reachable_media_hosts: media links to these hosts (or subdomains) count as fetched.
        media_fetch_timeout_ms: how long a media link fetch may take before 131053.
    """

    model_config = ConfigDict(extra="forbid")

    statuses: list[StatusName] = Field(default_factory=lambda: list(ALL_STATUSES))
    status_delay_ms: int = Field(default=100, ge=0)
    latency_ms: int = Field(default=0, ge=0)
    throughput_mps: int | None = Field(default=80, ge=1)
    pair_limit: bool = True
    pair_interval_seconds: float = Field(default=6.0, gt=0)
    pair_burst: int = Field(default=45, ge=1)
    enforce_window: bool = False
    window_hours: float = Field(default=24.0, gt=0)
    window_mode: Literal["sync", "webhook"] = "webhook"
    webhook_retry_ms: list[int] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_RETRY_MS))
    reachable_media_hosts: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REACHABLE_MEDIA_HOSTS)
    )
    media_fetch_timeout_ms: int = Field(default=2000, ge=1, le=60_000)

    @field_validator("webhook_retry_ms")
    @classmethod
    def _bounded(cls, value: list[int]) -> list[int]:
        return check_retry_schedule(value)

    @field_validator("reachable_media_hosts")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [host.strip().lower() for host in value if host.strip()]

    @classmethod
    def from_settings(cls, settings: WaEmulatorSettings) -> EmulatorConfig:
        """The starting config: limits as the environment says."""
        mps = settings.wa_emulator_throughput_mps
        return cls(
            throughput_mps=mps or None,
            pair_limit=settings.wa_emulator_pair_limit,
            enforce_window=settings.wa_emulator_enforce_window,
            webhook_retry_ms=settings.wa_emulator_webhook_retry_ms,
            reachable_media_hosts=settings.wa_emulator_reachable_media_hosts,
            media_fetch_timeout_ms=settings.wa_emulator_media_fetch_timeout_ms,
        )


@dataclass
class MessageRecord:
    """One accepted send (or mark-as-read), with the statuses delivered for it."""

    id: str
    to: str | None
    phone_number_id: str
    type: str
    body: dict[str, Any]
    api_version: str
    callback_data: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    statuses: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The JSON shape `GET /_emulator/messages` returns."""
        return {
            "id": self.id,
            "to": self.to,
            "phone_number_id": self.phone_number_id,
            "type": self.type,
            "body": self.body,
            "api_version": self.api_version,
            "received_at": self.received_at.isoformat(),
            "statuses": list(self.statuses),
        }


@dataclass(frozen=True)
class InboundNote:
    """What the emulator remembers of a customer message it posted: its type and time."""

    type: str
    timestamp: float


class WaState:
    """The emulator's memory; one per app."""

    def __init__(self, settings: WaEmulatorSettings) -> None:
        self.settings = settings
        self.messages: list[MessageRecord] = []
        self.reads: list[MessageRecord] = []
        self.media = MediaStore()
        self.faults = FaultBook()
        self.config = EmulatorConfig.from_settings(settings)
        self.limits = Limits()
        self.inbound_senders: dict[str, str] = {}
        self.inbound: dict[str, InboundNote] = {}
        self.sent: dict[str, MessageRecord] = {}
        start = (
            load_templates_file(settings.wa_emulator_templates_file)
            if settings.wa_emulator_templates_file is not None
            else DEFAULT_TEMPLATES
        )
        self.templates = TemplateRegistry(start)
        self.links = LinkFetcher()
        self.webhook = WebhookClient(settings.ingress_webhook_url, settings.wa_app_secret)
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the background, keeping a reference until it finishes."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every background delivery started so far has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def clear_records(self) -> None:
        """Forget recorded messages and reads."""
        self.messages.clear()
        self.reads.clear()
        self.sent.clear()

    def record_sent(self, record: MessageRecord) -> None:
        """Keep an accepted send (listed, and found by id for reactions)."""
        self.messages.append(record)
        self.sent[record.id] = record

    def note_inbound(self, message: Any) -> None:
        """Remember a customer message's type and time (reactions to it are checked)."""
        if not isinstance(message, dict) or not isinstance(message.get("id"), str):
            return
        stamp = str(message.get("timestamp", ""))
        when = float(stamp) if stamp.isdigit() else time.time()
        self.inbound[message["id"]] = InboundNote(str(message.get("type", "text")), when)

    async def aclose(self) -> None:
        """Cancel background deliveries and close the webhook client."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.webhook.aclose()
        await self.links.aclose()
