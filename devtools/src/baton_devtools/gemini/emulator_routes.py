"""Test controls of the Gemini emulator: faults and recorded requests (`/_emulator/...`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from baton_devtools.gemini.deps import StateDep
from baton_devtools.gemini.state import GeminiFault

router = APIRouter(prefix="/_emulator", tags=["emulator"])


@router.post("/faults")
async def add_fault(fault: GeminiFault, state: StateDep) -> dict[str, Any]:
    """Fail (`status`), delay (`delay_ms`) or replace the answer of (`parts`, `finish_reason`,
    `prompt_block_reason`) the next `count` model calls."""
    state.add_fault(fault)
    return {"faults": state.faults_snapshot()}


@router.get("/faults")
async def list_faults(state: StateDep) -> dict[str, Any]:
    """Active faults with their remaining counts."""
    return {"faults": state.faults_snapshot()}


@router.delete("/faults")
async def clear_faults(state: StateDep) -> dict[str, bool]:
    """Remove every fault."""
    state.clear_faults()
    return {"success": True}


@router.get("/requests")
async def list_requests(state: StateDep) -> list[dict[str, Any]]:
    """Received model calls, oldest first: api_version, model, method, body, received_at."""
    return list(state.requests)


@router.delete("/requests")
async def clear_requests(state: StateDep) -> dict[str, bool]:
    """Forget received requests."""
    state.requests.clear()
    return {"success": True}
