"""The media downloader: claims pending downloads and fetches them, a few at a time.

Any number of replicas may run it: a claim takes due rows with `FOR UPDATE SKIP LOCKED`
under a lease and a claim id, and a result is written only while the claim is still ours,
so one file is downloaded by one worker at a time and written once, bytes and status
together. A worker that dies leaves its claims to be taken again when their lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from baton_operator_api.db import media as repo
from baton_operator_api.db.media import Claim
from baton_operator_api.media.errors import (
    PermanentMediaError,
    TransientMediaError,
    UrlRefusedError,
)
from baton_operator_api.media.files import filename_for, verify
from baton_operator_api.media.graph import GraphMedia, MediaInfo, too_large
from baton_operator_api.settings import OperatorApiSettings
from baton_shared.db import Database

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 5.0  # under the runtime's 10 s for every worker to stop


def retry_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Seconds before the next try: doubling from `base`, capped, jittered to 50-100 %."""
    return min(cap, base * 2.0 ** max(0, attempt - 1)) * (rng or random).uniform(0.5, 1.0)


class MediaDownloader:
    """Worker that downloads customer media (`running` while its loop runs)."""

    def __init__(self, db: Database, settings: OperatorApiSettings, wake: asyncio.Event) -> None:
        self.db = db
        self.settings = settings
        self.wake = wake
        self.running = False
        self._tasks: dict[asyncio.Task[None], Claim] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and download until `stop` is set; downloads still running a few seconds
        later are cancelled and given back (pending) for the next worker."""
        s = self.settings
        graph = GraphMedia(
            s.wa_graph_url,
            s.wa_api_version,
            s.wa_access_token,
            timeout=s.wa_http_timeout,
            max_connections=s.media_concurrency * 2,
        )
        self.running = True
        try:
            while not stop.is_set():
                self.wake.clear()  # before the claim: media recorded after it wakes us
                for item in await self._claim():
                    task = asyncio.create_task(self._download(graph, item))
                    self._tasks[task] = item
                    task.add_done_callback(self._done)
                await self._idle(stop)
        finally:
            self.running = False
            await self._drain()
            await graph.aclose()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self.wake.set()  # a slot is free: claim again

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for new media, a free slot, `stop`, or the poll period."""
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self.wake.wait())]
        try:
            await asyncio.wait(
                waits, timeout=self.settings.media_poll_seconds, return_when="FIRST_COMPLETED"
            )
        finally:
            for w in waits:
                w.cancel()

    async def _drain(self) -> None:
        """Let running downloads finish briefly, then cancel them and give their claims back."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=SHUTDOWN_GRACE_SECONDS)
        interrupted = [self._tasks[t] for t in pending if t in self._tasks]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            async with self.db.session() as session:
                for item in interrupted:
                    await repo.retry_later(session, item, delay=0, reason="interrupted by shutdown")
        except Exception:
            log.exception("giving back interrupted media downloads failed (their lease ends)")

    async def _claim(self) -> list[Claim]:
        """Due downloads for the free slots; none (logged) when PostgreSQL fails."""
        free = self.settings.media_concurrency - len(self._tasks)
        if free <= 0:
            return []
        try:
            async with self.db.session() as session:
                return await repo.claim(
                    session, free, timedelta(seconds=self.settings.media_lease_seconds)
                )
        except Exception:
            log.exception("claiming media downloads failed; retrying")
            return []

    async def _download(self, graph: GraphMedia, item: Claim) -> None:
        """One try at one download, ending in downloaded, pending (later) or failed."""
        s = self.settings
        try:
            info, data = await fetch(graph, item.media_id, s.media_max_bytes)
            sha256 = verify(
                data, sha256=info.sha256 or item.webhook_sha256, file_size=info.file_size
            )
            mime_type = info.mime_type or item.mime_type or "application/octet-stream"
            filename = filename_for(item.media_id, item.kind, mime_type, item.filename)
            async with self.db.session() as session:
                kept = await repo.finish(
                    session, item, content=data, mime_type=mime_type, sha256=sha256,
                    filename=filename,
                )  # fmt: skip
            log.info("media %s downloaded (%d bytes, %s)", item.media_id, len(data), mime_type)
            if not kept:
                log.warning("media %s: claim lost before the result was written", item.media_id)
        except PermanentMediaError as exc:
            await self._record(item, failed=True, reason=str(exc))
        except TransientMediaError as exc:
            await self._record(item, failed=item.attempts >= s.media_max_attempts, reason=str(exc))
        except Exception as exc:  # a bug or a database error: retry, never crash the loop
            log.exception("media %s: unexpected error", item.media_id)
            reason = f"unexpected error ({type(exc).__name__})"
            await self._record(item, failed=item.attempts >= s.media_max_attempts, reason=reason)

    async def _record(self, item: Claim, *, failed: bool, reason: str) -> None:
        """Mark the download failed, or pending again after a backoff."""
        s = self.settings
        try:
            async with self.db.session() as session:
                if failed:
                    if item.attempts > 1:
                        reason = f"{reason}; gave up after {item.attempts} attempts"
                    await repo.fail(session, item, reason=reason)
                    log.warning("media %s failed: %s", item.media_id, reason)
                    return
                delay = retry_delay(
                    item.attempts, base=s.media_retry_base_seconds, cap=s.media_retry_max_seconds
                )
                await repo.retry_later(session, item, delay=delay, reason=reason)
                log.info("media %s: %s; retry in %.1fs", item.media_id, reason, delay)
        except Exception:
            # The lease ends and another claim takes the download again.
            log.exception("media %s: recording the outcome failed", item.media_id)


async def fetch(graph: GraphMedia, media_id: str, max_bytes: int) -> tuple[MediaInfo, bytes]:
    """A fresh URL via `GET /{media_id}`, then the bytes; an expired URL is fetched anew once."""
    for attempt in (1, 2):
        info = await graph.lookup(media_id)
        if info.file_size is not None and info.file_size > max_bytes:
            raise too_large(info.file_size, max_bytes)
        try:
            return info, await graph.download(info.url, max_bytes)
        except UrlRefusedError as exc:
            if attempt == 2:
                raise TransientMediaError(f"download URL refused twice ({exc})") from exc
            log.info("media %s: download URL refused (%s); fetching a new one", media_id, exc)
    raise AssertionError("unreachable")
