"""Files a business edits (prompts, profiles, catalogues, templates): read and validated at
start, so a typo stops the service with the file and the field named, instead of surfacing
as a strange answer to a customer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigFileError(ValueError):
    """A configuration file is missing, unreadable or invalid."""


def read_text(path: Path) -> str:
    """The file's text (UTF-8)."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _parse(path: Path) -> Any:
    """The file's data: JSON for `.json`, YAML otherwise."""
    text = read_text(path)
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from None


def _validate(model: type[M], path: Path, data: Any) -> M:
    """`data` as a `model`, or ConfigFileError listing every invalid field of `path`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"  {'.'.join(str(p) for p in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise ConfigFileError("\n".join([f"{path}: invalid {model.__name__}", *problems])) from None


def load(model: type[M], path: Path, *, list_key: str | None = None) -> M:
    """Read and validate `path` as a `model`; a file that is a bare list is taken as the
    value of `list_key`, when given."""
    data = _parse(path)
    if list_key is not None and isinstance(data, list):
        data = {list_key: data}
    return _validate(model, path, data)
