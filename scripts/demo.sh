#!/usr/bin/env bash
# Sets everything up and runs the demo in a fresh temporary workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/parcelwatch demo "$@"
