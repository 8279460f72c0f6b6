#!/usr/bin/env bash
# Quick start: fetch and verify the model, build, and run the server on the
# embedded Qdrant Edge store (data in ./data, gRPC on 127.0.0.1:50051).
# Extra arguments go to `context-engine serve` (see --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/system-deps.sh
models/fetch.sh
exec cargo run --locked --bin context-engine -- serve "$@"
