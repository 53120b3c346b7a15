"""No Docker engine runs here, so the compose file is checked against the settings code."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic.fields import FieldInfo
from sqlalchemy.engine import make_url

from baton_devtools.databases import SERVICE_SCHEMAS
from baton_shared.settings import BaseServiceSettings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
SERVICES = ("ingress", "operator-api", "buffer", "agent", "sender")
EMULATORS = {"wa-emulator": 8090, "gemini-emulator": 8091}


def settings_class(service: str) -> type[BaseServiceSettings]:
    module = importlib.import_module(f"baton_{service.replace('-', '_')}.settings")
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseServiceSettings)
        and obj is not BaseServiceSettings
    ]
    assert len(found) == 1, f"{service}: one settings class expected, found {found}"
    return found[0]


def env_name(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    return alias.upper() if isinstance(alias, str) else name.upper()


def compose_service(name: str) -> dict[str, Any]:
    return dict(COMPOSE["services"][name])


@pytest.mark.parametrize("service", SERVICES)
def test_service_env_covers_required_settings(service: str) -> None:
    env = compose_service(service)["environment"]
    for name, field in settings_class(service).model_fields.items():
        if field.is_required():
            assert env_name(name, field) in env, f"{service} needs {env_name(name, field)}"


@pytest.mark.parametrize("service", SERVICES)
def test_service_port_health_and_dependencies(service: str) -> None:
    spec = compose_service(service)
    port_field = settings_class(service).model_fields["port"]
    port_var = env_name("port", port_field)
    port = int(spec["environment"][port_var])
    assert port == port_field.default, f"{service}: compose port differs from the default"
    assert f"127.0.0.1:{port}/health" in " ".join(spec["healthcheck"]["test"])
    for ports in spec.get("ports", []):
        assert ports.endswith(f":{port}")
    assert spec["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert spec["environment"]["HOST"] == "0.0.0.0"
    assert spec["build"]["args"]["SERVICE"] == service
    assert spec["restart"] == "unless-stopped"
    assert "limits" in spec["deploy"]["resources"]


@pytest.mark.parametrize("service", SERVICES)
def test_image_command_runs_the_services_console_script(service: str) -> None:
    assert "baton-$BATON_SERVICE migrate && exec baton-$BATON_SERVICE serve" in DOCKERFILE
    pyproject = (ROOT / "services" / service / "pyproject.toml").read_text()
    assert re.search(
        rf'^baton-{service} = "baton_{service.replace("-", "_")}\.main:cli"$', pyproject, re.M
    )


@pytest.mark.parametrize(("name", "port"), EMULATORS.items())
def test_emulators_only_in_dev_profile(name: str, port: int) -> None:
    spec = compose_service(name)
    assert spec["profiles"] == ["dev"]
    assert str(port) in spec["command"]
    assert f"127.0.0.1:{port}/health" in " ".join(spec["healthcheck"]["test"])


def test_compose_and_settings_agree_on_the_database_driver() -> None:
    for service in SERVICES:
        url = compose_service(service)["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://"), service


# Each service's PostgreSQL role is named after the schema it owns.
ROLES = {
    "ingress": "ingress",
    "operator-api": "operator",
    "buffer": "buffer",
    "agent": "agent",
    "sender": "sender",
}
INIT_SCRIPT_PATH = ROOT / "deploy" / "postgres" / "init-service-roles.sh"
INIT_SCRIPT = INIT_SCRIPT_PATH.read_text()


def test_roles_are_the_schemas_the_services_migrate() -> None:
    schemas = {package.split(".")[0]: schema for package, schema in SERVICE_SCHEMAS}
    for service, role in ROLES.items():
        assert schemas[f"baton_{service.replace('-', '_')}"] == role


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_connects_as_its_own_role(service: str) -> None:
    url = make_url(compose_service(service)["environment"]["DATABASE_URL"])
    role = ROLES[service]
    assert url.username == role
    assert url.password == f"${{{role.upper()}_DB_PASSWORD:?set {role.upper()}_DB_PASSWORD}}"
    assert (url.host, url.port, url.database) == ("postgres", 5432, "baton")


def test_no_service_uses_the_admin_role() -> None:
    admin = compose_service("postgres")["environment"]["POSTGRES_USER"]
    for name in COMPOSE["services"]:
        url = compose_service(name).get("environment", {}).get("DATABASE_URL")
        if url:
            assert make_url(url).username != admin, name


def test_postgres_gets_every_role_password_and_runs_the_init_script() -> None:
    spec = compose_service("postgres")
    env = spec["environment"]
    for role in ROLES.values():
        assert env[f"{role.upper()}_DB_PASSWORD"].startswith(f"${{{role.upper()}_DB_PASSWORD:?")
    assert env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # no default password
    assert (
        "./postgres/init-service-roles.sh:/docker-entrypoint-initdb.d/10-service-roles.sh:ro"
        in spec["volumes"]
    )


def test_init_script_creates_exactly_the_service_roles_and_schemas() -> None:
    match = re.search(r'^SERVICE_SCHEMAS="([a-z ]+)"$', INIT_SCRIPT, re.M)
    assert match, "SERVICE_SCHEMAS line not found"
    assert sorted(match[1].split()) == sorted(ROLES.values())
    assert INIT_SCRIPT.count("CREATE ROLE ") == 1  # once, inside the per-service loop
    assert 'CREATE SCHEMA :"schema" AUTHORIZATION :"role";' in INIT_SCRIPT
    assert 'role="$ROLE_PREFIX$schema"' in INIT_SCRIPT


def test_init_script_grants_nothing_across_schemas() -> None:
    sql = INIT_SCRIPT.upper()
    grants = re.findall(r"^GRANT .*$", sql, re.M)
    assert grants == ['GRANT CONNECT, CREATE ON DATABASE :"DB" TO :"ROLE";']
    for forbidden in ("ON SCHEMA", "ON ALL TABLES", "DEFAULT PRIVILEGES", "SUPERUSER PASSWORD"):
        assert forbidden not in "\n".join(grants), forbidden
    assert "NOSUPERUSER" in sql
    assert "REVOKE ALL ON SCHEMA PUBLIC FROM PUBLIC;" in sql
    assert 'REVOKE ALL ON DATABASE :"DB" FROM PUBLIC;' in sql


def test_init_script_is_strict_posix_shell() -> None:
    assert INIT_SCRIPT.startswith("#!/bin/sh\n")
    assert "set -eu" in INIT_SCRIPT
    assert "ON_ERROR_STOP=1" in INIT_SCRIPT


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_container_has_health_restart_and_limits(name: str) -> None:
    spec = compose_service(name)
    assert spec["healthcheck"]["test"], name
    assert spec["restart"] == "unless-stopped", name
    limits = spec["deploy"]["resources"]["limits"]
    assert limits["cpus"], name
    assert limits["memory"], name


def test_redis_keeps_what_ingress_acknowledged() -> None:
    # A webhook answered 200 lives only in Redis until the worker archives it: on disk
    # before the answer, and a full Redis refuses writes (503) instead of being OOM-killed.
    command = compose_service("redis")["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "always"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    maxmemory = command[command.index("--maxmemory") + 1]
    limit = compose_service("redis")["deploy"]["resources"]["limits"]["memory"]
    assert maxmemory.endswith("mb")
    assert limit.endswith("G")
    assert int(maxmemory[:-2]) < int(limit[:-1]) * 1024


def test_image_installs_wheels_not_editable_sources() -> None:
    # Package data (the agent's defaults, every migrations package) reaches the image only
    # through the built wheels; an editable install would point into /src, left behind.
    assert "--no-editable" in DOCKERFILE
    assert "COPY --from=build /src/.venv /app/.venv" in DOCKERFILE


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv")
def test_agent_wheel_ships_its_packaged_defaults(tmp_path: Path) -> None:
    subprocess.run(
        ["uv", "build", "--package", "baton-agent", "--wheel", "-o", str(tmp_path), "-q"],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("baton_agent-*.whl")
    listed = set(zipfile.ZipFile(wheel).namelist())
    defaults = ROOT / "services/agent/src/baton_agent/defaults"
    for path in defaults.iterdir():
        assert f"baton_agent/defaults/{path.name}" in listed
    assert any(n.startswith("baton_agent/db/migrations/versions/0001") for n in listed)


@pytest.mark.parametrize("service", ["agent", "operator-api"])
def test_business_files_come_from_a_read_only_mount(service: str) -> None:
    volumes = compose_service(service)["volumes"]
    assert f"../config/{service}:/etc/baton/{service}:ro" in volumes
