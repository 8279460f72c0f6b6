#!/usr/bin/env bash
# Installs the one system library the engine uses when it is there: OpenBLAS
# (Debian's libopenblas0-pthread), opened at run time by the CPU forward pass
# for its matrix products (about 3× faster than the portable kernels on our
# machines). Nothing is needed to build; without it the engine runs on the
# portable kernels and says so in its start-up log. Idempotent; a failure to
# install is a warning, not an error. Set CONTEXT_ENGINE_SKIP_SYSTEM_DEPS=1 to
# skip.
set -uo pipefail

if [ "${CONTEXT_ENGINE_SKIP_SYSTEM_DEPS:-0}" = "1" ]; then
  exit 0
fi
if ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so\.0'; then
  echo "system deps: OpenBLAS is installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: OpenBLAS (libopenblas.so.0) not found and no apt-get here; install OpenBLAS with your package manager for faster embedding (the portable kernels are used meanwhile)"
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "warning: OpenBLAS not found and not root: run 'apt-get install libopenblas0-pthread' for faster embedding"
    exit 0
  fi
fi
echo "system deps: installing libopenblas0-pthread (apt)"
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -q --no-install-recommends libopenblas0-pthread >/dev/null 2>&1; then
  $sudo apt-get update -q >/dev/null 2>&1
  $sudo apt-get install -y -q --no-install-recommends libopenblas0-pthread >/dev/null 2>&1 \
    || echo "warning: could not install libopenblas0-pthread; the portable kernels will be used"
fi
exit 0
