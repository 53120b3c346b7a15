"""A template send's body parameters, checked against the ones the templates file lists.

WhatsApp refuses a template whose body parameters do not match the approved template (132000
"number of parameters does not match", 132001, ...) only after it accepted the send: the
operator learns it from a `failed` status later. When `OPERATOR_API_TEMPLATES_FILE` lists a
template's `parameters`, the `body` component of a send is checked here first, and a mismatch
is refused with 422 before anything is written:

- `template_parameters_mismatch`: more than one body component; positional parameters not
  as many as listed; named ones (`parameter_name` on each, and the listed parameters are
  names such as `order_number`) not exactly the listed names, each once.
- `invalid_template_parameter`: a body parameter that is neither `{"type": "text", "text":
  ...}` with text that is not blank, nor WhatsApp's `currency` or `date_time` parameter
  (`{"type": "currency", "currency": {...}}`: its object is passed on as given);
  `parameter_name` on some parameters only.

A template listed without `parameters`, and the other components (header, buttons), are
passed on unchecked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from baton_operator_api.errors import UnprocessableError
from baton_operator_api.templates import Template

# A listed parameter that looks like this is taken as the template's parameter name; any
# other (`Order number`) is a label for operators, and only counted.
_NAME = re.compile(r"^[a-z0-9_]+$")

_SHAPE = '{"type": "text", "text": "..."}'
# Body parameter types WhatsApp knows besides text; their objects are WhatsApp's to check.
_OTHER_TYPES = ("currency", "date_time")


def check(template: Template, components: Sequence[Mapping[str, Any]]) -> None:
    """Refuse (422) a send whose body parameters do not match those `template` lists; a
    template listed without parameters is not checked."""
    if not template.parameters:
        return
    given = _body_parameters(template, components)
    names = _names(template, given)
    if names is None:
        _check_count(template, len(given))
    else:
        _check_names(template, names)
    for position, parameter in enumerate(given, 1):
        label = names[position - 1] if names else template.parameters[position - 1]
        _check_text(template, f"body parameter {position} ({label})", parameter)


def _refuse(template: Template, code: str, problem: str) -> UnprocessableError:
    listed = ", ".join(template.parameters)
    return UnprocessableError(
        f"template {template.name} ({template.language}): {problem}",
        code=code,
        hint=f"send its body parameters {listed} in that order, each {_SHAPE}, or named, each "
        'with its "parameter_name" (GET /api/v1/templates)',
    )


def _body_parameters(
    template: Template, components: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The body component's parameters (none without a body component)."""
    bodies = [c for c in components if c.get("type") == "body"]
    if len(bodies) > 1:
        raise _refuse(
            template,
            "template_parameters_mismatch",
            f"one body component expected, {len(bodies)} given",
        )
    parameters = bodies[0].get("parameters", []) if bodies else []
    if not isinstance(parameters, list):
        raise _refuse(
            template, "invalid_template_parameter", "the body component's parameters are not a list"
        )
    for position, parameter in enumerate(parameters, 1):
        if not isinstance(parameter, Mapping):
            raise _refuse(
                template,
                "invalid_template_parameter",
                f"body parameter {position} is not an object",
            )
    return parameters


def _names(template: Template, given: list[Mapping[str, Any]]) -> list[str] | None:
    """The parameters' `parameter_name`s, when they are named and the listed parameters are
    names; None when they are positional, or the listed ones only labels."""
    names = [p.get("parameter_name") for p in given]
    if all(n is None for n in names):
        return None
    for position, name in enumerate(names, 1):
        if not isinstance(name, str) or not name:
            raise _refuse(
                template,
                "invalid_template_parameter",
                f"body parameter {position} has no parameter_name: give it on every "
                "parameter or on none",
            )
    if not all(_NAME.fullmatch(p) for p in template.parameters):
        return None
    return [str(n) for n in names]


def _check_count(template: Template, count: int) -> None:
    """Positional parameters: as many as listed."""
    listed = template.parameters
    if count == len(listed):
        return
    if count < len(listed):
        problem = f"missing {', '.join(listed[count:])}"
    else:
        extra = ", ".join(str(i) for i in range(len(listed) + 1, count + 1))
        problem = f"{count - len(listed)} extra (parameter {extra})"
    raise _refuse(
        template,
        "template_parameters_mismatch",
        f"{len(listed)} body parameters expected ({', '.join(listed)}), {count} given: {problem}",
    )


def _check_names(template: Template, names: list[str]) -> None:
    """Named parameters: exactly the listed names, each once."""
    counts = Counter(names)
    problems = [
        f"{what} {', '.join(items)}"
        for what, items in (
            ("missing", [p for p in template.parameters if p not in counts]),
            ("extra", [n for n in counts if n not in template.parameters]),
            ("given twice", [n for n, k in counts.items() if k > 1]),
        )
        if items
    ]
    if problems:
        raise _refuse(
            template,
            "template_parameters_mismatch",
            f"body parameters {', '.join(template.parameters)} expected: {'; '.join(problems)}",
        )


def _check_text(template: Template, which: str, parameter: Mapping[str, Any]) -> None:
    """One body parameter: a text parameter whose text is not blank, or a currency or
    date_time parameter carrying its object."""
    kind = parameter.get("type")
    if kind in _OTHER_TYPES:
        if not isinstance(parameter.get(kind), dict):
            raise _refuse(
                template, "invalid_template_parameter", f"{which} of type {kind!r} has no {kind}"
            )
        return
    if kind != "text":
        raise _refuse(
            template,
            "invalid_template_parameter",
            f"{which} is of type {kind!r}: a body parameter is text, currency or date_time",
        )
    text = parameter.get("text")
    if not isinstance(text, str) or not text.strip():
        what = "empty text" if isinstance(text, str) else "no text"
        raise _refuse(template, "invalid_template_parameter", f"{which} has {what}")
