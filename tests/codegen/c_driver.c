/* Test driver for an Ember model library, built by tests/codegen/test_c_api.py against model.h.
 *
 *   c_driver INPUT.bin OUTPUT.bin   (single-input, single-output model)
 *
 * Reads the input, runs the model, writes the output; checks the error codes of bad calls; then
 * runs 8 threads, each with its own instance, 50 times, and compares with the first result; then
 * 4 threads share one instance: every run returns OK with the right result or ERR_BUSY. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char** argv) {
  CHECK(argc == 3, "usage: c_driver INPUT.bin OUTPUT.bin");
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
