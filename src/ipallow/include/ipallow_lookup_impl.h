/* The lookup hot path: every function here reads the node layout and counts
   bits.  No include guard on purpose: ipallow_lookup.h includes this file once
   per popcount variant, with
     IPALLOW_VARIANT(name)  the function's name in this variant,
     IPALLOW_TARGET         its target attribute (or nothing),
     IPALLOW_POPCOUNT(x)    the 64-bit popcount this variant uses. */

/* The answer of the leaf run holding the slots up to `upto`. */
static inline IPALLOW_TARGET uint32_t
IPALLOW_VARIANT(leaf_answer)(const uint32_t* node, const uint8_t* codes, uint64_t upto) {
    uint32_t code = codes[IPALLOW_POPCOUNT(ipallow_load64(node) & upto) - 1];
    return code ? node[3] + code - 1 : node[2];
}

/* Answer for a key from level-0 `entry` on (one key at a time, branchy). */
static inline IPALLOW_TARGET uint32_t
IPALLOW_VARIANT(descend)(const ipallow_table* t, uint32_t entry, uint64_t hi, uint64_t lo, int offset) {
    while (entry & IPALLOW_NODE_FLAG) {
        const uint32_t* node = t->heap + (entry & IPALLOW_OFFSET_MASK);
        unsigned v;
        uint64_t upto, vector;
        IPALLOW_PREFETCH(node + 12);            /* the codes may start the next cache line */
        v = ipallow_slot_of(hi, lo, offset);
        upto = ((uint64_t)2 << v) - 1;          /* slots 0..v (v = 63 wraps to all ones) */
        if (!(entry & IPALLOW_INNER_FLAG))
            return IPALLOW_VARIANT(leaf_answer)(node, (const uint8_t*)(node + IPALLOW_HEAD_WORDS), upto);
        vector = ipallow_load64(node + IPALLOW_HEAD_WORDS);
        if ((vector >> v) & 1) {
            entry = node[IPALLOW_INNER_HEAD_WORDS + IPALLOW_POPCOUNT(vector & upto) - 1];
            offset += 6;
        } else {
            return IPALLOW_VARIANT(leaf_answer)(
                node, (const uint8_t*)(node + IPALLOW_INNER_HEAD_WORDS + IPALLOW_POPCOUNT(vector)), upto);
        }
    }
    return entry;
}

/* `descend` for an IPv4 key below level-0 `entry` (hi = addr << 32, lo = 0): its own
   function, so the key's constant half folds away in each variant. */
static IPALLOW_TARGET uint32_t
IPALLOW_VARIANT(descend4)(const ipallow_table* t, uint32_t entry, uint32_t addr) {
    return IPALLOW_VARIANT(descend)(t, entry, (uint64_t)addr << 32, 0, t->dir_bits);
}

/* One branch-free step through slot `v` of node `entry`: the child entry
   (*is_child = 1) or the answer.  A leaf-only node is read as an inner node
   whose `vector` is masked to zero (the words read in its place are its own
   codes, or the heap's slack); child and answer are both computed, then one is
   picked, since which it is is a coin flip to a branch predictor.  The child
   entry is prefetched (for an answer, some heap line: prefetch never faults). */
static inline IPALLOW_TARGET uint32_t
IPALLOW_VARIANT(node_step)(const ipallow_table* t, uint32_t entry, unsigned v, uint32_t* is_child) {
    const uint32_t* node = t->heap + (entry & IPALLOW_OFFSET_MASK);
    uint32_t inner = (entry >> 30) & 1;
    uint64_t upto = ((uint64_t)2 << v) - 1;
    uint64_t leafvec = ipallow_load64(node);
    uint64_t vector = ipallow_load64(node + IPALLOW_HEAD_WORDS) & ((uint64_t)0 - inner);
    const uint32_t* refs = node + IPALLOW_HEAD_WORDS + 2 * inner;
    uint32_t child = refs[IPALLOW_POPCOUNT(vector & upto) - 1];
    uint32_t code = ((const uint8_t*)(refs + IPALLOW_POPCOUNT(vector)))[IPALLOW_POPCOUNT(leafvec & upto) - 1];
    *is_child = (uint32_t)((vector >> v) & 1);
    ipallow_prefetch_node(t->heap + (child & IPALLOW_OFFSET_MASK));
    return ipallow_select(*is_child, child, ipallow_code_answer(node, code));
}

/* Leaf values for `count` (<= IPALLOW_CHUNK) left-aligned keys, walked level by
   level.  Each pass advances every unfinished key by one trie level.  The loads
   of one pass do not depend on each other, so their cache misses overlap (and
   each pass prefetches the nodes the next one reads); a one-at-a-time walk
   would wait for each miss in turn.  Only the keys still inside a node are
   revisited (`active`); each step is `node_step`, free of branches. */
static IPALLOW_TARGET void
IPALLOW_VARIANT(walk)(const ipallow_table* t, const uint64_t* hi, const uint64_t* lo,
                      uint32_t* out, ptrdiff_t count) {
    uint32_t active[IPALLOW_CHUNK];
    ptrdiff_t i, j, n_active = 0, n_next;
    uint32_t entry, is_child;
    int offset = t->dir_bits;
    for (i = 0; i < count; i++) {
        entry = t->dir[hi[i] >> (64 - t->dir_bits)];
        out[i] = entry;
        ipallow_prefetch_node(t->heap + (entry & IPALLOW_OFFSET_MASK));  /* harmless for answers */
        active[n_active] = (uint32_t)i;
        n_active += entry >> 31;
    }
    while (n_active) {
        n_next = 0;
        for (j = 0; j < n_active; j++) {
            i = active[j];
            out[i] = IPALLOW_VARIANT(node_step)(t, out[i], ipallow_slot_of(hi[i], lo[i], offset), &is_child);
            active[n_next] = (uint32_t)i;
            n_next += is_child;
        }
        n_active = n_next;
        offset += 6;
    }
}

/* The answer in a leaf-only node (no child vector) for slot `v`: `node_step`
   for that shape, without the child half. */
static inline IPALLOW_TARGET uint32_t
IPALLOW_VARIANT(leaf_step)(const ipallow_table* t, uint32_t entry, unsigned v) {
    const uint32_t* node = t->heap + (entry & IPALLOW_OFFSET_MASK);
    uint64_t upto = ((uint64_t)2 << v) - 1;
    const uint8_t* codes = (const uint8_t*)(node + IPALLOW_HEAD_WORDS);
    return ipallow_code_answer(node, codes[IPALLOW_POPCOUNT(ipallow_load64(node) & upto) - 1]);
}

/* `walk` for IPv4 keys as they come (host-order uint32): the same steps, with
   the slot taken straight from the 32-bit key.  The first pass also sorts the
   keys that reach a node by its shape: a leaf-only node (most of them) answers
   in `leaf_step`, a third of the instructions of `node_step`; only keys in an
   inner node take the general level-by-level walk. */
static IPALLOW_TARGET void
IPALLOW_VARIANT(walk4)(const ipallow_table* t, const uint32_t* keys, uint32_t* out, ptrdiff_t count) {
    uint32_t leafy[IPALLOW_CHUNK], active[IPALLOW_CHUNK];
    ptrdiff_t i, j, n_leafy = 0, n_active = 0, n_next;
    uint32_t entry, is_child, key, is_node, inner;
    int shift = 32 - t->dir_bits;
    for (i = 0; i < count; i++) {
        entry = t->dir[keys[i] >> shift];
        out[i] = entry;
        ipallow_prefetch_node(t->heap + (entry & IPALLOW_OFFSET_MASK));
        is_node = entry >> 31;
        inner = (entry >> 30) & is_node;
        leafy[n_leafy] = (uint32_t)i;
        active[n_active] = (uint32_t)i;
        n_leafy += is_node ^ inner;
        n_active += inner;
    }
    /* IPv4 nodes start at bit dir_bits + 6 * level < 32: the slot is the 6 bits
       ending `shift - 6` bits above the bottom, padded with zeros past the last bit
       (dir_bits <= 24, so level 1 is always a right shift). */
    shift -= 6;
    for (j = 0; j < n_leafy; j++) {
        i = leafy[j];
        out[i] = IPALLOW_VARIANT(leaf_step)(t, out[i], ((shift >= 0) ? (keys[i] >> shift) : (keys[i] << -shift)) & 63);
    }
    while (n_active) {
        n_next = 0;
        for (j = 0; j < n_active; j++) {
            i = active[j];
            key = keys[i];
            out[i] = IPALLOW_VARIANT(node_step)(
                t, out[i], ((shift >= 0) ? (key >> shift) : (key << -shift)) & 63, &is_child);
            active[n_next] = (uint32_t)i;
            n_next += is_child;
        }
        n_active = n_next;
        shift -= 6;
    }
}
