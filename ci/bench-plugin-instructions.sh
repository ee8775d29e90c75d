#!/usr/bin/env bash
# Instructions per event that the plugin's own threads execute under the dlopen harness, counted
# by callgrind on the plugin bench (benches/plugin.rs: 150,000 ECS events from the in-process
# mock, pages of 1,000), split into page handling (parse + normalize + encode, everything under
# `parse_page`), checkpoint writes, and the rest (HTTP client, socket reads, runtime, queue).
# Compare the page handling with `ci/bench-instructions.sh 'msgpack::0'`, the same code alone:
# where the two counts agree, the plugin's extra time per event is the same instructions running
# slower in place, not extra work. Counts only the threads the plugin starts (not the mock's, not
# the harness's copy of each buffer). Needs valgrind; takes 2-4 minutes; prints one line.
#
#   ci/bench-plugin-instructions.sh
#   TLS=1 ci/bench-plugin-instructions.sh     # over HTTPS, as ci/bench-plugin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found: install it to count instructions" >&2; exit 1; }

cargo bench --quiet -p op-events --bench plugin --no-run 2>/dev/null
BENCH=$(find "${CARGO_TARGET_DIR:-target}"/release/deps -maxdepth 1 -type f -executable -name 'plugin-*' -printf '%T@ %p\n' |
    sort -rn | awk 'NR == 1 { print $2 }')
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT

valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$DIR/cg" \
    "$BENCH" --bench >"$DIR/bench.txt" 2>/dev/null
events=$(awk '/^plugin: / { print $2; exit }' "$DIR/bench.txt")
[ -n "$events" ] || { echo "the plugin bench printed no event count" >&2; exit 1; }

# Inclusive count of the first line naming function $2 in annotation $1 (0 if none does).
inclusive() {
    awk -v f="$2 [" 'index($0, f) && !n++ { gsub(",", "", $1); print $1 } END { if (!n) print 0 }' "$1"
}

total=0 pages=0 checkpoints=0
for file in "$DIR"/cg-*; do
    callgrind_annotate --inclusive=yes --threshold=100 "$file" >"$DIR/annotated" 2>/dev/null
    # A thread the plugin started runs its thread_start from the loaded library, not the bench.
    start=$(awk '/Thread>::new::thread_start \[/ && !n++ { print $NF }' "$DIR/annotated")
    [[ $start == */onepassword.so] ]] || continue
    total=$((total + $(awk '/^totals:/ { print $2; exit }' "$file")))
    pages=$((pages + $(inclusive "$DIR/annotated" 'op_events_input::json::parse::parse_page')))
    checkpoints=$((checkpoints + $(inclusive "$DIR/annotated" 'op_events_input::checkpoint::Store::save')))
done
echo "plugin threads: $((total / events)) instructions/event over $events events: page handling" \
    "$((pages / events)), checkpoint writes $((checkpoints / events)) (paced by wall time, so more" \
    "frequent under valgrind than in a real run), the rest" \
    "$(((total - pages - checkpoints) / events)) (HTTP client, socket reads, runtime, queue)"
