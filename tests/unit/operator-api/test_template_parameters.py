"""A template send's body parameters against the ones the templates file lists: refused with
the reason before WhatsApp fails it later (132000 "number of parameters does not match")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from baton_operator_api import template_parameters
from baton_operator_api.errors import UnprocessableError
from baton_operator_api.templates import Template, load_templates

ORDER_UPDATE = Template(
    name="order_update", language="en_US", parameters=["order_number", "status"]
)


def text(value: object, name: str | None = None) -> dict[str, object]:
    """A text parameter, positional or named."""
    parameter: dict[str, object] = {"type": "text", "text": value}
    if name is not None:
        parameter["parameter_name"] = name
    return parameter


def body(*parameters: object) -> list[dict[str, Any]]:
    """Components with one body holding `parameters`."""
    return [{"type": "body", "parameters": list(parameters)}]


@pytest.mark.parametrize(
    "components",
    [
        pytest.param(body(text("A-1042"), text("shipped")), id="positional"),
        pytest.param(
            body(text("shipped", "status"), text("A-1042", "order_number")), id="named-any-order"
        ),
        pytest.param(
            [{"type": "header", "parameters": [{"type": "image"}]}, *body(text("1"), text("x"))],
            id="other-components-unchecked",
        ),
        pytest.param(
            body(
                text("A-1042"),
                {"type": "date_time", "date_time": {"fallback_value": "May 1"}},
            ),
            id="date-time",
        ),
        pytest.param(
            body(
                {"type": "currency", "currency": {"fallback_value": "$10", "code": "USD"}},
                text("x"),
            ),
            id="currency",
        ),
    ],
)
def test_matching_parameters_are_accepted(components: list[dict[str, Any]]) -> None:
    template_parameters.check(ORDER_UPDATE, components)


@pytest.mark.parametrize(
    ("components", "code", "reason"),
    [
        pytest.param(
            body(text("A-1042")),
            "template_parameters_mismatch",
            "2 body parameters expected (order_number, status), 1 given: missing status",
            id="missing",
        ),
        pytest.param(
            [],
            "template_parameters_mismatch",
            "0 given: missing order_number, status",
            id="no-body",
        ),
        pytest.param(
            body(text("A-1042"), text("shipped"), text("today")),
            "template_parameters_mismatch",
            "3 given: 1 extra (parameter 3)",
            id="extra",
        ),
        pytest.param(
            body(text("A-1042", "order_number"), text("shipped", "state")),
            "template_parameters_mismatch",
            "missing status; extra state",
            id="named-wrong-name",
        ),
        pytest.param(
            body(text("A", "order_number"), text("B", "order_number")),
            "template_parameters_mismatch",
            "missing status; given twice order_number",
            id="named-twice",
        ),
        pytest.param(
            body(text("A-1042")) + body(text("shipped")),
            "template_parameters_mismatch",
            "one body component expected, 2 given",
            id="two-bodies",
        ),
        pytest.param(
            body(text("A-1042"), text("")),
            "invalid_template_parameter",
            "body parameter 2 (status) has empty text",
            id="empty-text",
        ),
        pytest.param(
            body(text("A-1042"), text("   ")),
            "invalid_template_parameter",
            "body parameter 2 (status) has empty text",
            id="blank-text",
        ),
        pytest.param(
            body(text(None, "order_number"), text("shipped", "status")),
            "invalid_template_parameter",
            "body parameter 1 (order_number) has no text",
            id="no-text",
        ),
        pytest.param(
            body({"type": "image", "image": {"id": "1"}}, text("shipped")),
            "invalid_template_parameter",
            "body parameter 1 (order_number) is of type 'image'",
            id="not-a-body-type",
        ),
        pytest.param(
            body({"type": "currency"}, text("shipped")),
            "invalid_template_parameter",
            "body parameter 1 (order_number) of type 'currency' has no currency",
            id="currency-without-its-object",
        ),
        pytest.param(
            body("A-1042", text("shipped")),
            "invalid_template_parameter",
            "body parameter 1 is not an object",
            id="not-an-object",
        ),
        pytest.param(
            [{"type": "body", "parameters": {"order_number": "A-1042"}}],
            "invalid_template_parameter",
            "parameters are not a list",
            id="parameters-not-a-list",
        ),
        pytest.param(
            body(text("A-1042", "order_number"), text("shipped")),
            "invalid_template_parameter",
            "body parameter 2 has no parameter_name",
            id="named-and-positional-mixed",
        ),
    ],
)
def test_a_mismatch_is_refused_with_the_reason(
    components: list[dict[str, Any]], code: str, reason: str
) -> None:
    with pytest.raises(UnprocessableError) as refused:
        template_parameters.check(ORDER_UPDATE, components)
    assert refused.value.code == code
    assert refused.value.status == 422
    assert refused.value.detail.startswith("template order_update (en_US): ")
    assert reason in refused.value.detail
    assert refused.value.hint is not None
    assert "order_number, status" in refused.value.hint


def test_a_template_listed_without_parameters_is_not_checked() -> None:
    unlisted = Template(name="order_update", language="es")
    for components in ([], body(text("")), body(text("a"), text("b"), {"type": "currency"})):
        template_parameters.check(unlisted, components)


def test_labels_that_are_not_names_are_only_counted() -> None:
    labelled = Template(name="order_update", language="en_US", parameters=["Order number"])
    template_parameters.check(labelled, body(text("A-1042", "order_number")))
    with pytest.raises(UnprocessableError, match="missing Order number"):
        template_parameters.check(labelled, body())


def test_the_example_templates_file_loads() -> None:
    # config/operator-api/templates.example.yaml is what a newcomer copies: it must be valid.
    root = Path(__file__).resolve().parents[3]
    loaded = load_templates(root / "config" / "operator-api" / "templates.example.yaml")
    assert [t.name for t in loaded.templates] == ["order_update", "hello_world"]
