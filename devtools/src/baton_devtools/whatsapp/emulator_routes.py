"""Test controls: recorded messages, fault injection, behaviour config and the template
registry (`/_emulator/...`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from baton_devtools.whatsapp.deps import StateDep
from baton_devtools.whatsapp.faults import FaultRule
from baton_devtools.whatsapp.state import EmulatorConfig, MessageRecord, StatusName
from baton_devtools.whatsapp.templates import TemplateSpec

router = APIRouter(prefix="/_emulator", tags=["emulator"])


class ConfigUpdate(BaseModel):
    """Partial update of `EmulatorConfig`; omitted fields keep their value."""

    model_config = ConfigDict(extra="forbid")

    statuses: list[StatusName] | None = None
    status_delay_ms: int | None = Field(default=None, ge=0)
    latency_ms: int | None = Field(default=None, ge=0)
    throughput_mps: int | None = Field(default=None, ge=0, description="0 turns it off")
    pair_limit: bool | None = None
    pair_interval_seconds: float | None = Field(default=None, gt=0)
    pair_burst: int | None = Field(default=None, ge=1)
    enforce_window: bool | None = None
    window_hours: float | None = Field(default=None, gt=0)
    window_mode: Literal["sync", "webhook"] | None = None
    webhook_retry_ms: list[int] | None = None
    reachable_media_hosts: list[str] | None = None
    media_fetch_timeout_ms: int | None = Field(default=None, ge=1, le=60_000)


def _select(records: list[MessageRecord], to: str | None, phone_number_id: str | None) -> list[Any]:
    wanted = to.lstrip("+") if to else None
    return [
        record.as_json()
        for record in records
        if (wanted is None or record.to == wanted)
        and (phone_number_id is None or record.phone_number_id == phone_number_id)
    ]


@router.get("/messages")
async def list_messages(
    state: StateDep, to: str | None = None, phone_number_id: str | None = None
) -> list[Any]:
    """Accepted sends, oldest first, optionally for one recipient / business number."""
    return _select(state.messages, to, phone_number_id)


@router.get("/reads")
async def list_reads(
    state: StateDep, to: str | None = None, phone_number_id: str | None = None
) -> list[Any]:
    """Accepted mark-as-read / typing-indicator calls (`id` is the wamid marked read)."""
    return _select(state.reads, to, phone_number_id)


@router.delete("/messages")
async def clear_messages(state: StateDep) -> dict[str, bool]:
    """Forget recorded sends and reads."""
    state.clear_records()
    return {"success": True}


@router.post("/faults")
async def add_fault(rule: FaultRule, state: StateDep) -> dict[str, Any]:
    """Make the next matching send calls fail and/or wait."""
    state.faults.add(rule)
    return {"faults": state.faults.snapshot()}


@router.get("/faults")
async def list_faults(state: StateDep) -> dict[str, Any]:
    """Active fault rules with their remaining counts."""
    return {"faults": state.faults.snapshot()}


@router.delete("/faults")
async def clear_faults(state: StateDep) -> dict[str, bool]:
    """Remove every fault rule."""
    state.faults.clear()
    return {"success": True}


@router.get("/config")
async def get_config(state: StateDep) -> EmulatorConfig:
    """Current behaviour switches."""
    return state.config


@router.post("/config")
async def update_config(update: ConfigUpdate, state: StateDep) -> EmulatorConfig:
    """Change status webhooks, Graph latency, or the enforced limits (see `EmulatorConfig`)."""
    changes = update.model_dump(exclude_none=True)
    if changes.get("throughput_mps") == 0:
        changes["throughput_mps"] = None
    # Validated as a whole (retry schedule bounds, host names), unlike `model_copy`.
    try:
        state.config = EmulatorConfig.model_validate({**state.config.model_dump(), **changes})
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise HTTPException(422, errors) from exc
    return state.config


@router.get("/limits")
async def limit_stats(state: StateDep) -> dict[str, Any]:
    """Calls refused per limit code (130429, 131056, 131047) and messages accepted so far."""
    refused = {str(code): count for code, count in sorted(state.limits.refused.items())}
    return {"refused": refused, "accepted": len(state.messages)}


@router.delete("/limits")
async def reset_limits(state: StateDep) -> dict[str, bool]:
    """Refill every bucket and zero the refusal counts (customers' inbound times are kept)."""
    state.limits.reset()
    return {"success": True}


@router.get("/templates")
async def list_templates(state: StateDep) -> dict[str, Any]:
    """The message templates WhatsApp knows for this business (see `templates.py`)."""
    return {"templates": [spec.model_dump(exclude_none=True) for spec in state.templates.all()]}


@router.post("/templates")
async def put_template(spec: TemplateSpec, state: StateDep) -> dict[str, Any]:
    """Register a template, or replace the one with the same name and language (e.g. to
    pause it: `"status": "PAUSED"`)."""
    state.templates.put(spec)
    return await list_templates(state)


@router.delete("/templates/{name}/{language}")
async def delete_template(name: str, language: str, state: StateDep) -> dict[str, bool]:
    """Remove one template: sending it then fails with 132001."""
    if not state.templates.remove(name, language):
        raise HTTPException(404, f"no template {name} in {language}")
    return {"success": True}


@router.delete("/templates")
async def reset_templates(state: StateDep) -> dict[str, bool]:
    """Back to the templates the emulator started with."""
    state.templates.reset()
    return {"success": True}
