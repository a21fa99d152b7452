/* Lookups in a compiled table: one key at a time (ipallow_table_lookup*) and
   CHUNK keys at a time (ipallow_walk*).

   The node readers (ipallow_lookup_impl.h) count bits at every level, so they
   are compiled twice: a scalar variant with a branch-free SWAR popcount, which
   runs on any CPU, and a fast variant with the hardware instruction --
   `target("popcnt")` functions on x86 with GCC or clang, __popcnt64 with MSVC,
   or the plain builtin where the whole target has one (aarch64, or an x86
   build for a POPCNT CPU such as ARCH=native).  ipallow_select_paths() picks
   one once, at import; every lookup then takes a branch that always goes the
   same way.  No ifunc or target_clones: musl has no ifunc. */
#ifndef IPALLOW_LOOKUP_H
#define IPALLOW_LOOKUP_H

#include "ipallow_node.h"
#include "ipallow_parse.h"

#if defined(_MSC_VER)
#include <intrin.h>
#endif

#define IPALLOW_VARIANT(name) ipallow_##name##_scalar
#define IPALLOW_TARGET
#define IPALLOW_POPCOUNT(x) ipallow_popcount64_swar(x)
#include "ipallow_lookup_impl.h"
#undef IPALLOW_VARIANT
#undef IPALLOW_TARGET
#undef IPALLOW_POPCOUNT

#if defined(IPALLOW_NATIVE_POPCOUNT)
#define IPALLOW_FAST_PATH "native"
#define IPALLOW_TARGET
#define IPALLOW_POPCOUNT(x) ((int)__builtin_popcountll(x))
#elif (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define IPALLOW_FAST_PATH "popcnt"
#define IPALLOW_FAST_NEEDS_CPU_CHECK 1
#define IPALLOW_TARGET __attribute__((target("popcnt")))
#define IPALLOW_POPCOUNT(x) ((int)__builtin_popcountll(x))
#elif defined(_MSC_VER) && defined(_M_X64)
#define IPALLOW_FAST_PATH "popcnt"
#define IPALLOW_FAST_NEEDS_CPU_CHECK 1
#define IPALLOW_TARGET
#define IPALLOW_POPCOUNT(x) ((int)__popcnt64(x))
#endif

#if defined(IPALLOW_FAST_PATH)
#define IPALLOW_VARIANT(name) ipallow_##name##_fast
#include "ipallow_lookup_impl.h"
#undef IPALLOW_VARIANT
#undef IPALLOW_TARGET
#undef IPALLOW_POPCOUNT
#endif

/* 1 when the fast variant serves the lookups; set once by ipallow_select_paths. */
static int ipallow_use_fast = 0;

/* Whether this CPU runs the fast variant (asked once, at import). */
static inline int ipallow_cpu_has_fast(void) {
#if defined(IPALLOW_FAST_NEEDS_CPU_CHECK) && defined(_MSC_VER)
    int info[4];
    __cpuid(info, 1);
    return (info[2] >> 23) & 1;                 /* CPUID.01H:ECX.POPCNT[bit 23] */
#elif defined(IPALLOW_FAST_NEEDS_CPU_CHECK)
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt");
#elif defined(IPALLOW_FAST_PATH)
    return 1;
#else
    return 0;
#endif
}

/* Choose the lookup and text-scanning code for this process: the fast paths where
   the CPU has them, unless `force_scalar`.  Returns the name of the lookup path
   now active: "popcnt", "native" or "scalar". */
static inline const char* ipallow_select_paths(int force_scalar) {
    ipallow_scan_sse2 = !force_scalar;
    ipallow_use_fast = !force_scalar && ipallow_cpu_has_fast();
#if defined(IPALLOW_FAST_PATH)
    if (ipallow_use_fast) return IPALLOW_FAST_PATH;
#endif
    return "scalar";
}

static inline uint32_t ipallow_descend(const ipallow_table* t, uint32_t entry, uint64_t hi, uint64_t lo,
                                       int offset) {
#if defined(IPALLOW_FAST_PATH)
    if (ipallow_use_fast) return ipallow_descend_fast(t, entry, hi, lo, offset);
#endif
    return ipallow_descend_scalar(t, entry, hi, lo, offset);
}

/* Leaf value (prefix index + 1, 0 = none) for a left-aligned 128-bit key. */
static inline uint32_t ipallow_table_lookup(const ipallow_table* t, uint64_t hi, uint64_t lo) {
    return ipallow_descend(t, t->dir[hi >> (64 - t->dir_bits)], hi, lo, t->dir_bits);
}

/* IPv4: the key fits in `hi`; most lookups end at level 0. */
static inline uint32_t ipallow_table_lookup4(const ipallow_table* t, uint32_t addr) {
    uint32_t entry = t->dir[addr >> (32 - t->dir_bits)];
    if (!(entry & IPALLOW_NODE_FLAG)) return entry;
#if defined(IPALLOW_FAST_PATH)
    if (ipallow_use_fast) return ipallow_descend4_fast(t, entry, addr);
#endif
    return ipallow_descend4_scalar(t, entry, addr);
}

static inline void ipallow_walk(const ipallow_table* t, const uint64_t* hi, const uint64_t* lo,
                                uint32_t* out, ptrdiff_t count) {
#if defined(IPALLOW_FAST_PATH)
    if (ipallow_use_fast) {
        ipallow_walk_fast(t, hi, lo, out, count);
        return;
    }
#endif
    ipallow_walk_scalar(t, hi, lo, out, count);
}

static inline void ipallow_walk4(const ipallow_table* t, const uint32_t* keys, uint32_t* out,
                                 ptrdiff_t count) {
#if defined(IPALLOW_FAST_PATH)
    if (ipallow_use_fast) {
        ipallow_walk4_fast(t, keys, out, count);
        return;
    }
#endif
    ipallow_walk4_scalar(t, keys, out, count);
}

#endif
