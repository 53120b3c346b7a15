"""No Docker engine runs here, so the compose file is checked against the settings code."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic.fields import FieldInfo

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


def test_redis_keeps_an_append_only_file() -> None:
    command = compose_service("redis")["command"]
    assert "--appendonly" in command
    assert "yes" in command
    assert "everysec" in command


def test_compose_and_settings_agree_on_the_database_driver() -> None:
    for service in SERVICES:
        url = compose_service(service)["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://"), service
