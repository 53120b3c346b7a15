"""The business's approved WhatsApp message templates, offered to operators.

Outside the 24-hour customer-service window WhatsApp accepts only templates, and only ones
Meta approved for the business. `OPERATOR_API_TEMPLATES_FILE` (YAML or JSON) lists them, so
`GET /api/v1/templates` can show operators what they may send, the `window_closed` refusal
can name them, and a template that is not listed (a typo, a language never approved) is
refused here with the list instead of failing later at WhatsApp. Unset, any template name
is passed on and WhatsApp decides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from baton_shared import config_files

# The same shapes `TemplateIn` accepts (`api/schemas.py`).
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,512}$")]
Language = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(_[A-Za-z]{2,4})?$")]


class Template(BaseModel):
    """One approved template.

    Attributes:
        name: its name at WhatsApp.
        language: the language code it was approved in (`en_US`, `es`...).
        category: Meta's category, if given.
        description: what it is for, for operators.
        parameters: the body's parameters, in order, for operators to fill in; when given,
            a send's body parameters are checked against them (`template_parameters`).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    language: Language
    category: Literal["marketing", "utility", "authentication"] | None = None
    description: str = ""
    parameters: list[str] = Field(default_factory=list)


class Templates(BaseModel):
    """The approved templates (`templates:` in the file, or the file a list of them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    templates: list[Template]

    @field_validator("templates")
    @classmethod
    def _unique(cls, items: list[Template]) -> list[Template]:
        seen: set[tuple[str, str]] = set()
        for item in items:
            if (item.name, item.language) in seen:
                raise ValueError(f"{item.name} ({item.language}) is listed twice")
            seen.add((item.name, item.language))
        return items

    def find(self, name: str, language: str) -> Template | None:
        """`name` in `language` as listed, or None when it is not."""
        return next((t for t in self.templates if t.name == name and t.language == language), None)

    def names(self) -> str:
        """The listed templates, as operators read them: `name (language)`, ..."""
        return ", ".join(f"{t.name} ({t.language})" for t in self.templates) or "none"


def load_templates(path: Path) -> Templates:
    """Read and validate the templates file (`ConfigFileError`, a ValueError, naming every
    problem)."""
    return config_files.load(Templates, path, list_key="templates")
