/* Exercises the C runtime's workspace slots (codegen/aot/ember_runtime.c) as TVM kernels call them:
 * alignment and usable sizes; the first run's blocks from the heap, then each thread's stack remade
 * as large as the most it held, so that the same run again takes every block from it, each right
 * above the one before; frees popping the stack, one freed out of order popped with the block above
 * it; a larger run spilling to the heap and growing the stack once it is empty;
 * ember_workspace_release freeing it only when empty; threads that exit holding a stack (freed by
 * the thread's destructor: AddressSanitizer's leak check sees none). Prints "ok". */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "driver_check.h"
#include "ember_runtime.h"

typedef void* (*alloc_fn)(int, int, uint64_t, int, int);
typedef int (*free_fn)(int, int, void*);
extern void* __TVMBackendAllocWorkspace;
extern void* __TVMBackendFreeWorkspace;

#define HEADER EMBER_ALIGNMENT
static const uint64_t SIZES[3] = {3840, 384, 1000}; /* 1000 rounds up to 1024 */

/* One "kernel call": three nested blocks, freed innermost first; their addresses in ``got``. */
static int run(char** got) {
  alloc_fn alloc = (alloc_fn)__TVMBackendAllocWorkspace;
  free_fn release = (free_fn)__TVMBackendFreeWorkspace;
  for (int i = 0; i < 3; ++i) {
    got[i] = (char*)alloc(1, 0, SIZES[i], 2, 32);
    CHECK(got[i] && (uintptr_t)got[i] % EMBER_ALIGNMENT == 0);
    memset(got[i], i + 1, SIZES[i]); /* the whole size is usable */
  }
  for (int i = 2; i >= 0; --i) CHECK(release(1, 0, got[i]) == 0);
  return 0;
}

static int exercise(void) {
  alloc_fn alloc = (alloc_fn)__TVMBackendAllocWorkspace;
  free_fn release = (free_fn)__TVMBackendFreeWorkspace;
  char* first[3];
  char* again[3];
  char* third[3];
  CHECK(run(first) == 0); /* from the heap; the stack is then made as large as the three */
  CHECK(run(again) == 0);
  CHECK(again[1] == again[0] + 3840 + HEADER && again[2] == again[1] + 384 + HEADER); /* stacked */
  CHECK(run(third) == 0);
  CHECK(third[0] == again[0]); /* popped: the same places */

  /* a block freed under a live one stays until the one above it is freed */
  char* low = (char*)alloc(1, 0, 3840, 2, 32);
  char* high = (char*)alloc(1, 0, 384, 2, 32);
  CHECK(low == again[0] && high == again[1]);
  CHECK(release(1, 0, low) == 0);
  char* next = (char*)alloc(1, 0, 64, 2, 32);
  CHECK(next == high + 384 + HEADER); /* above ``high``: ``low`` is not the top */
  CHECK(release(1, 0, next) == 0 && release(1, 0, high) == 0);
  CHECK((char*)alloc(1, 0, 64, 2, 32) == low); /* both popped */
  CHECK(release(1, 0, low) == 0);

  /* more than the stack holds: from the heap, then the stack grows once it is empty */
  char* big = (char*)alloc(1, 0, (uint64_t)1 << 20, 2, 32);
  CHECK(big && (uintptr_t)big % EMBER_ALIGNMENT == 0);
  memset(big, 3, (size_t)1 << 20);
  char* held = (char*)alloc(1, 0, 384, 2, 32);
  CHECK(held);
  ember_workspace_release(); /* a block is live: nothing freed */
  CHECK(release(1, 0, held) == 0 && release(1, 0, big) == 0);
  char* big2 = (char*)alloc(1, 0, (uint64_t)1 << 20, 2, 32);
  char* held2 = (char*)alloc(1, 0, 384, 2, 32);
  CHECK(held2 == big2 + ((size_t)1 << 20) + HEADER); /* both on the grown stack */
  memset(big2, 4, (size_t)1 << 20);
  CHECK(release(1, 0, held2) == 0 && release(1, 0, big2) == 0);

  ember_workspace_release(); /* empty: freed; the next blocks come from the heap again */
  CHECK(run(first) == 0 && run(again) == 0);
  CHECK(again[1] == again[0] + 3840 + HEADER);
  CHECK(release(1, 0, NULL) == 0);
  CHECK(alloc(1, 0, UINT64_MAX, 2, 32) == NULL); /* a size that cannot be rounded up */
  return 0;
}

static void* thread_main(void* arg) {
  *(int*)arg = exercise();
  return NULL;
}

int main(void) {
  int results[4];
  pthread_t threads[4];
  for (int i = 0; i < 4; ++i) pthread_create(&threads[i], NULL, thread_main, &results[i]);
  for (int i = 0; i < 4; ++i) pthread_join(threads[i], NULL);
  for (int i = 0; i < 4; ++i)
    if (results[i]) return 1;
  if (exercise()) return 1;
  ember_workspace_release();
  printf("ok\n");
  return 0;
}
