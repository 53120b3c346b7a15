"""Buffer settings: the three closing rules, the stuck-turn timeout, the ticker's pace."""

from __future__ import annotations

from pydantic import Field

from baton_shared.settings import BaseServiceSettings


class BufferSettings(BaseServiceSettings):
    """Settings of the buffer service.

    Attributes:
        port: HTTP port of `/health` and `/metrics` (`BUFFER_PORT`).
        quiet_seconds: close a burst after this long without a new message; 0 means no waiting
            (`BUFFER_QUIET_SECONDS`).
        max_seconds: close a burst this long after its first message, however busy;
            0 means no waiting (`BUFFER_MAX_SECONDS`).
        max_messages: close a burst when it holds this many messages (a turn carries at most
            this many); 0 closes a burst at its first message, with no size cap
            (`BUFFER_MAX_MESSAGES`).
        stuck_turn_seconds: a turn the agent has not reported done after this long is given
            up on, logged and counted, and the next turn is released. It must exceed the
            longest an agent can take to finish a turn after a crash: its `RECLAIM_IDLE_MS`
            (120 s) and half again (reclaims are looked for every half), plus its
            `AGENT_TURN_TIMEOUT_SECONDS` (90 s), or a turn redone after a crash is answered
            after, or beside, the next one (`BUFFER_STUCK_TURN_SECONDS`).
        tick_ms: the longest the ticker waits between looks for due conversations; it wakes
            at the next deadline when that is sooner (`BUFFER_TICK_MS`).
        claim_lease_seconds: a replica that claimed a conversation and died holds it this long
            before another replica takes it over (`BUFFER_CLAIM_LEASE_SECONDS`).
        recovery_seconds: how often the timers are rebuilt from PostgreSQL, in case Redis lost
            them (`BUFFER_RECOVERY_SECONDS`).
        release_batch: conversations claimed per tick (`BUFFER_RELEASE_BATCH`).
        inbound_batch: stream entries (messages, turn completions) read and recorded in one
            transaction (`BUFFER_INBOUND_BATCH`).
        release_chunk: conversations released in one transaction (`BUFFER_RELEASE_CHUNK`).
        release_concurrency: release transactions running at once per replica
            (`BUFFER_RELEASE_CONCURRENCY`).
    """

    port: int = Field(8082, ge=0, le=65535, validation_alias="BUFFER_PORT")
    quiet_seconds: float = Field(4.0, ge=0, validation_alias="BUFFER_QUIET_SECONDS")
    max_seconds: float = Field(15.0, ge=0, validation_alias="BUFFER_MAX_SECONDS")
    max_messages: int = Field(20, ge=0, validation_alias="BUFFER_MAX_MESSAGES")
    stuck_turn_seconds: float = Field(300.0, gt=0, validation_alias="BUFFER_STUCK_TURN_SECONDS")
    tick_ms: int = Field(50, ge=1, le=10_000, validation_alias="BUFFER_TICK_MS")
    claim_lease_seconds: float = Field(30.0, gt=0, validation_alias="BUFFER_CLAIM_LEASE_SECONDS")
    recovery_seconds: float = Field(60.0, gt=0, validation_alias="BUFFER_RECOVERY_SECONDS")
    inbound_batch: int = Field(500, ge=1, le=2000, validation_alias="BUFFER_INBOUND_BATCH")
    release_batch: int = Field(400, ge=1, le=10_000, validation_alias="BUFFER_RELEASE_BATCH")
    release_chunk: int = Field(200, ge=1, le=1000, validation_alias="BUFFER_RELEASE_CHUNK")
    release_concurrency: int = Field(8, ge=1, le=256, validation_alias="BUFFER_RELEASE_CONCURRENCY")
