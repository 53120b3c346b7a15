"""The business's message templates as WhatsApp knows them, and the checks a template send
passes: it must name an approved template in that language with as many body parameters.

Refusals are synchronous, as the Cloud API answers them: 132001 (no such template in that
language, or not approved), 132000 (body parameter count), 132015 (paused), 132016
(disabled). Only the body's parameters are counted; header and button parameters are not
checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from baton_devtools.whatsapp.errors import GraphError

TemplateStatus = Literal["APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED"]


class TemplateSpec(BaseModel):
    """One template in one language, as approved (or not) at Meta.

    Attributes:
        name: template name.
        language: language code, e.g. `en_US`.
        parameters: how many body parameters it takes; a list of parameter names counts as
            its length (the operator API's templates file lists names).
        status: its review status; only APPROVED templates are sent.
        category: `utility`, `marketing` or `authentication` (informational).
        description: free text (informational).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=16)
    parameters: int = Field(default=0, ge=0, le=100)
    status: TemplateStatus = "APPROVED"
    category: str = "utility"
    description: str | None = None

    @field_validator("parameters", mode="before")
    @classmethod
    def _count_names(cls, value: Any) -> Any:
        return len(value) if isinstance(value, list) else value

    @property
    def key(self) -> tuple[str, str]:
        """(name, language): each pair is one template."""
        return (self.name, self.language)


# Every template the repository's tests and docs send: the reference's example
# (`order_confirmation`, two body parameters), the operator API's example file and docs
# (`order_update` with order number and status, in English and Spanish; `hello_world`).
DEFAULT_TEMPLATES: tuple[TemplateSpec, ...] = (
    TemplateSpec(name="order_confirmation", language="en_US", parameters=2),
    TemplateSpec(name="order_update", language="en_US", parameters=2),
    TemplateSpec(name="order_update", language="es", parameters=2),
    TemplateSpec(name="hello_world", language="en_US", parameters=0),
)


def load_templates_file(path: Path) -> list[TemplateSpec]:
    """Templates from a YAML or JSON file: a `templates:` list, or a bare list."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    items = data.get("templates") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a `templates:` list")
    try:
        return [TemplateSpec.model_validate(item) for item in items]
    except ValidationError as exc:
        raise ValueError(f"{path}: invalid templates\n{exc}") from exc


class TemplateRegistry:
    """Templates by (name, language); `reset` returns to the starting set."""

    def __init__(self, start: list[TemplateSpec] | tuple[TemplateSpec, ...]) -> None:
        self._start = list(start)
        self._items: dict[tuple[str, str], TemplateSpec] = {}
        self.reset()

    def reset(self) -> None:
        """Back to the templates the emulator started with."""
        self._items = {spec.key: spec for spec in self._start}

    def put(self, spec: TemplateSpec) -> None:
        """Add a template, or replace the one with the same name and language."""
        self._items[spec.key] = spec

    def remove(self, name: str, language: str) -> bool:
        """Delete one template; False if there was none."""
        return self._items.pop((name, language), None) is not None

    def all(self) -> list[TemplateSpec]:
        """Every template, by name then language."""
        return [self._items[key] for key in sorted(self._items)]

    def check(self, template: dict[str, Any]) -> None:
        """Raise the Graph error WhatsApp answers a send of `template` (already shape-checked)
        with, if any."""
        name = str(template["name"])
        language = str(template["language"]["code"])
        spec = self._items.get((name, language))
        if spec is None or spec.status in ("PENDING", "REJECTED"):
            raise GraphError(
                132001,
                f"template name ({name}) does not exist in {language}",
                message="(#132001) Template name does not exist in the translation",
            )
        if spec.status == "PAUSED":
            raise GraphError(132015, f"Template {name} ({language}) is paused.")
        if spec.status == "DISABLED":
            raise GraphError(132016, f"Template {name} ({language}) is disabled.")
        given = _body_parameter_count(template)
        if given != spec.parameters:
            raise GraphError(
                132000,
                f"body: number of localizable_params ({given}) does not match the expected "
                f"number of params ({spec.parameters})",
                message="(#132000) Number of parameters does not match the expected number "
                "of params",
            )


def _body_parameter_count(template: dict[str, Any]) -> int:
    components = template.get("components") or []
    return sum(
        len(component.get("parameters") or [])
        for component in components
        if isinstance(component, dict) and component.get("type") == "body"
    )
