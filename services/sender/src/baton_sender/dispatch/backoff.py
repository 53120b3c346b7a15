"""How long to wait before retrying a transient failure."""

from __future__ import annotations

import random

from baton_sender.whatsapp.errors import PAIR_RATE_CODE

# Errors the reference says last minutes, not seconds: the least wait before a retry, so the
# attempts are not all spent within half a minute (a throughput upgrade alone takes up to one).
SLOW_RECOVERY_SECONDS = {
    131057: 60.0,  # account in maintenance (a throughput upgrade): "minutes"
    4: 60.0,  # app call rate limit (hourly quotas): "later"
    80007: 60.0,  # WABA rate limit: "later"
}


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
    that failed together do not retry together. The errors of `SLOW_RECOVERY_SECONDS` wait at
    least that long (and up to half again), whatever `cap` says.
    """
    exponent = max(0, attempt - 1)
    delay = 4.0**exponent if code == PAIR_RATE_CODE else base * 2.0**exponent
    delay = min(cap, delay)
    floor = SLOW_RECOVERY_SECONDS.get(code) if code is not None else None
    if floor is not None:
        return max(delay, floor) * (rng or random).uniform(1.0, 1.5)
    return delay * (rng or random).uniform(0.5, 1.0)
