"""Small parameter checks that raise Graph-shaped errors (code 100 for malformed params)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from baton_devtools.whatsapp.errors import param_error


def sub(path: str, key: str | int) -> str:
    """Graph's name for a nested parameter: `text['body']`, `rows[0]`."""
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}['{key}']"


def check_keys(obj: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    """Reject keys that Graph does not know on `path`."""
    allowed_set = set(allowed)
    for key in obj:
        if key not in allowed_set:
            raise param_error(f'Unexpected key "{key}" on param "{path}".')


def require_obj(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    """Return the object at `key`, or raise "The parameter ... is required."."""
    value = parent.get(key)
    if value is None:
        raise param_error(f"The parameter {path} is required.")
    if not isinstance(value, dict):
        raise param_error(f"Param {path} must be a JSON object.")
    return value


def optional_obj(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any] | None:
    """Return the object at `key` if present."""
    if parent.get(key) is None:
        return None
    return require_obj(parent, key, path)


def require_list(parent: Mapping[str, Any], key: str, path: str) -> list[Any]:
    """Return the array at `key`, or raise."""
    value = parent.get(key)
    if value is None:
        raise param_error(f"The parameter {path} is required.")
    if not isinstance(value, list):
        raise param_error(f"Param {path} must be an array.")
    return value


def require_str(
    parent: Mapping[str, Any], key: str, path: str, *, max_len: int | None = None
) -> str:
    """Return the non-empty string at `key`, or raise."""
    value = parent.get(key)
    if value is None or value == "":
        raise param_error(f"The parameter {path} is required.")
    return _check_str(value, path, max_len)


def optional_str(
    parent: Mapping[str, Any], key: str, path: str, *, max_len: int | None = None
) -> str | None:
    """Return the string at `key` if present (empty allowed), checking its length."""
    value = parent.get(key)
    if value is None:
        return None
    return _check_str(value, path, max_len)


def optional_bool(parent: Mapping[str, Any], key: str, path: str) -> bool | None:
    """Return the boolean at `key` if present."""
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise param_error(f"Param {path} must be a boolean.")
    return value


def require_number(parent: Mapping[str, Any], key: str, path: str) -> float:
    """Return the number at `key`, or raise."""
    value = parent.get(key)
    if value is None:
        raise param_error(f"The parameter {path} is required.")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise param_error(f"Param {path} must be a number.")
    return float(value)


def require_enum(parent: Mapping[str, Any], key: str, path: str, choices: Iterable[str]) -> str:
    """Return the string at `key` if it is one of `choices`, or raise Graph's enum error."""
    value = require_str(parent, key, path)
    options = list(choices)
    if value not in options:
        shown = ", ".join(option.upper() for option in options)
        raise param_error(f'Param {path} must be one of {{{shown}}} - got "{value}".')
    return value


def _check_str(value: Any, path: str, max_len: int | None) -> str:
    if not isinstance(value, str):
        raise param_error(f"Param {path} must be a string.")
    if max_len is not None and len(value) > max_len:
        raise param_error(f"Param {path} must be at most {max_len} characters long.")
    return value
