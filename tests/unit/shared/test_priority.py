"""`BATON_NICE`: a background process runs at a lower CPU priority, every thread of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from baton_shared import cli
from baton_shared.priority import lower_priority
from baton_shared.settings import BaseServiceSettings

# Run in a child: a niceness raised in the test process could not be lowered again.
CHILD = """
import json, os, threading
from pathlib import Path
from baton_shared.priority import lower_priority

def niceness(thread: str) -> int:
    stat = Path(f"/proc/self/task/{thread}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])

stop = threading.Event()
threading.Thread(target=stop.wait).start()  # already running when the niceness changes
first = lower_priority(7)
later = threading.Thread(target=stop.wait)
later.start()
again = lower_priority(3)
threads = [niceness(t) for t in sorted(os.listdir("/proc/self/task"))]
stop.set()
print(json.dumps({"first": first, "again": again, "threads": threads}))
"""


def test_every_thread_is_niced_and_never_raised_again() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["first"] == 7
    assert got["again"] == 7  # 3 would raise the priority: left at 7
    assert got["threads"] == [7, 7, 7]  # main, the one running before, the one started after


AUTOGROUP_CHILD = """
import json
from pathlib import Path
from baton_shared.priority import lower_priority

lower_priority(9)
print(json.dumps(Path("/proc/self/autogroup").read_text()))
"""


@pytest.mark.skipif(
    not Path("/proc/self/autogroup").exists(), reason="no Linux autogroups on this kernel"
)
@pytest.mark.parametrize("own_session", [True, False])
def test_a_session_leader_nices_its_autogroup_and_nobody_elses(own_session: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-c", AUTOGROUP_CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=own_session,
    )
    assert out.returncode == 0, out.stderr
    group = json.loads(out.stdout)
    if own_session:
        assert group.split()[-1] == "9"
    else:
        # Sharing the test runner's session (and group), the child leaves the group alone.
        # A process in the root group (a session never split from init's) reads "" here.
        assert group == Path("/proc/self/autogroup").read_text()


@pytest.mark.parametrize("niceness", [-1, 20])
def test_out_of_range_is_refused(niceness: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.19"):
        lower_priority(niceness)


@pytest.mark.parametrize(("env", "applied"), [("6", [6]), ("0", []), (None, [])])
def test_serve_applies_baton_nice_before_the_server_starts(
    monkeypatch: pytest.MonkeyPatch, env: str | None, applied: list[int]
) -> None:
    calls: list[Any] = []
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u@localhost/db")
    monkeypatch.setenv("BATON_ENV", "test")
    if env is None:
        monkeypatch.delenv("BATON_NICE", raising=False)
    else:
        monkeypatch.setenv("BATON_NICE", env)

    def nice(niceness: int) -> int:
        calls.append(("nice", niceness))
        return niceness

    monkeypatch.setattr(cli, "lower_priority", nice)

    def serve(server: cli.SettlingServer, sockets: object = None) -> None:
        calls.append(("serve", None))
        server.started = True

    monkeypatch.setattr(cli.SettlingServer, "run", serve)
    code = cli.run_cli(
        "test",
        settings_cls=BaseServiceSettings,
        create_app=lambda _settings: object(),  # type: ignore[arg-type,return-value]
        migrations="unused",
        schema="unused",
        port=lambda _settings: 0,
        argv=["serve"],
    )
    assert code == 0
    assert calls == [("nice", n) for n in applied] + [("serve", None)]
