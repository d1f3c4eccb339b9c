/* The round trip of one cache line between two threads pinned to two CPUs: each thread waits for
 * the other's store before storing its own, so one loop iteration is two core-to-core transfers.
 *
 *     cc -O2 -pthread core_latency.c -o core_latency && ./core_latency [ROUND_TRIPS]
 *
 * Prints the mean nanoseconds per round trip (exit 2 where fewer than two CPUs are allowed). On a
 * virtual machine this says where the host placed the two virtual CPUs: on the Zen 4 of
 * docs/performance.md, 50-160 ns (near) or 330-1,100 ns (far: another core complex). */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) atomic_long flag;
static long trips = 100000;

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void* echo(void* arg) {
  pin(*(int*)arg);
  for (long i = 0; i < trips; ++i) {
    while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 1) {
    }
    atomic_store_explicit(&flag, 2 * i + 2, memory_order_release);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc > 1) trips = atol(argv[1]);
  cpu_set_t allowed;
  if (trips <= 0 || sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return 1;
  int cpus[2], found = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; ++cpu)
    if (CPU_ISSET(cpu, &allowed)) cpus[found++] = cpu;
  if (found < 2) {
    fprintf(stderr, "one CPU allowed\n");
    return 2;
  }
  pthread_t other;
  if (pthread_create(&other, NULL, echo, &cpus[1]) != 0) return 1;
  pin(cpus[0]);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (long i = 0; i < trips; ++i) {
    atomic_store_explicit(&flag, 2 * i + 1, memory_order_release);
    while (atomic_load_explicit(&flag, memory_order_acquire) != 2 * i + 2) {
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  pthread_join(other, NULL);
  double ns = (end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec);
  printf("%.1f\n", ns / (double)trips);
  return 0;
}
