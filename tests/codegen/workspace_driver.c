/* Exercises the C runtime's workspace slots (codegen/aot/ember_runtime.c) as TVM kernels call them:
 * alignment, a freed block handed back to the next request of its size on the same thread, other
 * sizes and large blocks not, more frees than the cache holds, and threads that exit with blocks
 * cached (freed by the thread's destructor: AddressSanitizer's leak check sees none). Prints "ok". */
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

static int exercise(void) {
  alloc_fn alloc = (alloc_fn)__TVMBackendAllocWorkspace;
  free_fn release = (free_fn)__TVMBackendFreeWorkspace;
  void* a = alloc(1, 0, 3840, 2, 32);
  CHECK(a && (uintptr_t)a % EMBER_ALIGNMENT == 0);
  memset(a, 1, 3840); /* the whole size is usable (ASan checks the bounds) */
  CHECK(release(1, 0, a) == 0);
  void* b = alloc(1, 0, 3840, 2, 32);
  CHECK(b == a); /* the same size: the cached block */
  void* c = alloc(1, 0, 384, 2, 32);
  CHECK(c && c != b && (uintptr_t)c % EMBER_ALIGNMENT == 0);
  memset(c, 2, 384);
  CHECK(release(1, 0, c) == 0 && release(1, 0, b) == 0);
  void* d = alloc(1, 0, 1000, 2, 32); /* another size: a new block */
  CHECK(d && d != a && d != c);
  CHECK(release(1, 0, d) == 0);
  void* big = alloc(1, 0, (uint64_t)1 << 20, 2, 32); /* past the cache's bound: never cached */
  CHECK(big && (uintptr_t)big % EMBER_ALIGNMENT == 0);
  memset(big, 3, (size_t)1 << 20);
  CHECK(release(1, 0, big) == 0);
  void* many[20];
  for (int i = 0; i < 20; ++i) {
    many[i] = alloc(1, 0, 64 * (uint64_t)(i + 1), 2, 32);
    CHECK(many[i]);
    memset(many[i], 4, 64 * (size_t)(i + 1));
  }
  for (int i = 0; i < 20; ++i) CHECK(release(1, 0, many[i]) == 0); /* more than the cache holds */
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
  printf("ok\n");
  return 0;
}
