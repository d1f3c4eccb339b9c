"""The profiler's part of the generated entry point: the static per-call table and the profile API.

``emit_call_table`` writes ``call_meta[]``, one entry per kernel call of the plan: the kernel's
function name, the fused ops' types and graph node names, the call's FLOPs and the bytes of its
inputs and outputs. ``PROFILE_API`` is the C that serves it with the timings that ``invoke`` (in
``emit_c.py``) records while profiling is on: ``<prefix>_profile_enable``, ``<prefix>_profile``,
``<prefix>_num_calls`` and ``<prefix>_call_info`` (declared in ``header.py``, described in
docs/codegen.md, "Profiling").  A call in the branch of a run-time ``If`` that a run does not take
is not counted for that run, and its ``last_start`` is -1 (no time in the latest run).
"""

from __future__ import annotations

from ..plan import Plan


def emit_call_table(lines: list[str], plan: Plan, kernel_names: list[str]) -> None:
    """``call_meta[i]``: what ``<prefix>_profile`` reports about ``plan.calls[i]`` besides its time (the
    kernel function, the fused ops' types and node names, FLOPs, and the bytes of its inputs and outputs)."""
    from .emit_c import _c_string  # late: emit_c imports this module

    for i, call in enumerate(plan.calls):
        ops = [op.op for op in call.spec.ops]
        lines.append(f"static const char* const call_ops_{i}[] = {{{', '.join(map(_c_string, ops))}}};")
        lines.append(f"static const char* const call_nodes_{i}[] = {{{', '.join(map(_c_string, call.node_names))}}};")
    lines.append(
        "typedef struct { const char* kernel; int32_t num_ops; const char* const* op_types; "
        "const char* const* node_names; uint64_t flops; uint64_t bytes; } call_meta_t;"
    )
    lines.append("static const call_meta_t call_meta[] = {")
    for i, (call, kname) in enumerate(zip(plan.calls, kernel_names)):
        moved = sum(plan.buffers[b].nbytes for b in call.inputs + call.outputs)
        lines.append(
            f"  {{{_c_string(kname)}, {len(call.spec.ops)}, call_ops_{i}, call_nodes_{i}, "
            f"{int(call.flops)}ULL, {moved}ULL}},"
        )
    if not plan.calls:
        lines.append("  {0, 0, 0, 0, 0, 0},")
    lines.append("};")


PROFILE_API = r"""
static int start_profile(@P@_model* m) {
  free(m->profile);
  m->profile = (call_timing*)calloc(NUM_CALLS ? NUM_CALLS : 1, sizeof(call_timing));
  m->profiled_runs = 0;
  m->profiled_seconds = m->run_start = m->last_run_seconds = 0;
  return m->profile ? 0 : fail(4, "%s", "out of memory for the profile", 0, 0);
}

static void print_profile(const @P@_model* m) {
  double total = 0;
  for (int i = 0; i < NUM_CALLS; ++i) total += m->profile[i].seconds;
  fprintf(stderr, "ember profile: %llu runs, %.3f ms per run in kernels\n", (unsigned long long)m->profiled_runs,
          1e3 * total / m->profiled_runs);
  for (int i = 0; i < NUM_CALLS; ++i) {
    const call_meta_t* c = &call_meta[i];
    fprintf(stderr, "  %4d %9.3f ms %5.1f%%  %s ", i, 1e3 * m->profile[i].seconds / m->profiled_runs,
            100.0 * m->profile[i].seconds / (total > 0 ? total : 1), c->kernel);
    for (int k = 0; k < c->num_ops; ++k) fprintf(stderr, "%s%s", k ? "+" : "", c->op_types[k]);
    fprintf(stderr, " (%s)\n", c->node_names[0]);
  }
}

int @P@_profile_enable(@P@_model* m, int on) {
  if (!m) return fail(1, "%s: model is NULL", "@P@_profile_enable", 0, 0);
  int idle = 0;
  if (!atomic_compare_exchange_strong(&m->in_use, &idle, 1))
    return fail(7, "%s: the instance is running on another thread", "@P@_profile_enable", 0, 0);
  int rc = 0;
  if (on) {
    rc = start_profile(m);
  } else {
    free(m->profile);
    m->profile = NULL;
  }
  atomic_store(&m->in_use, 0);
  return rc;
}

/* Structs the caller passes start with their size (sizeof in the caller's model.h): fields a newer
 * library adds are written only to callers that know them, and an older caller's array keeps its stride. */
static int struct_size(uint32_t size, const char* what) {
  if (size < sizeof(uint32_t) || size % sizeof(uint32_t))
    return fail(2, "%s: size is %lld; set it to sizeof(the struct) before the call", what, size, 0);
  return 0;
}

static void copy_out(void* dst, uint32_t size, void* full, size_t full_size) {
  *(uint32_t*)full = size;
  memcpy(dst, full, size < full_size ? size : full_size);
}

static void describe_call(int i, @P@_call_profile* out) {
  const call_meta_t* c = &call_meta[i];
  memset(out, 0, sizeof(*out));
  out->kernel = c->kernel;
  out->num_ops = c->num_ops;
  out->op_types = c->op_types;
  out->node_names = c->node_names;
  out->flops = c->flops;
  out->bytes = c->bytes;
}

int @P@_num_calls(int* count) {
  if (!count) return fail(1, "%s: count is NULL", "@P@_num_calls", 0, 0);
  *count = NUM_CALLS;
  return 0;
}

int @P@_call_info(int index, @P@_call_profile* out) {
  if (!out) return fail(1, "%s: out is NULL", "@P@_call_info", 0, 0);
  if (index < 0 || index >= NUM_CALLS)
    return fail(3, "%scall index %lld out of range (count %lld)", "", index, NUM_CALLS);
  if (struct_size(out->size, "@P@_call_info: out->size")) return 2;
  @P@_call_profile full;
  describe_call(index, &full);
  copy_out(out, out->size, &full, sizeof(full));
  return 0;
}

int @P@_profile(@P@_model* m, @P@_profile_summary* summary, @P@_call_profile* calls, int capacity) {
  if (!m) return fail(1, "%s: model is NULL", "@P@_profile", 0, 0);
  if (capacity > 0 && !calls) return fail(1, "%s: calls is NULL but capacity is %lld", "@P@_profile", capacity, 0);
  if (!m->profile)
    return fail(8, "%s: profiling is off for this instance (call @P@_profile_enable(model, 1), or set "
                "EMBER_PROFILE=1 before @P@_create)", "@P@_profile", 0, 0);
  if (summary && struct_size(summary->size, "@P@_profile: summary->size")) return 2;
  uint32_t stride = capacity > 0 ? calls[0].size : 0;
  if (capacity > 0 && struct_size(stride, "@P@_profile: calls[0].size")) return 2;
  int idle = 0;
  if (!atomic_compare_exchange_strong(&m->in_use, &idle, 1))
    return fail(7, "%s: the instance is running on another thread", "@P@_profile", 0, 0);
  if (summary) {
    @P@_profile_summary full;
    memset(&full, 0, sizeof(full));
    full.num_calls = NUM_CALLS;
    full.threads = ember_pool_size(m->pool);
    full.runs = m->profiled_runs;
    full.seconds = m->profiled_seconds;
    full.last_run_start = m->run_start;
    full.last_run_seconds = m->last_run_seconds;
    copy_out(summary, summary->size, &full, sizeof(full));
  }
  for (int i = 0; i < NUM_CALLS && i < capacity; ++i) {
    @P@_call_profile full;
    describe_call(i, &full);
    full.calls = m->profile[i].calls;
    full.seconds = m->profile[i].seconds;
    full.min_seconds = m->profile[i].min_seconds;
    full.last_start = m->profile[i].last_start;
    full.last_seconds = m->profile[i].last_seconds;
    copy_out((char*)calls + (size_t)i * stride, stride, &full, sizeof(full));
  }
  atomic_store(&m->in_use, 0);
  return 0;
}
"""
