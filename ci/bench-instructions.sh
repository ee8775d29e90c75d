#!/usr/bin/env bash
# Instructions per event spent in parse + normalize + encode, counted by callgrind on the
# benches of benches/encode.rs (everything under `parse_page`, the page's items encoded as a
# stream does). Times on a shared 2-core VM move by ±10% between runs; these counts repeat to
# within a few instructions, so they show what a change to the hot path did. Not a time: a
# count is only comparable with another count. Needs valgrind; prints one line per group.
#
#   ci/bench-instructions.sh                      # parse alone, then msgpack and NDJSON
#   ci/bench-instructions.sh 'msgpack::1'         # one group: 0 = ecs, 1 = ocsf, 2 = raw
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not found: install it to count instructions" >&2; exit 1; }

SAMPLES=2
ITEMS=1000 # per page, as in benches/encode.rs
KINDS=3    # every group runs one page per event type

cargo bench --quiet -p op-events --bench encode --no-run 2>/dev/null
BENCH=$(find "${CARGO_TARGET_DIR:-target}"/release/deps -maxdepth 1 -type f -executable -name 'encode-*' -printf '%T@ %p\n' |
    sort -rn | awk 'NR == 1 { print $2 }')
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

[ $# -gt 0 ] || set -- parse 'msgpack::0' 'msgpack::1' 'msgpack::2' 'ndjson::0' 'ndjson::1' 'ndjson::2'
for group in "$@"; do
    valgrind --tool=callgrind --callgrind-out-file="$OUT" --toggle-collect='*parse_page*' \
        "$BENCH" --bench "$group" --sample-count "$SAMPLES" --sample-size 1 >/dev/null 2>&1
    total=$(callgrind_annotate "$OUT" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ { gsub(",", "", $1); print $1 }')
    [[ "$total" =~ ^[1-9][0-9]*$ ]] || { echo "$group: nothing counted: no such bench group, or no function matches the toggle '*parse_page*'" >&2; exit 1; }
    echo "$group: $((total / (SAMPLES * KINDS * ITEMS))) instructions/event"
done
