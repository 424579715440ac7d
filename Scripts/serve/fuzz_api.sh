#!/usr/bin/env bash
# Fuzzes gknet serve's API from its OpenAPI document with schemathesis (PyPI, test-only):
# starts the server on loopback, generates at least N requests (default 1000) from
# Sources/GKNetServe/Resources/openapi.yaml, and fails on any 5xx other than a 503 for a full queue,
# on a crash, or on a hang (every request has a timeout; the run has a time budget).
# Usage: Scripts/serve/fuzz_api.sh [N]   (MAX_TIME=seconds bounds the run, default 1800; needs .venv-serve: make serve-tools)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
EXAMPLES="${1:-1000}"
PORT="${PORT:-18095}"
GKNET="${GKNET:-$ROOT/.build/release/gknet}"
ST="$ROOT/.venv-serve/bin/schemathesis"
"$GKNET" serve --port "$PORT" --workers 1 --queue 16 --timeout 30 > /tmp/gknet-fuzz-server.log 2>&1 &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.2; done
# not_a_server_error: no 5xx (a 503 from a full queue would count too; the queue is deep enough)
"$ST" run "$ROOT/Sources/GKNetServe/Resources/openapi.yaml" --url "http://127.0.0.1:$PORT" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance \
    --max-examples "$EXAMPLES" --request-timeout 60 --max-time "${MAX_TIME:-1800}" --workers 1 \
    --suppress-health-check all --report junit --report-dir /tmp/gknet-schemathesis
kill -0 $SERVER 2>/dev/null || { echo "fuzz_api: the server died" >&2; exit 1; }
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "fuzz_api: /healthz does not answer" >&2; exit 1; }
echo "fuzz_api: the server answered every request without a 5xx and is still healthy"
