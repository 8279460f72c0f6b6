#!/usr/bin/env bash
# Build the `cuda` binaries here (no GPU needed) and lay out gpu-bundle/, the
# one ignored folder scripts/gpu-check.sh needs on a lent GPU machine (which
# has no Rust, no registries and no model files):
#
#   gpu-bundle/bin/context-bench     stripped, built with --features cuda
#   gpu-bundle/bin/it                the integration-test binary (--with-tests)
#   gpu-bundle/model/                all-MiniLM-L6-v2 with the weights in F16
#   gpu-bundle/shared/reference/     minilm_reference.jsonl (parity)
#   gpu-bundle/texts.json            the benchmark texts (benches/baselines/texts.py)
#
#   scripts/gpu-bundle.sh [--release] [--with-tests]
#
# The device tool carries the working tree plus named ignored paths, 64 MiB in
# all, so the F32 weights (91 MB) cannot travel: they are rounded to F16
# (45 MB), which is what the engine computes in on CUDA anyway. Binaries are
# xz-compressed when the bundle would otherwise be over BUNDLE_LIMIT_MIB (60).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
profile=dev
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --release) profile=release ;;
    --with-tests) with_tests=1 ;;
    *) echo "usage: $0 [--release] [--with-tests]" >&2; exit 2 ;;
  esac
done
limit_mib="${BUNDLE_LIMIT_MIB:-60}"
bundle="$repo/gpu-bundle"
model_src="${CONTEXT_ENGINE_MODEL_DIR:-$repo/models/all-MiniLM-L6-v2}"
shared="${CONTEXT_ENGINE_SHARED_DIR:-$repo/../shared}"
reference="$shared/reference/minilm_reference.jsonl"

eval "$("$repo/scripts/cuda-toolchain.sh" --env)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/context-engine/target-cuda}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo_profile=()
[[ $profile == release ]] && cargo_profile=(--release)

"$repo/models/fetch.sh"
[[ -f "$reference" ]] || { echo "gpu-bundle: $reference not found (set CONTEXT_ENGINE_SHARED_DIR)" >&2; exit 1; }

start=$SECONDS
nice -n 19 cargo build --locked "${cargo_profile[@]}" --features cuda --bin context-bench
test_bin=""
if [[ $with_tests == 1 ]]; then
  test_bin="$(nice -n 19 cargo test --locked "${cargo_profile[@]}" --features cuda --test it --no-run \
    --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="it" and m.get("executable"): print(m["executable"])' | tail -n1)"
  [[ -n $test_bin ]] || { echo "gpu-bundle: no test binary found" >&2; exit 1; }
fi
echo "gpu-bundle: built in $((SECONDS - start)) s"

out_dir="$CARGO_TARGET_DIR/debug"
[[ $profile == release ]] && out_dir="$CARGO_TARGET_DIR/release"
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/model" "$bundle/shared/reference"
strip -o "$bundle/bin/context-bench" "$out_dir/context-bench"
[[ -n $test_bin ]] && strip -o "$bundle/bin/it" "$test_bin"
cp "$model_src/config.json" "$model_src/tokenizer.json" "$bundle/model/"
nice -n 19 python3 "$repo/scripts/safetensors_f16.py" "$model_src/model.safetensors" "$bundle/model/model.safetensors"
cp "$reference" "$bundle/shared/reference/"

# The benchmark texts: texts.py needs the `tokenizers` package; the baselines
# venv has it. Without one, gpu-check.sh writes them there (its python has it).
py=""
for p in "${CONTEXT_ENGINE_CACHE:-$HOME/.cache/context-engine}/baselines-venv/bin/python" python3; do
  if "$p" -c 'import tokenizers' 2>/dev/null; then py="$p"; break; fi
done
if [[ -n $py ]]; then
  (cd "$repo/benches/baselines" && nice -n 19 "$py" texts.py --out "$bundle/texts.json" --model "$model_src")
else
  echo "gpu-bundle: no python with 'tokenizers' here; gpu-check.sh will write texts.json on the GPU machine"
fi

size_mib() { du -sbL "$bundle" | awk '{printf "%.1f", $1 / 1048576}'; }
if awk -v s="$(size_mib)" -v l="$limit_mib" 'BEGIN { exit !(s > l) }'; then
  echo "gpu-bundle: $(size_mib) MiB > $limit_mib MiB; xz-compressing the binaries"
  for b in "$bundle"/bin/*; do nice -n 19 xz -6 -T2 "$b"; done
fi

{
  echo "built: $(date -u +%FT%TZ) from $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet || echo '+dirty')"
  echo "profile: $profile; CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP; $(nvcc --version | tail -n2 | head -n1)"
  echo "needs at run time: libcuda.so.1 (driver >= 580, CUDA 13.0), libcublas.so.13, libcublasLt.so.13,"
  echo "  libcurand.so.10, libnvrtc.so.13, libcudart.so.13"
  echo "model: $(basename "$model_src"), weights rounded to F16 (not the manifest's file: use --unverified-model)"
} >"$bundle/BUNDLE.txt"
(cd "$bundle" && find . -type f -printf '%10s  %p\n' | sort -k2) | tee -a "$bundle/BUNDLE.txt"
total="$(size_mib)"
echo "total: $total MiB" | tee -a "$bundle/BUNDLE.txt"
if awk -v s="$total" 'BEGIN { exit !(s > 62) }'; then
  echo "gpu-bundle: WARNING: $total MiB, with the working tree (~2 MiB) over the device tool's 64 MiB;" >&2
  echo "  drop bin/it (build without --with-tests) or use --release" >&2
fi
