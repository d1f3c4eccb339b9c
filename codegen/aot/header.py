"""The generated public header ``model.h`` (all names carry the model's prefix)."""

from __future__ import annotations

HEADER_TEMPLATE = """/* {prefix}.h - C API of the Ember-compiled model '{model}' (generated; do not edit).
 *
 * Usage:
 *   {prefix}_model* m;
 *   if ({prefix}_create(&m, 0) != {PREFIX}_OK) {{ puts({prefix}_last_error()); ... }}
 *   const void* in[{num_inputs}] = {{...}};  size_t in_bytes[{num_inputs}] = {{...}};
 *   void* out[{num_outputs}] = {{...}};       size_t out_bytes[{num_outputs}] = {{...}};
 *   {prefix}_run(m, in, in_bytes, {num_inputs}, out, out_bytes, {num_outputs});
 *   {prefix}_destroy(m);
 *
 * Every function returns {PREFIX}_OK (0) or an error code, and {prefix}_last_error() then describes
 * the error (thread-local). Buffers may have any alignment and are read/written only during
 * {prefix}_run. Thread safety: an instance runs one call at a time; a {prefix}_run (or
 * {prefix}_destroy) that finds the instance running on another thread returns {PREFIX}_ERR_BUSY at
 * once and changes nothing (it never waits, and never returns a wrong answer). To run N calls
 * concurrently, create N instances (each owns its thread pool and arena) and give each thread
 * its own, or guard one instance with a mutex.
 * Tensors are dense, row-major (C order).
 */
#ifndef {PREFIX}_H_
#define {PREFIX}_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {PREFIX}_OK 0
#define {PREFIX}_ERR_NULL_ARGUMENT 1  /* a required pointer was NULL */
#define {PREFIX}_ERR_BAD_SIZE 2       /* wrong buffer count or byte size */
#define {PREFIX}_ERR_BAD_INDEX 3      /* input/output index out of range */
#define {PREFIX}_ERR_NO_MEMORY 4
#define {PREFIX}_ERR_KERNEL 5         /* a compiled kernel reported an error */
#define {PREFIX}_ERR_WEIGHTS 6        /* the external weights file is missing or has the wrong size */
#define {PREFIX}_ERR_BUSY 7           /* the instance is running on another thread (one call at a time) */
#define {PREFIX}_ERR_NO_PROFILE 8     /* {prefix}_profile on an instance whose profiling is off */

#define {PREFIX}_NUM_INPUTS {num_inputs}
#define {PREFIX}_NUM_OUTPUTS {num_outputs}
#define {PREFIX}_ARENA_BYTES {arena_bytes}ULL

typedef struct {prefix}_model {prefix}_model;

/* Creates an instance. num_threads <= 0: $EMBER_NUM_THREADS or all cores. */
int {prefix}_create({prefix}_model** out, int num_threads);
/* Like {prefix}_create, reading weights from weights_path (NULL: the file beside the library,
 * when the model was compiled with external weights; ignored for embedded weights). */
int {prefix}_create_ex({prefix}_model** out, int num_threads, const char* weights_path);
int {prefix}_destroy({prefix}_model* model);

/* Runs the model: inputs[i] holds input_bytes[i] bytes of input i, in the order of
 * {prefix}_input_info; outputs likewise. Counts and byte sizes must match exactly. */
int {prefix}_run({prefix}_model* model, const void* const* inputs, const size_t* input_bytes,
                 int num_inputs, void* const* outputs, const size_t* output_bytes, int num_outputs);

int {prefix}_num_inputs(int* count);
int {prefix}_num_outputs(int* count);
/* Any of name/dtype/ndim/shape/nbytes may be NULL. dtype is a numpy-style name ("float32"), or an
 * ml_dtypes one for low-precision types: "bfloat16" (2 bytes), "float8_e4m3fn", "float8_e4m3fnuz",
 * "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn", "int4", "uint4", "int2",
 * "uint2" (one element per byte, as ml_dtypes arrays: sub-byte values in the low bits, signed ones
 * as two's complement of their width; nbytes is the element count). */
int {prefix}_input_info(int index, const char** name, const char** dtype, int* ndim,
                        const int64_t** shape, size_t* nbytes);
int {prefix}_output_info(int index, const char** name, const char** dtype, int* ndim,
                         const int64_t** shape, size_t* nbytes);
/* Facts about the compiled model; any pointer may be NULL. */
int {prefix}_model_info(uint64_t* arena_bytes, uint64_t* weight_bytes, uint64_t* param_count, uint64_t* flops);
/* Profiling: per-call times of an instance. Off by default (then a run reads no clock); on for
 * instances created while $EMBER_PROFILE is set (which also prints the profile to stderr on destroy),
 * or from {prefix}_profile_enable(model, 1), which (re)starts every count at zero; 0 stops and frees.
 * A call is one kernel run of the sequence; calls with the same kernel share its compiled function. */
typedef struct {{
  uint32_t size;                  /* set to sizeof({prefix}_call_profile) before a call (fields may be added) */
  const char* kernel;             /* compiled function, "<prefix>_k<N>" */
  int32_t num_ops;                /* ops fused into the call, in order: */
  const char* const* op_types;    /*   their op types ("Conv", "Add", "Relu") */
  const char* const* node_names;  /*   and graph node names */
  uint64_t flops;                 /* per call, as {prefix}_model_info counts them */
  uint64_t bytes;                 /* bytes of the call's inputs (weights included) and outputs */
  uint64_t calls;                 /* times it ran while profiling */
  double seconds;                 /* total seconds in it over those runs */
  double min_seconds;             /* its shortest single run (on a busy machine, nearer the kernel's own speed) */
  double last_start;              /* in the latest profiled run: seconds from the run's start */
  double last_seconds;            /*   and its duration */
}} {prefix}_call_profile;
typedef struct {{
  uint32_t size;                  /* set to sizeof({prefix}_profile_summary) before a call */
  int32_t num_calls;              /* calls per run */
  int32_t threads;                /* threads of the instance's pool */
  uint64_t runs;                  /* profiled runs */
  double seconds;                 /* total seconds in the call sequence over those runs */
  double last_run_start;          /* CLOCK_MONOTONIC seconds at the start of the latest profiled run */
  double last_run_seconds;
}} {prefix}_profile_summary;
int {prefix}_profile_enable({prefix}_model* model, int on);
/* Fills *summary (may be NULL) and the first min(capacity, num_calls) entries of calls (may be NULL
 * when capacity is 0); set summary->size and calls[0].size first (the array's stride is calls[0].size).
 * Returns {PREFIX}_ERR_NO_PROFILE, writing nothing, when profiling is off, {PREFIX}_ERR_BAD_SIZE for
 * a size that is not a struct's, and {PREFIX}_ERR_BUSY while the instance runs on another thread.
 * Strings are static. */
int {prefix}_profile({prefix}_model* model, {prefix}_profile_summary* summary, {prefix}_call_profile* calls,
                     int capacity);
/* The calls without an instance: their count, and call index's description (timing fields zero). */
int {prefix}_num_calls(int* count);
int {prefix}_call_info(int index, {prefix}_call_profile* out);
/* Description of the last error on this thread ("" if none). Never NULL. */
const char* {prefix}_last_error(void);

#ifdef __cplusplus
}}
#endif
#endif /* {PREFIX}_H_ */
"""


def render_header(prefix: str, model: str, num_inputs: int, num_outputs: int, arena_bytes: int) -> str:
    return HEADER_TEMPLATE.format(
        prefix=prefix,
        PREFIX=prefix.upper(),
        model=model,
        num_inputs=num_inputs,
        num_outputs=num_outputs,
        arena_bytes=arena_bytes,
    )
