#!/usr/bin/env bash
# One GPU check, for a lent CUDA machine with no Rust, no registries and no
# network. Needs gpu-bundle/ (scripts/gpu-bundle.sh, carried as an ignored
# path); reads nothing else but this repository. Writes into $OUT (default
# ./gpu-out): nvidia-smi.txt, parity-test.txt, ours-cuda.json,
# ours-cuda-b128.json, pytorch-cuda.json, gpu-check.json (summary),
# gpu-check.log. Every step has its own time limit; the whole stays under
# ~6 minutes even when each step runs into its limit (typically ~1-2).
#
#   bash scripts/gpu-check.sh
#
# Device tool: run(command="bash scripts/gpu-check.sh", carry=["gpu-bundle"], timeout_s=480)
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bundle="$repo/gpu-bundle"
export OUT="${OUT:-$repo/gpu-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
started=$SECONDS
step() { echo; echo "== [$((SECONDS - started)) s] $*"; }
status=()  # name=result lines for the summary

step "machine"
nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" || echo "nvidia-smi failed"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv 2>&1 | tee -a "$OUT/nvidia-smi.txt"
command -v nvcc >/dev/null && nvcc --version | tail -n2
[[ -f "$bundle/BUNDLE.txt" ]] && cat "$bundle/BUNDLE.txt"
if [[ ! -d "$bundle/bin" ]]; then
  echo "gpu-bundle/ is missing: build it with scripts/gpu-bundle.sh and carry it"
  exit 1
fi

# Binaries may arrive xz-compressed (gpu-bundle.sh does that when it must).
bin="/tmp/gpu-check-bin"
mkdir -p "$bin"
for f in "$bundle"/bin/*; do
  name="$(basename "$f" .xz)"
  if [[ $f == *.xz ]]; then
    xz -dc "$f" >"$bin/$name" 2>/dev/null ||
      python3 -c 'import lzma,sys,shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$f" "$bin/$name"
  else
    cp "$f" "$bin/$name"
  fi
  chmod +x "$bin/$name"
done

# Our binaries link libcuda.so.1 (the driver's) and CUDA 13 libraries:
# cuBLAS, cuRAND, NVRTC, the runtime. Look for them in the toolkit and in the
# nvidia-* wheels of the machine's PyTorch.
step "shared libraries"
dirs=()
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [[ -d $d ]] && dirs+=("$d")
done
while IFS= read -r d; do [[ -d $d ]] && dirs+=("$d"); done < <(
  python3 - <<'PY' 2>/dev/null
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        print(d)
PY
)
LD_LIBRARY_PATH="$(IFS=:; echo "${dirs[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
LD_LIBRARY_PATH="${LD_LIBRARY_PATH#:}"
export LD_LIBRARY_PATH
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
ldd "$bin/context-bench" | grep -E 'cuda|cublas|curand|nvrtc|not found'
if ldd "$bin/context-bench" | grep -q 'not found'; then
  echo "missing libraries: the binaries cannot start"
  status+=("libraries=missing")
fi

export CONTEXT_ENGINE_MODEL_DIR="$bundle/model"
export CONTEXT_ENGINE_SHARED_DIR="$bundle/shared"
export RUST_LOG="${RUST_LOG:-warn}"
texts="$bundle/texts.json"
if [[ ! -f $texts ]]; then
  texts="/tmp/gpu-check-texts.json"
  (cd "$repo/benches/baselines" && timeout 60 python3 texts.py --out "$texts" --model "$bundle/model") ||
    echo "could not write the benchmark texts"
fi

step "parity test on cuda (tests/it/parity.rs, f16, min cosine >= 0.999)"
if [[ -x "$bin/it" ]]; then
  timeout 120 "$bin/it" --exact parity::cuda_f16_matches_the_reference --nocapture 2>&1 | tee "$OUT/parity-test.txt"
  rc=${PIPESTATUS[0]}
  if grep -q 'skipped: no CUDA device' "$OUT/parity-test.txt"; then
    status+=("parity_test=skipped (no CUDA device)")
  else
    status+=("parity_test=$([[ $rc == 0 ]] && echo passed || echo "failed rc=$rc")")
  fi
else
  echo "no test binary in the bundle (gpu-bundle.sh --with-tests); context-bench's parity figure below stands in"
  status+=("parity_test=not bundled")
fi

bench() { # name, extra args...
  local name="$1"
  shift
  timeout 150 "$bin/context-bench" embed --device cuda --unverified-model --texts "$texts" \
    --reference "$bundle/shared/reference/minilm_reference.jsonl" --passes 3 --queries 200 --json "$@" \
    >"$OUT/$name.json" 2>"$OUT/$name.err"
  local rc=$?
  cat "$OUT/$name.json"
  tail -n 20 "$OUT/$name.err"
  status+=("$name=$([[ $rc == 0 ]] && echo ok || echo "failed rc=$rc")")
}
step "context-bench embed --device cuda --batch 32 (short texts, 256-token texts, single queries, parity)"
bench ours-cuda --batch 32
step "context-bench embed --device cuda --batch 128"
bench ours-cuda-b128 --batch 128

step "PyTorch sentence-transformers on cuda (f16), same texts"
if python3 -c 'import torch, sentence_transformers; assert torch.cuda.is_available()' 2>/dev/null; then
  (cd "$repo/benches/baselines" && timeout 150 python3 pytorch_bench.py --device cuda --texts "$texts" \
    --model "$bundle/model" --batch 32 --passes 3 --queries 200 >"$OUT/pytorch-cuda.json" 2>"$OUT/pytorch-cuda.err")
  rc=$?
  cat "$OUT/pytorch-cuda.json"
  tail -n 20 "$OUT/pytorch-cuda.err"
  status+=("pytorch-cuda=$([[ $rc == 0 ]] && echo ok || echo "failed rc=$rc")")
else
  echo "skipped: python3 has no torch with CUDA and sentence-transformers"
  status+=("pytorch-cuda=skipped")
fi
rm -f "$OUT"/*.err

step "summary"
printf '%s\n' "${status[@]}" | python3 -c '
import json, os, sys
out = os.environ["OUT"]
def load(name):
    try:
        with open(os.path.join(out, name + ".json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except Exception:
        return None
status = dict(l.strip().split("=", 1) for l in sys.stdin if "=" in l)
ours, torch = load("ours-cuda"), load("pytorch-cuda")
summary = {"status": status, "ours_cuda_b32": ours, "ours_cuda_b128": load("ours-cuda-b128"), "pytorch_cuda_b32": torch}
p = (ours or {}).get("parity_min_cosine")
summary["parity_ok"] = p is not None and p >= 0.999
if ours and torch:
    summary["ratios_ours_over_pytorch"] = {
        k: (ours[k] / torch[k] if "per_s" in k else torch[k] / ours[k])
        for k in ("short_texts_per_s", "long_texts_per_s", "query_p50_ms", "query_p99_ms") if ours.get(k) and torch.get(k)
    }
json.dump(summary, open(os.path.join(out, "gpu-check.json"), "w"), indent=2)
print(json.dumps(summary, indent=2))
'
echo "done in $((SECONDS - started)) s"
