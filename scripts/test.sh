#!/usr/bin/env bash
# Set up, then run the whole test suite. Integration tests start their own
# redis-server on a free port; it is installed from Debian's packages when missing.
# Extra arguments go to pytest (e.g. -k e2e, -m "not e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing redis-server from Debian's packages" >&2
    (apt-get install -y -q redis-server >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; })
  else
    echo "test.sh: redis-server is missing; install it (apt-get install redis-server)" >&2
    exit 1
  fi
fi
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
