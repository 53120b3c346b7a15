"""Random bits for identifiers (event ids, trace and span ids): a generator of our own.

Drawn from `random` rather than `os.urandom` (`uuid.uuid4`, `secrets`): an id must be unique,
not unpredictable, and a system call per event showed in profiles (~5 % of the buffer's CPU).
But not from the module-level `random` either: anything in the process that calls
`random.seed(n)` (a library, a test framework: Hypothesis seeds it for every example) would
make the ids repeat, and a repeated event id is dropped as a duplicate by every consumer's
inbox and by the publish-once check. This generator is seeded from the OS when the module is
imported and again in every forked child, and nothing else touches it.
"""

from __future__ import annotations

import os
import random

_SOURCE = random.Random()
os.register_at_fork(after_in_child=_SOURCE.seed)


def random_bits(bits: int) -> int:
    """`bits` random bits as a non-negative int."""
    return _SOURCE.getrandbits(bits)
