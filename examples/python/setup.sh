#!/usr/bin/env bash
# Sets up the Python example: a virtual environment at examples/python/.venv
# with the pinned requirements, and stubs generated from our proto under
# examples/python/gen. Idempotent and quick when nothing changed: it reinstalls
# only when requirements.txt changed and regenerates only when the proto (or
# the requirements, which pin the generator) changed. Works from any cwd.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

here=examples/python
venv="$here/.venv"
gen="$here/gen"
proto_root=proto
proto="$proto_root/context_engine/v1/context_engine.proto"
python="${PYTHON:-python3}"

# sha256 of the given files, one digest for all (python3 is there anyway;
# sha256sum is not on every system).
digest() {
  "$python" - "$@" <<'PY'
import hashlib, sys
h = hashlib.sha256()
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        h.update(f.read())
print(h.hexdigest())
PY
}

venv_works() {
  [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1
}

# Debian and Ubuntu ship venv's ensurepip in a separate package; install it the
# way .ci/run installs python3 (root only), otherwise say what is missing.
install_venv_support() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    local version
    version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    echo "python example: installing python3-venv with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv \
      || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$version-venv"
  else
    echo "python example: '$python -m venv' cannot create a virtual environment with pip;" >&2
    echo "install python3-venv (e.g. sudo apt-get install python3-venv) and re-run $0" >&2
    exit 1
  fi
}

create_venv() {
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
    install_venv_support
    rm -rf "$venv"
    "$python" -m venv "$venv"
  fi
}

if ! venv_works; then
  echo "python example: creating $venv"
  create_venv
fi

requirements_sum="$(digest "$here/requirements.txt")"
stamp="$venv/.requirements.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$requirements_sum" ]; then
  echo "python example: installing $here/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  echo "$requirements_sum" >"$stamp"
fi

# Generate into a fresh folder and swap it in, so a failed run never leaves
# half a package behind.
stubs_sum="$(digest "$proto" "$here/requirements.txt")"
gen_stamp="$gen/.proto.sha256"
if [ "$(cat "$gen_stamp" 2>/dev/null)" != "$stubs_sum" ]; then
  echo "python example: generating stubs from $proto into $gen"
  tmp="$(mktemp -d "$here/.gen.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  "$venv/bin/python" -m grpc_tools.protoc -I "$proto_root" \
    --python_out="$tmp" --pyi_out="$tmp" --grpc_python_out="$tmp" "$proto"
  # Regular packages, so `from context_engine.v1 import ...` resolves here and
  # nowhere else on sys.path.
  touch "$tmp/context_engine/__init__.py" "$tmp/context_engine/v1/__init__.py"
  echo "$stubs_sum" >"$tmp/.proto.sha256"
  rm -rf "$gen"
  mv "$tmp" "$gen"
fi

echo "python example: ready ($venv/bin/python $here/chat_turn.py --help)"
