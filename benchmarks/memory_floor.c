/* The memory floor under the batch lookups: how fast this machine can do random reads in a
   buffer the size of a compiled table, with 4 KiB pages and with transparent huge pages.

   A batch lookup on a 1M-prefix IPv4 table reads one level-0 entry (1 MiB array) and, for
   three keys in four, one node in a 5.7 MiB heap, at random.  No walk can beat the rate at
   which the machine serves those reads, so this is the bound the batch figures are read
   against (issue 15: the 150 M lookups/s goal).

       cc -O2 -o /tmp/memory_floor benchmarks/memory_floor.c && /tmp/memory_floor 7

   Prints, for a buffer of N MiB (default 7): the latency of a dependent chain of random
   reads (pointer chasing over every cache line, in random order) and the throughput of
   independent random reads (4 M of them, any number in flight), each the best of 5
   rounds, in thread CPU time.  Linux only (madvise). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t state = 88172645463325252ULL;
static uint64_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void measure(size_t mib, int huge) {
    const size_t huge_page = 2u << 20;
    size_t words = mib << 18, lines = words / 16;
    size_t bytes = (words * 4 + huge_page - 1) / huge_page * huge_page;
    uint32_t* a = aligned_alloc(huge_page, bytes);
    uint32_t *order = malloc(lines * 4), *index = malloc((4u << 20) * 4);
    volatile uint32_t sink;
    double best_chase = 1e9, best_reads = 1e9;
    if (!a || !order || !index) abort();
    madvise(a, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(a, 0, bytes);
    for (size_t i = 0; i < lines; i++) order[i] = (uint32_t)i;
    for (size_t i = lines - 1; i > 0; i--) {          /* a random cycle over the cache lines */
        size_t j = next_random() % (i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (size_t i = 0; i < lines; i++) a[order[i] * 16] = order[(i + 1) % lines] * 16;
    for (size_t i = 0; i < (4u << 20); i++) index[i] = (uint32_t)(next_random() % lines) * 16;
    for (int round = 0; round < 5; round++) {
        uint32_t p = 0, sum = 0;
        double t0 = now();
        for (size_t i = 0; i < 2000000; i++) p = a[p];
        double t = (now() - t0) / 2000000;
        if (t < best_chase) best_chase = t;
        t0 = now();
        for (size_t i = 0; i < (4u << 20); i++) sum += a[index[i]];
        t = (now() - t0) / (4u << 20);
        if (t < best_reads) best_reads = t;
        sink = p + sum;
    }
    (void)sink;
    printf("%zu MiB, %s: dependent random read %.1f ns; independent random reads %.2f ns each (%.0f M/s)\n",
           mib, huge ? "huge pages" : "4 KiB pages", best_chase * 1e9, best_reads * 1e9, 1e-6 / best_reads);
    free(a);
    free(order);
    free(index);
}

int main(int argc, char** argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 7;
    if (mib < 1 || mib > 4096) {
        fprintf(stderr, "usage: %s [MiB, 1..4096]\n", argv[0]);
        return 2;
    }
    measure(mib, 0);
    measure(mib, 1);
    return 0;
}
