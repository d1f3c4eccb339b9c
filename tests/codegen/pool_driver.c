/* Exercises the C runtime's thread pool (codegen/aot/ember_runtime.c) as TVM kernels call it: every
 * task of every launch runs exactly once, at any thread count (a launch has at most 64 tasks), a
 * failing task fails its launch only, a thread runs its own contiguous share of the tasks when no
 * thread is held up, and when the launcher is held up in its first task the worker takes the rest
 * of the launcher's share from its back. Prints "ok <share of tasks run by their owner>". */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "driver_check.h"
#include "ember_runtime.h"

typedef struct { void* sync_handle; int32_t num_task; } parallel_env;
typedef int (*lambda_fn)(int task_id, parallel_env* env, void* cdata);
typedef int (*launch_fn)(lambda_fn job, void* cdata, int num_task);
extern void* __TVMBackendParallelLaunch;

#define MAX_TASKS 64

static __thread int my_thread = -1; /* the launcher's is 0; a worker's set by its first task */
static atomic_int next_thread;

typedef struct {
  atomic_int runs[MAX_TASKS];
  int ran_by[MAX_TASKS];
  atomic_int num_task;
  int fail_task;
  int slow_task; /* this task sleeps 5 ms (-1: none) */
} record;

static int job(int task_id, parallel_env* env, void* cdata) {
  record* r = (record*)cdata;
  if (my_thread < 0) my_thread = atomic_fetch_add(&next_thread, 1);
  atomic_store(&r->num_task, env->num_task);
  atomic_fetch_add(&r->runs[task_id], 1);
  r->ran_by[task_id] = my_thread;
  volatile double x = 0; /* a little work, so a task takes longer than a claim */
  for (int i = 0; i < 2000; ++i) x += i * 0.5;
  if (task_id == r->slow_task) nanosleep(&(struct timespec){0, 5000000}, NULL);
  return task_id == r->fail_task ? -1 : 0;
}

int main(void) {
  launch_fn launch = (launch_fn)__TVMBackendParallelLaunch;
  const int counts[] = {1, 2, 3, 5, 17, 40};
  long owned = 0, total = 0;
  for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); ++c) {
    int threads = counts[c];
    ember_pool* pool = ember_pool_create(threads);
    CHECK(pool && ember_pool_size(pool) == threads);
    ember_pool_make_current(pool);
    my_thread = 0;
    atomic_store(&next_thread, 1);
    for (int l = 0; l < 500; ++l) {
      record r;
      memset(&r, 0, sizeof(r));
      r.fail_task = l % 97 == 3 ? 0 : -1;
      r.slow_task = -1;
      int rc = launch(job, &r, 0);
      CHECK(rc == (r.fail_task >= 0 ? -1 : 0));
      CHECK(r.num_task >= 1 && r.num_task <= MAX_TASKS);
      CHECK(threads == 1 ? r.num_task == 1 : r.num_task >= threads || r.num_task == MAX_TASKS);
      for (int t = 0; t < r.num_task; ++t) CHECK(atomic_load(&r.runs[t]) == 1);
      for (int t = r.num_task; t < MAX_TASKS; ++t) CHECK(atomic_load(&r.runs[t]) == 0);
      if (threads == 2) { /* the launcher owns the first half of the tasks, the worker the rest */
        for (int t = 0; t < r.num_task; ++t) owned += r.ran_by[t] == (t < r.num_task / 2 ? 0 : 1);
        total += r.num_task;
      }
    }
    if (threads == 2) { /* the launcher stuck in task 0: the worker runs tasks 1.. of its share */
      int taken = 0;
      for (int l = 0; l < 20 && !taken; ++l) {
        record r;
        memset(&r, 0, sizeof(r));
        r.fail_task = -1;
        r.slow_task = 0;
        CHECK(launch(job, &r, 0) == 0);
        for (int t = 0; t < r.num_task; ++t) CHECK(atomic_load(&r.runs[t]) == 1);
        taken = 1;
        for (int t = 1; t < r.num_task; ++t) taken &= r.ran_by[t] == 1;
      }
      CHECK(taken); /* in one of 20 tries at least: the OS may hold the worker up too */
    }
    ember_pool_make_current(NULL);
    ember_pool_destroy(pool);
  }
  printf("ok %.3f\n", (double)owned / (double)total);
  return 0;
}
