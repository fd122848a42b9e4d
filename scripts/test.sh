#!/usr/bin/env bash
# Sets everything up and runs the whole test suite: lint, format, types, then pytest.
# PostgreSQL tests use the server on 127.0.0.1:5432 (database `test`); it is started if it is installed
# and not running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    fi
fi
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff check"; ruff check .
echo "== ruff format --check"; ruff format --check .
echo "== mypy"; mypy daemon carriers messages
# The slowest tests are listed at the end: CI has 20 minutes, and their sum is most of it.
echo "== pytest"; pytest -q -p no:cacheprovider --durations=15 "$@"
