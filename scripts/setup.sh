#!/usr/bin/env bash
# Create .venv (if needed) and install Tollgate with its test dependencies into it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The interpreter: $PYTHON when set; else the distribution's python3 when it is
# 3.11 or newer. Debian's is built with PGO and LTO, libpython linked in: on the
# real-switch benchmark the controller spends 13% less CPU per call under it
# than under a default pyenv or source build of the same Python
# (docs/performance.md), and it is what deploy/README.md installs with.
# Else the python3 on PATH.
usable() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
elif usable /usr/bin/python3; then
  PY=/usr/bin/python3
  if ! "$PY" -c 'import ensurepip, venv' 2>/dev/null && [ ! -x .venv/bin/python ]; then
    # Debian keeps venv's pip bootstrap in its own package.
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      echo "setup.sh: installing python3-venv from Debian's packages" >&2
      (apt-get install -y -q python3-venv >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; })
    else
      PY=python3
    fi
  fi
else
  PY=python3
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.tollgate-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  touch "$stamp"
fi
