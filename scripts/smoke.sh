#!/usr/bin/env bash
# The README's first command as a newcomer runs it, checked from scratch: the package is
# installed WITHOUT extras into a fresh virtual environment (a runtime import missing from
# [project.dependencies] fails here, not on a newcomer's machine), `haochaping serve --demo`
# starts on a free port and a fresh SQLite database, and curl checks /healthz, the home
# page, the sign-in page and a rating link made the documented way (`haochaping client
# create`, then POST /api/v1/cases/{case_no}/invitations) — on the port served, not 8000.
#
# HCP_SMOKE_CASES (default 2000) sizes the demo province (`serve --demo-cases`): the full
# 200,000 cases take minutes; the smoke checks that it starts and answers, not the volume.
# The server is stopped at the end whatever happens; when it does not answer, its log is
# printed and the script exits 1.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$(command -v python3.11 || command -v python3)
CASES=${HCP_SMOKE_CASES:-2000}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hcp-smoke.XXXXXX")
LOG="$WORK/server.log"
SERVER_PID=""

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "SMOKE FAILED: $*" >&2
  echo "----- server log ($LOG) -----" >&2
  cat "$LOG" >&2 2>/dev/null || echo "(no log)" >&2
  echo "-----------------------------" >&2
  exit 1
}

# A newcomer's environment: none of our settings, a fresh working directory (./data, no .env).
while IFS='=' read -r name _; do
  case "$name" in HAOCHAPING_*) unset "$name" ;; esac
done < <(env)
cd "$WORK"

echo "== smoke: installing the package without extras into a fresh virtual environment =="
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check -c "$REPO/requirements/run.txt" "$REPO" \
  || fail "pip install of $REPO failed"
HCP="$WORK/venv/bin/haochaping"

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "== smoke: haochaping serve --demo --demo-cases $CASES --port $PORT =="
"$HCP" serve --demo --demo-cases "$CASES" --port "$PORT" >"$LOG" 2>&1 &
SERVER_PID=$!
BASE="http://127.0.0.1:$PORT"

up=""
for _ in $(seq 1 240); do
  kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited before answering"
  if curl -fsS -o /dev/null --max-time 2 "$BASE/healthz" 2>/dev/null; then up=1; break; fi
  sleep 0.5
done
[ -n "$up" ] || fail "no answer on $BASE/healthz within 120 s"

check() {  # check NAME URL [curl args...]: 200 expected
  local name=$1 url=$2
  shift 2
  local code
  code=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 10 "$@" "$url") \
    || fail "$name: $url did not answer"
  [ "$code" = 200 ] || { cat "$WORK/body" >&2; fail "$name: $url answered HTTP $code"; }
  echo "ok  $name  $url"
}

check "health" "$BASE/healthz"
grep -q '"status":"ok"' "$WORK/body" || fail "/healthz did not say ok: $(cat "$WORK/body")"
check "home page" "$BASE/"
check "sign-in page" "$BASE/login"

# A rating link the documented way: a key for the demo's root organisation, then an
# invitation for its most recently completed case (inside the evaluation window).
read -r ROOT CASE_NO < <("$WORK/venv/bin/python" - <<'PYEOF'
import sqlite3
db = sqlite3.connect("data/haochaping.db")
root = db.execute("SELECT code FROM org WHERE parent_id IS NULL ORDER BY id").fetchone()
case = db.execute("SELECT case_no FROM service_case WHERE status = 'completed' "
                  "ORDER BY completed_at DESC LIMIT 1").fetchone()
print(root[0] if root else "-", case[0] if case else "-")
PYEOF
)
[ "$ROOT" != "-" ] && [ "$CASE_NO" != "-" ] || fail "the demo loaded no organisation or case"
KEY=$("$HCP" client create --name "smoke" --org "$ROOT" --channels qrcode | tail -1) \
  || fail "haochaping client create failed"
code=$(curl -sS -o "$WORK/invitation.json" -w '%{http_code}' --max-time 10 -X POST \
  -H "X-Api-Key: $KEY" -H 'Content-Type: application/json' -d '{"channel": "qrcode"}' \
  "$BASE/api/v1/cases/$CASE_NO/invitations") || fail "the invitation request did not answer"
[ "$code" = 201 ] || { cat "$WORK/invitation.json" >&2; fail "invitation answered HTTP $code"; }
RATING_URL=$("$WORK/venv/bin/python" -c \
  'import json, sys; print(json.load(open(sys.argv[1]))["url"])' "$WORK/invitation.json")
case "$RATING_URL" in
  "$BASE/r/"*) ;;
  *) fail "the rating link $RATING_URL does not point at the server ($BASE)" ;;
esac
check "rating link" "$RATING_URL"
grep -q '评价' "$WORK/body" || fail "the rating page does not look like one"
check "rating QR code" "$RATING_URL/qr.svg"

stop_server
echo "== smoke: passed =="
