#!/usr/bin/env bash
# Install what pip cannot put into the venv: Prometheus (Debian package) for the integration
# tests, containerd and the CNI plugins (Debian packages) for the local cluster's real node,
# and the nvidia-pytriton wheel's tritonserver. That wheel pins numpy<2 (the project
# pins numpy 2), so it is unpacked with --no-deps into its own cache folder, which
# sloscale_runtime.triton looks in. Idempotent: each step runs only when its result is missing.
set -euo pipefail

PYTRITON_VERSION=0.7.0  # keep equal to PYTRITON_VERSION in runtime/sloscale_runtime/triton.py
CACHE="${SLOSCALE_CACHE:-$HOME/.cache/sloscale}"
PYTRITON_DIR="$CACHE/pytriton-$PYTRITON_VERSION"
PYTHON="${PYTHON:-python3}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
APT_UPDATED=""
apt_install() {  # PACKAGE...: one `apt-get update` per run, only when something is missing
  if [ -z "$APT_UPDATED" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" \
    >/dev/null
}

if command -v prometheus >/dev/null 2>&1; then
  echo "[system-deps] prometheus present: $(command -v prometheus)"
else
  echo "[system-deps] installing prometheus (Debian package)"
  apt_install prometheus
  # The package starts a system service on :9090; the tests start their own on free ports.
  $SUDO systemctl stop prometheus 2>/dev/null || true
fi

# The real node (`hack.localcluster up --real-node`): containerd with runc, and the bridge and
# host-local CNI plugins (in /usr/lib/cni). Each cluster runs its own containerd with its own
# config, root and socket under its folder; the package's system service is not used.
if command -v containerd >/dev/null 2>&1 && [ -x /usr/lib/cni/bridge ] \
    && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ]; then
  echo "[system-deps] containerd present: $(containerd --version)"
else
  echo "[system-deps] installing containerd, runc and containernetworking-plugins (Debian)"
  apt_install containerd runc containernetworking-plugins
  $SUDO systemctl disable --now containerd 2>/dev/null || true
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
