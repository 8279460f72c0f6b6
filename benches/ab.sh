#!/usr/bin/env bash
# Interleaved A/B of server builds under GetContext load (benches/README.md).
#
#   benches/ab.sh [--rounds N] [--clients C] [--seconds S] [--users U]
#                 [--data-dir DIR] BINARY_A BINARY_B ...
#
# A binary given as BINARY@DIR serves DIR instead of --data-dir (each
# build on a store it seeded itself, when builds lay stores out
# differently).
# For each round and each binary (A B A B …): start `BINARY serve` on
# DIR (a store seeded beforehand, e.g. by `context-load --seed-events
# 100000 --users 500`), run 3 s of warm-up load, then the timed run with
# `--metrics`, and stop the server. Reports go to
# $OUT/<binary name>-<round>-<clients>.json (OUT defaults to a fresh
# temporary folder); one summary line per run: calls/s, p50 ms, p99 ms,
# server CPU ms per call, ok calls, error kinds. Run it from the repository
# root (the servers find models/ there); context-load comes from
# $CARGO_TARGET_DIR/debug (build it first), or from $LOAD when set.
set -euo pipefail
rounds=3 clients=32 seconds=20 users=500 data_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --data-dir) data_dir=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { sed -n 2,19p "$0"; exit 2; }
load="${LOAD:-${CARGO_TARGET_DIR:-target}/debug/context-load}"
out="${OUT:-$(mktemp -d)}"
listen=127.0.0.1:50079 metrics=127.0.0.1:9479
mkdir -p "$out"
echo "reports in $out"
for r in $(seq 1 "$rounds"); do
  for spec in "$@"; do
    bin="${spec%%@*}" dir="$data_dir"
    [ "$bin" != "$spec" ] && dir="${spec#*@}"
    [ -n "$dir" ] || { echo "no data dir for $bin: pass --data-dir or BINARY@DIR" >&2; exit 2; }
    name=$(basename "$bin")
    [ "$bin" != "$spec" ] && name="$name-$(basename "$dir")"
    "$bin" serve --data-dir "$dir" --listen "$listen" --metrics-listen "$metrics" >"$out/serve-$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 120); do grep -q "context engine serving" "$out/serve-$name.log" && break; sleep 0.5; done
    "$load" --server "http://$listen" --users "$users" --clients "$clients" --seconds 3 --ingest-share 0 >/dev/null 2>&1
    report="$out/$name-$r-$clients.json"
    "$load" --server "http://$listen" --users "$users" --clients "$clients" --seconds "$seconds" --ingest-share 0 \
      --metrics "$metrics" >"$report" 2>/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name round $r, $clients clients: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); g=d["get_context"]; print("%.1f calls/s, p50 %.1f ms, p99 %.1f ms, %.2f ms CPU/call, %d ok, errors %s" % (g["per_second"], g["p50_ms"], g["p99_ms"], d["server"]["cpu_ms_per_call"], g["ok"], g["errors"]))' "$report")"
  done
done
