"""The group-commit batcher: concurrent requests share a batch; a failed batch is served
item by item, so one bad item fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from baton_sender.coalesce import Coalescer


async def test_concurrent_requests_share_one_batch_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def batch(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        return [item * 10 for item in items]

    async def single(item: int) -> int:
        raise AssertionError("a batch that succeeds is not retried one by one")

    coalescer: Coalescer[int, int] = Coalescer(batch, single)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(5)))
    assert results == [0, 10, 20, 30, 40]
    assert batches == [[0, 1, 2, 3, 4]]


async def test_requests_made_during_a_batch_go_into_the_next_one() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def batch(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            await release.wait()
        return list(items)

    coalescer: Coalescer[int, int] = Coalescer(batch, _identity)
    first = [asyncio.create_task(coalescer.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(coalescer.submit(i)) for i in (3, 4)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.wait_for(asyncio.gather(*first, *later), timeout=5) == [1, 2, 3, 4]
    assert batches == [[1, 2], [3, 4]]


async def test_a_failed_batch_is_served_one_by_one_and_only_the_bad_item_fails() -> None:
    singles: list[int] = []

    async def batch(items: Sequence[int]) -> list[int]:
        raise RuntimeError("one bad item spoils the batch")

    async def single(item: int) -> int:
        singles.append(item)
        if item == 2:
            raise ValueError("bad item")
        return item + 100

    coalescer: Coalescer[int, int] = Coalescer(batch, single)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(4)), return_exceptions=True)
    assert results[:2] == [100, 101]
    assert results[3] == 103
    assert isinstance(results[2], ValueError)
    assert singles == [0, 1, 2, 3]
    # The coalescer keeps working after a failure.
    assert await asyncio.wait_for(coalescer.submit(7), timeout=5) == 107


async def test_a_lone_request_goes_straight_to_single() -> None:
    async def batch(items: Sequence[int]) -> list[int]:
        raise AssertionError("one item needs no batch")

    async def single(item: int) -> int:
        return -item

    coalescer: Coalescer[int, int] = Coalescer(batch, single)
    assert await coalescer.submit(3) == -3


@pytest.mark.parametrize("max_batch", [1, 2])
async def test_batches_are_capped_at_max_batch(max_batch: int) -> None:
    sizes: list[int] = []

    async def batch(items: Sequence[int]) -> list[int]:
        sizes.append(len(items))
        return list(items)

    async def single(item: int) -> int:
        sizes.append(1)
        return item

    coalescer: Coalescer[int, int] = Coalescer(batch, single, max_batch=max_batch)
    assert await asyncio.gather(*(coalescer.submit(i) for i in range(5))) == list(range(5))
    assert max(sizes) <= max_batch
    assert sum(sizes) == 5


async def _identity(item: int) -> int:
    return item
