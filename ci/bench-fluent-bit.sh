#!/usr/bin/env bash
# The plugin inside a real Fluent Bit: `fluent-bit -e libop_events_input.so -i onepassword`
# against the mock server in its own process (150,000 events by default, ECS, pages of 1,000,
# request budget off, up to 4,000 records a collect: Fluent Bit collects once a second), into
# `-o file`, until Fluent Bit's metrics count every record. Prints the CPU per event of the
# plugin's threads (named `op-events`: requests, parse, normalize, encode, checkpoints; not the
# collect calls, which run on Fluent Bit's thread), that of the whole Fluent Bit process for
# context, and the wall time. The harness figures of ci/bench-plugin.sh
# come from a process that also runs the mock and decodes every buffer; here neither shares
# the process. Not a pass/fail test.
#
#   FLUENT_BIT=/path/to/fluent-bit ci/bench-fluent-bit.sh
#   PER_TYPE=20000 ci/bench-fluent-bit.sh      # events per type (three types)
#   TLS=1 ci/bench-fluent-bit.sh               # over HTTPS (the real API is HTTPS only)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target} # where cargo builds, as cargo reads it
FB=${FLUENT_BIT:-$(command -v fluent-bit || true)}
if [ -z "$FB" ]; then
    echo "SKIPPED: no Fluent Bit (set FLUENT_BIT=/path/to/fluent-bit)"
    exit 0
fi
PER_TYPE=${PER_TYPE:-50000}
TOTAL=$((PER_TYPE * 3))

cargo build --quiet --release -p op-events -p op-events-mock
DIR=$(mktemp -d)
MOCK_PID= FB_PID=
cleanup() {
    [ -z "$FB_PID" ] || kill "$FB_PID" 2>/dev/null || true
    [ -z "$MOCK_PID" ] || kill "$MOCK_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT

# Waits up to $2 seconds for command $1 to succeed.
await() {
    local deadline=$((SECONDS + $2))
    until eval "$1"; do
        if [ $SECONDS -ge $deadline ]; then
            echo "timed out waiting for: $1" >&2
            tail -n 5 "$DIR"/*.log >&2
            exit 1
        fi
        sleep 0.1
    done
}

TLS_MOCK=() TLS_INPUT=()
if [ "${TLS:-}" = 1 ]; then
    TLS_MOCK=(--tls-self-signed "$DIR/mock-ca.pem")
    TLS_INPUT=(-p ca_file="$DIR/mock-ca.pem")
fi
"$TARGET"/release/op-events-mock serve --addr 127.0.0.1:0 --events "$PER_TYPE" "${TLS_MOCK[@]}" \
    --rate-limit-per-minute 0 --rate-limit-per-hour 0 >"$DIR/mock.log" 2>&1 &
MOCK_PID=$!
await "grep -q 'ready url=' '$DIR/mock.log'" 120
MOCK=$(sed -n 's/.*ready url=\([^ ]*\).*/\1/p' "$DIR/mock.log")
"$TARGET"/release/op-events-mock token --account acme >"$DIR/token"
HTTP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"$FB" -q -H -P "$HTTP_PORT" -e "$TARGET"/release/libop_events_input.so \
    -i onepassword -p token_file="$DIR/token" -p base_url="$MOCK" -p insecure_http=true \
    -p state_dir="$DIR/state" -p format=ecs -p limit=1000 -p batch_max_records=4000 \
    -p rate_limit_per_minute=0 -p rate_limit_per_hour=0 "${TLS_INPUT[@]}" \
    -o file -m '*' -p path="$DIR" -p file=out.json -f 1 >"$DIR/fb.log" 2>&1 &
FB_PID=$!
START=$(date +%s.%N)

records() {
    curl -sf "http://127.0.0.1:$HTTP_PORT/api/v1/metrics" |
        python3 -c 'import json, sys; print(sum(i["records"] for i in json.load(sys.stdin)["input"].values()))' \
            2>/dev/null || echo 0
}
await "[ \$(records) -ge $TOTAL ]" 600
WALL=$(python3 -c "import time; print(f'{time.time() - $START:.1f}')")

# CPU time of the plugin's threads (schedstat: ns run) and of the whole process (ticks).
plugin_ns=0
for task in /proc/"$FB_PID"/task/*; do
    [ "$(cat "$task/comm")" = op-events ] || continue
    plugin_ns=$((plugin_ns + $(cut -d' ' -f1 "$task/schedstat")))
done
ticks=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$FB_PID/stat")
HZ=$(getconf CLK_TCK)
python3 -c "
total, plugin_ns, ticks, hz = $TOTAL, $plugin_ns, $ticks, $HZ
print(f'fluent-bit: {total} ECS events over ${MOCK%%:*} in ${WALL}s; plugin threads {plugin_ns / 1e3 / total:.3f} µs/event'
      f' (requests, parse, normalize, encode, checkpoints); the whole Fluent Bit process'
      f' {ticks / hz * 1e6 / total:.2f} µs/event (with -o file); $("$FB" --version | head -1)')
"
