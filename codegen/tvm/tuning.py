"""Kernel tuning with TVM's MetaSchedule: ``ember tune`` searches schedules for a model's heaviest
kernels and keeps the ones that beat Ember's own; ``ember compile --tuning-db DIR`` builds a kernel
from the database wherever it holds a schedule for that kernel and this CPU.

* The **workload** of a kernel is Ember's lowering of it (``kernel.spec_to_te``: the same packed
  weight layouts, the same fused epilogue), unscheduled, as one PrimFunc (``workload``). Lowerings
  bind repeated subexpressions with TIR Lets, which TVM 0.27's FLOP estimate for MetaSchedule has
  no case for, so the workload is built with them inlined (``te_util.lets_inlined``), at tuning
  and at compile time alike: the database finds a kernel by the structure of that PrimFunc.
* The **database** is a directory in MetaSchedule's own JSON format
  (``database_workload.json``, ``database_tuning_record.json``; TVM's tools read it). A record is
  used only on a CPU of the same kind, ``mcpu``, triple and features as the one it was tuned for.
* **Kept only where it wins.** After the search, the best schedule and Ember's own are built and
  timed alternately in this process, with the same inputs, and their outputs compared; a schedule
  enters the database only where it is faster (``keep_slower`` aside) and computes the same
  values (within float rounding).
* **Measuring** goes through MetaSchedule's runners: local worker processes, or TVM's RPC runner
  (``rpc=(host, port, key)``, a tracker in front of machines of the target's kind), TVM's
  distributed engine for this; Ember has no scheduler of its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import te

from ..errors import CodegenError
from ..target import ScheduleParams
from .te_util import lets_inlined

DATABASE_FILES = ("database_workload.json", "database_tuning_record.json")  # MetaSchedule's
INDEX_FILE = "ember_kernels.json"  # Ember's: which kernels the database holds (``kernel_key``)
BUILD_TIMEOUT_S = 120.0  # per candidate kernel build


# the families of TVM's tensor intrinsics a CPU search can use (``_cpu_tensor_intrinsics``)
CPU_INTRINSIC_FAMILIES = ("x86", "arm_cpu", "riscv_cpu")


def _meta_schedule():
    """``tvm.s_tir.meta_schedule`` (its search needs psutil, cloudpickle and xgboost: the ``tune``
    extra), with only the CPU tensor intrinsics registered."""
    _cpu_tensor_intrinsics()
    import tvm.s_tir.meta_schedule as ms

    return ms


def _cpu_tensor_intrinsics() -> None:
    """Registers the CPU families of TVM's tensor intrinsics (``CPU_INTRINSIC_FAMILIES``) and marks
    their package ``tvm.s_tir.tensor_intrin`` imported without running its ``__init__``, which
    registers every target's through TVMScript, CUDA's, ROCm's and Hexagon's too; MetaSchedule's
    ``TuneContext`` imports that package on its first search. TVMScript reads the caller's stack
    and the source file of each of its frames per intrinsic, so the whole package took 27 s in a
    fresh ``python3`` that had imported Ember's compiler (CUDA's alone 12.5 s, the CPU families
    1.5 s). MetaSchedule's builder imports the package again in each of its worker processes,
    for each batch of candidates, so they run this first (``LocalBuilder``'s initializer).
    ``ember tune`` refuses CUDA, and a later import of another family
    (``tvm.s_tir.tensor_intrin.cuda``) still works."""
    import importlib
    import importlib.util
    import sys

    package = "tvm.s_tir.tensor_intrin"
    if package not in sys.modules:
        spec = importlib.util.find_spec(package)
        sys.modules[package] = importlib.util.module_from_spec(spec)
    for family in CPU_INTRINSIC_FAMILIES:
        importlib.import_module(f"{package}.{family}")


def workload(spec, params: ScheduleParams) -> tvm.IRModule:
    """The unscheduled, Let-free module of ``spec`` that MetaSchedule tunes and the database keys."""
    from .kernel import spec_to_te

    with lets_inlined():
        placeholders, outputs = spec_to_te(spec, [], params)
    func = te.create_prim_func(placeholders + outputs)
    return tvm.tirx.transform.ConvertSSA()(tvm.IRModule({"main": func}))


def _isa(target: tvm.target.Target) -> tuple:
    """What a schedule depends on in a target: its kind, CPU, triple and features."""
    attrs = target.attrs
    features = attrs.get("mattr")
    return (
        target.kind.name,
        str(attrs.get("mcpu", "")),
        str(attrs.get("mtriple", "")),
        tuple(sorted(str(f) for f in features)) if features else (),
    )


def kernel_key(spec, params: ScheduleParams) -> str:
    """A digest of what a kernel's workload is built from (its spec and the target's tile sizes,
    which choose packed layouts): compile looks a kernel up in ``INDEX_FILE`` by it before building
    the Let-free workload, so kernels never tuned cost nothing."""
    return hashlib.sha256(f"{spec!r}|{params!r}".encode()).hexdigest()[:32]


class TuningDatabase:
    """A MetaSchedule JSON database directory, plus Ember's index of the kernels it holds
    (``INDEX_FILE``: ``kernel_key`` -> kernel name and ops); ``create`` makes an empty one where
    there is none."""

    def __init__(self, path: str, create: bool = False):
        self.path = os.path.abspath(path)
        if not create and not all(os.path.isfile(os.path.join(self.path, f)) for f in DATABASE_FILES):
            raise CodegenError(
                f"{path} is not a tuning database (it needs {' and '.join(DATABASE_FILES)}; `ember tune MODEL "
                f"--db {path}` writes one)"
            )
        os.makedirs(self.path, exist_ok=True)
        self.db = _meta_schedule().database.JSONDatabase(work_dir=self.path, allow_missing=create)
        index = os.path.join(self.path, INDEX_FILE)
        self.index: dict = {}
        if os.path.isfile(index):
            with open(index) as f:
                self.index = json.load(f)

    def holds(self, key: str) -> bool:
        """Whether a kernel of ``kernel_key`` was ever kept here (for some CPU)."""
        return key in self.index

    def record(self, mod: tvm.IRModule, target: tvm.target.Target):
        """The fastest record of ``mod`` tuned for ``target``'s CPU, or None."""
        if not self.db.has_workload(mod):
            return None
        isa = _isa(target)
        records = self.db.get_top_k(self.db.commit_workload(mod), 64)
        return next((r for r in records if r.target is not None and _isa(r.target) == isa), None)

    def scheduled(self, mod: tvm.IRModule, target: tvm.target.Target) -> tvm.IRModule | None:
        """``mod`` with its recorded schedule applied, or None where there is no record for ``target``."""
        record = self.record(mod, target)
        if record is None:
            return None
        sch = tvm.s_tir.Schedule(mod)
        record.trace.apply_to_schedule(sch, remove_postproc=False)
        return sch.mod

    def add(self, mod: tvm.IRModule, record, key: str, about: dict) -> None:
        """Commit ``record`` (from another database) as a record of ``mod``, indexed under ``key``."""
        ms = _meta_schedule()
        work = self.db.commit_workload(mod)
        self.db.commit_tuning_record(
            ms.database.TuningRecord(record.trace, work, record.run_secs, record.target, record.args_info)
        )
        self.index[key] = about
        path = os.path.join(self.path, INDEX_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump(self.index, f, indent=1, sort_keys=True)
        os.replace(path + ".tmp", path)

    def __len__(self) -> int:
        return len(self.db)


@functools.lru_cache(maxsize=4)
def _open(path: str, stamp: tuple) -> TuningDatabase:
    return TuningDatabase(path)


def open_database(path: str) -> TuningDatabase:
    """The database at ``path``, read once per process while its files are unchanged."""
    files = [os.path.join(path, f) for f in (*DATABASE_FILES, INDEX_FILE)]
    stamp = tuple(os.stat(f).st_mtime_ns for f in files if os.path.exists(f))
    return _open(os.path.abspath(path), stamp)


def tuned_module(spec, params: ScheduleParams, target_json: dict, path: str) -> tvm.IRModule | None:
    """``spec``'s kernel as scheduled by the database at ``path``, or None where it has no record
    of it for this target (the caller then schedules it Ember's way)."""
    database = open_database(path)
    if not database.holds(kernel_key(spec, params)):
        return None
    return database.scheduled(workload(spec, params), tvm.target.Target(target_json))


@dataclass
class TuneOutcome:
    """What tuning one kernel gave."""

    kernel: str
    ops: str
    ember_seconds: float  # Ember's own schedule, timed here
    tuned_seconds: float | None  # MetaSchedule's best, timed here (None: no valid schedule found)
    kept: bool
    trials: int
    note: str = ""
    share: float = 0.0  # of the model's profiled time (or FLOPs), set by ``compiler.tune``


def tune_kernel(
    spec,
    name: str,
    target_json: dict,
    params: ScheduleParams,
    database: TuningDatabase,
    work_dir: str,
    trials: int,
    rpc: tuple | None = None,
    keep_slower: bool = False,
    seed: int | None = 0,
    verbose: bool = False,
    strategy: str = "evolutionary",
) -> TuneOutcome:
    """Search ``trials`` schedules of ``spec`` with MetaSchedule, then keep the best in ``database``
    where it beats Ember's own schedule (timed here, alternately) and computes the same outputs.
    ``strategy`` is MetaSchedule's search: ``evolutionary`` (its cost model picks each batch) or
    ``replay-trace`` (random samples of the design space: quicker per trial). MetaSchedule's log goes
    to ``work_dir/<name>/logs``, and to stdout only if ``verbose``."""
    import logging

    ms = _meta_schedule()
    # MetaSchedule's console handler takes this logger's level when its loggers are made (each search)
    logging.getLogger("tvm.s_tir.meta_schedule").setLevel(logging.DEBUG if verbose else logging.WARNING)
    from .kernel import _build, build_kernel_module

    ops = "+".join(op.op for op in spec.ops)
    mod = workload(spec, params)
    target = tvm.target.Target(target_json)
    runner = "local"
    if rpc is not None:
        host, port, key = rpc
        runner = ms.runner.RPCRunner(ms.runner.RPCConfig(tracker_host=host, tracker_port=int(port), tracker_key=key))
    cores = max(1, int(target_json.get("num-cores", 1)))
    # a candidate's LLVM build can pass MetaSchedule's 30 s default on a loaded machine, more so the
    # first in a fresh worker process (which imports TVM)
    builder = ms.builder.LocalBuilder(
        max_workers=cores, timeout_sec=BUILD_TIMEOUT_S, initializer=_cpu_tensor_intrinsics
    )
    search = ms.database.MemoryDatabase()
    ms.tune_tir(
        mod,
        target,
        os.path.join(work_dir, name),
        max_trials_global=trials,
        num_trials_per_iter=min(64, max(8, trials // 4)),
        builder=builder,
        runner=runner,
        database=search,
        num_tuning_cores=cores,
        seed=seed,
        strategy=strategy,
    )
    records = search.get_top_k(search.commit_workload(mod), 1)
    ember_lib, _ = build_kernel_module(spec, name, target_json, params)
    if not records:
        return TuneOutcome(name, ops, _time(ember_lib, name, mod), None, False, trials, "no valid schedule")
    sch = tvm.s_tir.Schedule(mod)
    records[0].trace.apply_to_schedule(sch, remove_postproc=False)
    # built as compile builds it (kernel._tuned, kernel._build), so the kernel timed is the one kept
    tuned_lib = _build(tvm.IRModule({"main": sch.mod["main"].with_attr("global_symbol", name)}), target, spec)
    ember_s, tuned_s, same = _compare(ember_lib, tuned_lib, name, mod, len(spec.inputs))
    kept = same and (keep_slower or tuned_s < ember_s)
    if kept:
        about = {"kernel": name, "ops": ops, "inputs": [list(shape) for shape, _ in spec.inputs]}
        database.add(mod, records[0], kernel_key(spec, params), about)
    note = "" if same else "outputs differ from Ember's schedule: not kept"
    return TuneOutcome(name, ops, ember_s, tuned_s, kept, trials, note)


def _arguments(mod: tvm.IRModule, seed: int = 0) -> list[np.ndarray]:
    """Inputs for ``mod``'s parameters (random floats, zero integers) and zeroed outputs."""
    rng = np.random.default_rng(seed)
    func = mod["main"]
    arrays = []
    for param in func.params:  # TVM 0.27: buffer-typed parameter variables
        shape = [int(d) for d in param.shape]
        dtype = str(param.dtype)
        if dtype.startswith("float"):
            arrays.append(rng.standard_normal(shape).astype(dtype))
        else:
            arrays.append(np.zeros(shape, dtype))
    return arrays


def _run(lib, name: str, arrays: list[np.ndarray]):
    dev = tvm.cpu()
    tensors = [tvm.runtime.tensor(a, dev) for a in arrays]
    lib[name](*tensors)
    return tensors


def _time(lib, name: str, mod: tvm.IRModule, rounds: int = 5) -> float:
    tensors = _run(lib, name, _arguments(mod))
    evaluator = lib.time_evaluator(name, tvm.cpu(), number=1, repeat=rounds, min_repeat_ms=20)
    return min(evaluator(*tensors).results)


def _compare(ember_lib, tuned_lib, name: str, mod: tvm.IRModule, inputs: int, rounds: int = 7):
    """(Ember's seconds, the tuned kernel's seconds, whether their outputs agree): each timed in turn,
    ``rounds`` times, the shortest kept."""
    arrays = _arguments(mod)
    outputs = len(mod["main"].params) - inputs
    ember = _run(ember_lib, name, arrays)
    tuned = _run(tuned_lib, name, arrays)
    same = True
    for a, b in zip(ember[-outputs:], tuned[-outputs:]):
        x, y = a.numpy(), b.numpy()
        scale = float(np.max(np.abs(x))) if x.size and x.dtype.kind == "f" else 0.0
        if x.dtype.kind == "f":
            same &= bool(np.allclose(x, y, rtol=1e-3, atol=1e-4 * scale + 1e-6, equal_nan=True))
        else:
            same &= bool(np.array_equal(x, y))
    times: dict[str, list] = {"ember": [], "tuned": []}
    for _ in range(rounds):
        for key, lib, tensors in (("ember", ember_lib, ember), ("tuned", tuned_lib, tuned)):
            evaluator = lib.time_evaluator(name, tvm.cpu(), number=1, repeat=3, min_repeat_ms=10)
            times[key].append(min(evaluator(*tensors).results))
    return min(times["ember"]), min(times["tuned"]), same
