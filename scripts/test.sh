#!/usr/bin/env bash
# Installs everything the tests need (Python packages, Debian's chromium), makes sure
# PostgreSQL and Redis answer, then runs the whole suite on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=$(command -v python3.11 || command -v python3)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c requirements/test.txt -e ".[test]"  # pins: scripts/lock.sh

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi

PG_HOST=127.0.0.1
if ! pg_isready -q -h "$PG_HOST" -p 5432; then
  echo "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PG_HOST" -p 5432 && break; sleep 1; done
fi
if ! (command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1); then
  echo "starting Redis"
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi

.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench  # formatted once with ruff format; kept so
.venv/bin/lint-imports  # the import layers, and no cycles ([tool.importlinter] in pyproject.toml)
.venv/bin/mypy src      # types, with the pydantic plugin ([tool.mypy] in pyproject.toml)

# Both runs go in random order (pytest-randomly), each with its own seed, so that no test can
# rely on what another left behind. Replay a failure with HAOCHAPING_TEST_SEED=<seed printed>.
# The two runs go side by side (each test process has its own databases: a temporary SQLite
# file, a PostgreSQL database named after its pid, its own Redis database number); the
# PostgreSQL run's output is kept in a file and printed after the SQLite run's.
sqlite_seed=${HAOCHAPING_TEST_SEED:-$RANDOM}
pg_seed=${HAOCHAPING_TEST_SEED:-$RANDOM}
pg_log=$(mktemp -t hcp-pg-tests.XXXXXX)
echo "== tests on PostgreSQL, random order, seed ${pg_seed}: started beside SQLite =="
HAOCHAPING_TEST_DATABASE_URL="postgresql+asyncpg://postgres@${PG_HOST}:5432/test" \
HAOCHAPING_TEST_REDIS_URL="redis://127.0.0.1:6379/1" \
  .venv/bin/python -m pytest -p randomly --randomly-seed="$pg_seed" --durations=10 "$@" \
  >"$pg_log" 2>&1 &
pg_pid=$!
trap 'kill "$pg_pid" 2>/dev/null || true' EXIT
echo "== tests on SQLite (embedded default), random order, seed ${sqlite_seed} =="
sqlite_rc=0
HAOCHAPING_TEST_REDIS_URL="redis://127.0.0.1:6379/0" \
  .venv/bin/python -m pytest -p randomly --randomly-seed="$sqlite_seed" --durations=10 "$@" \
  || sqlite_rc=$?
pg_rc=0
wait "$pg_pid" || pg_rc=$?
trap - EXIT
echo "== tests on PostgreSQL, random order, seed ${pg_seed} (exit ${pg_rc}) =="
cat "$pg_log"
rm -f "$pg_log"
echo "== SQLite run exit ${sqlite_rc}, PostgreSQL run exit ${pg_rc} =="
[ "$sqlite_rc" = 0 ] && [ "$pg_rc" = 0 ]
