"""Everything the WhatsApp emulator remembers: sent messages, reads, media, faults, config."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from baton_devtools.whatsapp.faults import FaultBook
from baton_devtools.whatsapp.limits import Limits
from baton_devtools.whatsapp.media import MediaStore
from baton_devtools.whatsapp.settings import WaEmulatorSettings
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

    @classmethod
    def from_settings(cls, settings: WaEmulatorSettings) -> EmulatorConfig:
        """The starting config: limits as the environment says."""
        mps = settings.wa_emulator_throughput_mps
        return cls(
            throughput_mps=mps or None,
            pair_limit=settings.wa_emulator_pair_limit,
            enforce_window=settings.wa_emulator_enforce_window,
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

    async def aclose(self) -> None:
        """Cancel background deliveries and close the webhook client."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.webhook.aclose()
