/* Ember's private C runtime for TVM-generated kernels (not part of the public model API).
 *
 * Declares the tvm-ffi calling convention structs that generated kernels use, the per-instance
 * thread pool, and the error helpers. Everything here is linked into each model library with
 * hidden visibility, so two models in one process never share or clash on these symbols. */
#ifndef EMBER_RUNTIME_H_
#define EMBER_RUNTIME_H_

#include <stddef.h>
#include <stdint.h>

/* --- tvm-ffi / DLPack ABI, re-declared so that building a model needs no TVM headers --- */
typedef struct { int32_t device_type; int32_t device_id; } ember_dl_device;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } ember_dl_dtype;
typedef struct {
  void* data;
  ember_dl_device device;
  int32_t ndim;
  ember_dl_dtype dtype;
  const int64_t* shape;
  const int64_t* strides;
  uint64_t byte_offset;
} ember_dl_tensor;
typedef struct {
  int32_t type_index;
  uint32_t pad;
  union { int64_t v_int64; double v_float64; void* v_ptr; } v;
} ember_ffi_any;
typedef int32_t (*ember_kernel_fn)(void* self, const ember_ffi_any* args, int32_t n, ember_ffi_any* ret);

#define EMBER_FFI_DLTENSOR_PTR 7
#define EMBER_ALIGNMENT 64

/* --- thread pool: one per model instance, made current for the calling thread during a run --- */
typedef struct ember_pool ember_pool;
ember_pool* ember_pool_create(int num_threads); /* num_threads <= 0: EMBER_NUM_THREADS or all cores */
void ember_pool_destroy(ember_pool* pool);
int ember_pool_size(const ember_pool* pool);
/* 0 once the OS lets this process use AMX tile data (AMX kernels call it first). */
int ember_amx_ready(void);
void ember_pool_make_current(ember_pool* pool); /* NULL: kernels run single-threaded */

/* --- memory and errors --- */
void* ember_aligned_alloc(size_t nbytes); /* 64-byte aligned, zero-filled; NULL on failure */
void ember_aligned_free(void* ptr);
/* Frees the calling thread's workspace stack when it holds nothing (an instance's destroy). */
void ember_workspace_release(void);
void ember_set_error(const char* fmt, ...);
const char* ember_get_error(void); /* thread-local, "" when none */
/* Points a DLTensor at data and wraps it as a packed argument. */
void ember_bind_tensor(ember_dl_tensor* tensor, ember_ffi_any* arg, void* data, int32_t ndim,
                       const int64_t* shape, uint8_t code, uint8_t bits);

#endif /* EMBER_RUNTIME_H_ */
