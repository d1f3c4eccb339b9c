/* Ember's C runtime: what TVM-generated kernels call, and nothing else.
 *
 *  - TVMBackendParallelLaunch over a per-instance pthread pool (idle workers spin for EMBER_SPIN_US,
 *    then sleep; each thread starts on its own range of a launch's tasks);
 *  - TVMBackendAllocWorkspace / TVMBackendFreeWorkspace as 64-byte aligned blocks of a per-thread
 *    stack that grows to the most the thread holds at once;
 *  - TVMFFIErrorSetRaisedFromCStrParts storing the message in a thread-local buffer;
 *  - ember_amx_ready, which AMX kernels call first: Linux lets a process use the AMX tile data only
 *    after it asks (arch_prctl ARCH_REQ_XCOMP_PERM), once for all its threads.
 *
 * TVM objects reach the first two through weak function-pointer slots
 * (__TVMBackendParallelLaunch, ...). This file gives the slots strong, initialised definitions,
 * which the linker prefers over the objects' weak NULL ones, so no constructor ordering matters.
 * The pool used by a launch is the one the calling thread made current (thread-local), so several
 * instances may run concurrently on different threads; a launch from inside a worker runs serially. */
#define _GNU_SOURCE
#include "ember_runtime.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__linux__)
#include <sys/syscall.h>
#endif

typedef struct { void* sync_handle; int32_t num_task; } ember_parallel_env;
typedef int (*ember_parallel_lambda)(int task_id, ember_parallel_env* env, void* cdata);

struct ember_pool {
  int num_threads; /* including the launching thread */
  pthread_t* workers;
  pthread_mutex_t mutex;
  pthread_cond_t wake;
  atomic_int generation; /* bumped once per launch (wakes workers) */
  atomic_int pending;    /* tasks not yet finished in the current launch */
  struct ember_range* ranges; /* one per thread: the tasks of the current launch it has not handed out */
  atomic_int failed;
  atomic_int stop;
  uint64_t spin_ns; /* how long an idle worker spins before sleeping */
  ember_parallel_lambda job;
  void* job_data;
  ember_parallel_env env;
  struct ember_worker { ember_pool* pool; int thread; }* worker_args;
};

/* The tasks [begin, end) of one thread's share of a launch that no thread has claimed yet, packed
 * into one word (begin in the low half): its owner claims from the front, the others from the back,
 * each with a compare-and-swap. A range has a cache line of its own, so the owner's claims stay in
 * its core's cache; another core touches it only to take what is left at the end of a launch. */
struct ember_range {
  _Alignas(64) _Atomic uint64_t tasks;
};

static __thread ember_pool* current_pool;
static __thread int inside_worker;
static __thread char error_text[1024];

/* A worker waits for the next launch spinning for EMBER_SPIN_US microseconds (WORKER_SPIN_US by
 * default), then sleeps until woken. A count of pause instructions is no budget: a pause takes 10 ns
 * on one Xeon and 140 cycles on others, and 20,000 of them (0.2 ms there) let the worker fall asleep
 * inside a run; waking it again, on a virtual machine whose idle virtual CPUs the host deschedules,
 * doubled SqueezeNet's 2-thread latency in the first runs after an idle pause (8.2-9.9 ms against
 * 3.6-4.0 once warm; onnxruntime 2.7-3.2 either way). The launcher spins LAUNCHER_SPIN_ROUNDS
 * pauses for the workers' last tasks before yielding its core (matters when cores are shared). */
#define WORKER_SPIN_US 5000
#define LAUNCHER_SPIN_ROUNDS 2000
#define TASKS_PER_THREAD 16
#define MAX_TASKS 64

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

void ember_set_error(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(error_text, sizeof(error_text), fmt, args);
  va_end(args);
}

const char* ember_get_error(void) { return error_text; }

void* ember_aligned_alloc(size_t nbytes) {
  if (nbytes > SIZE_MAX - EMBER_ALIGNMENT) return NULL; /* rounding up would wrap */
  size_t rounded = (nbytes + EMBER_ALIGNMENT - 1) / EMBER_ALIGNMENT * EMBER_ALIGNMENT;
  if (rounded == 0) rounded = EMBER_ALIGNMENT;
  void* ptr = NULL;
  if (posix_memalign(&ptr, EMBER_ALIGNMENT, rounded) != 0) return NULL;
  memset(ptr, 0, rounded);
  return ptr;
}

void ember_aligned_free(void* ptr) { free(ptr); }

void ember_bind_tensor(ember_dl_tensor* tensor, ember_ffi_any* arg, void* data, int32_t ndim,
                       const int64_t* shape, uint8_t code, uint8_t bits) {
  tensor->data = data;
  tensor->device.device_type = 1; /* kDLCPU */
  tensor->device.device_id = 0;
  tensor->ndim = ndim;
  tensor->dtype.code = code;
  tensor->dtype.bits = bits;
  tensor->dtype.lanes = 1;
  tensor->shape = shape;
  tensor->strides = NULL;
  tensor->byte_offset = 0;
  arg->type_index = EMBER_FFI_DLTENSOR_PTR;
  arg->pad = 0;
  arg->v.v_ptr = tensor;
}

/* ---------------------------------------------------------------- thread pool */

static uint64_t pack_range(uint32_t begin, uint32_t end) { return (uint64_t)end << 32 | begin; }

/* The first task of thread ``t``'s share of a launch: thread t owns [first_task(t), first_task(t + 1)). */
static int first_task(const ember_pool* pool, int t) { return t * pool->env.num_task / pool->num_threads; }

/* Claims the task at the front (``front``) or back of ``range``; -1 once it is empty. */
static int claim(struct ember_range* range, int front) {
  uint64_t seen = atomic_load_explicit(&range->tasks, memory_order_acquire);
  for (;;) {
    uint32_t begin = (uint32_t)seen, end = (uint32_t)(seen >> 32);
    if (begin >= end) return -1;
    uint64_t rest = front ? pack_range(begin + 1, end) : pack_range(begin, end - 1);
    if (atomic_compare_exchange_weak_explicit(&range->tasks, &seen, rest, memory_order_acq_rel,
                                              memory_order_acquire))
      return (int)(front ? begin : end - 1);
  }
}

/* Runs tasks of the current launch until none is left unclaimed: first the calling thread's own
 * range from its front, then the others' from their backs. TVM gives task i the i-th contiguous
 * slice of a parallel loop, and thread t owns the t-th contiguous range of tasks in every launch, so
 * consecutive kernels that split their loops alike (rows, channel blocks) mostly read on each
 * thread what it wrote in the previous kernel, from its own cache: MobileNetV2, MobileNetV3-Large
 * and EfficientNet-B0 took 0.93-0.94x of their time at 2 threads against tasks claimed in arrival
 * order. Taking from the back of another's range keeps both threads' shares contiguous where one
 * finishes early, and a thread the OS has descheduled simply runs fewer tasks. The finished tasks
 * are counted once, at the end (the launcher waits for ``pending`` to reach 0): one write to a line
 * both cores use per thread and launch, where a count per task and a shared bit mask of claims had
 * moved that line between the cores about twice per task. A claim made late, after the next launch
 * has begun, takes a task of that launch, which is as good: a launch begins only when every task
 * of the previous one has finished, and it publishes its job and count before the ranges. */
static void work_on_launch(ember_pool* pool, int self) {
  int done = 0;
  for (int i = 0; i < pool->num_threads; ++i) {
    int t = (self + i) % pool->num_threads;
    for (int task; (task = claim(&pool->ranges[t], i == 0)) >= 0; ++done)
      if (pool->job(task, &pool->env, pool->job_data) != 0) atomic_store(&pool->failed, 1);
  }
  if (done) atomic_fetch_sub_explicit(&pool->pending, done, memory_order_acq_rel);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void* worker_main(void* arg) {
  struct ember_worker* me = (struct ember_worker*)arg;
  ember_pool* pool = me->pool;
  inside_worker = 1;
  int seen = 0;
  for (;;) {
    unsigned spins = 0;
    uint64_t since = 0;
    while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
           !atomic_load(&pool->stop)) {
      cpu_relax();
      if (++spins % 64) continue; /* the clock read every 64 pauses */
      uint64_t t = now_ns();
      if (!since) since = t;
      if (t - since < pool->spin_ns) continue;
      pthread_mutex_lock(&pool->mutex);
      while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
        pthread_cond_wait(&pool->wake, &pool->mutex);
      pthread_mutex_unlock(&pool->mutex);
    }
    if (atomic_load(&pool->stop)) return NULL;
    seen = atomic_load(&pool->generation);
    work_on_launch(pool, me->thread);
  }
}

static int default_thread_count(void) {
  const char* env = getenv("EMBER_NUM_THREADS");
  if (env && atoi(env) > 0) return atoi(env);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? (int)cores : 1;
}

ember_pool* ember_pool_create(int num_threads) {
  ember_pool* pool = (ember_pool*)calloc(1, sizeof(ember_pool));
  if (!pool) return NULL;
  const char* spin = getenv("EMBER_SPIN_US");
  pool->spin_ns = 1000u * (uint64_t)(spin && atol(spin) >= 0 ? atol(spin) : WORKER_SPIN_US);
  pool->num_threads = num_threads > 0 ? num_threads : default_thread_count();
  pool->env.num_task = pool->num_threads * TASKS_PER_THREAD < MAX_TASKS ? pool->num_threads * TASKS_PER_THREAD
                                                                        : MAX_TASKS;
  pool->ranges = (struct ember_range*)aligned_alloc(64, (size_t)pool->num_threads * sizeof(struct ember_range));
  if (!pool->ranges) {
    free(pool);
    return NULL;
  }
  for (int t = 0; t < pool->num_threads; ++t) atomic_init(&pool->ranges[t].tasks, 0);
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->wake, NULL);
  if (pool->num_threads > 1) {
    pool->workers = (pthread_t*)calloc((size_t)pool->num_threads - 1, sizeof(pthread_t));
    pool->worker_args = calloc((size_t)pool->num_threads - 1, sizeof(*pool->worker_args));
    if (!pool->workers || !pool->worker_args) {
      free(pool->workers); free(pool->worker_args); free(pool->ranges); free(pool);
      return NULL;
    }
    for (int i = 1; i < pool->num_threads; ++i) {
      pool->worker_args[i - 1].pool = pool;
      pool->worker_args[i - 1].thread = i;
      if (pthread_create(&pool->workers[i - 1], NULL, worker_main, &pool->worker_args[i - 1]) != 0) {
        pool->num_threads = i; /* fewer threads than asked: still correct */
        break;
      }
    }
  }
  return pool;
}

void ember_pool_destroy(ember_pool* pool) {
  if (!pool) return;
  pthread_mutex_lock(&pool->mutex);
  atomic_store(&pool->stop, 1);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  for (int i = 1; i < pool->num_threads; ++i) pthread_join(pool->workers[i - 1], NULL);
  pthread_mutex_destroy(&pool->mutex);
  pthread_cond_destroy(&pool->wake);
  free(pool->workers);
  free(pool->worker_args);
  free(pool->ranges);
  free(pool);
}

int ember_pool_size(const ember_pool* pool) { return pool ? pool->num_threads : 1; }

void ember_pool_make_current(ember_pool* pool) { current_pool = pool; }

static int run_serially(ember_parallel_lambda job, void* cdata) {
  ember_parallel_env env = {NULL, 1};
  return job(0, &env, cdata);
}

static int ember_parallel_launch(ember_parallel_lambda job, void* cdata, int num_task) {
  ember_pool* pool = current_pool;
  if (!pool || inside_worker || pool->num_threads <= 1) return run_serially(job, cdata);
  /* Over-decompose: TASKS_PER_THREAD chunks per thread (at most MAX_TASKS), so that a thread that
   * finishes first takes a small part of another's share (see work_on_launch); TVM's lambdas split
   * their loop by env.num_task, whatever the value. */
  (void)num_task; /* env.num_task is the pool's, set once (a late worker reads it) */
  int tasks = pool->env.num_task;
  pool->job = job;
  pool->job_data = cdata;
  atomic_store(&pool->failed, 0);
  atomic_store(&pool->pending, tasks);
  for (int t = 0; t < pool->num_threads; ++t)
    atomic_store_explicit(&pool->ranges[t].tasks, pack_range(first_task(pool, t), first_task(pool, t + 1)),
                          memory_order_release);
  pthread_mutex_lock(&pool->mutex);
  atomic_fetch_add_explicit(&pool->generation, 1, memory_order_acq_rel);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  inside_worker = 1;
  work_on_launch(pool, 0);
  inside_worker = 0;
  int spins = 0;
  while (atomic_load_explicit(&pool->pending, memory_order_acquire) > 0) {
    if (++spins < LAUNCHER_SPIN_ROUNDS) cpu_relax(); else sched_yield();
  }
  return atomic_load(&pool->failed) ? -1 : 0;
}

/* Workspaces. A kernel allocates its scratch buffers (a padded input, a channel's split planes, a
 * row of accumulators) when it starts or once per parallel task, and frees them in the reverse
 * order: the same sizes, call after call. Each thread takes them from a stack of its own, one
 * block of memory grown to the most that thread ever held at once: an allocation is a bump of the
 * top, a free pops it (a block freed out of order is popped with the block above it). A request
 * that does not fit goes to the heap, and once the thread holds nothing, the stack is remade as
 * large as the peak it saw; from the second run on, every workspace is stack memory, touched
 * before. Blocks of a few hundred KiB from malloc came back as fresh pages (glibc returns them to
 * the system on free): MobileNetV2's depthwise convs at 14 x 14 took 0.034-0.039 ms at 2 threads
 * against 0.027 at 1, faulting their 393 KiB padded inputs in (Zen 4, 2026-12-06). Each block
 * carries a header of EMBER_ALIGNMENT bytes before the pointer. The stack is freed when the
 * thread exits. */
enum { WS_STACK = 1, WS_HEAP = 2 };

typedef struct {
  size_t size;  /* bytes of the block, header included */
  size_t below; /* stack offset of the block under this one (its header), or SIZE_MAX */
  int kind;
  int freed;
} ember_ws_header;

typedef struct {
  char* base;
  size_t cap, top, last; /* last: offset of the top block's header, SIZE_MAX when empty */
  size_t peak;           /* the most this thread held at once, heap blocks included */
  size_t held;
  int live;
} ember_ws_stack;

static pthread_key_t ws_key;
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static int ws_key_ok;

static void ws_stack_free(void* arg) {
  ember_ws_stack* stack = (ember_ws_stack*)arg;
  free(stack->base);
  free(stack);
}

static void ws_make_key(void) { ws_key_ok = pthread_key_create(&ws_key, ws_stack_free) == 0; }

/* This thread's stack, made on first use; NULL where it cannot be (allocations then go to the heap). */
static ember_ws_stack* ws_stack(void) {
  pthread_once(&ws_once, ws_make_key);
  if (!ws_key_ok) return NULL;
  ember_ws_stack* stack = (ember_ws_stack*)pthread_getspecific(ws_key);
  if (!stack) {
    stack = (ember_ws_stack*)calloc(1, sizeof(*stack));
    if (stack && pthread_setspecific(ws_key, stack) != 0) {
      free(stack);
      stack = NULL;
    }
    if (stack) stack->last = SIZE_MAX;
  }
  return stack;
}

static void* ember_alloc_workspace(int device_type, int device_id, uint64_t nbytes, int code, int bits) {
  (void)device_type; (void)device_id; (void)code; (void)bits;
  if (nbytes > SIZE_MAX / 2) return NULL; /* rounding up and the header would wrap */
  size_t size = (size_t)((nbytes + EMBER_ALIGNMENT - 1) / EMBER_ALIGNMENT * EMBER_ALIGNMENT) + EMBER_ALIGNMENT;
  ember_ws_stack* stack = ws_stack();
  ember_ws_header* h;
  if (stack && stack->base && stack->cap - stack->top >= size) {
    h = (ember_ws_header*)(stack->base + stack->top);
    h->kind = WS_STACK;
    h->below = stack->last;
    stack->last = stack->top;
    stack->top += size;
  } else {
    void* block = NULL;
    if (posix_memalign(&block, EMBER_ALIGNMENT, size) != 0) return NULL;
    h = (ember_ws_header*)block;
    h->kind = WS_HEAP;
  }
  h->size = size;
  h->freed = 0;
  if (stack) {
    stack->live++;
    stack->held += size;
    if (stack->held > stack->peak) stack->peak = stack->held;
  }
  return (char*)h + EMBER_ALIGNMENT;
}

static int ember_free_workspace(int device_type, int device_id, void* ptr) {
  (void)device_type; (void)device_id;
  if (!ptr) return 0;
  ember_ws_header* h = (ember_ws_header*)((char*)ptr - EMBER_ALIGNMENT);
  ember_ws_stack* stack = ws_stack();
  if (stack) {
    stack->live--;
    stack->held -= h->size;
  }
  if (h->kind == WS_HEAP) {
    free(h);
  } else {
    h->freed = 1;
    while (stack && stack->last != SIZE_MAX && ((ember_ws_header*)(stack->base + stack->last))->freed) {
      stack->top = stack->last;
      stack->last = ((ember_ws_header*)(stack->base + stack->last))->below;
    }
  }
  if (stack && stack->live == 0 && stack->peak > stack->cap) { /* remade as large as the peak, empty */
    void* grown = NULL;
    if (posix_memalign(&grown, EMBER_ALIGNMENT, stack->peak) == 0) {
      free(stack->base);
      stack->base = (char*)grown;
      stack->cap = stack->peak;
      stack->top = 0;
      stack->last = SIZE_MAX;
    }
  }
  return 0;
}

void ember_workspace_release(void) {
  pthread_once(&ws_once, ws_make_key);
  ember_ws_stack* stack = ws_key_ok ? (ember_ws_stack*)pthread_getspecific(ws_key) : NULL;
  if (!stack || stack->live) return;
  free(stack->base);
  stack->base = NULL;
  stack->cap = stack->top = stack->peak = stack->held = 0;
  stack->last = SIZE_MAX;
}

/* The slots TVM-generated objects call through (strong definitions beat their weak NULLs). */
void* __TVMBackendParallelLaunch = (void*)ember_parallel_launch;
void* __TVMBackendAllocWorkspace = (void*)ember_alloc_workspace;
void* __TVMBackendFreeWorkspace = (void*)ember_free_workspace;

/* 0 once the OS lets this process use AMX tile data (asked once; later calls return the answer). */
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;
static int amx_status = -1;
static void amx_request(void) {
#if defined(__x86_64__) && defined(__linux__)
  enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
  amx_status = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 0 : -1;
#endif
}
int ember_amx_ready(void) {
  pthread_once(&amx_once, amx_request);
  return amx_status;
}

/* Called by a kernel before it returns -1. */
void TVMFFIErrorSetRaisedFromCStrParts(const char* kind, const char** parts, int32_t num_parts) {
  size_t used = 0;
  error_text[0] = '\0';
  if (kind) used += (size_t)snprintf(error_text, sizeof(error_text), "%s: ", kind);
  for (int32_t i = 0; i < num_parts && used < sizeof(error_text); ++i)
    if (parts[i]) used += (size_t)snprintf(error_text + used, sizeof(error_text) - used, "%s", parts[i]);
}
