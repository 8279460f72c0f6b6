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
cargo test --locked --workspace "$@"
