"""The business's approved message templates, for operators to pick from."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from baton_operator_api.api.deps import Context, CurrentOperator
from baton_operator_api.errors import responses
from baton_operator_api.templates import Template

router = APIRouter(prefix="/api/v1/templates", tags=["templates"], responses=responses(401))


class TemplatePage(BaseModel):
    """The approved templates."""

    configured: bool = Field(
        description="a templates file is configured; false: any template is passed on to "
        "WhatsApp, which decides"
    )
    items: list[Template]


@router.get("", response_model=TemplatePage)
async def list_templates(ctx: Context, _: CurrentOperator) -> TemplatePage:
    """The templates operators may send outside the 24-hour window
    (`OPERATOR_API_TEMPLATES_FILE`)."""
    known = ctx.templates
    return TemplatePage(configured=known is not None, items=known.templates if known else [])
