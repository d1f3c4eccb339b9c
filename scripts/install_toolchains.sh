#!/usr/bin/env bash
# Installs the Debian toolchains that the aarch64 tests use (cross gcc + qemu-user), when missing.
# Best effort: without them those tests skip with a reason; everything else still runs.
set -uo pipefail
# --- CUDA toolchain (nvcc + ptxas for --target cuda): scripts/install_cuda_toolchain.sh, run at exit
# so that it runs whichever way the aarch64 part below ends ---
trap 'bash "$(dirname "$0")/install_cuda_toolchain.sh"' EXIT
# --- end of the CUDA block ---
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if [ ${#need[@]} -eq 0 ]; then
    echo "toolchains: already installed"
    exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"
echo "toolchains: installing ${need[*]}"
if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
    echo "toolchains: done"
else
    echo "toolchains: could not install ${need[*]}; the aarch64 tests will be skipped" >&2
fi
exit 0
