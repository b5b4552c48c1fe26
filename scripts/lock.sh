#!/usr/bin/env bash
# Refreshes the pinned versions that the README's two commands install from:
#   requirements/run.txt   what `pip install .` needs (scripts/run.sh, the smoke)
#   requirements/test.txt  the same plus the test extras (scripts/test.sh)
# Run it after changing [project.dependencies] or the test extras, review the diff, commit.
# `bash scripts/lock.sh --upgrade` moves every pin to the newest release allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(command -v python3.11 || command -v python3)
TOOLS=$(mktemp -d "${TMPDIR:-/tmp}/hcp-lock.XXXXXX")
trap 'rm -rf "$TOOLS"' EXIT
"$PY" -m venv "$TOOLS"
"$TOOLS/bin/python" -m pip install -q --disable-pip-version-check "pip-tools>=7.4"
compile() {
  "$TOOLS/bin/pip-compile" -q --strip-extras --no-emit-index-url --no-emit-find-links --allow-unsafe \
    --resolver=backtracking "$@" pyproject.toml
}
compile -o requirements/run.txt "$@"
compile --extra test -o requirements/test.txt "$@"
echo "requirements/run.txt and requirements/test.txt refreshed"
