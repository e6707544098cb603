#!/usr/bin/env bash
# Installs (when missing) and starts PostgreSQL on 127.0.0.1:5432, with the
# password `hookgate` for the `postgres` user. Prints the URL tests use on
# stdout, and nothing else there: everything the tools say goes to stderr.
set -euo pipefail

start_postgres() {
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h | grep -q "^${version} main"; then
    pg_createcluster "$version" main >/dev/null
  fi
  if ! pg_lsclusters -h | grep -q "^${version} main .* online"; then
    pg_ctlcluster "$version" main start
  fi
  for _ in $(seq 1 50); do
    su postgres -c "pg_isready -q -h 127.0.0.1" && break
    sleep 0.2
  done
  su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'hookgate'\"" >/dev/null
  # Room for several gateways, each with a pool, in parallel tests.
  su postgres -c "psql -q -c 'ALTER SYSTEM SET max_connections = 300'" >/dev/null
  pg_ctlcluster "$version" main restart
  for _ in $(seq 1 50); do
    su postgres -c "pg_isready -q -h 127.0.0.1" && break
    sleep 0.2
  done
}

# The server inherits the descriptors of whoever starts it: it must not hold
# the caller's `$(...)` pipe open, nor write into it.
start_postgres </dev/null >&2
echo "postgres://postgres:hookgate@127.0.0.1:5432/postgres"
