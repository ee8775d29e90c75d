#!/usr/bin/env bash
# Benchmark op-events-mock: POST /api/v2/auditevents with 1000-event pages over loopback, driven
# by wrk with a fixed continuing cursor, against a server holding EVENTS events per type.
# Prints pages/s, MB/s, p99 latency and the server's peak RSS (VmHWM). Not a pass/fail test.
#
#   ci/bench-mock.sh                      # 1,000,000 events per type, 15 s, 16 connections
#   EVENTS=100000 DURATION=5 ci/bench-mock.sh
set -euo pipefail

EVENTS=${EVENTS:-1000000}
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-1}
PORT=${PORT:-18088}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d)
trap 'kill "${SERVER:-}" 2>/dev/null || true; rm -rf "$OUT"' EXIT

if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

cargo build --release --quiet -p op-events-mock --manifest-path "$ROOT/Cargo.toml"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/op-events-mock"

started=$(date +%s.%N)
"$BIN" serve --addr "127.0.0.1:$PORT" --events "$EVENTS" --log warn \
    --rate-limit-per-minute 0 --rate-limit-per-hour 0 2>"$OUT/server.log" &
SERVER=$!
until grep -q ready "$OUT/server.log"; do
    kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
    sleep 0.2
done
loaded=$(date +%s.%N)
TOKEN=$("$BIN" token --features auditevents)
URL="http://127.0.0.1:$PORT/api/v2/auditevents"
CURSOR=$(curl -sf "$URL" -H "Authorization: Bearer $TOKEN" \
    -d '{"limit":1000,"start_time":"2020-01-01T00:00:00Z"}' | sed -E 's/.*"cursor":"([^"]+)".*/\1/')
PAGE_BYTES=$(curl -sf "$URL" -H "Authorization: Bearer $TOKEN" -d "{\"cursor\":\"$CURSOR\"}" | wc -c)

cat >"$OUT/page.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"cursor":"$CURSOR"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$OUT/page.lua" "$URL" >"$OUT/wrk.txt"
HWM_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
kill -INT "$SERVER"
wait "$SERVER" || true
SERVER=

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); print v} else {sub(/s/,"",v); print v*1000}}'; }
RPS=$(awk '/Requests\/sec/ {print $2}' "$OUT/wrk.txt")
P99=$(awk '$1=="99%" {print $2}' "$OUT/wrk.txt" | to_ms)
ERRORS=$(grep -E "Non-2xx|Socket errors" "$OUT/wrk.txt" || true)
awk -v rps="$RPS" -v bytes="$PAGE_BYTES" -v p99="$P99" -v hwm="$HWM_KB" -v ev="$EVENTS" \
    -v load="$(echo "$loaded - $started" | bc)" 'BEGIN {
    printf "mock bench: events/type=%d load=%.1fs page=%d bytes pages/s=%.0f MB/s=%.0f p99=%.2fms peak_rss=%.0fMiB\n",
        ev, load, bytes, rps, rps * bytes / 1e6, p99, hwm / 1024 }'
[ -z "$ERRORS" ] || echo "wrk: $ERRORS"
