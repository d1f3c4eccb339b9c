#!/usr/bin/env bash
# Installs the Debian toolchains that the aarch64 tests use, when missing: the cross gcc with its
# binutils (aarch64-linux-gnu-objdump reads the NEON code) and arm64 libc, and qemu-user.
# Locally best effort: without them tests/codegen/test_aarch64.py skips with a reason. With CI=true
# a failed install exits 1, and those tests fail rather than skip.
set -uo pipefail
# --- CUDA toolchain (nvcc + ptxas for --target cuda): scripts/install_cuda_toolchain.sh, run at exit
# so that it runs whichever way the aarch64 part below ends ---
trap 'bash "$(dirname "$0")/install_cuda_toolchain.sh"' EXIT
# --- end of the CUDA block ---
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v aarch64-linux-gnu-objdump >/dev/null || need+=(binutils-aarch64-linux-gnu)
[ -d /usr/aarch64-linux-gnu/lib ] || need+=(libc6-dev-arm64-cross)
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
elif [ "${CI:-}" = "true" ]; then
    echo "toolchains: could not install ${need[*]}; the aarch64 tests need them on CI" >&2
    exit 1
else
    echo "toolchains: could not install ${need[*]}; the aarch64 tests will be skipped" >&2
fi
exit 0
