#!/usr/bin/env bash
# Embedding baselines side by side with our engine, in one run:
# sentence-transformers on PyTorch, ONNX Runtime fp32 (exported from the same
# weights) and `context-bench embed`, same texts, same thread count.
#
#   bash benches/baselines/run.sh --threads 2 [--skip-ours] [--out FILE] [--ours-cmd CMD]
#
# Sets up (or reuses) a venv with the pinned requirements.txt under
# ${CONTEXT_ENGINE_CACHE:-~/.cache/context-engine}/baselines-venv, fetches the
# model if needed, then runs compare.py with every argument passed through.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${CONTEXT_ENGINE_CACHE:-$HOME/.cache/context-engine}"
venv="$cache/baselines-venv"
requirements="$here/requirements.txt"
python="${PYTHON:-python3}"
export CONTEXT_ENGINE_CACHE="$cache"

"$repo/models/fetch.sh"

venv_works() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1
}

# Reinstall only when requirements.txt changed since the last good install.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if ! venv_works || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if ! venv_works; then
    echo "baselines: creating $venv"
    mkdir -p "$cache"
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
  echo "baselines: installing $requirements (torch pulls ~3 GB of CUDA wheels; a few minutes)"
  start=$SECONDS
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --progress-bar off -r "$requirements"
  echo "$want" >"$stamp"
  echo "baselines: installed in $((SECONDS - start)) s; venv is $(du -sh "$venv" | cut -f1)"
fi

cd "$repo"
exec "$venv/bin/python" "$here/compare.py" "$@"
