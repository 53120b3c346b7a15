"""Operations: settings refused at start, secrets kept out of output, the `baton-dlq`,
`baton-ingress replay` and `baton-operator-api create-operator` commands at their edges, and
what the retention jobs keep.

Real PostgreSQL and Redis throughout (the session fixtures of tests/conftest.py); a "down"
server is a local port nothing listens on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from sqlalchemy import text

from baton_agent.settings import AgentSettings
from baton_buffer.settings import BufferSettings
from baton_ingress.main import cli as ingress_cli
from baton_ingress.settings import IngressSettings
from baton_operator_api.db import operators as operator_repo
from baton_operator_api.main import cli as operator_cli
from baton_operator_api.settings import OperatorApiSettings
from baton_sender.settings import SenderSettings
from baton_shared import dead_letter_cli
from baton_shared.cli import load_settings
from baton_shared.db import Database
from baton_shared.observability import logs
from baton_shared.observability.config import ObservabilitySettings
from baton_shared.runtime import Runtime
from baton_shared.settings import BaseServiceSettings
from baton_shared.streams import names
from baton_shared.streams.bus import Bus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KEEP = timedelta(days=30)
OLD = timedelta(days=40)
RECENT = timedelta(days=2)
REAL = {  # real-looking secrets, so production settings validate
    "WA_APP_SECRET": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "WA_VERIFY_TOKEN": "verify-4b5a69788796a5b4",
    "WA_ACCESS_TOKEN": "EAAG1234567890abcdefREALTOKEN",
    "GOOGLE_API_KEY": "AIzaSyD-real-looking-key-0123456789",
}
SERVICE_SETTINGS: dict[str, type[BaseServiceSettings]] = {
    "ingress": IngressSettings,
    "buffer": BufferSettings,
    "agent": AgentSettings,
    "sender": SenderSettings,
    "operator-api": OperatorApiSettings,
}
TRACEBACK = "Traceback (most recent call last)"


# --- helpers -----------------------------------------------------------------------------


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_command(
    command: str, *args: str, env: dict[str, str], cwd: Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """A console script of the workspace, as an operator runs it, in a clean environment
    (no settings inherited from this process, no `.env`)."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run(
        [str(BIN / command), *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_clear_failure(
    done: subprocess.CompletedProcess[str], *, names_: tuple[str, ...] = ()
) -> None:
    """The command failed with an exit code, a message, and no traceback."""
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert TRACEBACK not in output, output[-3000:]
    assert done.stderr.strip(), output
    for name in names_:
        assert name in done.stderr, done.stderr[-3000:]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting inherited from the environment, no stray `.env`."""
    for name in list(os.environ):
        if re.match(
            r"^(BATON_|DATABASE_URL|REDIS_|WA_|GOOGLE_|GEMINI_|AGENT_|BUFFER_|SENDER_|INGRESS_|"
            r"OPERATOR_API_|LOG_|DB_POOL_SIZE|RETENTION_DAYS|INBOX_RETENTION_DAYS|STREAM_MAXLEN|"
            r"PUBLISH_DEDUPE|RECLAIM_IDLE_MS|MAX_DELIVERIES|METRICS_SAMPLE|READY_MAX_LAG|HOST$)",
            name,
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def production_env(
    database_url: str, redis_url: str = "redis://127.0.0.1:6379/0"
) -> dict[str, str]:
    return {"BATON_ENV": "production", "DATABASE_URL": database_url, "REDIS_URL": redis_url, **REAL}


def refused(
    settings_cls: type[BaseSettings], capsys: pytest.CaptureFixture[str]
) -> tuple[int | str | None, str]:
    """`load_settings` as every command calls it: (exit code, stderr); (None, '') when the
    settings were accepted."""
    try:
        load_settings(settings_cls)
    except SystemExit as exited:
        return exited.code, capsys.readouterr().err
    return None, ""


# --- settings ----------------------------------------------------------------------------

PORTS = [
    ("ingress", "INGRESS_PORT"),
    ("ingress", "INGRESS_WORKER_PORT"),
    ("buffer", "BUFFER_PORT"),
    ("agent", "AGENT_PORT"),
    ("sender", "SENDER_PORT"),
    ("operator-api", "OPERATOR_API_PORT"),
]


@pytest.mark.parametrize(("service", "variable"), PORTS)
@pytest.mark.parametrize("value", ["70000", "-1"])
def test_a_port_out_of_range_stops_the_service_naming_the_variable(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    service: str,
    variable: str,
    value: str,
) -> None:
    # Unchecked, `SENDER_PORT=70000` starts a sender that says "Uvicorn running on
    # http://127.0.0.1:70000": a port that cannot exist, so nothing reaches the service.
    for key, val in production_env("postgresql+asyncpg://u:p@127.0.0.1/db").items():
        clean_env.setenv(key, val)
    clean_env.setenv(variable, value)
    code, err = refused(SERVICE_SETTINGS[service], capsys)
    assert code == 2, f"{variable}={value} was accepted"
    assert variable in err


@pytest.mark.parametrize("settings_cls", [SenderSettings, OperatorApiSettings])
@pytest.mark.parametrize("url", ["graph.facebook.com", "ftp://graph.facebook.com", ""])
def test_a_malformed_graph_url_stops_the_service_naming_it(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings_cls: type[BaseServiceSettings],
    url: str,
) -> None:
    # The operator-api checks `^https?://`; the sender, the only caller of the send API,
    # accepted anything and failed every send at run time.
    for key, val in production_env("postgresql+asyncpg://u:p@127.0.0.1/db").items():
        clean_env.setenv(key, val)
    clean_env.setenv("WA_GRAPH_URL", url)
    code, err = refused(settings_cls, capsys)
    assert code == 2, f"WA_GRAPH_URL={url!r} was accepted by {settings_cls.__name__}"
    assert "WA_GRAPH_URL" in err


def test_a_malformed_database_url_stops_the_service_without_showing_its_password(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = "postgresql+asyncpg://baton:Pw-0f1e2d3c4b5a@db.internal:notaport/baton"
    env = production_env(url)
    for key, val in env.items():
        clean_env.setenv(key, val)
    code, err = refused(BufferSettings, capsys)
    # Also as a command: whatever it prints, never the password.
    done = run_command("baton-buffer", "migrate", env=env, cwd=tmp_path)
    assert "Pw-0f1e2d3c4b5a" not in done.stdout + done.stderr
    assert code == 2, "a DATABASE_URL with port 'notaport' was accepted"
    assert "DATABASE_URL" in err
    assert "Pw-0f1e2d3c4b5a" not in err
    assert_clear_failure(done, names_=("DATABASE_URL",))


def test_an_unknown_log_level_stops_the_service_naming_log_level(
    database_url: str, tmp_path: Path
) -> None:
    env = {**production_env(database_url), "LOG_LEVEL": "verbose"}
    done = run_command("baton-buffer", "migrate", env=env, cwd=tmp_path)
    assert_clear_failure(done, names_=("LOG_LEVEL",))


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOG_EVENTS", "maybe"), ("METRICS_SAMPLE_SECONDS", "0"), ("READY_MAX_LAG", "-1")],
)
def test_bad_observability_settings_stop_the_service_naming_the_variable(
    database_url: str, redis_url: str, tmp_path: Path, variable: str, value: str
) -> None:
    env = {
        **production_env(database_url, redis_url),
        "REDIS_PREFIX": f"opsreview-{uuid.uuid4().hex[:8]}:",
        "BUFFER_PORT": str(closed_port()),
        variable: value,
    }
    done = run_command("baton-buffer", "serve", env=env, cwd=tmp_path, timeout=60)
    assert_clear_failure(done, names_=(variable,))
    assert done.returncode == 2


def test_observability_settings_accept_their_documented_defaults(
    clean_env: pytest.MonkeyPatch,
) -> None:
    settings = ObservabilitySettings()
    assert (settings.log_events, settings.log_bodies) == (True, False)
    assert (settings.metrics_sample_seconds, settings.ready_max_lag) == (10.0, 10_000)


def test_a_malformed_rate_limit_map_stops_the_sender_naming_it(
    database_url: str, tmp_path: Path
) -> None:
    env = {**production_env(database_url), "WA_RATE_LIMIT_MPS_BY_NUMBER": '{"106540352242922": 20'}
    done = run_command("baton-sender", "migrate", env=env, cwd=tmp_path)
    assert_clear_failure(done, names_=("WA_RATE_LIMIT_MPS_BY_NUMBER",))


def test_a_rate_limit_map_out_of_range_is_refused_naming_it(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, val in production_env("postgresql+asyncpg://u:p@127.0.0.1/db").items():
        clean_env.setenv(key, val)
    clean_env.setenv("WA_RATE_LIMIT_MPS_BY_NUMBER", '{"106540352242922": 5000}')
    code, err = refused(SenderSettings, capsys)
    assert code == 2
    assert "WA_RATE_LIMIT_MPS_BY_NUMBER" in err


def test_a_placeholder_among_rotated_secrets_is_refused_without_echoing_the_real_one(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for key, val in production_env("postgresql+asyncpg://u:p@127.0.0.1/db").items():
        clean_env.setenv(key, val)
    clean_env.setenv("WA_APP_SECRET", f"{REAL['WA_APP_SECRET']},changeme")
    code, err = refused(IngressSettings, capsys)
    assert code == 2
    assert "WA_APP_SECRET" in err
    assert REAL["WA_APP_SECRET"] not in err


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_a_missing_database_url_stops_every_service_naming_it(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service: str
) -> None:
    for key, val in REAL.items():
        clean_env.setenv(key, val)
    code, err = refused(SERVICE_SETTINGS[service], capsys)
    assert code == 2
    assert "DATABASE_URL" in err


# README's configuration table against the code -------------------------------------------


def _readme_defaults() -> dict[str, tuple[str, str]]:
    """`VARIABLE` -> (default cell, used-by cell) of README's configuration table."""
    found: dict[str, tuple[str, str]] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"`[A-Z_]+`", cells[0]):
            found[cells[0].strip("`")] = (cells[1], cells[2])
    return found


def _field_of(settings_cls: type[BaseSettings], variable: str) -> str | None:
    for name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, str):
            if alias == variable:
                return name
        elif isinstance(alias, AliasChoices):
            if variable in alias.choices:
                return name
        elif name.upper() == variable:
            return name
    return None


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _documented(cell: str) -> str | None:
    """The plain default of a README cell, or None when it is prose (`—`, `embedded`, ...)."""
    if cell == "empty":
        return ""
    first = cell.split(" (")[0].strip()
    match = re.fullmatch(r"`?([^`\s]+)`?", first)
    if not match or first.startswith("—") or first in ("embedded", "unset"):
        return None
    return match[1]


SKIP_DOCUMENTED = {
    # documented with their per-service exception in the same cell
    ("agent", "RECLAIM_IDLE_MS"),
    # reported separately (test_the_agent_reads_db_pool_size_as_readme_says)
    ("agent", "DB_POOL_SIZE"),
}


def test_readme_configuration_defaults_match_the_code(clean_env: pytest.MonkeyPatch) -> None:
    for key, val in production_env("postgresql+asyncpg://u:p@127.0.0.1/db").items():
        clean_env.setenv(key, val)
    instances: dict[str, BaseSettings] = {n: c() for n, c in SERVICE_SETTINGS.items()}
    observability = ObservabilitySettings()
    mismatches: list[str] = []
    checked = 0
    for variable, (cell, used_by) in _readme_defaults().items():
        documented = _documented(cell)
        if documented is None:
            continue
        services = (
            sorted(SERVICE_SETTINGS)
            if used_by.startswith("all")
            else [s for s in SERVICE_SETTINGS if s in used_by]
        )
        for service in services:
            if (service, variable) in SKIP_DOCUMENTED:
                continue
            settings: BaseSettings = instances[service]
            field = _field_of(type(settings), variable)
            if field is None:
                settings, field = observability, _field_of(ObservabilitySettings, variable)
            if field is None:
                mismatches.append(f"{service} reads no {variable}")
                continue
            checked += 1
            actual = _render(getattr(settings, field))
            if actual != documented:
                mismatches.append(f"{service} {variable}: README {documented!r}, code {actual!r}")
    assert checked > 40
    assert mismatches == []


def test_the_agent_reads_db_pool_size_as_readme_says(clean_env: pytest.MonkeyPatch) -> None:
    # README: `DB_POOL_SIZE` ... used by "all". The agent's field is renamed
    # `AGENT_DB_POOL_SIZE`, so `DB_POOL_SIZE` is silently ignored by the agent (its asyncpg
    # pool, made by `Runtime` from the same field, stays at 10).
    for key, val in production_env("postgresql+asyncpg://u:p@127.0.0.1/db").items():
        clean_env.setenv(key, val)
    clean_env.setenv("DB_POOL_SIZE", "3")
    assert BufferSettings().db_pool_size == 3
    assert AgentSettings().db_pool_size == 3


# --- secrets -----------------------------------------------------------------------------


def test_a_secret_with_quotes_or_backslashes_is_still_redacted_from_log_lines(
    clean_env: pytest.MonkeyPatch, database_url: str
) -> None:
    # Runtime registers the secret settings for redaction; the formatter replaces them in the
    # JSON line, where `"` and `\` are escaped, so such a secret is written out in full.
    token = 'EAAG"quoted\\token-9876543210'
    settings = SenderSettings(
        database_url=database_url, baton_env="production", wa_access_token=token
    )
    Runtime("sender", settings, "sender")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "graph said: %s", (token,), None)
    line = logs.JsonFormatter("sender").format(record)
    assert token not in json.loads(line)["msg"]


def test_secret_settings_and_database_passwords_never_reach_a_log_line(
    clean_env: pytest.MonkeyPatch, database_url: str
) -> None:
    password = "Pw-5e6f7a8b9c0d1e2f"
    url = f"postgresql+asyncpg://baton:{password}@127.0.0.1:{closed_port()}/baton"
    settings = OperatorApiSettings(
        database_url=url,
        baton_env="production",
        wa_access_token=REAL["WA_ACCESS_TOKEN"],
        BATON_BOOTSTRAP_ADMIN_TOKEN="bootstrap-0123456789abcdef",
    )
    Runtime("operator-api", settings, "operator")
    for secret in (password, REAL["WA_ACCESS_TOKEN"], "bootstrap-0123456789abcdef"):
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed with %s", (secret,), None
        )
        assert secret not in logs.JsonFormatter("operator-api").format(record)


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("baton-buffer", ("migrate",)),
        ("baton-ingress", ("replay", "--since", "1h")),
        ("baton-operator-api", ("create-operator", "--name", "ops-review")),
    ],
)
def test_a_database_that_is_down_never_shows_the_password(
    tmp_path: Path, redis_url: str, command: str, args: tuple[str, ...]
) -> None:
    password = "Pw-aa11bb22cc33dd44"
    url = f"postgresql+asyncpg://baton:{password}@127.0.0.1:{closed_port()}/baton"
    done = run_command(command, *args, env=production_env(url, redis_url), cwd=tmp_path)
    assert done.returncode != 0
    assert password not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("baton-ingress", ("replay", "--since", "1h")),
        ("baton-operator-api", ("create-operator", "--name", "ops-review")),
    ],
)
def test_a_command_with_postgresql_down_says_so_without_a_traceback(
    tmp_path: Path, redis_url: str, command: str, args: tuple[str, ...]
) -> None:
    url = f"postgresql+asyncpg://baton:pw@127.0.0.1:{closed_port()}/baton"
    done = run_command(command, *args, env=production_env(url, redis_url), cwd=tmp_path)
    assert_clear_failure(done)


# --- baton-dlq ---------------------------------------------------------------------------


@pytest.fixture
def dlq_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, prefix: str, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("REDIS_PREFIX", prefix)


async def dlq(*argv: str) -> int:
    """`baton-dlq` as a user runs it (its own event loop, so in a thread here)."""
    return await asyncio.to_thread(dead_letter_cli.main, list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("list", names.WA_INBOUND),
        ("show", names.WA_INBOUND, "1-0"),
        ("redrive", names.WA_INBOUND, "--all"),
        ("drop", names.WA_INBOUND, "1-0"),
    ],
)
def test_dlq_with_redis_down_is_a_clear_error(tmp_path: Path, argv: tuple[str, ...]) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0"}
    done = run_command("baton-dlq", *argv, env=env, cwd=tmp_path)
    assert_clear_failure(done)
    assert "redis" in done.stderr.lower()


@pytest.mark.parametrize("count", ["0", "-5"])
def test_dlq_list_with_a_count_below_one_is_a_usage_error(
    tmp_path: Path, redis_url: str, count: str
) -> None:
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": f"opsreview-{uuid.uuid4().hex[:8]}:"}
    done = run_command(
        "baton-dlq", "list", names.WA_INBOUND, "--count", count, env=env, cwd=tmp_path
    )
    assert_clear_failure(done, names_=("--count",))
    assert done.returncode == 2


@pytest.mark.parametrize("command", ["show", "redrive"])
def test_dlq_refuses_an_entry_id_redis_cannot_hold(
    tmp_path: Path, redis_url: str, command: str
) -> None:
    # `^\d+-\d+$` lets through ids beyond 64 bits, which Redis answers with an error.
    env = {"REDIS_URL": redis_url, "REDIS_PREFIX": f"opsreview-{uuid.uuid4().hex[:8]}:"}
    done = run_command(
        "baton-dlq", command, names.WA_INBOUND, "99999999999999999999-0", env=env, cwd=tmp_path
    )
    assert_clear_failure(done)


async def test_dlq_on_an_empty_dead_letter_queue(
    bus: Bus, dlq_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await dlq() == 0
    counts = capsys.readouterr().out.splitlines()
    assert [line.split() for line in counts] == [[names.dlq(s), "0"] for s in names.ALL_STREAMS]

    assert await dlq("list", names.CONV_TURNS) == 0
    assert capsys.readouterr().out == ""

    assert await dlq("show", names.CONV_TURNS, "1-0") == 1
    assert f"1-0: not in {names.dlq(names.CONV_TURNS)}" in capsys.readouterr().err

    assert await dlq("redrive", names.CONV_TURNS, "--all") == 0
    assert "re-driven 0 of 0" in capsys.readouterr().out
    assert await bus.redis.exists(bus.key(names.CONV_TURNS)) == 0  # nothing appended

    assert await dlq("drop", names.CONV_TURNS, "1-0") == 1
    assert "dropped 0 of 1" in capsys.readouterr().out


async def test_dlq_unknown_streams_and_ids_are_usage_errors(
    dlq_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ("list", "wa.inbound.dlq"),  # the DLQ's own name is not a stream
        ("show", "nope", "1-0"),
        ("drop", names.WA_INBOUND),  # no ids
        ("redrive", names.WA_INBOUND, "1-0", "--all"),  # both
        ("list", names.WA_INBOUND, "--after", "yesterday"),
        ("frobnicate",),
    ):
        with pytest.raises(SystemExit) as exited:
            await dlq(*argv)
        assert exited.value.code == 2, argv
    err = capsys.readouterr().err
    assert "invalid choice" in err
    assert "not a stream entry id" in err


async def test_dlq_entries_of_one_stream_are_not_redriven_into_another(
    bus: Bus, dlq_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = await bus.redis.xadd(
        bus.key(names.dlq(names.WA_STATUSES)), {"event_id": "e1", "dlq_error": "boom"}
    )
    assert await dlq("redrive", names.WA_INBOUND, entry) == 1
    assert f"not in {names.dlq(names.WA_INBOUND)}" in capsys.readouterr().err
    assert await bus.redis.xlen(bus.key(names.WA_INBOUND)) == 0
    assert await bus.redis.xlen(bus.key(names.dlq(names.WA_STATUSES))) == 1
    assert await dlq("drop", names.WA_INBOUND, entry) == 1
    assert await bus.redis.xlen(bus.key(names.dlq(names.WA_STATUSES))) == 1


async def test_dlq_list_pages_shows_no_bodies_and_shortens_errors(
    bus: Bus, dlq_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    dlq_key = bus.key(names.dlq(names.WA_INBOUND))
    ids = []
    for n in range(3):
        ids.append(
            await bus.redis.xadd(
                dlq_key,
                {
                    "event_id": f"e{n}",
                    "event_type": "inbound.message_received",
                    "body": json.dumps({"text": f"my card is 4111-{n}"}),
                    "dlq_group": "buffer",
                    "dlq_deliveries": "5",
                    "dlq_error": "line one\nline two " + "x" * 400,
                },
            )
        )
    assert await dlq("list", names.WA_INBOUND, "--count", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ids[:2]
    assert all("4111" not in line for line in lines)
    assert all("group=buffer" in line and "deliveries=5" in line for line in lines)
    assert all(
        len(line.split("e0" if i == 0 else "e1", 1)[1]) <= 130 for i, line in enumerate(lines)
    )
    assert "line one line two" in lines[0]

    assert await dlq("list", names.WA_INBOUND, "--after", ids[1]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [ids[2]]

    assert await dlq("show", names.WA_INBOUND, ids[2]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fields"]["body"] == json.dumps({"text": "my card is 4111-2"})
    assert shown["group"] == "buffer"
    assert shown["deliveries"] == 5
    assert not any(k.startswith("dlq_") for k in shown["fields"])


# --- baton-ingress replay ----------------------------------------------------------------


@pytest.fixture
def replay_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in {
        "BATON_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "WA_APP_SECRET": "test-app-secret",
        "WA_VERIFY_TOKEN": "test-verify-token",
    }.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("since", ["999999999d", "99999999999d", "9999999999999999999999s"])
def test_replay_with_an_enormous_since_is_a_usage_error(
    replay_env: None, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    try:
        with pytest.raises(SystemExit) as exited:
            ingress_cli(["replay", "--since", since])
    except OverflowError as exc:  # what it does: a traceback
        pytest.fail(f"--since {since}: {type(exc).__name__}: {exc}")
    assert exited.value.code == 2
    assert "--since" in capsys.readouterr().err


@pytest.mark.parametrize(
    "since", ["", "yesterday", "7 days", "5 d", "7D", "1w", "2025-13-01", "12:00:00+25:00"]
)
def test_replay_with_an_odd_since_is_a_clear_usage_error(
    replay_env: None, capsys: pytest.CaptureFixture[str], since: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        ingress_cli(["replay", "--since", since])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--since" in err
    assert "neither an ISO 8601 time nor a duration" in err


@pytest.mark.parametrize(
    ("since", "until"), [("0s", None), ("2999-01-01", None), ("1h", "2h"), ("1h", "2000-01-01")]
)
async def test_replay_of_an_empty_window_re_emits_nothing(
    replay_env: None,
    bus: Bus,
    capsys: pytest.CaptureFixture[str],
    since: str,
    until: str | None,
) -> None:
    argv = ["replay", "--since", since, *(["--until", until] if until else [])]
    assert await asyncio.to_thread(ingress_cli, argv) == 0
    assert "re-emitted 0 archived webhook bodies" in capsys.readouterr().out
    assert await bus.redis.xlen(bus.key(names.WA_WEBHOOKS)) == 0


# --- baton-operator-api create-operator -------------------------------------------------


@pytest.fixture
def operator_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BATON_ENV", "test")


async def _operator_named(database_url: str, name: str) -> bool:
    db = Database(database_url, "operator", pool_size=1)
    try:
        async with db.session() as session:
            return await operator_repo.by_name(session, name) is not None
    finally:
        await db.dispose()


@pytest.mark.parametrize("name", ["", "a" * 101, "two words", "a/b"])
async def test_create_operator_refuses_a_name_the_api_refuses(
    operator_env: None, database_url: str, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # The API takes `^[A-Za-z0-9._@-]{1,100}$`; the command took anything: an empty name, one
    # the API's `/operators/{name}` routes cannot address, or a traceback past 100 characters.
    try:
        with pytest.raises(SystemExit) as exited:
            await asyncio.to_thread(operator_cli, ["create-operator", "--name", name])
        assert exited.value.code == 2
    finally:
        created = await _operator_named(database_url, name)
    assert not created
    assert "--name" in capsys.readouterr().err


async def test_create_operator_again_re_roles_and_both_tokens_work(
    operator_env: None, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    assert await asyncio.to_thread(operator_cli, ["create-operator", "--name", name]) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    args = ["create-operator", "--name", name, "--role", "admin"]
    assert await asyncio.to_thread(operator_cli, args) == 0
    second = capsys.readouterr().out.strip().splitlines()[-1]
    assert first != second
    db = Database(database_url, "operator", pool_size=1)
    try:
        async with db.session() as session:
            for token in (first, second):
                found = await operator_repo.by_token(session, token)
                assert found is not None
                assert found.name == name
                assert found.role.value == "admin"
            stored = await session.execute(
                text("SELECT count(*) FROM tokens WHERE token_hash IN (:a, :b)"),
                {"a": first, "b": second},
            )
            assert stored.scalar_one() == 0  # stored hashed, never as given
    finally:
        await db.dispose()


def test_create_operator_with_an_unknown_role_is_a_usage_error(
    operator_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        operator_cli(["create-operator", "--name", "x", "--role", "root"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
