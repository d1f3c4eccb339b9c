#!/usr/bin/env bash
# Installs nvcc and ptxas (CUDA 13.0) for `ember compile --target cuda`, when missing.
# No GPU or driver is needed to compile: the CUDA tests check codegen, ptxas and linking only.
#
# Source: NVIDIA's PyPI wheels, which ship the compiler binaries (Debian's nvidia-cuda-toolkit is
# 11.x, in non-free, and too old for TVM's generated code). The five wheels below form a complete
# nvcc tree under $EMBER_CUDA_HOME/nvidia/cu13 (bin/nvcc, bin/ptxas, nvvm/bin/cicc, include/);
# nvcc uses the system g++ as host compiler. Versions match the nvcc this project was built with:
# 13.5's PTX is rejected by 13.0's ptxas, so they are pinned together.
set -uo pipefail
if command -v nvcc >/dev/null && command -v ptxas >/dev/null; then
    echo "cuda toolchain: nvcc already installed ($(command -v nvcc))"
    exit 0
fi
home="${EMBER_CUDA_HOME:-/opt/ember-cuda}"
wheels=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
        nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96)
if [ ! -x "$home/nvidia/cu13/bin/nvcc" ]; then
    echo "cuda toolchain: installing ${wheels[*]} into $home"
    if ! python3 -m pip install -q --no-deps --target "$home" "${wheels[@]}"; then
        echo "cuda toolchain: pip could not install nvcc; the CUDA tests will fail on CI" >&2
        exit 0
    fi
fi
command -v g++ >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null; }
for tool in nvcc ptxas; do  # wrappers on PATH (exec keeps nvcc's own directory lookup working)
    printf '#!/bin/sh\nexec %s "$@"\n' "$home/nvidia/cu13/bin/$tool" > "/usr/local/bin/$tool" && chmod +x "/usr/local/bin/$tool"
done
[ -e /usr/local/cuda ] || ln -s "$home/nvidia/cu13" /usr/local/cuda
echo "cuda toolchain: $(nvcc --version | tail -1)"
exit 0
