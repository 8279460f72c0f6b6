#!/usr/bin/env bash
# Soak run on loopback: starts `context-engine serve` on a fresh store with
# the metrics endpoint, seeds it, drives a mixed Ingest/GetContext load for
# a bounded time with `context-load`, samples the server's resident memory,
# then stops the server with SIGTERM and checks it exits 0.
#
#   benches/soak.sh [--seconds 360] [--clients 16] [--seed-events 20000] [--ingest-share 0.2]
#
# Writes the report to benches/results/soak-<date>.json and prints it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=360 clients=16 seed_events=20000 ingest_share=0.2 users=500
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seed-events) seed_events=$2; shift 2 ;;
    --ingest-share) ingest_share=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/context-engine/target}"
cargo build --locked --bin context-engine --bin context-load
bin="$CARGO_TARGET_DIR/debug"
data=$(mktemp -d)
log="$data/server.log"
port=$((20000 + RANDOM % 20000)) metrics_port=$((40000 + RANDOM % 20000))
"$bin/context-engine" serve --listen "127.0.0.1:$port" --data-dir "$data/store" \
  --metrics-listen "127.0.0.1:$metrics_port" 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 600); do
  grep -q "context engine serving" "$log" && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done

mkdir -p benches/results
out="benches/results/soak-$(date -u +%Y-%m-%d)-${clients}c-ingest${ingest_share}.json"
"$bin/context-load" --server "http://127.0.0.1:$port" --metrics "127.0.0.1:$metrics_port" \
  --seed-events "$seed_events" --users "$users" --clients "$clients" --seconds "$seconds" \
  --ingest-share "$ingest_share" --window 60 >"$out"
# The store's size on disk at the end (segments and WAL per collection), to
# compare memory growth with data growth.
du -sm "$data/store"/*/segments "$data/store"/*/wal | sed "s|$data/store/||" >&2
kill -TERM $server
status=0
wait $server || status=$?
echo "server exit status after SIGTERM: $status" >&2
cat "$out"
[ "$status" -eq 0 ]
