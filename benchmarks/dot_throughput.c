/* Issue rate of the AVX-512 instructions Ember's kernels are built on, on this CPU: vfmadd231ps
 * (float32 conv and matmul), vdpbf16ps (the bfloat16 kernels) and vpdpbusd (the int8 kernels),
 * each on independent accumulators (24, 12 for vpdpbusd: GCC spills 24 integer chains) so that
 * latency does not limit it.
 *
 *     gcc -O2 -mavx512f -mavx512bf16 -mavx512vnni benchmarks/dot_throughput.c -o /tmp/dot_throughput
 *     /tmp/dot_throughput
 *
 * A vfmadd231ps is 32 float32 FLOPs, a vdpbf16ps 64 (16 lanes x 2 products, accumulated), a vpdpbusd
 * 128 integer ops (16 lanes x 4 byte products). Where vdpbf16ps issues at under half the rate of
 * vfmadd231ps, a bfloat16 kernel built on it is slower than the float32 one (docs/compression-kernels.md). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define EACH(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) \
                M(12) M(13) M(14) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23)
#define EACH12(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define CHAINS 24

static const long STEPS = 50000000;

/* each kernel keeps its own accumulators in registers (their sum is returned so none is dropped) */
__attribute__((noinline)) static float fma_chains(void) {
#define DECLARE_F(i) __m512 f##i = _mm512_set1_ps(i * 0.001f);
    EACH(DECLARE_F)
    const __m512 x = _mm512_set1_ps(1.0001f), y = _mm512_set1_ps(0.9999f);
#define FMA(i) f##i = _mm512_fmadd_ps(x, y, f##i);
    for (long k = 0; k < STEPS; k++) { EACH(FMA) }
    __m512 s = _mm512_setzero_ps();
#define SUM_F(i) s = _mm512_add_ps(s, f##i);
    EACH(SUM_F)
    return _mm512_reduce_add_ps(s);
}

__attribute__((noinline)) static float bf16_chains(void) {
    EACH(DECLARE_F)
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x3f803f80);
#define BF16(i) f##i = _mm512_dpbf16_ps(f##i, x, y);
    for (long k = 0; k < STEPS; k++) { EACH(BF16) }
    __m512 s = _mm512_setzero_ps();
    EACH(SUM_F)
    return _mm512_reduce_add_ps(s);
}

__attribute__((noinline)) static int vnni_chains(void) {
#define DECLARE_I(i) __m512i n##i = _mm512_set1_epi32(i);
    EACH12(DECLARE_I)
    const __m512i x = _mm512_set1_epi32(0x01010101), y = _mm512_set1_epi32(0x01010101);
#define VNNI(i) n##i = _mm512_dpbusd_epi32(n##i, x, y);
    for (long k = 0; k < 2 * STEPS; k++) { EACH12(VNNI) }
    __m512i s = _mm512_setzero_si512();
#define SUM_I(i) s = _mm512_add_epi32(s, n##i);
    EACH12(SUM_I)
    return _mm512_reduce_add_epi32(s);
}

int main(void) {
    double t0 = now();
    float a = fma_chains();
    double t1 = now();
    float b = bf16_chains();
    double t2 = now();
    int c = vnni_chains();
    double t3 = now();
    double n = (double)STEPS * CHAINS;
    printf("vfmadd231ps %.2f G/s (%.0f GFLOP/s)\n", n / (t1 - t0) / 1e9, 32 * n / (t1 - t0) / 1e9);
    printf("vdpbf16ps   %.2f G/s (%.0f GFLOP/s)\n", n / (t2 - t1) / 1e9, 64 * n / (t2 - t1) / 1e9);
    printf("vpdpbusd    %.2f G/s (%.0f Gop/s)\n", n / (t3 - t2) / 1e9, 128 * n / (t3 - t2) / 1e9);
    printf("(checksums %g %g %d)\n", a, b, c);
    return 0;
}
