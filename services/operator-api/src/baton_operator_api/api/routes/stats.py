"""`GET /stats`: the numbers a dashboard shows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from baton_operator_api.api.deps import CurrentOperator, SessionDep
from baton_operator_api.db import queries
from baton_operator_api.errors import responses

router = APIRouter(tags=["ops"], responses=responses(401))


@router.get("/stats")
async def stats(session: SessionDep, _: CurrentOperator) -> dict[str, Any]:
    """Conversations by mode, handoffs waiting and their age, messages today, AI latency."""
    return await queries.stats(session)
