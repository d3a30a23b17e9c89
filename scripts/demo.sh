#!/usr/bin/env bash
# Set up, then run the demo: the real controller against the built-in
# FreeSWITCH simulator and the embedded store. Extra arguments go to `tollgate demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/tollgate demo "$@"
