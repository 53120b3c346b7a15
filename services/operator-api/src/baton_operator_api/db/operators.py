"""Operators, their hashed tokens, and the audit log of their actions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from baton_operator_api.auth import Role, hash_token
from baton_operator_api.db.models import audit_log, operators, tokens


@dataclass(frozen=True, slots=True)
class Operator:
    """An authenticated operator.

    Attributes:
        id: operator id.
        name: unique name, used as the holder of conversations.
        role: admin or operator.
        active: False once deactivated (only `by_name` finds those).
    """

    id: uuid.UUID
    name: str
    role: Role
    active: bool = True


async def by_token(session: AsyncSession, token: str) -> Operator | None:
    """The active operator owning an unrevoked token, or None."""
    query = (
        select(operators.c.id, operators.c.name, operators.c.role)
        .join(tokens, tokens.c.operator_id == operators.c.id)
        .where(
            tokens.c.token_hash == hash_token(token),
            tokens.c.revoked_at.is_(None),
            operators.c.active.is_(True),
        )
    )
    row = (await session.execute(query)).first()
    return Operator(row.id, row.name, Role(row.role)) if row else None


async def upsert(session: AsyncSession, name: str, role: Role) -> Operator:
    """Create the operator, or update its role and reactivate it."""
    stmt = (
        insert(operators)
        .values(id=uuid.uuid4(), name=name, role=role.value)
        .on_conflict_do_update(
            index_elements=[operators.c.name], set_={"role": role.value, "active": True}
        )
        .returning(operators.c.id)
    )
    operator_id = (await session.execute(stmt)).scalar_one()
    return Operator(operator_id, name, role)


async def add_token(session: AsyncSession, operator_id: uuid.UUID, token: str, label: str) -> None:
    """Store a token's hash for an operator (idempotent for the same token)."""
    await session.execute(
        insert(tokens)
        .values(token_hash=hash_token(token), operator_id=operator_id, label=label)
        .on_conflict_do_update(
            index_elements=[tokens.c.token_hash],
            set_={"operator_id": operator_id, "revoked_at": None, "label": label},
        )
    )


async def revoke_other(
    session: AsyncSession, operator_id: uuid.UUID, label: str, keep: str
) -> None:
    """Revoke the operator's tokens with `label`, except `keep` (a rotated bootstrap token)."""
    await session.execute(
        update(tokens)
        .where(
            tokens.c.operator_id == operator_id,
            tokens.c.label == label,
            tokens.c.token_hash != hash_token(keep),
            tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
    )


async def by_name(session: AsyncSession, name: str) -> Operator | None:
    """The operator called `name` (active or not), locked for the caller's change."""
    row = (
        await session.execute(
            select(operators.c.id, operators.c.name, operators.c.role, operators.c.active)
            .where(operators.c.name == name)
            .with_for_update()
        )
    ).first()
    return Operator(row.id, row.name, Role(row.role), row.active) if row else None


async def deactivate(session: AsyncSession, operator_id: uuid.UUID) -> None:
    """Deactivate the operator and revoke every token it has."""
    await session.execute(
        update(operators).where(operators.c.id == operator_id).values(active=False)
    )
    await revoke_all(session, operator_id)


async def revoke_all(session: AsyncSession, operator_id: uuid.UUID) -> None:
    """Revoke every unrevoked token of the operator."""
    await session.execute(
        update(tokens)
        .where(tokens.c.operator_id == operator_id, tokens.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )


async def list_all(session: AsyncSession) -> list[Any]:
    """Every operator, by name."""
    query = select(operators.c.name, operators.c.role, operators.c.active).order_by(
        operators.c.name
    )
    return list((await session.execute(query)).all())


async def audit(
    session: AsyncSession,
    operator: str,
    action: str,
    conversation_id: str | None = None,
    **details: Any,
) -> None:
    """Record who did what, when, on which conversation."""
    await session.execute(
        audit_log.insert().values(
            operator=operator, action=action, conversation_id=conversation_id, details=details
        )
    )
