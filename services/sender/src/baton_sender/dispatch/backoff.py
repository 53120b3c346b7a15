"""How long to wait before retrying a transient failure."""

from __future__ import annotations

import random

from baton_sender.whatsapp.errors import PAIR_RATE_CODE


def retry_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    code: int | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before attempt `attempt + 1`: exponential with jitter, capped.

    The pair-rate error (131056) follows Meta's advice of 4^X seconds; everything else doubles
    from `base`. Jitter keeps the delay between half and all of the computed value, so replicas
    that failed together do not retry together.
    """
    exponent = max(0, attempt - 1)
    delay = 4.0**exponent if code == PAIR_RATE_CODE else base * 2.0**exponent
    delay = min(cap, delay)
    return delay * (rng or random).uniform(0.5, 1.0)
