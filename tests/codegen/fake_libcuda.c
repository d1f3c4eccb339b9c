/* A stand-in libcuda.so.1 for tests on machines without a GPU: device memory is host memory,
 * kernels are not run but every launch is checked and logged. It lets the generated CUDA host
 * driver (codegen/cuda/emit_host.py) run its create / run / run_device / destroy paths for real.
 *
 * Log ($FAKE_CUDA_LOG), one line per call:
 *   alloc <index> <bytes> | htod <alloc index> <offset> <bytes> | dtoh <alloc> <offset> <bytes>
 *   dtod <dst alloc> <src alloc> <bytes> | launch <function> <grid xyz> <block xyz> <shared> <args in allocations>
 *   module <ok|bad> | function <name> <found>
 *   capture <begin|end> | record <launch as above, captured into a graph> | graph <launches replayed>
 * $FAKE_CUDA_FAIL_LAUNCH=N makes the N-th launch (1-based) fail with error 719; a graph launch replays
 * its recorded launches (logged as launches, counted, checked against the allocations of the time).
 * $FAKE_CUDA_NO_GRAPHS=1 refuses stream capture (error 801, not supported). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long CUdeviceptr;
static struct { char* base; size_t size; } allocs[64];
static int num_allocs, launches;
static FILE* logf;

static void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static void say(const char* fmt, ...) {
  if (!logf) {
    const char* path = getenv("FAKE_CUDA_LOG");
    logf = path ? fopen(path, "a") : stderr;
  }
  va_list ap;
  va_start(ap, fmt);
  vfprintf(logf, fmt, ap);
  va_end(ap);
  fputc('\n', logf);
  fflush(logf);
}

static int find(CUdeviceptr p, size_t n, size_t* offset) {
  for (int i = 0; i < num_allocs; ++i) {
    char* b = allocs[i].base;
    if (b && (char*)p >= b && (char*)p + n <= b + allocs[i].size) {
      if (offset) *offset = (size_t)((char*)p - b);
      return i;
    }
  }
  return -1;
}

int cuInit(unsigned flags) { (void)flags; return 0; }
int cuDeviceGet(int* d, int ordinal) { *d = ordinal; return ordinal == 0 ? 0 : 101; }
int cuDevicePrimaryCtxRetain(void** ctx, int d) { (void)d; *ctx = (void*)0x1; return 0; }
int cuDevicePrimaryCtxRelease_v2(int d) { (void)d; return 0; }
int cuCtxPushCurrent_v2(void* c) { (void)c; return 0; }
int cuCtxPopCurrent_v2(void** c) { if (c) *c = (void*)0x1; return 0; }

struct fatbin_header { uint32_t magic; uint16_t version, header_size; uint64_t fat_size; };

int cuModuleLoadData(void** module, const void* image) {
  const struct fatbin_header* h = (const struct fatbin_header*)image;
  int ok = h->magic == 0xBA55ED50u;
  say("module %s", ok ? "ok" : "bad");
  *module = (void*)image;
  return ok ? 0 : 200; /* CUDA_ERROR_INVALID_IMAGE */
}
int cuModuleUnload(void* m) { (void)m; return 0; }

int cuModuleGetFunction(void** f, void* module, const char* name) {
  const struct fatbin_header* h = (const struct fatbin_header*)module;
  size_t size = h->header_size + h->fat_size, n = strlen(name);
  int found = 0;
  for (size_t i = 0; i + n <= size && !found; ++i) found = memcmp((const char*)module + i, name, n) == 0;
  say("function %s %d", name, found);
  *f = strdup(name);
  return found ? 0 : 500; /* CUDA_ERROR_NOT_FOUND */
}
int cuFuncSetAttribute(void* f, int a, int v) { (void)f; (void)a; (void)v; return 0; }

static struct recorded {
  char* f;
  unsigned g[3], b[3], shared;
  int n;
  CUdeviceptr args[64];
} recorded[4096];
static int num_recorded, capturing;

static int launch_one(const char* kind, const char* f, const unsigned* g, const unsigned* b, unsigned shared, int n,
                      const CUdeviceptr* args) {
  int inside = 0;
  for (int i = 0; i < n; ++i) inside += find(args[i], 1, NULL) >= 0;
  say("%s %s %u %u %u %u %u %u %u %d/%d", kind, f, g[0], g[1], g[2], b[0], b[1], b[2], shared, inside, n);
  if (!strcmp(kind, "record")) return 0;
  const char* fail = getenv("FAKE_CUDA_FAIL_LAUNCH");
  return fail && atoi(fail) == ++launches ? 719 : 0; /* CUDA_ERROR_LAUNCH_FAILED */
}

int cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                   unsigned shared, void* stream, void** params, void** extra) {
  (void)stream; (void)extra;
  unsigned g[3] = {gx, gy, gz}, b[3] = {bx, by, bz};
  CUdeviceptr args[64];
  int n = 0;
  for (; params && params[n] && n < 64; ++n) args[n] = *(CUdeviceptr*)params[n];
  if (capturing) { /* the driver copies the arguments into the graph node, as here */
    if (num_recorded == 4096) return 1;
    struct recorded* r = &recorded[num_recorded++];
    r->f = (char*)f, r->shared = shared, r->n = n;
    memcpy(r->g, g, sizeof g), memcpy(r->b, b, sizeof b), memcpy(r->args, args, sizeof(CUdeviceptr) * n);
    return launch_one("record", (const char*)f, g, b, shared, n, args);
  }
  return launch_one("launch", (const char*)f, g, b, shared, n, args);
}

int cuStreamBeginCapture_v2(void* s, int mode) {
  (void)s; (void)mode;
  if (getenv("FAKE_CUDA_NO_GRAPHS")) return 801; /* CUDA_ERROR_NOT_SUPPORTED */
  say("capture begin");
  capturing = 1, num_recorded = 0;
  return 0;
}
int cuStreamEndCapture(void* s, void** graph) {
  (void)s;
  say("capture end");
  capturing = 0;
  *graph = (void*)0x4;
  return 0;
}
int cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags) {
  (void)graph; (void)flags;
  *exec = (void*)0x5;
  return 0;
}
int cuGraphLaunch(void* exec, void* s) {
  (void)exec; (void)s;
  say("graph %d", num_recorded);
  for (int i = 0; i < num_recorded; ++i) {
    struct recorded* r = &recorded[i];
    int rc = launch_one("launch", r->f, r->g, r->b, r->shared, r->n, r->args);
    if (rc) return rc;
  }
  return 0;
}
int cuGraphExecDestroy(void* exec) { (void)exec; return 0; }
int cuGraphDestroy(void* graph) { (void)graph; return 0; }

int cuMemAlloc_v2(CUdeviceptr* p, size_t n) {
  allocs[num_allocs].base = calloc(1, n);
  allocs[num_allocs].size = n;
  say("alloc %d %zu", num_allocs, n);
  *p = (CUdeviceptr)allocs[num_allocs++].base;
  return 0;
}
int cuMemFree_v2(CUdeviceptr p) {
  int i = find(p, 0, NULL);
  if (i >= 0) { free(allocs[i].base); allocs[i].base = NULL; }
  return 0;
}
int cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* s) {
  (void)s; size_t off = 0; int i = find(dst, n, &off);
  say("htod %d %zu %zu", i, off, n);
  if (i < 0) return 1;
  memcpy((void*)dst, src, n);
  return 0;
}
int cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* s) {
  (void)s; size_t off = 0; int i = find(src, n, &off);
  say("dtoh %d %zu %zu", i, off, n);
  if (i < 0) return 1;
  memcpy(dst, (void*)src, n);
  return 0;
}
int cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, void* s) {
  (void)s;
  say("dtod %d %d %zu", find(dst, n, NULL), find(src, n, NULL), n);
  memmove((void*)dst, (void*)src, n);
  return 0;
}
int cuStreamCreate(void** s, unsigned f) { (void)f; *s = (void*)0x2; return 0; }
int cuStreamDestroy_v2(void* s) { (void)s; return 0; }
int cuStreamSynchronize(void* s) { (void)s; return 0; }
int cuEventCreate(void** e, unsigned f) { (void)f; *e = (void*)0x3; return 0; }
int cuEventRecord(void* e, void* s) { (void)e; (void)s; return 0; }
int cuEventSynchronize(void* e) { (void)e; return 0; }
int cuEventElapsedTime(float* ms, void* a, void* b) { (void)a; (void)b; *ms = 0.5f; return 0; }
int cuEventDestroy_v2(void* e) { (void)e; return 0; }
int cuGetErrorString(int r, const char** s) { *s = r == 719 ? "fake launch failure" : "fake error"; return 0; }
