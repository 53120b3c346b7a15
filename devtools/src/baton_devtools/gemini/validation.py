"""Validation of GenerateContentRequest bodies with the API's own error messages."""

from __future__ import annotations

import re
from typing import Any

from baton_devtools.gemini.errors import invalid_argument

PREFIX = "* GenerateContentRequest"
# Fields of GenerateContentRequest; proto JSON accepts camelCase and snake_case names.
TOP_LEVEL_FIELDS = {
    "model", "contents", "systemInstruction", "system_instruction", "tools", "toolConfig",
    "tool_config", "safetySettings", "safety_settings", "generationConfig", "generation_config",
    "cachedContent", "cached_content", "labels", "serviceTier", "service_tier", "store",
    "continuationToken", "continuation_token",
}  # fmt: skip
PART_DATA = {
    "text", "inlineData", "inline_data", "fileData", "file_data", "functionCall",
    "function_call", "functionResponse", "function_response", "executableCode",
    "executable_code", "codeExecutionResult", "code_execution_result", "thoughtSignature",
    "thought_signature",
}  # fmt: skip
# The API's messages for a history whose function-call turns are out of order.
CALL_TURN_ORDER = (
    "Please ensure that function call turn comes immediately after a user turn or after a "
    "function response turn."
)
RESPONSE_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of "
    "function call parts of the function call turn."
)
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
ROLES = ("user", "model")


def field(obj: dict[str, Any], camel: str) -> Any:
    """Read a proto field by its camelCase or snake_case name."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel))


def validate_request(body: Any) -> dict[str, Any]:
    """Return the body if the real API would accept it, else raise INVALID_ARGUMENT."""
    if not isinstance(body, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in TOP_LEVEL_FIELDS:
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
    contents = body.get("contents")
    if not contents:
        raise invalid_argument(f"{PREFIX}.contents: contents is not specified\n")
    if not isinstance(contents, list):
        raise invalid_argument("Invalid value at 'contents': expected a list of \"Content\".")
    for index, content in enumerate(contents):
        _validate_content(content, f"{PREFIX}.contents[{index}]")
    _validate_turn_order(contents)
    system = field(body, "systemInstruction")
    if system is not None:
        _validate_content(system, f"{PREFIX}.system_instruction")
    for index, tool in enumerate(body.get("tools") or []):
        _validate_tool(tool, f"{PREFIX}.tools[{index}]")
    _validate_generation_config(field(body, "generationConfig") or {})
    return body


def _validate_content(content: Any, path: str) -> None:
    if not isinstance(content, dict):
        raise invalid_argument(f"{path}: must be an object\n")
    role = content.get("role")
    if role not in (None, "", *ROLES):
        raise invalid_argument("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not parts or not isinstance(parts, list):
        raise invalid_argument(f"{path}.parts: contents.parts must not be empty.\n")
    for index, part in enumerate(parts):
        part_path = f"{path}.parts[{index}]"
        if not isinstance(part, dict) or not PART_DATA & part.keys():
            raise invalid_argument(
                f"{part_path}.data: required oneof field 'data' must have one initialized field\n"
            )
        for camel, proto in (
            ("functionCall", "function_call"),
            ("functionResponse", "function_response"),
        ):
            call = field(part, camel)
            if call is not None and not (isinstance(call, dict) and call.get("name")):
                raise invalid_argument(f"{part_path}.{proto}.name: Name cannot be empty.\n")


def _count(content: dict[str, Any], camel: str) -> int:
    return sum(1 for part in content["parts"] if field(part, camel) is not None)


def _validate_turn_order(contents: list[dict[str, Any]]) -> None:
    """A function-call turn must follow a user turn or a function-response turn, and the
    content after it must answer each of its calls with one function response."""
    for index, content in enumerate(contents):
        calls = _count(content, "functionCall")
        if not calls:
            continue
        previous = contents[index - 1] if index else None
        if previous is None or not (
            previous.get("role") in (None, "", "user") or _count(previous, "functionResponse")
        ):
            raise invalid_argument(CALL_TURN_ORDER)
        if index + 1 < len(contents) and _count(contents[index + 1], "functionResponse") != calls:
            raise invalid_argument(RESPONSE_COUNT)


def _validate_tool(tool: Any, path: str) -> None:
    if not isinstance(tool, dict):
        raise invalid_argument(f"{path}: must be an object\n")
    for index, declaration in enumerate(field(tool, "functionDeclarations") or []):
        name = declaration.get("name", "") if isinstance(declaration, dict) else ""
        if not FUNCTION_NAME.match(name):
            raise invalid_argument(
                f"{path}.function_declarations[{index}].name: Invalid function name. Must start "
                "with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores "
                "(_), dots (.) or dashes (-), with a maximum length of 64.\n"
            )


def _validate_generation_config(config: Any) -> None:
    if not isinstance(config, dict):
        raise invalid_argument(f"{PREFIX}.generation_config: must be an object\n")
    temperature = config.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise invalid_argument(
            f"{PREFIX}.generation_config.temperature: temperature must be between 0 and 2\n"
        )
    count = field(config, "candidateCount")
    if count is not None and not 1 <= count <= 8:
        raise invalid_argument(
            f"{PREFIX}.generation_config.candidate_count: must be between 1 and 8\n"
        )
