"""FastAPI dependencies, declared once: the service context, a read session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api.auth import Role
from baton_operator_api.context import ServiceContext
from baton_operator_api.db import operators
from baton_operator_api.db.operators import Operator
from baton_operator_api.errors import ApiError, ForbiddenError


class UnauthorizedError(ApiError):
    """No valid bearer token."""

    status = 401
    code = "unauthorized"


def get_context(request: Request) -> ServiceContext:
    """The service context stored on the app."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(get_context)]


async def get_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    """A session for reads (writes use their own transaction so they commit before the answer)."""
    async with ctx.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="an operator token")


async def get_operator(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    """The operator owning the bearer token; 401 without a valid one."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise UnauthorizedError("a bearer token is required (Authorization: Bearer <token>)")
    if len(credentials.credentials) > 256:
        raise UnauthorizedError("invalid token")
    async with ctx.db.session() as session:
        operator = await operators.by_token(session, credentials.credentials)
    if operator is None:
        raise UnauthorizedError("invalid or revoked token")
    return operator


CurrentOperator = Annotated[Operator, Depends(get_operator)]


async def get_admin(operator: CurrentOperator) -> Operator:
    """The calling operator, who must be an admin; 403 otherwise."""
    if operator.role != Role.ADMIN:
        raise ForbiddenError("this needs the admin role")
    return operator


CurrentAdmin = Annotated[Operator, Depends(get_admin)]
