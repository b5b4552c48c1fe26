#!/usr/bin/env bash
# Installs Haochaping in .venv and starts it on the embedded SQLite database, with the demo
# province loaded on first start. Open http://127.0.0.1:8000/ (demo sign-in: admin / admin12345).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/run.txt -e .  # pins: scripts/lock.sh
exec .venv/bin/haochaping serve --demo "$@"
