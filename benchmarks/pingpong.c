/* Round-trip latency between two CPUs, to tell whether a machine's batch-1 numbers are limited by
 * cross-core synchronisation (see the README's "This machine changes state").
 *
 *     gcc -O2 -pthread benchmarks/pingpong.c -o /tmp/pingpong && /tmp/pingpong [CPU_A CPU_B]
 *
 * Prints the mean round trip of 200k hand-offs of an atomic flag, 20 times, 0.5 s apart. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { HANDOFFS = 200000, REPEATS = 20 };
static _Atomic int flag = 0;
static int cpu_b = 1;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *pong(void *unused) {
    (void)unused;
    pin(cpu_b);
    for (long i = 0; i < (long)HANDOFFS * REPEATS; i++) {
        while (atomic_load(&flag) != 1) {}
        atomic_store(&flag, 0);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int cpu_a = argc > 2 ? atoi(argv[1]) : 0;
    cpu_b = argc > 2 ? atoi(argv[2]) : 1;
    pthread_t t;
    pthread_create(&t, NULL, pong, NULL);
    pin(cpu_a);
    for (int r = 0; r < REPEATS; r++) {
        double t0 = now();
        for (int i = 0; i < HANDOFFS; i++) {
            atomic_store(&flag, 1);
            while (atomic_load(&flag) != 0) {}
        }
        printf("%.0f ", (now() - t0) / HANDOFFS * 1e9);
        fflush(stdout);
        struct timespec pause = {0, 500000000};
        nanosleep(&pause, NULL);
    }
    printf(" ns round trip (CPU %d <-> CPU %d)\n", cpu_a, cpu_b);
    pthread_join(t, NULL);
    return 0;
}
