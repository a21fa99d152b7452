/* Lookups in a compiled table: one key at a time (ipallow_table_lookup*) and
   CHUNK keys at a time (ipallow_walk*).  The node readers live in
   ipallow_lookup_impl.h. */
#ifndef IPALLOW_LOOKUP_H
#define IPALLOW_LOOKUP_H

#include "ipallow_node.h"

#define IPALLOW_VARIANT(name) ipallow_##name##_default
#define IPALLOW_TARGET
#define IPALLOW_POPCOUNT(x) IPALLOW_POPCOUNT64(x)
#include "ipallow_lookup_impl.h"
#undef IPALLOW_VARIANT
#undef IPALLOW_TARGET
#undef IPALLOW_POPCOUNT

/* Leaf value (prefix index + 1, 0 = none) for a left-aligned 128-bit key. */
static inline uint32_t ipallow_table_lookup(const ipallow_table* t, uint64_t hi, uint64_t lo) {
    return ipallow_descend_default(t, t->dir[hi >> (64 - t->dir_bits)], hi, lo, t->dir_bits);
}

/* IPv4: the key fits in `hi`; most lookups end at level 0. */
static inline uint32_t ipallow_table_lookup4(const ipallow_table* t, uint32_t addr) {
    uint32_t entry = t->dir[addr >> (32 - t->dir_bits)];
    if (!(entry & IPALLOW_NODE_FLAG)) return entry;
    return ipallow_descend_default(t, entry, (uint64_t)addr << 32, 0, t->dir_bits);
}

static inline void ipallow_walk(const ipallow_table* t, const uint64_t* hi, const uint64_t* lo,
                                uint32_t* out, ptrdiff_t count) {
    ipallow_walk_default(t, hi, lo, out, count);
}

static inline void ipallow_walk4(const ipallow_table* t, const uint32_t* keys, uint32_t* out,
                                 ptrdiff_t count) {
    ipallow_walk4_default(t, keys, out, count);
}

#endif
