/* The index's node layout and the bit helpers its readers share (builder,
   validator, lookups).  The layout itself is described in _build.pxi. */
#ifndef IPALLOW_NODE_H
#define IPALLOW_NODE_H

#include <stdint.h>
#include <string.h>

/* A reference to a node (a level-0 entry or a child entry) is its word offset
   with NODE_FLAG set, plus INNER_FLAG for the inner shape. */
#define IPALLOW_NODE_FLAG 0x80000000u
#define IPALLOW_INNER_FLAG 0x40000000u
#define IPALLOW_OFFSET_MASK 0x3FFFFFFFu
#define IPALLOW_HEAD_WORDS 4        /* leafvec (2), default, first */
#define IPALLOW_INNER_HEAD_WORDS 6  /* + vector (2) */
#define IPALLOW_HEAP_SLACK 2        /* zero words after the last node: the batch walk
                                       reads words 4-5 of every node, whatever its shape */
#define IPALLOW_CHUNK 128           /* keys per batch walk (stack buffers are this long) */

/* One family's compiled table: the level-0 array and the node heap. */
typedef struct {
    const uint32_t* dir;
    const uint32_t* heap;
    int dir_bits;
    uint32_t n_words;
} ipallow_table;

/* Bitmaps sit in two 4-byte-aligned heap words: memcpy is one load on
   x86-64 and arm64, and well defined everywhere. */
static inline uint64_t ipallow_load64(const uint32_t* p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline void ipallow_store64(uint32_t* p, uint64_t x) { memcpy(p, &x, 8); }

/* A branch-free SWAR count: never libgcc's slow generic routine. */
static inline int ipallow_popcount64_swar(uint64_t x) {
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int)((x * 0x0101010101010101ULL) >> 56);
}

/* A popcount every CPU the module was compiled for has in hardware: the whole
   target has it (aarch64 always; x86 when the build's flags say so, e.g. ARCH=native).
   The lookups pick their own popcount at import (ipallow_lookup.h). */
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__POPCNT__) || defined(__aarch64__))
#define IPALLOW_NATIVE_POPCOUNT 1
#define IPALLOW_POPCOUNT64(x) ((int)__builtin_popcountll(x))
#else
#define IPALLOW_POPCOUNT64(x) ipallow_popcount64_swar(x)
#endif

/* A module compiled for POPCNT everywhere (ARCH=native, or -mpopcnt in CFLAGS) refuses
   to load on a CPU without it instead of dying with SIGILL later; the default build
   only uses POPCNT where the CPU is checked first. */
static inline int ipallow_cpu_ok(void) {
#if defined(__POPCNT__) && (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt");
#else
    return 1;
#endif
}

#if defined(__GNUC__) || defined(__clang__)
#define IPALLOW_PREFETCH(p) __builtin_prefetch((const void*)(p))
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define IPALLOW_PREFETCH(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
#else
#define IPALLOW_PREFETCH(p) ((void)0)
#endif

/* A node's header and its first leaf codes can straddle two cache lines. */
static inline void ipallow_prefetch_node(const uint32_t* node) {
    IPALLOW_PREFETCH(node);
    IPALLOW_PREFETCH(node + 12);
}

/* The 6 key bits starting at bit `offset` (0 = most significant), zero padded. */
static inline unsigned ipallow_slot_of(uint64_t hi, uint64_t lo, int offset) {
    if (offset <= 58) return (unsigned)((hi >> (58 - offset)) & 63);
    if (offset < 64) return (unsigned)(((hi << (offset - 58)) | (lo >> (122 - offset))) & 63);
    if (offset <= 122) return (unsigned)((lo >> (122 - offset)) & 63);
    return (unsigned)((lo << (offset - 122)) & 63);
}

/* `if_set` when flag is 1, else `if_clear`, without a branch (flag is 0 or 1):
   the batch walks' choices are coin flips a branch predictor would miss. */
static inline uint32_t ipallow_select(uint32_t flag, uint32_t if_set, uint32_t if_clear) {
    return if_clear ^ ((if_set ^ if_clear) & (0u - flag));
}

/* A leaf code's answer without a branch: word 2 (default) for 0, else word 3 + code - 1. */
static inline uint32_t ipallow_code_answer(const uint32_t* node, uint32_t code) {
    uint32_t is_new = code != 0;
    return node[2 + is_new] + ((code - 1) & (0u - is_new));
}

#endif
