/* Test driver for an Ember model library, built by tests/codegen/test_codegen_c_api.py and
 * tests/codegen/test_aarch64.py against model.h.
 *
 *   c_driver INPUT.bin OUTPUT.bin   (single-input, single-output model)
 *
 * Reads the input, runs the model, writes the output; checks the error codes of bad calls; then
 * runs 8 threads, each with its own instance, 50 times, and compares with the first result; then
 * 4 threads share one instance: every run returns OK with the right result or ERR_BUSY.
 *
 *   c_driver --io IN_PREFIX OUT_PREFIX   (any number of inputs and outputs)
 *
 * Reads input i from IN_PREFIX<i>.bin, runs the model once, writes output i to OUT_PREFIX<i>.bin
 * and prints the run's wall time: the mode for emulated targets, where every run is slow. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

static void* input;
static size_t in_bytes, out_bytes;
static void* expected;
static int runs_per_thread = 50; /* $DRIVER_RUNS overrides (emulated targets use fewer) */

static ember_model_model* shared;
static int busy_count;

static void* sharing_worker(void* arg) {
  (void)arg;
  void* out = malloc(out_bytes);
  for (int i = 0; i < runs_per_thread; ++i) {
    const void* ins[1] = {input};
    void* outs[1] = {out};
    memset(out, 0, out_bytes);
    int rc = ember_model_run(shared, ins, &in_bytes, 1, outs, &out_bytes, 1);
    CHECK(rc == EMBER_MODEL_OK || rc == EMBER_MODEL_ERR_BUSY, "shared run: code %d: %s", rc, ember_model_last_error());
    if (rc == EMBER_MODEL_OK) CHECK(memcmp(out, expected, out_bytes) == 0, "shared instance: wrong result");
    else __atomic_add_fetch(&busy_count, 1, __ATOMIC_RELAXED);
  }
  free(out);
  return NULL;
}

static void* worker(void* arg) {
  (void)arg;
  ember_model_model* m = NULL;
  CHECK(ember_model_create(&m, 1) == EMBER_MODEL_OK, "create: %s", ember_model_last_error());
  void* out = malloc(out_bytes + 3);
  void* unaligned = (char*)out + 3; /* the API accepts any alignment */
  for (int i = 0; i < runs_per_thread; ++i) {
    const void* ins[1] = {input};
    void* outs[1] = {unaligned};
    CHECK(ember_model_run(m, ins, &in_bytes, 1, outs, &out_bytes, 1) == EMBER_MODEL_OK, "run: %s",
          ember_model_last_error());
    CHECK(memcmp(unaligned, expected, out_bytes) == 0, "thread result differs");
  }
  free(out);
  ember_model_destroy(m);
  return NULL;
}

static void* read_file(const char* path, size_t bytes) {
  FILE* f = fopen(path, "rb");
  CHECK(f, "cannot open %s", path);
  void* data = malloc(bytes ? bytes : 1);
  CHECK(fread(data, 1, bytes, f) == bytes, "%s: expected %zu bytes", path, bytes);
  fclose(f);
  return data;
}

/* --io mode: every input from a file, one run, every output to a file. */
static int run_io(const char* in_prefix, const char* out_prefix) {
  int n_in = -1, n_out = -1;
  CHECK(ember_model_num_inputs(&n_in) == 0 && ember_model_num_outputs(&n_out) == 0, "num_inputs/outputs");
  const void** ins = calloc(n_in + 1, sizeof(void*));
  void** outs = calloc(n_out + 1, sizeof(void*));
  size_t* in_sizes = calloc(n_in + 1, sizeof(size_t));
  size_t* out_sizes = calloc(n_out + 1, sizeof(size_t));
  char path[4096];
  for (int i = 0; i < n_in; ++i) {
    CHECK(ember_model_input_info(i, NULL, NULL, NULL, NULL, &in_sizes[i]) == 0, "input_info %d", i);
    snprintf(path, sizeof path, "%s%d.bin", in_prefix, i);
    ins[i] = read_file(path, in_sizes[i]);
  }
  for (int i = 0; i < n_out; ++i) {
    CHECK(ember_model_output_info(i, NULL, NULL, NULL, NULL, &out_sizes[i]) == 0, "output_info %d", i);
    outs[i] = malloc(out_sizes[i] ? out_sizes[i] : 1);
  }
  ember_model_model* m = NULL;
  CHECK(ember_model_create(&m, 0) == EMBER_MODEL_OK, "create: %s", ember_model_last_error());
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int rc = ember_model_run(m, ins, in_sizes, n_in, outs, out_sizes, n_out);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  CHECK(rc == EMBER_MODEL_OK, "run: code %d: %s", rc, ember_model_last_error());
  printf("run %.3f s, %d inputs, %d outputs\n", (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec), n_in, n_out);
  for (int i = 0; i < n_out; ++i) {
    snprintf(path, sizeof path, "%s%d.bin", out_prefix, i);
    FILE* f = fopen(path, "wb");
    CHECK(f && fwrite(outs[i], 1, out_sizes[i], f) == out_sizes[i], "cannot write %s", path);
    fclose(f);
  }
  CHECK(ember_model_destroy(m) == EMBER_MODEL_OK, "destroy");
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && strcmp(argv[1], "--io") == 0) return run_io(argv[2], argv[3]);
  CHECK(argc == 3, "usage: c_driver INPUT.bin OUTPUT.bin | c_driver --io IN_PREFIX OUT_PREFIX");
  if (getenv("DRIVER_RUNS")) runs_per_thread = atoi(getenv("DRIVER_RUNS"));
  int n_in = -1, n_out = -1;
  CHECK(ember_model_num_inputs(&n_in) == 0 && n_in == 1, "expected one input");
  CHECK(ember_model_num_outputs(&n_out) == 0 && n_out == 1, "expected one output");
  const char *name, *dtype;
  int ndim;
  const int64_t* shape;
  CHECK(ember_model_input_info(0, &name, &dtype, &ndim, &shape, &in_bytes) == 0, "input_info");
  CHECK(ember_model_output_info(0, NULL, NULL, NULL, NULL, &out_bytes) == 0, "output_info");
  printf("input %s %s ndim=%d bytes=%zu\n", name, dtype, ndim, in_bytes);

  FILE* f = fopen(argv[1], "rb");
  CHECK(f, "cannot open %s", argv[1]);
  input = malloc(in_bytes);
  CHECK(fread(input, 1, in_bytes, f) == in_bytes, "short input file");
  fclose(f);

  /* error paths: every one must return a code, never crash */
  ember_model_model* m = NULL;
  CHECK(ember_model_create(NULL, 0) == EMBER_MODEL_ERR_NULL_ARGUMENT, "create(NULL)");
  CHECK(ember_model_num_inputs(NULL) == EMBER_MODEL_ERR_NULL_ARGUMENT, "num_inputs(NULL)");
  CHECK(ember_model_input_info(7, NULL, NULL, NULL, NULL, NULL) == EMBER_MODEL_ERR_BAD_INDEX, "bad index");
  CHECK(ember_model_input_info(-1, NULL, NULL, NULL, NULL, NULL) == EMBER_MODEL_ERR_BAD_INDEX, "bad index");
  CHECK(ember_model_destroy(NULL) == EMBER_MODEL_ERR_NULL_ARGUMENT, "destroy(NULL)");
  CHECK(ember_model_create(&m, 2) == EMBER_MODEL_OK, "create: %s", ember_model_last_error());
  expected = malloc(out_bytes);
  const void* ins[1] = {input};
  void* outs[1] = {expected};
  size_t wrong = in_bytes - 4;
  CHECK(ember_model_run(NULL, ins, &in_bytes, 1, outs, &out_bytes, 1) == EMBER_MODEL_ERR_NULL_ARGUMENT, "run(NULL model)");
  CHECK(ember_model_run(m, NULL, &in_bytes, 1, outs, &out_bytes, 1) == EMBER_MODEL_ERR_NULL_ARGUMENT, "run(NULL inputs)");
  CHECK(ember_model_run(m, ins, &wrong, 1, outs, &out_bytes, 1) == EMBER_MODEL_ERR_BAD_SIZE, "run(wrong size)");
  CHECK(strlen(ember_model_last_error()) > 0, "error message expected");
  CHECK(ember_model_run(m, ins, &in_bytes, 2, outs, &out_bytes, 1) == EMBER_MODEL_ERR_BAD_SIZE, "run(wrong count)");
  const void* null_ins[1] = {NULL};
  CHECK(ember_model_run(m, null_ins, &in_bytes, 1, outs, &out_bytes, 1) == EMBER_MODEL_ERR_NULL_ARGUMENT, "run(NULL input)");
  CHECK(ember_model_run(m, ins, &in_bytes, 1, outs, &out_bytes, 1) == EMBER_MODEL_OK, "run: %s", ember_model_last_error());
  CHECK(ember_model_destroy(m) == EMBER_MODEL_OK, "destroy");

  f = fopen(argv[2], "wb");
  CHECK(f && fwrite(expected, 1, out_bytes, f) == out_bytes, "cannot write %s", argv[2]);
  fclose(f);

  pthread_t threads[8];
  for (int t = 0; t < 8; ++t) CHECK(pthread_create(&threads[t], NULL, worker, NULL) == 0, "pthread_create");
  for (int t = 0; t < 8; ++t) pthread_join(threads[t], NULL);
  CHECK(ember_model_create(&shared, 1) == EMBER_MODEL_OK, "create: %s", ember_model_last_error());
  for (int t = 0; t < 4; ++t) CHECK(pthread_create(&threads[t], NULL, sharing_worker, NULL) == 0, "pthread_create");
  for (int t = 0; t < 4; ++t) pthread_join(threads[t], NULL);
  CHECK(ember_model_destroy(shared) == EMBER_MODEL_OK, "destroy");
  printf("shared instance: %d of %d runs refused as busy\n", busy_count, 4 * runs_per_thread);
  printf("ok\n");
  free(input);
  free(expected);
  return 0;
}
