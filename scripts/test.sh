#!/usr/bin/env bash
# The whole test suite: fetches and verifies the model (a no-op when present),
# then runs every unit and integration test on the real model, the real Qdrant
# Edge store and real gRPC on loopback. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/system-deps.sh
models/fetch.sh
# The Python orchestrator example's venv and stubs (a no-op when current); with
# them in place the example's integration test must run, never skip.
examples/python/setup.sh
export CONTEXT_ENGINE_REQUIRE_PYTHON_EXAMPLE=1
shared="${CONTEXT_ENGINE_SHARED_DIR:-../shared}"
if [ ! -f "$shared/reference/minilm_reference.jsonl" ]; then
  echo "note: $shared/reference/minilm_reference.jsonl not found: the reference parity test will print a skip line and pass (README: Test data)"
fi
cargo fmt --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# A real Qdrant server for the server half of the store tests (conformance,
# Edge <-> server parity, migration), when ../shared carries one and the
# caller did not point QDRANT_URL at their own server or cluster. Free
# ports, a temporary storage directory, stopped on exit.
qdrant_start="$shared/tools/qdrant/start.sh"
if [ -z "${QDRANT_URL:-}" ] && [ -f "$qdrant_start" ]; then
  qdrant_dir="$(mktemp -d "${TMPDIR:-/tmp}/context-engine-qdrant.XXXXXX")"
  read -r qdrant_http qdrant_grpc < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  qdrant_pid="$(bash "$qdrant_start" "$qdrant_dir" "$qdrant_http" "$qdrant_grpc")"
  stop_qdrant() {
    kill "$qdrant_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$qdrant_pid" 2>/dev/null || break; sleep 0.2; done
    rm -rf "$qdrant_dir"
  }
  trap stop_qdrant EXIT
  export QDRANT_URL="http://127.0.0.1:$qdrant_grpc"
  echo "qdrant: server 1.18.3 (pid $qdrant_pid) on $QDRANT_URL for the server tests"
elif [ -n "${QDRANT_URL:-}" ]; then
  echo "qdrant: server tests run against QDRANT_URL=$QDRANT_URL"
else
  echo "note: $qdrant_start not found and QDRANT_URL not set: the Qdrant-server tests will print skip lines (README: Test data)"
fi
cargo test --locked --workspace "$@"
