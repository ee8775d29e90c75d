#!/usr/bin/env bash
# Chaos run (by hand, not CI): the real mock (release build) with a large dataset, a steady stream
# of new and late-arriving events and injected faults (5xx, 429 bursts, resets, truncated bodies,
# invalid JSON, responses slower than the collector's timeout); the collector (`op-events run`,
# NDJSON appended to a file) SIGKILLed at random moments KILLS times and restarted; as root, the
# state directory on a small tmpfs that is filled up and remounted read-only for a while.
# At the end every event the mock holds must have been delivered at least once (by event type +
# uuid). Prints one line of figures; exits 1 if anything is missing or a state file is invalid.
#
#   ci/chaos.sh                        # defaults below
#   EVENTS=100000 KILLS=40 ci/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=${EVENTS:-20000}     # generated events per type at start
KILLS=${KILLS:-24}          # SIGKILLs (at least 20)
PORT=${PORT:-18480}
MAX_UP_MS=${MAX_UP_MS:-2500} # a collector lives a random 200..MAX_UP_MS ms before SIGKILL
FINAL_TIMEOUT=${FINAL_TIMEOUT:-300}
CHECKPOINT_INTERVAL=${CHECKPOINT_INTERVAL:-1s} # the collector's checkpoint_interval (0: every batch)
TYPES=(signinattempts itemusages auditevents)

cargo build --release --locked -q -p op-events -p op-events-mock
BIN=${CARGO_TARGET_DIR:-target}/release
M=http://127.0.0.1:$PORT

WORK=$(mktemp -d /tmp/op-events-chaos.XXXXXX)
STATE=$WORK/state
OUT=$WORK/out.ndjson
LOG=$WORK/collector.log
mkdir -p "$STATE"
TMPFS=no
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=2m,mode=0700 tmpfs "$STATE" 2>/dev/null; then
    TMPFS=yes
fi

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${KEEP:-}" ]; then
        cp -a "$STATE" "$WORK/state-copy" 2>/dev/null || true
        echo "kept $WORK" >&2
    fi
    [ "$TMPFS" = yes ] && umount "$STATE" 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/op-events-mock" serve --addr "127.0.0.1:$PORT" --events "$EVENTS" --seed 7 --log warn \
    2>"$WORK/mock.log" &
MOCK=$!
PIDS+=("$MOCK")
for _ in $(seq 300); do curl -sf "$M/_mock/clock" >/dev/null && break; sleep 0.1; done
OP_EVENTS_TOKEN=$("$BIN/op-events-mock" token)
export OP_EVENTS_TOKEN

# Background load: new events (some late) and faults, until told to stop.
LOAD_STOP=$WORK/load.stop
load() {
    set +e # a failed request or test must not end the load
    FAULTS=0
    while [ ! -e "$LOAD_STOP" ]; do
        t=${TYPES[RANDOM % 3]}
        late=$([ $((RANDOM % 3)) = 0 ] && echo true || echo false)
        curl -sf "$M/_mock/accounts/acme/$t/events" -d "{\"generate\":$((RANDOM % 40 + 1)),\"late\":$late}" >/dev/null || true
        # About one fault every 2 s (the collector makes several requests a second), on one
        # event path or on any path (introspection included).
        path=$([ $((RANDOM % 2)) = 0 ] && echo ",\"path\":\"/api/v2/${TYPES[RANDOM % 3]}\"")
        case $((RANDOM % 32)) in
            0) f="{\"kind\":\"503\",\"count\":2$path}" ;;
            1) f="{\"kind\":\"500\",\"count\":1$path}" ;;
            2) f="{\"kind\":\"429\",\"count\":4}" ;;
            3) f="{\"kind\":\"reset\",\"count\":1$path}" ;;
            4) f="{\"kind\":\"truncate\",\"count\":1$path}" ;;
            5) f="{\"kind\":\"delay\",\"delay_ms\":2500,\"count\":1$path}" ;;
            6) f="{\"kind\":\"invalid_json\",\"count\":1$path}" ;;
            *) f= ;;
        esac
        if [ -n "$f" ]; then
            curl -sf "$M/_mock/faults" -d "$f" >/dev/null && FAULTS=$((FAULTS + 1)) && echo "$FAULTS" >"$WORK/faults"
        fi
        sleep 0.$((RANDOM % 5 + 2))
    done
}
load &
PIDS+=("$!")

start_collector() {
    # A torn last line from a SIGKILL mid-write is the reader's to handle: end it so the next
    # run's first line stays whole (the torn event was never acked, so it is delivered again).
    if [ -s "$OUT" ] && [ "$(tail -c1 "$OUT" | od -An -c | tr -d ' ')" != '\n' ]; then
        echo >>"$OUT"
        TORN=$((TORN + 1))
    fi
    "$BIN/op-events" --log-level info run --base-url "$M" --state-dir "$STATE" \
        --start-time 2000-01-01T00:00:00Z --format raw --poll-interval 1s \
        --set request_timeout=2s --set connect_timeout=1s --set retry_initial=100ms \
        --set retry_max=1s --set unauthorized_retry=1s \
        --set checkpoint_interval="$CHECKPOINT_INTERVAL" "$@" >>"$OUT" 2>>"$LOG" &
    COLLECTOR=$!
}

burst() {
    for t in "${TYPES[@]}"; do
        curl -sf "$M/_mock/accounts/acme/$t/events" -d '{"generate":200,"late":false}' >/dev/null
    done
}

state_valid() {
    python3 - "$STATE" <<'EOF'
import json, os, sys
d = sys.argv[1]
for n in os.listdir(d):
    if n.startswith("state-") and n.endswith(".json"):
        with open(os.path.join(d, n)) as f:
            s = json.load(f)
        assert isinstance(s.get("recent_uuids"), list), n
        assert s.get("cursor") is None or isinstance(s["cursor"], str), n
        st = os.stat(os.path.join(d, n)).st_mode & 0o777
        assert st == 0o600, f"{n} mode {st:o}"
EOF
}

kill_once() {
    sleep "$(awk -v r=$RANDOM -v m="$MAX_UP_MS" 'BEGIN{printf "%.3f", (200 + r % (m - 200)) / 1000}')"
    kill -9 "$COLLECTOR" 2>/dev/null || true
    wait "$COLLECTOR" 2>/dev/null || true
    KILLED=$((KILLED + 1))
    lines=$(wc -l <"$OUT")
    [ "$lines" -gt "$LINES" ] && PRODUCTIVE=$((PRODUCTIVE + 1))
    LINES=$lines
    state_valid || { echo "chaos: invalid state file after kill $KILLED" >&2; INVALID=$((INVALID + 1)); }
}

# wait_for SECONDS CHECK ARGS...: until CHECK succeeds or SECONDS pass.
wait_for() {
    local until=$((SECONDS + $1))
    shift
    until "$@" || [ "$SECONDS" -ge "$until" ]; do sleep 0.5; done
}
write_failed_since() { grep -q "could not be written" <(tail -n +"$1" "$LOG"); }
state_hash() { cat "$STATE"/state-*.json 2>/dev/null | sha256sum; }
state_changed_from() { [ "$(state_hash)" != "$1" ]; }

KILLED=0 TORN=0 INVALID=0 DISK=skipped LINES=0 PRODUCTIVE=0
touch "$OUT"
for i in $(seq "$KILLS"); do
    start_collector
    kill_once
    if [ "$TMPFS" = yes ] && [ "$i" = $((KILLS / 2)) ]; then
        # Disk full: the collector must say so, keep the previous files intact, and recover.
        DISK=ok
        before=$(state_hash)
        dd if=/dev/zero of="$STATE/filler" bs=4k 2>/dev/null || true
        mark=$(wc -l <"$LOG")
        start_collector
        burst
        # Restarts and injected 429s can hold the collector back for seconds: wait for the
        # outcome rather than a fixed time.
        wait_for 30 write_failed_since "$mark"
        kill_once
        write_failed_since "$mark" || DISK=no-error-logged
        after=$(state_hash)
        [ "$before" = "$after" ] || DISK=changed-while-full
        rm -f "$STATE/filler"
        # Read-only for a while, then writable again.
        mount -o remount,ro "$STATE"
        mark=$(wc -l <"$LOG")
        start_collector
        burst
        wait_for 30 write_failed_since "$mark"
        mount -o remount,rw "$STATE"
        burst
        wait_for 30 state_changed_from "$after"
        kill_once
        write_failed_since "$mark" || DISK=no-error-logged-ro
        state_changed_from "$after" || DISK=no-recovery
    fi
done

# Stop the load, then one collector with --once drains everything (faults still queued are
# consumed by its retries).
touch "$LOAD_STOP"
sleep 1
start_collector --once
for _ in $(seq "$FINAL_TIMEOUT"); do kill -0 "$COLLECTOR" 2>/dev/null || break; sleep 1; done
if kill -0 "$COLLECTOR" 2>/dev/null; then
    kill -9 "$COLLECTOR"
    echo "chaos: the final --once run did not finish in ${FINAL_TIMEOUT}s" >&2
fi
wait "$COLLECTOR" 2>/dev/null || true
state_valid || INVALID=$((INVALID + 1))

for t in "${TYPES[@]}"; do
    curl -sf "$M/_mock/accounts/acme/$t/events?servable=true&format=ndjson" >"$WORK/expected-$t.ndjson"
done
LEFTOVER=$(find "$STATE" -name '.tmp-*' | wc -l)

FAULTS=$(cat "$WORK/faults" 2>/dev/null || echo 0)
python3 - "$WORK" "$KILLED" "$TORN" "$INVALID" "$DISK" "$LEFTOVER" "$FAULTS" "$PRODUCTIVE" "$CHECKPOINT_INTERVAL" <<'EOF'
import collections, json, sys
work, kills, torn, invalid, disk, leftover, faults, productive, interval = sys.argv[1:]
expected = set()
for t in ("signinattempts", "itemusages", "auditevents"):
    with open(f"{work}/expected-{t}.ndjson") as f:
        for line in f:
            if line.strip():
                expected.add((t, json.loads(line)["uuid"]))
seen = collections.Counter()
bad = 0
with open(f"{work}/out.ndjson", errors="replace") as f:
    for line in f:
        try:
            rec = json.loads(line)
            ev = rec.get("event") or rec.get("item") or rec
            seen[(rec["event_type"], ev["uuid"])] += 1
        except (ValueError, KeyError, TypeError, AttributeError):
            bad += 1
delivered = sum(seen.values())
missing = len(expected - seen.keys())
dup = sum(n - 1 for n in seen.values() if n > 1)
unexpected = len(seen.keys() - expected)
print(f"chaos: checkpoint_interval={interval} kills={kills} kills_after_output={productive} faults={faults} expected={len(expected)} delivered={delivered} missing={missing} "
      f"duplicated={dup} unexpected={unexpected} torn_lines={torn} unparsable_lines={bad} "
      f"invalid_state_files={invalid} tmp_leftovers={leftover} disk_full={disk}")
sys.exit(1 if missing or int(invalid) or int(kills) < 20 or disk not in ("ok", "skipped") else 0)
EOF
