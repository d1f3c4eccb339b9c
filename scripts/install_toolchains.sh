#!/usr/bin/env bash
# Installs the Debian toolchains that the aarch64 tests use (cross gcc + qemu-user), when missing.
# Best effort: without them those tests skip with a reason; everything else still runs.
set -uo pipefail
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
