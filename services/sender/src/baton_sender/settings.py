"""Settings of the sender service, read from the environment."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field

from baton_shared.settings import BaseServiceSettings


def _sender(name: str) -> AliasChoices:
    """`SENDER_<NAME>`, or the unprefixed `<NAME>` the first releases read (still accepted;
    the prefixed name wins when both are set)."""
    return AliasChoices(f"SENDER_{name.upper()}", name)


class SenderSettings(BaseServiceSettings):
    """Environment of the sender. The sending policy's settings are `SENDER_<NAME>` (for
    example `SENDER_MAX_ATTEMPTS`), the WhatsApp ones `WA_<NAME>`.

    Attributes:
        port: HTTP port of `/health` and `/metrics` (`SENDER_PORT`).
        wa_graph_url: base URL of the Graph API, or of the emulator (`WA_GRAPH_URL`).
        wa_api_version: Graph API version in every request path (`WA_API_VERSION`).
        wa_access_token: bearer token of the business (`WA_ACCESS_TOKEN`), a secret.
        wa_http_timeout: seconds before a Graph call gives up.
        wa_http_client: `lean` (a keep-alive HTTP/1.1 pool, the fastest), `httpx` (honours
            proxy settings), or `auto`: httpx when `HTTPS_PROXY`/`ALL_PROXY` is set, else lean
            (`WA_HTTP_CLIENT`).
        wa_rate_limit_mps: messages per second per business number (WhatsApp: 80 to 1,000).
        wa_rate_limit_mps_by_number: business numbers with a rate of their own, as JSON
            (`{"<phone_number_id>": 20}`): a number shared with the WhatsApp Business app
            (coexistence) is held at 20, a number upgraded to 1,000 may use it.
        customer_rate_per_minute: sustained messages per minute to one customer (pair rate).
        customer_burst: messages one customer may get in a burst before pacing starts.
        max_attempts: calls per message before a transient error becomes a failure.
        retry_base_seconds: first backoff delay; doubles per attempt, with jitter.
        retry_max_seconds: longest backoff delay.
        auth_pause_seconds: how long every send pauses after a token error (190).
        window_hours: the customer-service window after the customer's last message.
        window_grace_seconds: how long a free-form message waits for the inbound event that
            opened its window before it counts as outside the window.
        dispatch_concurrency: customers served in parallel by one replica (at most half a
            second of `wa_rate_limit_mps` is claimed ahead, so fewer at low rates).
        claim_lease_seconds: a claimed message not finished in this time is recovered.
        ingest_batch: `wa.outbound` entries read and recorded per transaction, in stream order.
    """

    port: int = Field(default=8084, ge=0, le=65535, validation_alias="SENDER_PORT")
    wa_graph_url: str = Field("https://graph.facebook.com", pattern=r"^https?://[^/\s]+")
    wa_api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    wa_access_token: str = ""
    wa_http_timeout: float = Field(default=20.0, gt=0)
    wa_http_client: Literal["auto", "lean", "httpx"] = "auto"
    wa_rate_limit_mps: int = Field(default=80, ge=1, le=1000)
    wa_rate_limit_mps_by_number: dict[str, Annotated[int, Field(ge=1, le=1000)]] = Field(
        default_factory=dict
    )
    customer_rate_per_minute: float = Field(
        default=10.0, gt=0, validation_alias=_sender("customer_rate_per_minute")
    )
    customer_burst: int = Field(default=10, ge=1, le=45, validation_alias=_sender("customer_burst"))
    max_attempts: int = Field(default=6, ge=1, le=50, validation_alias=_sender("max_attempts"))
    retry_base_seconds: float = Field(
        default=1.0, ge=0, validation_alias=_sender("retry_base_seconds")
    )
    retry_max_seconds: float = Field(
        default=300.0, ge=0, validation_alias=_sender("retry_max_seconds")
    )
    auth_pause_seconds: float = Field(
        default=60.0, ge=0, validation_alias=_sender("auth_pause_seconds")
    )
    window_hours: float = Field(default=24.0, gt=0, validation_alias=_sender("window_hours"))
    window_grace_seconds: float = Field(
        default=15.0, ge=0, validation_alias=_sender("window_grace_seconds")
    )
    dispatch_concurrency: int = Field(
        default=256, ge=1, le=1000, validation_alias=_sender("dispatch_concurrency")
    )
    claim_lease_seconds: float = Field(
        default=60.0, gt=0, validation_alias=_sender("claim_lease_seconds")
    )
    ingest_batch: int = Field(
        default=256, ge=1, le=10_000, validation_alias=_sender("ingest_batch")
    )

    def secret_fields(self) -> tuple[str, ...]:
        """The access token must be real outside development."""
        return ("wa_access_token",)

    @property
    def fastest_rate_mps(self) -> int:
        """The highest rate any business number may send at."""
        return max([self.wa_rate_limit_mps, *self.wa_rate_limit_mps_by_number.values()])
