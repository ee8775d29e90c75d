#!/usr/bin/env bash
# End-to-end benchmark of the op-events binary against op-events-mock over loopback (release).
# Prints one line of figures per part:
#   1. drain: EVENTS events (split over the three streams), limits off; events/s and CPU µs/event
#      of op-events (user+sys from /usr/bin/time), once into a file (the kernel's page-cache
#      writes count as op-events' sys time) and once into a pipe read by `wc -l` (as Vector's
#      exec source reads it).
#   2. budget: BUDGET requests/minute on both sides, limit 10 so a backlog outlasts the run;
#      requests/minute achieved between t=10s and t=70s, as a fraction of the budget, and 429s
#      served (from /_mock/stats).
#   3. stall: stdout piped into a process that never reads, with the mock holding the backlog;
#      peak RSS of op-events (VmHWM) after STALL seconds.
#
#   ci/bench-drain.sh                       # 1,000,000 events, budget 6000/min
#   EVENTS=300000 SKIP_BUDGET=1 ci/bench-drain.sh
set -euo pipefail

EVENTS=${EVENTS:-1000000}
BUDGET=${BUDGET:-6000}
STALL=${STALL:-10}
PORT=${PORT:-18089}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mktemp -d)
M="http://127.0.0.1:$PORT"
cleanup() {
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    [ -n "${RUNNER:-}" ] && kill "$RUNNER" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT

cargo build --release --quiet -p op-events -p op-events-mock --manifest-path "$ROOT/Cargo.toml"
MOCK="${CARGO_TARGET_DIR:-$ROOT/target}/release/op-events-mock"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/op-events"
PER_TYPE=$(( (EVENTS + 2) / 3 ))

serve() { # serve PER_MINUTE
    "$MOCK" serve --addr "127.0.0.1:$PORT" --events "$PER_TYPE" --log warn \
        --rate-limit-per-minute "$1" --rate-limit-per-hour 0 2>"$OUT/server.log" &
    SERVER=$!
    until grep -q ready "$OUT/server.log"; do
        kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
        sleep 0.2
    done
    export OP_EVENTS_TOKEN
    OP_EVENTS_TOKEN=$("$MOCK" token)
}
stop_server() { kill -INT "$SERVER"; wait "$SERVER" || true; SERVER=; }
total_requests() { curl -sf "$M/_mock/stats" | jq '[.requests[] | select(.path | startswith("/api/v2/") and (contains("introspect") | not)) | .count] | add // 0'; }
rate_limited() { curl -sf "$M/_mock/stats" | jq '.rate_limited'; }

# 1. drain
serve 0
drain() { # drain SINK STATE: one --once run; prints "lines wall user sys maxkb"
    if [ "$1" = file ]; then
        /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" "$BIN" run --once --base-url "$M" --state-dir "$2" \
            --rate-limit-per-minute 0 --rate-limit-per-hour 0 --log-level warn >"$OUT/events.ndjson"
        LINES=$(wc -l <"$OUT/events.ndjson")
        rm -f "$OUT/events.ndjson"
    else
        LINES=$(/usr/bin/time -f "%e %U %S %M" -o "$OUT/time" "$BIN" run --once --base-url "$M" --state-dir "$2" \
            --rate-limit-per-minute 0 --rate-limit-per-hour 0 --log-level warn | wc -l)
    fi
    echo "$LINES $(cat "$OUT/time")"
}
for SINK in file pipe; do
    read -r LINES WALL USR SYS MAXKB <<<"$(drain "$SINK" "$OUT/state-$SINK")"
    awk -v s="$SINK" -v n="$LINES" -v wall="$WALL" -v usr="$USR" -v sys="$SYS" -v kb="$MAXKB" 'BEGIN {
        printf "drain (%s): events=%d wall=%.2fs events/s=%.0f cpu_us/event=%.2f (user %.2fs sys %.2fs) peak_rss=%.0fMiB\n",
            s, n, wall, n / wall, (usr + sys) * 1e6 / n, usr, sys, kb / 1024 }'
done
stop_server

# 2. budget
if [ -z "${SKIP_BUDGET:-}" ]; then
    serve "$BUDGET"
    "$BIN" run --base-url "$M" --state-dir "$OUT/state2" --limit 10 \
        --rate-limit-per-minute "$BUDGET" --log-level warn >"$OUT/budget.ndjson" &
    RUNNER=$!
    sleep 10
    R0=$(total_requests)
    sleep 60
    R1=$(total_requests)
    kill -TERM "$RUNNER"; wait "$RUNNER" || true; RUNNER=
    LIMITED=$(rate_limited)
    stop_server
    awk -v r="$((R1 - R0))" -v b="$BUDGET" -v l="$LIMITED" 'BEGIN {
        printf "budget: budget=%d/min achieved=%d/min fraction=%.3f 429s=%d\n", b, r, r / b, l }'
fi

# 3. stalled sink
serve 0
mkfifo "$OUT/pipe"
sleep $((STALL + 30)) <"$OUT/pipe" &
READER=$!
"$BIN" run --base-url "$M" --state-dir "$OUT/state3" --rate-limit-per-minute 0 --rate-limit-per-hour 0 \
    --log-level warn >"$OUT/pipe" &
RUNNER=$!
PEAK=0
for _ in $(seq $((STALL * 5))); do
    kb=$(awk '/VmHWM/ {print $2}' "/proc/$RUNNER/status" 2>/dev/null || echo 0)
    [ "$kb" -gt "$PEAK" ] && PEAK=$kb
    sleep 0.2
done
SERVED=$(curl -sf "$M/_mock/stats" | jq '.events_served')
kill -TERM "$RUNNER" 2>/dev/null || true
kill "$READER" 2>/dev/null || true
wait "$RUNNER" 2>/dev/null || true; RUNNER=
stop_server
awk -v kb="$PEAK" -v s="$STALL" -v served="$SERVED" -v backlog="$EVENTS" 'BEGIN {
    printf "stall: backlog=%d fetched=%d in %ds peak_rss=%.1fMiB\n", backlog, served, s, kb / 1024 }'
