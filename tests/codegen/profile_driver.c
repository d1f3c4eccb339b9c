/* The profiling API of model.h from C, built by tests/codegen/test_profile.py.
 *
 *   profile_driver   (single-input, single-output model; the input is zeros)
 *
 * Checks: ember_model_profile refuses an instance whose profiling is off (ERR_NO_PROFILE, nothing
 * written); call_info and num_calls work without an instance; after profile_enable(m, 1) and 3 runs
 * every call ran 3 times; capacity 0 asks for the summary only; profile_enable(m, 0) turns it off
 * again. Then, with EMBER_PROFILE=1 set before create, destroy prints the profile to stderr.
 * Prints "calls N" and one "call I KERNEL OPS" line per call on stdout. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(1); } } while (0)

static void run(ember_model_model* m, const void* in, size_t in_bytes, void* out, size_t out_bytes) {
  const void* ins[1] = {in};
  void* outs[1] = {out};
  CHECK(ember_model_run(m, ins, &in_bytes, 1, outs, &out_bytes, 1) == EMBER_MODEL_OK, "run: %s",
        ember_model_last_error());
}

int main(void) {
  size_t in_bytes, out_bytes;
  CHECK(ember_model_input_info(0, NULL, NULL, NULL, NULL, &in_bytes) == 0, "input_info");
  CHECK(ember_model_output_info(0, NULL, NULL, NULL, NULL, &out_bytes) == 0, "output_info");
  void* in = calloc(1, in_bytes);
  void* out = malloc(out_bytes);
  int n = -1;
  CHECK(ember_model_num_calls(&n) == EMBER_MODEL_OK && n > 0, "num_calls gave %d", n);
  CHECK(ember_model_num_calls(NULL) == EMBER_MODEL_ERR_NULL_ARGUMENT, "num_calls(NULL)");
  ember_model_call_profile* calls = calloc((size_t)n, sizeof(*calls));
  ember_model_call_profile info;
  info.size = 0;
  CHECK(ember_model_call_info(0, &info) == EMBER_MODEL_ERR_BAD_SIZE, "call_info with size 0");
  info.size = sizeof(info);
  CHECK(ember_model_call_info(n, &info) == EMBER_MODEL_ERR_BAD_INDEX, "call_info past the end");
  CHECK(ember_model_call_info(-1, &info) == EMBER_MODEL_ERR_BAD_INDEX, "call_info(-1)");
  CHECK(ember_model_call_info(0, NULL) == EMBER_MODEL_ERR_NULL_ARGUMENT, "call_info(0, NULL)");
  CHECK(ember_model_call_info(0, &info) == EMBER_MODEL_OK && info.num_ops >= 1 && info.calls == 0, "call_info(0)");

  ember_model_model* m;
  CHECK(ember_model_create(&m, 1) == EMBER_MODEL_OK, "create: %s", ember_model_last_error());
  run(m, in, in_bytes, out, out_bytes);
  ember_model_profile_summary summary;
  memset(&summary, 0xab, sizeof(summary));
  summary.size = sizeof(summary);
  for (int i = 0; i < n; ++i) calls[i].size = sizeof(*calls);
  int rc = ember_model_profile(m, &summary, calls, n);
  CHECK(rc == EMBER_MODEL_ERR_NO_PROFILE, "profile with profiling off returned %d", rc);
  CHECK(strstr(ember_model_last_error(), "profiling is off"), "message: %s", ember_model_last_error());
  CHECK(summary.num_calls == (int32_t)0xabababab && calls[0].kernel == NULL, "profile wrote while off");
  CHECK(ember_model_profile(NULL, &summary, calls, n) == EMBER_MODEL_ERR_NULL_ARGUMENT, "profile(NULL)");

  CHECK(ember_model_profile_enable(m, 1) == EMBER_MODEL_OK, "profile_enable");
  CHECK(ember_model_profile(m, &summary, NULL, 0) == EMBER_MODEL_OK && summary.runs == 0, "fresh profile");
  CHECK(ember_model_profile(m, &summary, NULL, 1) == EMBER_MODEL_ERR_NULL_ARGUMENT, "NULL calls, capacity 1");
  summary.size = 3;
  CHECK(ember_model_profile(m, &summary, NULL, 0) == EMBER_MODEL_ERR_BAD_SIZE, "summary size 3");
  summary.size = sizeof(summary);
  for (int i = 0; i < 3; ++i) run(m, in, in_bytes, out, out_bytes);
  CHECK(ember_model_profile(m, &summary, calls, n) == EMBER_MODEL_OK, "profile: %s", ember_model_last_error());
  CHECK(summary.runs == 3 && summary.num_calls == n && summary.threads == 1, "summary %llu runs %d calls %d threads",
        (unsigned long long)summary.runs, summary.num_calls, summary.threads);
  double in_calls = 0;
  printf("calls %d\n", n);
  for (int i = 0; i < n; ++i) {
    CHECK(calls[i].calls == 3 && calls[i].seconds >= 0 && calls[i].kernel, "call %d ran %llu times", i,
          (unsigned long long)calls[i].calls);
    in_calls += calls[i].seconds;
    printf("call %d %s", i, calls[i].kernel);
    for (int k = 0; k < calls[i].num_ops; ++k) printf("%c%s", k ? '+' : ' ', calls[i].op_types[k]);
    printf("\n");
  }
  CHECK(in_calls <= summary.seconds, "calls took %g s of a %g s total", in_calls, summary.seconds);

  /* a caller built against a shorter struct (here: up to min_seconds) gets that prefix, at its stride */
  size_t old_size = offsetof(ember_model_call_profile, min_seconds);
  size_t count = n > 0 && n < 1000000 ? (size_t)n : 1;
  unsigned char* old = malloc(count * old_size + 8);
  memset(old, 0x5a, count * old_size + 8);
  for (int i = 0; i < n; ++i) *(uint32_t*)(old + i * old_size) = (uint32_t)old_size;
  CHECK(ember_model_profile(m, NULL, (ember_model_call_profile*)old, n) == EMBER_MODEL_OK, "old-size profile");
  for (int i = 0; i < n; ++i) {
    ember_model_call_profile got;
    memset(&got, 0, sizeof(got));
    memcpy(&got, old + i * old_size, old_size);
    CHECK(got.size == old_size && got.calls == 3 && got.seconds == calls[i].seconds, "old-size call %d", i);
    CHECK(!strcmp(got.kernel, calls[i].kernel), "old-size call %d kernel", i);
  }
  for (int k = 0; k < 8; ++k) CHECK(old[count * old_size + k] == 0x5a, "wrote past an old-size array");
  free(old);
  CHECK(ember_model_profile_enable(m, 0) == EMBER_MODEL_OK, "profile_enable(0)");
  CHECK(ember_model_profile(m, &summary, calls, n) == EMBER_MODEL_ERR_NO_PROFILE, "off again");
  CHECK(ember_model_destroy(m) == EMBER_MODEL_OK, "destroy");

  setenv("EMBER_PROFILE", "1", 1);
  CHECK(ember_model_create(&m, 1) == EMBER_MODEL_OK, "create with EMBER_PROFILE");
  run(m, in, in_bytes, out, out_bytes);
  run(m, in, in_bytes, out, out_bytes);
  CHECK(ember_model_destroy(m) == EMBER_MODEL_OK, "destroy with EMBER_PROFILE");
  free(calls);
  free(in);
  free(out);
  return 0;
}
