#!/bin/sh
# One PostgreSQL role per Baton service; each role owns its own schema and has no rights on the
# others (no USAGE on them, so it cannot even see their tables).
#
# The postgres image runs this once, on an empty data directory, from
# /docker-entrypoint-initdb.d/ (see deploy/docker-compose.yml). It needs POSTGRES_USER and
# POSTGRES_DB (the image sets them) and one password per service role:
#   INGRESS_DB_PASSWORD BUFFER_DB_PASSWORD AGENT_DB_PASSWORD SENDER_DB_PASSWORD
#   OPERATOR_DB_PASSWORD
# Use URL-safe passwords (e.g. `openssl rand -hex 24`): they go into each DATABASE_URL as is.
# BATON_ROLE_PREFIX (default empty) prefixes the role names; tests use it to run this script
# on a shared server without touching roles of other runs.
# It runs only on an empty data directory: change a password later with ALTER ROLE.
set -eu

SERVICE_SCHEMAS="ingress buffer agent sender operator"
ROLE_PREFIX="${BATON_ROLE_PREFIX:-}"

run_sql() {
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
        --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"
}

# Nobody but the owner and the roles granted below may connect or create in `public`.
run_sql -v db="$POSTGRES_DB" <<'SQL'
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
SQL

for schema in $SERVICE_SCHEMAS; do
    variable="$(echo "$schema" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password="$(printenv "$variable" || true)"
    if [ -z "$password" ]; then
        echo "init-service-roles: set $variable (the $schema service's database password)" >&2
        exit 1
    fi
    # CREATE on the database only because the shared migration runner issues
    # `CREATE SCHEMA IF NOT EXISTS`, which PostgreSQL checks against the database's CREATE
    # privilege even when the schema exists. It lets a role create new schemas of its own;
    # it gives no right on another service's schema.
    run_sql -v db="$POSTGRES_DB" -v role="$ROLE_PREFIX$schema" -v schema="$schema" \
        -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD :'password';
GRANT CONNECT, CREATE ON DATABASE :"db" TO :"role";
CREATE SCHEMA :"schema" AUTHORIZATION :"role";
ALTER ROLE :"role" IN DATABASE :"db" SET search_path = :"schema";
SQL
    echo "init-service-roles: role $ROLE_PREFIX$schema owns schema $schema"
done
