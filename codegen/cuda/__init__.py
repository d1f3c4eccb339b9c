"""The CUDA backend (``--target cuda[:sm_80|sm_86|sm_89|sm_90]``); see docs/cuda.md."""
