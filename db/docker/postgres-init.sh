#!/bin/sh
# Runs once, when compose.yaml's postgres service initialises its volume. Next to the
# "postgres" superuser (which the tests use) it creates a superuser named after the
# developer ($USER on the host), so the default DATABASE_URL
# (postgres://localhost:5432/tessera, which connects as your OS user) works unchanged.
set -e
if [ -n "$TESSERA_DEV_ROLE" ] && [ "$TESSERA_DEV_ROLE" != "$POSTGRES_USER" ]; then
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v role="$TESSERA_DEV_ROLE" <<'SQL'
SELECT format('CREATE ROLE %I SUPERUSER LOGIN', :'role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SQL
fi
