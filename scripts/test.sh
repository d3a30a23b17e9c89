#!/usr/bin/env bash
# Set up, then run the whole test suite. Integration tests start their own
# redis-server on a free port; browser tests start Debian's chromium.
# Extra arguments go to pytest (e.g. -k e2e, -m "not e2e").
set -euo pipefail
cd "$(dirname "$0")/.."
# What the tests drive for real, from Debian's packages when missing: redis-server
# (also a Redis Cluster of six) and redis-sentinel,
# and Chromium for the browser tests of the web pages.
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)  # the failover tests' Sentinels
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)  # checks the units in deploy/systemd
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "test.sh: installing ${need[*]} from Debian's packages" >&2
    (apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; })
  else
    echo "test.sh: missing ${need[*]}; install them (apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
