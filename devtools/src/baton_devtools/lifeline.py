"""A watchdog process that stops registered process groups when the process that started
them dies, however it dies (SIGKILL included).

Chosen over PR_SET_PDEATHSIG, which fires when the starting *thread* exits and is cleared by
the switch to another user (embedded PostgreSQL runs as its own user when we are root).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys

STOP_TIMEOUT = 10.0

# Runs as `python -c`: reads "+ PID SIG" / "- PID" lines; at EOF (the owner closed the pipe or
# died) it signals every process group still registered, then SIGKILLs what is left.
_WATCHDOG = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
groups = {}
for line in sys.stdin:
    op, pid, *rest = line.split()
    if op == "+":
        groups[int(pid)] = int(rest[0])
    else:
        groups.pop(int(pid), None)
def signal_all(sig=None):
    alive = []
    for pid, default in groups.items():
        try:
            os.killpg(pid, default if sig is None else sig)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive
deadline = time.monotonic() + float(sys.argv[1])
signal_all()
while signal_all(0) and time.monotonic() < deadline:
    time.sleep(0.05)
signal_all(signal.SIGKILL)
"""


class Lifeline:
    """A watchdog process that stops registered process groups when this process dies."""

    def __init__(self, grace: float = STOP_TIMEOUT) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(grace)],
            stdin=subprocess.PIPE,
            start_new_session=True,  # terminal Ctrl-C must not reach it
        )

    def _send(self, line: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode())
        self._proc.stdin.flush()

    def guard(self, pgid: int, sig: int = signal.SIGTERM) -> None:
        """Send `sig` (later SIGKILL) to process group `pgid` if this process dies."""
        self._send(f"+ {pgid} {int(sig)}\n")

    def release(self, pgid: int) -> None:
        """Forget `pgid`: it has been stopped properly."""
        with contextlib.suppress(BrokenPipeError, ValueError):
            self._send(f"- {pgid}\n")

    def close(self) -> None:
        """Stop the watchdog; it signals any group still registered."""
        with contextlib.suppress(BrokenPipeError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()
        self._proc.wait()
