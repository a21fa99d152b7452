# Prefixes -> one compiled table per family (included by _trie.pyx).
#
# The index
# ---------
# A table is a level-0 array ``dir`` and one array of 32-bit words, the
# ``heap``, holding every node.  Nodes have one of two shapes:
#
#   leaf-only node (no child slots)      inner node (some child slots)
#   word 0-1  leafvec                    word 0-1  leafvec
#   word 2    default                    word 2    default
#   word 3    first                      word 3    first
#   word 4..  leaf codes (bytes)         word 4-5  vector
#                                        word 6..  one entry per child, then leaf codes
#
# A reference to a node (a level-0 entry or a child entry) is its word offset
# with NODE_FLAG set, plus INNER_FLAG for the inner shape; any other level-0
# entry is an answer.  Leaf runs hold one byte each, a *code*: 0 is the node's
# ``default`` answer, c > 0 is ``first + c - 1``.  That works because the builder
# numbers prefixes in the order their answers first appear, depth first: a
# node's own leaves are its block's covering prefix (or none) and at most 64
# prefixes inside the block that appear there for the first time.  So a leaf
# costs one byte instead of four, and a node without children 16 bytes plus
# its codes instead of 24 (the first layout: 12.4 bytes a prefix at 1M IPv4
# prefixes; this one 6.8).  The flags and word counts are in include/ipallow_node.h;
# the lookups that read this layout in include/ipallow_lookup_impl.h.

cdef inline bint key_le(uint64_t ahi, uint64_t alo, uint64_t bhi, uint64_t blo) noexcept nogil:
    return ahi < bhi or (ahi == bhi and alo <= blo)


ctypedef struct builder_t:
    # Elementary intervals: value val[k] holds from (bhi[k], blo[k]) up to the next start.
    uint64_t* bhi
    uint64_t* blo
    uint32_t* val
    Py_ssize_t m
    # The heap, grown as needed.
    uint32_t* heap
    Py_ssize_t n_words, cap_words
    # Answers are renumbered in order of first appearance: number[value] is the
    # new number (0 = not seen yet), appear[n - first] the value numbered n.
    uint32_t* number
    uint32_t* appear
    uint32_t first, next


cdef enum:
    BUILD_NO_MEMORY = -1
    BUILD_TWO_DEFAULTS = -2     # cannot happen for nested-or-disjoint prefixes
    BUILD_TOO_LARGE = -3


cdef void emit_boundary(builder_t* b, uint64_t hi, uint64_t lo, uint32_t value) noexcept nogil:
    """Append 'value from (hi, lo) on', merging with the previous interval where equal."""
    if b.bhi[b.m - 1] == hi and b.blo[b.m - 1] == lo:
        b.val[b.m - 1] = value
        if b.m >= 2 and b.val[b.m - 2] == value:
            b.m -= 1
    elif b.val[b.m - 1] != value:
        b.bhi[b.m] = hi
        b.blo[b.m] = lo
        b.val[b.m] = value
        b.m += 1


cdef void sweep(builder_t* b, const uint64_t* hi, const uint64_t* lo, const uint8_t* plen,
                const uint32_t* value, Py_ssize_t count) noexcept nogil:
    """Leaf-push prefixes sorted by (start, length, value) into elementary intervals.

    Prefixes are nested or disjoint, so a stack of the open ones (at most one
    per length) gives the longest match; a duplicate keeps the first value.
    """
    cdef uint64_t stack_hi[130]
    cdef uint64_t stack_lo[130]     # last address of each open prefix
    cdef uint64_t stack_start_hi[130]
    cdef uint64_t stack_start_lo[130]
    cdef uint8_t stack_len[130]
    cdef uint32_t stack_val[130]
    cdef int depth = 0
    cdef Py_ssize_t i
    cdef uint64_t last_hi, last_lo, next_hi, next_lo
    b.bhi[0] = 0
    b.blo[0] = 0
    b.val[0] = 0
    b.m = 1
    for i in range(count + 1):
        # Close every open prefix that ends before this one starts (all, at the end).
        while depth > 0 and (i == count or not key_le(hi[i], lo[i],
                                                      stack_hi[depth - 1], stack_lo[depth - 1])):
            depth -= 1
            next_hi = stack_hi[depth]
            next_lo = stack_lo[depth] + 1
            if next_lo == 0:
                next_hi += 1
                if next_hi == 0:            # the prefix ended at the very last address
                    continue
            emit_boundary(b, next_hi, next_lo, stack_val[depth - 1] if depth > 0 else 0)
        if i == count:
            break
        if (depth > 0 and stack_start_hi[depth - 1] == hi[i] and stack_start_lo[depth - 1] == lo[i]
                and stack_len[depth - 1] == plen[i]):
            continue                        # duplicate prefix: the first one wins
        ones_below(128 - plen[i], &last_hi, &last_lo)
        stack_start_hi[depth] = hi[i]
        stack_start_lo[depth] = lo[i]
        stack_hi[depth] = hi[i] | last_hi
        stack_lo[depth] = lo[i] | last_lo
        stack_len[depth] = plen[i]
        stack_val[depth] = value[i]
        depth += 1
        emit_boundary(b, hi[i], lo[i], value[i])


cdef inline void slot_start(uint64_t hi, uint64_t lo, int offset, unsigned v,
                            uint64_t* shi, uint64_t* slo) noexcept nogil:
    """Start of slot ``v`` of the node at bit ``offset`` whose block starts at (hi, lo)."""
    cdef int shift = 122 - offset
    shi[0] = hi
    slo[0] = lo
    if shift >= 64:
        shi[0] |= <uint64_t>v << (shift - 64)
    elif shift > 58:
        shi[0] |= <uint64_t>v >> (64 - shift)
        slo[0] |= <uint64_t>v << shift
    elif shift >= 0:
        slo[0] |= <uint64_t>v << shift
    else:
        slo[0] |= <uint64_t>v >> (-shift)


cdef inline Py_ssize_t advance(const builder_t* b, Py_ssize_t k, uint64_t hi, uint64_t lo) noexcept nogil:
    """Index of the interval containing (hi, lo), searching forward from ``k``."""
    while k + 1 < b.m and key_le(b.bhi[k + 1], b.blo[k + 1], hi, lo):
        k += 1
    return k


cdef inline bint uniform(const builder_t* b, Py_ssize_t k, uint64_t last_hi, uint64_t last_lo) noexcept nogil:
    """True when interval ``k`` extends past (last_hi, last_lo): one answer for the block."""
    return k + 1 >= b.m or not key_le(b.bhi[k + 1], b.blo[k + 1], last_hi, last_lo)


cdef int reserve(builder_t* b, Py_ssize_t words) noexcept nogil:
    cdef void* p
    cdef Py_ssize_t cap
    if b.n_words + words > b.cap_words:
        cap = max(2 * b.cap_words, b.n_words + words + 1024)
        p = realloc(b.heap, cap * sizeof(uint32_t))
        if p == NULL:
            return -1
        b.heap = <uint32_t*>p
        b.cap_words = cap
    return 0


cdef inline bint at_slot_start(uint64_t hi, uint64_t lo, int offset) noexcept nogil:
    """True when (hi, lo) is the first address of its 6-bit slot at ``offset``."""
    cdef uint64_t mhi, mlo
    cdef int below = 122 - offset            # bits inside one slot
    if below <= 0:
        return True
    ones_below(below, &mhi, &mlo)
    return ((hi & mhi) | (lo & mlo)) == 0


cdef inline uint32_t number_of(builder_t* b, uint32_t value) noexcept nogil:
    """The new number of an answer, given the next free one if it is new (0 stays 0)."""
    if value and not b.number[value]:
        b.number[value] = b.next
        b.appear[b.next - b.first] = value
        b.next += 1
    return b.number[value]


cdef int64_t fill_node(builder_t* b, uint64_t hi, uint64_t lo, int offset, Py_ssize_t k) noexcept nogil:
    """Write the node for the block starting at (hi, lo) at bit ``offset``; return its reference.

    ``k`` is the interval holding the block's first address.  One pass over
    the boundaries inside the block decides every slot: a boundary exactly at
    a slot start only changes the value from that slot on; any other boundary
    makes its slot a child node.  The node's leaf codes are decided (and its
    new answers numbered) before any child is written, depth first, which is
    what keeps every code below 65.  Returns a BUILD_* error (< 0) on failure.
    """
    cdef uint64_t vector = 0, leafvec = 0, last_hi, last_lo, shi, slo
    cdef Py_ssize_t child_k[64]
    cdef uint32_t leaf_val[64]
    cdef uint8_t codes[64]
    cdef int n_children = 0, n_leaves = 0, c
    cdef unsigned v
    cdef bint have_leaf = False, inner, have_default = False
    cdef uint32_t last_leaf = 0, first, num, default = 0
    cdef Py_ssize_t nxt = k + 1, start_k, words, at, code_word
    cdef int64_t child
    ones_below(128 - offset, &last_hi, &last_lo)
    last_hi |= hi
    last_lo |= lo
    # Boundaries inside the block are nxt .. (first one past the block).
    for v in range(64):
        if (nxt < b.m and key_le(b.bhi[nxt], b.blo[nxt], last_hi, last_lo)
                and slot_of(b.bhi[nxt], b.blo[nxt], offset) == v
                and at_slot_start(b.bhi[nxt], b.blo[nxt], offset)):
            k = nxt
            nxt += 1
        start_k = k
        inner = False
        while (nxt < b.m and key_le(b.bhi[nxt], b.blo[nxt], last_hi, last_lo)
               and slot_of(b.bhi[nxt], b.blo[nxt], offset) == v):
            inner = True
            k = nxt
            nxt += 1
        if inner:
            vector |= <uint64_t>1 << v
            child_k[n_children] = start_k
            n_children += 1
        elif not have_leaf or b.val[k] != last_leaf:
            leafvec |= <uint64_t>1 << v
            leaf_val[n_leaves] = b.val[k]
            n_leaves += 1
            last_leaf = b.val[k]
            have_leaf = True
    # Codes: answers numbered before this node (the covering prefix, or none)
    # are the default; the rest are new here, numbered from ``first`` on.
    first = b.next
    for c in range(n_leaves):
        num = number_of(b, leaf_val[c])
        if num and num >= first:
            codes[c] = <uint8_t>(num - first + 1)
        elif have_default and num != default:
            return BUILD_TWO_DEFAULTS
        else:
            default = num
            have_default = True
            codes[c] = 0
    code_word = HEAD_WORDS + (INNER_HEAD_WORDS - HEAD_WORDS + n_children if n_children else 0)
    words = code_word + (n_leaves + 3) // 4
    if reserve(b, words) < 0:
        return BUILD_NO_MEMORY
    at = b.n_words
    if at > OFFSET_MASK:
        return BUILD_TOO_LARGE
    b.n_words += words
    store64(b.heap + at, leafvec)
    b.heap[at + 2] = default
    b.heap[at + 3] = first
    if n_children:
        store64(b.heap + at + HEAD_WORDS, vector)
    for c in range(code_word, words):
        b.heap[at + c] = 0
    memcpy(<uint8_t*>(b.heap + at + code_word), codes, n_leaves)
    c = 0
    for v in range(64):
        if (vector >> v) & 1:
            slot_start(hi, lo, offset, v, &shi, &slo)
            child = fill_node(b, shi, slo, offset + 6, child_k[c])
            if child < 0:
                return child
            b.heap[at + INNER_HEAD_WORDS + c] = <uint32_t>child    # heap may have moved
            c += 1
    return NODE_FLAG | (INNER_FLAG if n_children else 0) | <uint32_t>at


cdef void copy_into(object array, const void* src, size_t size):
    cdef uint8_t[::1] dst = array.view(np.uint8)
    if size:
        memcpy(&dst[0], src, size)


def build_table(const uint64_t[::1] hi, const uint64_t[::1] lo, const uint8_t[::1] plen,
                const uint32_t[::1] value, int dir_bits, uint32_t first, uint32_t n_values):
    """Compile prefixes into ``(dir, heap, appear)`` numpy ``uint32`` arrays.

    Arguments:
        hi, lo: left-aligned 128-bit prefix starts (no host bits), sorted
            together with ``plen`` and ``value`` by (start, length, value).
        plen: prefix lengths in the 128-bit space (IPv4 /n stays n).
        value: the identity of each prefix, 1 <= value <= n_values.
        dir_bits: bits resolved by the level-0 array (1..24).
        first: the number given to the first answer that appears.

    The table answers with new numbers: the n-th distinct answer met in a
    depth-first walk is ``first + n``, and ``appear[n]`` is its value.  Values
    that never answer (shadowed or duplicate prefixes) are not in ``appear``.
    """
    cdef Py_ssize_t count = hi.shape[0], d, k = 0, ndir, i
    if not (lo.shape[0] == count and plen.shape[0] == count and value.shape[0] == count):
        raise ValueError("build_table: arrays differ in length")
    if not 1 <= dir_bits <= 24:
        raise ValueError("build_table: dir_bits must be 1..24")
    if first < 1 or <uint64_t>first + count > <uint64_t>NODE_FLAG or n_values >= NODE_FLAG:
        raise ValueError("build_table: answer numbers out of range")
    # The sweep's stack holds one open prefix per length: that bound needs prefixes
    # sorted by (start, length), no longer than 128 and without host bits (so nested or
    # disjoint).  Checked here, as other input would overrun it.
    cdef uint64_t host_hi, host_lo
    for i in range(count):
        if not 1 <= value[i] <= n_values:
            raise ValueError("build_table: values must be 1..n_values")
        if plen[i] > 128:
            raise ValueError("build_table: prefix lengths must be 0..128")
        ones_below(128 - plen[i], &host_hi, &host_lo)
        if (hi[i] & host_hi) | (lo[i] & host_lo):
            raise ValueError("build_table: a prefix has host bits set")
        if i and not (hi[i - 1] < hi[i] or (hi[i - 1] == hi[i] and (
                lo[i - 1] < lo[i] or (lo[i - 1] == lo[i] and plen[i - 1] <= plen[i])))):
            raise ValueError("build_table: prefixes must be sorted by (start, length)")
    cdef builder_t b
    b.bhi = <uint64_t*>malloc((2 * count + 2) * sizeof(uint64_t))
    b.blo = <uint64_t*>malloc((2 * count + 2) * sizeof(uint64_t))
    b.val = <uint32_t*>malloc((2 * count + 2) * sizeof(uint32_t))
    b.number = <uint32_t*>calloc(<size_t>n_values + 1, sizeof(uint32_t))
    b.appear = <uint32_t*>malloc((count + 1) * sizeof(uint32_t))
    b.heap = NULL
    b.n_words = b.cap_words = 0
    b.first = b.next = first
    ndir = <Py_ssize_t>1 << dir_bits
    dir_arr = np.zeros(ndir, dtype=np.uint32)
    cdef uint32_t[::1] directory = dir_arr
    cdef uint64_t dhi, ohi, olo
    cdef int64_t failed = 0, entry
    try:
        if b.bhi == NULL or b.blo == NULL or b.val == NULL or b.number == NULL or b.appear == NULL:
            raise MemoryError()
        with nogil:
            if count:
                sweep(&b, &hi[0], &lo[0], &plen[0], &value[0], count)
            else:
                b.bhi[0] = 0
                b.blo[0] = 0
                b.val[0] = 0
                b.m = 1
            ones_below(128 - dir_bits, &ohi, &olo)
            for d in range(ndir):
                dhi = <uint64_t>d << (64 - dir_bits)
                k = advance(&b, k, dhi, 0)
                if uniform(&b, k, dhi | ohi, olo):
                    directory[d] = number_of(&b, b.val[k])
                else:
                    entry = fill_node(&b, dhi, 0, dir_bits, k)
                    if entry < 0:
                        failed = entry
                        break
                    directory[d] = <uint32_t>entry
            if not failed:
                if reserve(&b, HEAP_SLACK) < 0:
                    failed = BUILD_NO_MEMORY
                else:
                    for i in range(HEAP_SLACK):
                        b.heap[b.n_words + i] = 0
                    b.n_words += HEAP_SLACK
        if failed == BUILD_NO_MEMORY:
            raise MemoryError()
        if failed == BUILD_TOO_LARGE:
            raise OverflowError("table too large for 30-bit node offsets")
        if failed:
            raise RuntimeError("build_table: a node holds two default answers (internal error)")
        heap_arr = np.empty(b.n_words, dtype=np.uint32)
        appear_arr = np.empty(b.next - first, dtype=np.uint32)
        copy_into(heap_arr, b.heap, b.n_words * sizeof(uint32_t))
        copy_into(appear_arr, b.appear, (b.next - first) * sizeof(uint32_t))
        return dir_arr, heap_arr, appear_arr
    finally:
        free(b.bhi)
        free(b.blo)
        free(b.val)
        free(b.number)
        free(b.appear)
        free(b.heap)


