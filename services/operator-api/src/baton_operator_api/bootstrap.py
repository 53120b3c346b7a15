"""Operators created outside the API: the bootstrap admin at start, and `create-operator`."""

from __future__ import annotations

import logging

from baton_operator_api.auth import Role, new_token
from baton_operator_api.db import operators
from baton_shared.db import Database

log = logging.getLogger(__name__)

BOOTSTRAP_LABEL = "bootstrap"


async def bootstrap_admin(db: Database, name: str, token: str) -> None:
    """Create or update the admin `name` so that `token` (and no older bootstrap token) works."""
    async with db.session() as session:
        admin = await operators.upsert(session, name, Role.ADMIN)
        await operators.add_token(session, admin.id, token, label=BOOTSTRAP_LABEL)
        await operators.revoke_other(session, admin.id, BOOTSTRAP_LABEL, keep=token)
        await operators.audit(session, "system", "bootstrap_admin", None, name=name)
    log.info("bootstrap admin %r is ready", name)


async def create_operator(db: Database, name: str, role: Role) -> str:
    """Create (or re-role) an operator with a new token; returns the token."""
    token = new_token()
    async with db.session() as session:
        operator = await operators.upsert(session, name, role)
        await operators.add_token(session, operator.id, token, label="cli")
        await operators.audit(session, "cli", "create_operator", None, name=name, role=role.value)
    return token
