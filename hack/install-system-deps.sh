#!/usr/bin/env bash
# Install what pip cannot put into the venv: Prometheus (Debian package) for the integration
# tests, and the nvidia-pytriton wheel's tritonserver. That wheel pins numpy<2 (the project
# pins numpy 2), so it is unpacked with --no-deps into its own cache folder, which
# sloscale_runtime.triton looks in. Idempotent: each step runs only when its result is missing.
set -euo pipefail

PYTRITON_VERSION=0.7.0  # keep equal to PYTRITON_VERSION in runtime/sloscale_runtime/triton.py
CACHE="${SLOSCALE_CACHE:-$HOME/.cache/sloscale}"
PYTRITON_DIR="$CACHE/pytriton-$PYTRITON_VERSION"
PYTHON="${PYTHON:-python3}"

if command -v prometheus >/dev/null 2>&1; then
  echo "[system-deps] prometheus present: $(command -v prometheus)"
else
  echo "[system-deps] installing prometheus (Debian package)"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus >/dev/null
  # The package starts a system service on :9090; the tests start their own on free ports.
  $SUDO systemctl stop prometheus 2>/dev/null || true
fi

if [ -x "$PYTRITON_DIR/pytriton/tritonserver/bin/tritonserver" ]; then
  echo "[system-deps] tritonserver present: $PYTRITON_DIR"
else
  echo "[system-deps] unpacking nvidia-pytriton==$PYTRITON_VERSION into $PYTRITON_DIR (no deps)"
  rm -rf "$PYTRITON_DIR.partial"
  "$PYTHON" -m pip install --quiet --no-deps --target "$PYTRITON_DIR.partial" \
    "nvidia-pytriton==$PYTRITON_VERSION"
  rm -rf "$PYTRITON_DIR"
  mv "$PYTRITON_DIR.partial" "$PYTRITON_DIR"
fi
