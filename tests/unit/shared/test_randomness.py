"""Ids never repeat because something seeded `random`, nor across a fork."""

from __future__ import annotations

import os
import random

from baton_shared.events.envelope import random_uuid
from baton_shared.randomness import random_bits


def test_seeding_the_global_random_does_not_repeat_event_ids() -> None:
    # A library or a test framework (Hypothesis seeds `random` per example) calling
    # random.seed made event ids repeat: consumers then dropped new events as duplicates.
    random.seed(7)
    first = [random_uuid() for _ in range(3)]
    random.seed(7)
    again = [random_uuid() for _ in range(3)]
    assert not set(first) & set(again)


def test_a_forked_child_draws_other_bits_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next draw and leave at once
        os.write(write, random_bits(64).to_bytes(8, "big"))
        os._exit(0)
    os.close(write)
    parent = random_bits(64)
    child = int.from_bytes(os.read(read, 8), "big")
    os.waitpid(pid, 0)
    os.close(read)
    assert child != parent
