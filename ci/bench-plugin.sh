#!/usr/bin/env bash
# Benchmark the Fluent Bit plugin under the dlopen harness (release build): plugin CPU per event
# from HTTP response to Fluent Bit buffer (150,000 events from the in-process mock, ECS, request
# budget off), and the collect callback's latency with a full queue (120 calls, each after the
# collector refilled the queue), then the same pages fetched, encoded and parsed one at a time on
# one thread with the plugin's client and encoder, to show what the network part costs alone,
# and the collector threads' minor page faults per 1,000 events. Prints the figures. Not a
# pass/fail test.
#
#   ci/bench-plugin.sh
#   GZIP=1 ci/bench-plugin.sh      # the mock sends its pages gzip-compressed
#   GZIP=1 COMPRESSION=none ci/bench-plugin.sh   # ... unless the plugin asks for them as they are
#   TLS=1 ci/bench-plugin.sh       # over HTTPS (the real API is HTTPS only)
#   LIMIT=100 ci/bench-plugin.sh   # pages of 100 events (1,000 by default, the most the API serves)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --quiet -p op-events --bench plugin 2>&1 | grep -E "^(plugin|collect|parts)"
