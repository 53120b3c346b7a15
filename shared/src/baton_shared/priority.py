"""CPU priority of a Baton process: `BATON_NICE`.

On one machine, the ingress request path (a `web` process: check, append, answer) and the
background work it sets off (the ingress worker, buffer, agent, sender, operator-api)
compete for the same cores, and the kernel shares them out evenly: under a burst, answers
to WhatsApp wait behind consumers that could just as well lag a little. Running the
background processes at a higher niceness (lower priority) keeps the answers fast and
lets the background use every cycle the request path leaves; nothing is lost by it, the
streams hold the work until it is done.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MAX_NICENESS = 19


def lower_priority(niceness: int) -> int:
    """Run this process at niceness `niceness` (0..19) at least; the niceness now in effect.

    Never raises a priority (that needs privileges; a process started niced stays so). On
    Linux niceness belongs to each thread and new threads inherit their creator's, so every
    thread that already runs is set too; and a process that leads its own session gets the
    same niceness for its autogroup (`_lower_autogroup`)."""
    if not 0 <= niceness <= MAX_NICENESS:
        raise ValueError(f"niceness must be within 0..{MAX_NICENESS}, got {niceness}")
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness <= current:
        return current
    tasks = Path("/proc/self/task")
    for thread in [int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]:
        _lower_thread(thread, niceness)
    _lower_autogroup(niceness)
    return niceness


def _lower_thread(thread: int, niceness: int) -> None:
    """One thread to `niceness`, unless it already runs nicer (raising it back would need
    privileges) or has ended since the listing."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpriority(os.PRIO_PROCESS, thread) < niceness:
            os.setpriority(os.PRIO_PROCESS, thread, niceness)


def _lower_autogroup(niceness: int) -> None:
    """With Linux autogroups (`sched_autogroup_enabled`), every session is scheduled as one
    group against the other groups, and a thread's niceness only counts inside its group. A
    process started in a session of its own — as `baton-dev run` and `docker exec` start
    them — is then as strong as any other group whatever its niceness, so its group gets the
    niceness too. A process that shares its session (started from a shell) leaves the group
    alone: it would lower its siblings with it, and inside the group its own niceness works."""
    autogroup = Path("/proc/self/autogroup")
    if os.getsid(0) != os.getpid() or not autogroup.exists():
        return
    # A read-only /proc (some containers) refuses: the threads' niceness still holds.
    with contextlib.suppress(OSError):
        autogroup.write_text(f"{niceness}\n")
