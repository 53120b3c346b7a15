"""The model resources the emulator serves (`models.get`, `models.list`) and the API's 404
for any other model name."""

from __future__ import annotations

from typing import Any

from baton_devtools.gemini.errors import GoogleApiError

# What `GET /v1beta/models/{model}` answers for these models (the API's own values).
_GENERATION_METHODS = [
    "generateContent",
    "countTokens",
    "createCachedContent",
    "batchGenerateContent",
]
_FLASH_25: dict[str, Any] = {
    "inputTokenLimit": 1048576,
    "outputTokenLimit": 65536,
    "supportedGenerationMethods": _GENERATION_METHODS,
    "temperature": 1,
    "topP": 0.95,
    "topK": 64,
    "maxTemperature": 2,
    "thinking": True,
}
_FLASH_20: dict[str, Any] = {
    "inputTokenLimit": 1048576,
    "outputTokenLimit": 8192,
    "supportedGenerationMethods": _GENERATION_METHODS,
    "temperature": 1,
    "topP": 0.95,
    "topK": 40,
    "maxTemperature": 2,
}
CATALOGUE: dict[str, dict[str, Any]] = {
    "gemini-2.5-flash": {
        "version": "001",
        "displayName": "Gemini 2.5 Flash",
        "description": (
            "Stable version of Gemini 2.5 Flash, our mid-size multimodal model that supports up "
            "to 1 million tokens, released in June of 2025."
        ),
        **_FLASH_25,
    },
    "gemini-2.5-pro": {
        "version": "2.5",
        "displayName": "Gemini 2.5 Pro",
        "description": "Stable release (June 17th, 2025) of Gemini 2.5 Pro",
        **_FLASH_25,
    },
    "gemini-2.5-flash-lite": {
        "version": "001",
        "displayName": "Gemini 2.5 Flash-Lite",
        "description": "Stable version of Gemini 2.5 Flash-Lite, released in July of 2025",
        **_FLASH_25,
    },
    "gemini-2.0-flash": {
        "version": "2.0",
        "displayName": "Gemini 2.0 Flash",
        "description": "Gemini 2.0 Flash",
        **_FLASH_20,
    },
    "gemini-2.0-flash-001": {
        "version": "2.0",
        "displayName": "Gemini 2.0 Flash 001",
        "description": (
            "Stable version of Gemini 2.0 Flash, our fast and versatile multimodal model for "
            "scaling across diverse tasks, released in January of 2025."
        ),
        **_FLASH_20,
    },
}


def model_resource(model: str) -> dict[str, Any]:
    """The `Model` resource of a served model; a name the catalogue lacks (configured with
    `GEMINI_EMULATOR_MODELS`) gets the Gemini 2.5 Flash figures under its own name."""
    known = CATALOGUE.get(model)
    if known is None:
        known = {**CATALOGUE["gemini-2.5-flash"], "displayName": model, "description": model}
    return {"name": f"models/{model}", **known}


def model_not_found(model: str, api_version: str, method: str) -> GoogleApiError:
    """404 NOT_FOUND as the API answers a model (or method) it does not serve."""
    return GoogleApiError(
        404,
        f"models/{model} is not found for API version {api_version}, or is not supported "
        f"for {method}. Call ListModels to see the list of available models and their "
        "supported methods.",
    )
