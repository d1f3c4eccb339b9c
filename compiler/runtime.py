"""Load an Ember-compiled model library and run it on numpy arrays (ctypes; no TVM needed).

    model = compiler.runtime.load("model.so")
    outputs = model.run({"x": np.ones((1, 3, 224, 224), np.float32)})   # {name: array}
    outputs = model(x=...)                                               # same
    model = compiler.runtime.load("model.so", profile=True)              # time every kernel call:
    model.run(...); model.profile()                                      # a compiler.profiling.Profile

Inputs are checked by name, dtype and shape, with errors that say what was expected.

Threads: a ``Model`` is safe to share: its calls are serialised by a lock (one run at a time per
instance, as the library requires; the C library itself answers a concurrent call with
``ERR_BUSY`` rather than a wrong result).  For N runs in parallel, load N ``Model``s (one per
thread): each has its own arena and thread pool, and ctypes releases the GIL during a run.
"""

from __future__ import annotations

import ctypes
import os
import re
import threading
from dataclasses import dataclass

import numpy as np

from compiler.profiling import CallProfile, Profile

try:
    from compiler import EmberError as _Base  # type: ignore[attr-defined]
except Exception:  # pragma: no cover
    _Base = Exception


class RuntimeLoadError(_Base):
    """The library cannot be loaded or called, or the inputs do not fit it."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    nbytes: int


def _dtype(name: str) -> np.dtype:
    """numpy dtype by name, including ml_dtypes' (bfloat16, float8_*, float4_e2m1fn, int4, uint4, int2,
    uint2): a library's tensors of those types are ml_dtypes arrays, one element per byte."""
    try:
        return np.dtype(name)
    except TypeError:
        try:
            import ml_dtypes
        except ImportError:
            raise RuntimeLoadError(f"the library has tensors of dtype {name}; install ml_dtypes to use them") from None
        if not hasattr(ml_dtypes, name):
            raise RuntimeLoadError(
                f"the library has tensors of dtype {name}, which neither numpy nor ml_dtypes knows"
            ) from None
        return np.dtype(getattr(ml_dtypes, name))


def _find_prefix(path: str) -> str:
    with open(path, "rb") as f:
        data = f.read()
    found = sorted(set(re.findall(rb"([A-Za-z_][A-Za-z0-9_]*)_last_error\x00", data)))
    if not found:
        raise RuntimeLoadError(f"{path} is not an Ember model library (no *_last_error symbol)")
    if len(found) > 1:
        raise RuntimeLoadError(f"{path} holds several models {found}; pass prefix=")
    return found[0].decode()


class _CallProfile(ctypes.Structure):
    """``<prefix>_call_profile`` of model.h."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("kernel", ctypes.c_char_p),
        ("num_ops", ctypes.c_int32),
        ("op_types", ctypes.POINTER(ctypes.c_char_p)),
        ("node_names", ctypes.POINTER(ctypes.c_char_p)),
        ("flops", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("calls", ctypes.c_uint64),
        ("seconds", ctypes.c_double),
        ("min_seconds", ctypes.c_double),
        ("last_start", ctypes.c_double),
        ("last_seconds", ctypes.c_double),
    ]


class _ProfileSummary(ctypes.Structure):
    """``<prefix>_profile_summary`` of model.h."""

    _fields_ = [
        ("size", ctypes.c_uint32),
        ("num_calls", ctypes.c_int32),
        ("threads", ctypes.c_int32),
        ("runs", ctypes.c_uint64),
        ("seconds", ctypes.c_double),
        ("last_run_start", ctypes.c_double),
        ("last_run_seconds", ctypes.c_double),
    ]


def _call_profile(index: int, c: _CallProfile) -> CallProfile:
    n = c.num_ops
    return CallProfile(
        index,
        c.kernel.decode(),
        tuple(c.op_types[k].decode() for k in range(n)),
        tuple(c.node_names[k].decode(errors="replace") for k in range(n)),
        c.flops,
        c.bytes,
        c.calls,
        c.seconds,
        c.min_seconds,
        c.last_start,
        c.last_seconds,
    )


class Model:
    """One instance of a compiled model (own arena and thread pool).  Calls from several threads
    are serialised by a lock (safe, but one at a time): for parallel runs create one per thread."""

    def __init__(
        self,
        path: str,
        prefix: str | None = None,
        num_threads: int = 0,
        weights_path: str | None = None,
        profile: bool = False,
    ):
        self._lock = threading.Lock()
        path = os.path.abspath(path)
        if not os.path.exists(path):
            raise RuntimeLoadError(f"model library {path} does not exist")
        self.path = path
        self.prefix = prefix or _find_prefix(path)
        try:
            self._lib = ctypes.CDLL(path)
        except OSError as exc:
            raise RuntimeLoadError(f"cannot load {path}: {exc}") from None
        self._bind()
        self.inputs = self._infos(self._fn("input_info"), self._count("num_inputs"))
        self.outputs = self._infos(self._fn("output_info"), self._count("num_outputs"))
        handle = ctypes.c_void_p()
        w = weights_path.encode() if weights_path else None
        self._check(self._fn("create_ex")(ctypes.byref(handle), int(num_threads), w), "create")
        self._handle = handle
        if profile:
            self.enable_profile()

    # plumbing -------------------------------------------------------------
    def _fn(self, name):
        try:
            return getattr(self._lib, f"{self.prefix}_{name}")
        except AttributeError:
            raise RuntimeLoadError(f"{self.path} lacks {self.prefix}_{name}") from None

    def _bind(self) -> None:
        p = ctypes.POINTER
        self._fn("last_error").restype = ctypes.c_char_p
        self._fn("create_ex").argtypes = [p(ctypes.c_void_p), ctypes.c_int, ctypes.c_char_p]
        self._fn("destroy").argtypes = [ctypes.c_void_p]
        self._fn("run").argtypes = [
            ctypes.c_void_p,
            p(ctypes.c_void_p),
            p(ctypes.c_size_t),
            ctypes.c_int,
            p(ctypes.c_void_p),
            p(ctypes.c_size_t),
            ctypes.c_int,
        ]
        for kind in ("input_info", "output_info"):
            self._fn(kind).argtypes = [
                ctypes.c_int,
                p(ctypes.c_char_p),
                p(ctypes.c_char_p),
                p(ctypes.c_int),
                p(p(ctypes.c_int64)),
                p(ctypes.c_size_t),
            ]

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            msg = self._fn("last_error")().decode(errors="replace")
            raise RuntimeLoadError(f"{self.prefix}_{what} failed (code {rc}): {msg}")

    def _count(self, name: str) -> int:
        n = ctypes.c_int()
        self._check(self._fn(name)(ctypes.byref(n)), name)
        return n.value

    def _infos(self, fn, count: int) -> list[TensorInfo]:
        infos = []
        for i in range(count):
            name, dtype = ctypes.c_char_p(), ctypes.c_char_p()
            ndim, shape, nbytes = ctypes.c_int(), ctypes.POINTER(ctypes.c_int64)(), ctypes.c_size_t()
            self._check(
                fn(
                    i,
                    ctypes.byref(name),
                    ctypes.byref(dtype),
                    ctypes.byref(ndim),
                    ctypes.byref(shape),
                    ctypes.byref(nbytes),
                ),
                "info",
            )
            infos.append(
                TensorInfo(
                    name.value.decode(),
                    _dtype(dtype.value.decode()),
                    tuple(shape[d] for d in range(ndim.value)),
                    nbytes.value,
                )
            )
        return infos

    # public ---------------------------------------------------------------
    def info(self) -> dict[str, int]:
        """arena_bytes, weight_bytes, param_count and flops (per run) of the compiled model."""
        vals = [ctypes.c_uint64() for _ in range(4)]
        fn = self._fn("model_info")
        fn.argtypes = [ctypes.POINTER(ctypes.c_uint64)] * 4
        self._check(fn(*[ctypes.byref(v) for v in vals]), "model_info")
        return dict(zip(("arena_bytes", "weight_bytes", "param_count", "flops"), (v.value for v in vals)))

    def _profile_fn(self, name):
        if not hasattr(self._lib, f"{self.prefix}_{name}"):
            raise RuntimeLoadError(f"{self.path} was compiled before libraries could be profiled; compile it again")
        return self._fn(name)

    def enable_profile(self, on: bool = True) -> None:
        """Start (or restart from zero) timing every kernel call of this instance; ``False`` stops."""
        fn = self._profile_fn("profile_enable")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int]
        with self._lock:
            self._check(fn(self._handle, int(on)), "profile_enable")

    def profile(self) -> Profile:
        """Per-call times since profiling started (``load(..., profile=True)``, ``enable_profile()``
        or ``$EMBER_PROFILE``), with each call's kernel, fused ops, nodes, FLOPs and bytes; a
        ``RuntimeLoadError`` (code 8) when profiling is off."""
        fn = self._profile_fn("profile")
        fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ProfileSummary), ctypes.POINTER(_CallProfile), ctypes.c_int]
        count = ctypes.c_int()
        self._check(self._profile_fn("num_calls")(ctypes.byref(count)), "num_calls")
        summary, calls = _ProfileSummary(), (_CallProfile * max(count.value, 1))()
        summary.size = ctypes.sizeof(_ProfileSummary)
        for c in calls:
            c.size = ctypes.sizeof(_CallProfile)
        with self._lock:
            self._check(fn(self._handle, ctypes.byref(summary), calls, count.value), "profile")
        return Profile(
            summary.runs,
            summary.seconds,
            summary.threads,
            summary.last_run_start,
            summary.last_run_seconds,
            tuple(_call_profile(i, calls[i]) for i in range(count.value)),
        )

    def run(self, feeds: dict | None = None, **kw) -> dict[str, np.ndarray]:
        """Run on ``{input name: array}``; returns ``{output name: array}`` (an output listed twice
        appears once; ``run_list`` gives one array per listed output)."""
        return {info.name: out for info, out in zip(self.outputs, self.run_list(feeds, **kw))}

    def run_list(self, feeds: dict | None = None, **kw) -> list[np.ndarray]:
        """Run on ``{input name: array}``; returns one array per output of the model, in order (an
        output listed twice comes back twice, as onnxruntime returns it)."""
        feeds = dict(feeds or {}, **kw)
        known = {i.name for i in self.inputs}
        extra = sorted(set(feeds) - known)
        if extra:
            raise RuntimeLoadError(f"unknown input(s) {extra}; the model takes {sorted(known)}")
        arrays = []
        for info in self.inputs:
            if info.name not in feeds:
                raise RuntimeLoadError(f"missing input '{info.name}' ({info.dtype}{list(info.shape)})")
            a = np.asarray(feeds[info.name])
            if a.dtype != info.dtype:
                raise RuntimeLoadError(f"input '{info.name}' has dtype {a.dtype}, expected {info.dtype}")
            if tuple(a.shape) != info.shape:
                raise RuntimeLoadError(f"input '{info.name}' has shape {tuple(a.shape)}, expected {info.shape}")
            arrays.append(np.ascontiguousarray(a))
        outs = [np.empty(info.shape, info.dtype) for info in self.outputs]
        n_in, n_out = len(arrays), len(outs)
        in_ptrs = (ctypes.c_void_p * max(n_in, 1))(*[a.ctypes.data for a in arrays])
        in_sizes = (ctypes.c_size_t * max(n_in, 1))(*[a.nbytes for a in arrays])
        out_ptrs = (ctypes.c_void_p * max(n_out, 1))(*[o.ctypes.data for o in outs])
        out_sizes = (ctypes.c_size_t * max(n_out, 1))(*[o.nbytes for o in outs])
        with self._lock:  # one run at a time per instance (the library refuses a concurrent one)
            if not self._handle:
                raise RuntimeLoadError(f"{self.path}: the model was closed")
            rc = self._fn("run")(self._handle, in_ptrs, in_sizes, n_in, out_ptrs, out_sizes, n_out)
            self._check(rc, "run")
        return outs

    __call__ = run

    # CUDA libraries (``--target cuda``) ------------------------------------
    @property
    def is_cuda(self) -> bool:
        """Whether the library runs on an NVIDIA GPU (it has ``<prefix>_run_device``)."""
        return hasattr(self._lib, f"{self.prefix}_run_device")

    def gpu_time_ms(self) -> float:
        """GPU time of the kernels of the last ``run`` (CUDA events); CUDA libraries only."""
        ms = ctypes.c_float()
        fn = self._fn("gpu_time_ms")
        fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float)]
        self._check(fn(self._handle, ctypes.byref(ms)), "gpu_time_ms")
        return ms.value

    def run_device(self, inputs: list, outputs: list) -> None:
        """Run a CUDA library on device memory: ``inputs``/``outputs`` in the library's order, each
        a device pointer (int) or an object with ``__cuda_array_interface__`` (CuPy, PyTorch,
        Numba). Queued on the instance's stream; synchronise before reading the outputs."""

        def pointer(x) -> int:
            face = getattr(x, "__cuda_array_interface__", None)
            if face is not None:
                return int(face["data"][0])
            if hasattr(x, "__dlpack__"):
                return _dlpack_cuda_pointer(x)
            return int(x)

        if len(inputs) != len(self.inputs) or len(outputs) != len(self.outputs):
            raise RuntimeLoadError(f"expected {len(self.inputs)} inputs and {len(self.outputs)} outputs")
        n_in, n_out = len(inputs), len(outputs)
        fn = self._fn("run_device")
        fn.argtypes = self._fn("run").argtypes
        in_ptrs = (ctypes.c_void_p * max(n_in, 1))(*[pointer(x) for x in inputs])
        in_sizes = (ctypes.c_size_t * max(n_in, 1))(*[i.nbytes for i in self.inputs])
        out_ptrs = (ctypes.c_void_p * max(n_out, 1))(*[pointer(x) for x in outputs])
        out_sizes = (ctypes.c_size_t * max(n_out, 1))(*[o.nbytes for o in self.outputs])
        with self._lock:
            self._check(fn(self._handle, in_ptrs, in_sizes, n_in, out_ptrs, out_sizes, n_out), "run_device")

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:  # waits for a run in progress on another thread
            if getattr(self, "_handle", None):
                self._fn("destroy")(self._handle)
                self._handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


_DL_CUDA_DEVICES = (2, 13)  # kDLCUDA, kDLCUDAManaged


def _dlpack_cuda_pointer(x) -> int:
    """The device address of a DLPack-exporting array on a CUDA device (the caller keeps ``x`` alive)."""
    capsule = x.__dlpack__()
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    tensor = ctypes.cast(get(capsule, b"dltensor"), ctypes.POINTER(_DLTensor)).contents
    if tensor.device_type not in _DL_CUDA_DEVICES:
        raise RuntimeLoadError(
            f"run_device takes arrays on a CUDA device; this one is on DLPack device type {tensor.device_type} "
            "(use run() for host arrays)"
        )
    offset = ctypes.c_uint64.from_address(ctypes.addressof(tensor) + 40).value  # DLTensor.byte_offset
    return int(tensor.data or 0) + offset


def load(
    path: str, prefix: str | None = None, num_threads: int = 0, weights_path: str | None = None, profile: bool = False
) -> Model:
    """Load ``path`` (built by ``ember compile``/``codegen.compile_graph``) as a ``Model``; ``profile``
    times every kernel call (``Model.profile()``)."""
    return Model(path, prefix, num_threads, weights_path, profile)
