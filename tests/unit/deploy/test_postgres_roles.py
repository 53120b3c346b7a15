"""The compose PostgreSQL init script, run for real: each service role migrates its own schema
and cannot read, write or create anything in another service's schema."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql
from sqlalchemy.engine import make_url

from baton_devtools import infra as infra_mod
from baton_devtools.databases import SERVICE_SCHEMAS
from baton_shared.db import migrate

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("psql") is None, reason="needs the psql client"),
]

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "postgres" / "init-service-roles.sh"
SCHEMAS = [schema for _, schema in SERVICE_SCHEMAS]


class Cluster:
    """A fresh database initialised by the script, with role names private to this run."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"t{uuid.uuid4().hex[:8]}_"
        self.database = f"baton_roles_{uuid.uuid4().hex[:8]}"
        self.passwords = {schema: uuid.uuid4().hex for schema in SCHEMAS}

    def role(self, schema: str) -> str:
        """The role name the script created for a service schema."""
        return self.prefix + schema

    def url(self, schema: str) -> str:
        """A DATABASE_URL logging in as the service role of `schema`."""
        admin = make_url(infra_mod.url_for_database(self.admin_url, self.database))
        role_url = admin.set(username=self.role(schema), password=self.passwords[schema])
        return role_url.render_as_string(hide_password=False)

    def run_script(self) -> subprocess.CompletedProcess[str]:
        """Run the init script the way the postgres image does, with psql."""
        admin = make_url(self.admin_url)
        env = {
            **os.environ,
            "POSTGRES_USER": admin.username or "postgres",
            "POSTGRES_DB": self.database,
            "PGHOST": admin.host or str(admin.query.get("host", "")),
            "PGPORT": str(admin.port or 5432),
            "BATON_ROLE_PREFIX": self.prefix,
            **{f"{s.upper()}_DB_PASSWORD": p for s, p in self.passwords.items()},
        }
        if admin.password:
            env["PGPASSWORD"] = admin.password
        return subprocess.run(
            ["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
        )

    def drop(self) -> None:
        """Drop the database, then the roles."""
        infra_mod.drop_database(self.admin_url, self.database)
        with psycopg.connect(infra_mod.libpq_url(self.admin_url), autocommit=True) as conn:
            for schema in SCHEMAS:
                role = sql.Identifier(self.role(schema))
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


@pytest.fixture(scope="module")
def cluster(infra: infra_mod.Infra) -> Iterator[Cluster]:
    created = Cluster(infra.database_url)
    infra_mod.create_database(infra.database_url, created.database)
    try:
        result = created.run_script()
        assert result.returncode == 0, result.stderr
        yield created
    finally:
        created.drop()


def connect(cluster: Cluster, schema: str) -> psycopg.Connection:
    return psycopg.connect(infra_mod.libpq_url(cluster.url(schema)), autocommit=True)


def test_each_role_migrates_its_own_schema(cluster: Cluster) -> None:
    for package, schema in SERVICE_SCHEMAS:
        migrate.upgrade(package, schema, cluster.url(schema))
    with connect(cluster, "ingress") as conn:
        conn.execute("SELECT count(*) FROM ingress.inbox").fetchone()


@pytest.mark.parametrize("schema", SCHEMAS)
def test_each_schema_is_owned_by_its_role(cluster: Cluster, schema: str) -> None:
    with connect(cluster, schema) as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
    assert owner == (cluster.role(schema),)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_a_role_cannot_touch_another_services_schema(cluster: Cluster, schema: str) -> None:
    other = SCHEMAS[(SCHEMAS.index(schema) + 1) % len(SCHEMAS)]
    for package, name in SERVICE_SCHEMAS:
        if name == other:
            migrate.upgrade(package, other, cluster.url(other))
    statements = [
        "SELECT * FROM {}.outbox",
        "INSERT INTO {}.inbox (consumer, event_id) VALUES ('x', gen_random_uuid())",
        "CREATE TABLE {}.intruder (id int)",
    ]
    with connect(cluster, schema) as conn:
        for statement in statements:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL(statement).format(sql.Identifier(other)))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.intruder (id int)")
        conn.execute(sql.SQL("CREATE TABLE {}.own_table (id int)").format(sql.Identifier(schema)))


def test_roles_are_plain_logins(cluster: Cluster) -> None:
    with psycopg.connect(infra_mod.libpq_url(cluster.admin_url)) as conn:
        rows = conn.execute(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname LIKE %s ORDER BY rolname",
            (cluster.prefix + "%",),
        ).fetchall()
    assert sorted(r[0] for r in rows) == sorted(cluster.role(s) for s in SCHEMAS)
    assert all(r[1:] == (False, False, False, False, False) for r in rows)


def test_a_missing_password_stops_the_script(infra: infra_mod.Infra) -> None:
    broken = Cluster(infra.database_url)
    broken.passwords["sender"] = ""
    infra_mod.create_database(infra.database_url, broken.database)
    try:
        result = broken.run_script()
    finally:
        broken.drop()
    assert result.returncode != 0
    assert "SENDER_DB_PASSWORD" in result.stderr
