"""The system prompt: the business's template filled with its profile and media catalogue."""

from __future__ import annotations

import yaml

from baton_agent.config import AgentConfig

INTERVENTION_DONE = (
    "A person from the team has been asked to take over this conversation. Now tell the "
    "customer, in the language they wrote in, that a person will take over shortly. "
    "Do not call any more tools."
)


def _media_lines(config: AgentConfig) -> str:
    items = config.catalogue.items
    if not items:
        return "(no media available)"
    return "\n".join(f"- `{i.id}` ({i.type.value}): {i.title} — {i.description}" for i in items)


def system_prompt(config: AgentConfig) -> str:
    """The prompt with `{business_name}`, `{tone}`, `{business}` and `{media}` filled in."""
    profile = config.profile.model_dump(exclude={"apology"})
    values = {
        "business_name": config.profile.name,
        "tone": config.profile.tone,
        "business": yaml.safe_dump(profile, allow_unicode=True, sort_keys=False).strip(),
        "media": _media_lines(config),
    }
    # Plain replacement, not str.format: the business's text may contain braces.
    text = config.system_prompt
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text
