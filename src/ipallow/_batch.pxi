# Batch loops over keys, GIL released (included by _trie.pyx): a chunk of keys is
# queued by family, walked level by level (include/ipallow_lookup_impl.h), and
# written out in the form the caller asked for.

# Special results of Index._match_text*.
NO_MATCH = -1
UNPARSEABLE = -2
MISSING = -3
cdef enum:
    NO_MATCH_C = -1
    UNPARSEABLE_C = -2
    MISSING_C = -3

cdef enum:
    MODE_CONTAINS = 0   # bool: any match
    MODE_REGISTRATION = 1   # int32: registration index, -1 = none
    MODE_PREFIX = 2     # int32: prefix index, -1 = none


cdef inline void finish(const uint32_t* leaves, Py_ssize_t count, int mode, void* dst,
                        Py_ssize_t base, const int32_t* prefix_reg) noexcept nogil:
    """Write one chunk of leaf values out in the form the caller asked for."""
    cdef Py_ssize_t i
    cdef uint8_t* flags
    cdef int32_t* ints
    if mode == MODE_CONTAINS:
        flags = <uint8_t*>dst + base
        for i in range(count):
            flags[i] = leaves[i] != 0
    elif mode == MODE_REGISTRATION:
        ints = <int32_t*>dst + base
        for i in range(count):
            ints[i] = prefix_reg[leaves[i] - 1] if leaves[i] else -1
    else:
        ints = <int32_t*>dst + base
        for i in range(count):
            ints[i] = <int32_t>leaves[i] - 1


cdef void finish_codes(const int32_t* codes, Py_ssize_t count, int mode, void* dst,
                       Py_ssize_t base, const int32_t* prefix_reg) noexcept nogil:
    """``finish`` for prefix indices (NO_MATCH_C = none), as the text driver writes them."""
    cdef Py_ssize_t i
    cdef uint8_t* flags
    cdef int32_t* ints
    if mode == MODE_CONTAINS:
        flags = <uint8_t*>dst + base
        for i in range(count):
            flags[i] = codes[i] >= 0
    elif mode == MODE_REGISTRATION:
        ints = <int32_t*>dst + base
        for i in range(count):
            ints[i] = prefix_reg[codes[i]] if codes[i] >= 0 else -1
    else:
        ints = <int32_t*>dst + base
        for i in range(count):
            ints[i] = codes[i]


ctypedef struct chunk_t:
    # One chunk of keys, split by family.
    uint32_t key4[CHUNK]
    Py_ssize_t pos4[CHUNK]
    Py_ssize_t n4
    uint64_t hi6[CHUNK]
    uint64_t lo6[CHUNK]
    Py_ssize_t pos6[CHUNK]
    Py_ssize_t n6
    uint32_t res4[CHUNK]
    uint32_t res6[CHUNK]


cdef inline void chunk_add(chunk_t* c, Py_ssize_t pos, uint64_t hi, uint64_t lo) noexcept nogil:
    """Queue a natural-valued IPv6 key; IPv4-mapped ones join the IPv4 queue."""
    if hi == 0 and (lo >> 32) == 0xFFFF:
        c.key4[c.n4] = <uint32_t>lo
        c.pos4[c.n4] = pos
        c.n4 += 1
    else:
        c.hi6[c.n6] = hi
        c.lo6[c.n6] = lo
        c.pos6[c.n6] = pos
        c.n6 += 1


cdef inline void chunk_add4(chunk_t* c, Py_ssize_t pos, uint32_t addr) noexcept nogil:
    c.key4[c.n4] = addr
    c.pos4[c.n4] = pos
    c.n4 += 1


cdef void chunk_resolve(chunk_t* c, const table_t* t4, const table_t* t6,
                        uint32_t* leaves) noexcept nogil:
    """Walk both queues and put each leaf value back at its position."""
    cdef Py_ssize_t i
    walk4(t4, c.key4, c.res4, c.n4)
    walk(t6, c.hi6, c.lo6, c.res6, c.n6)
    for i in range(c.n4):
        leaves[c.pos4[i]] = c.res4[i]
    for i in range(c.n6):
        leaves[c.pos6[i]] = c.res6[i]
    c.n4 = 0
    c.n6 = 0


cdef void run_u32(const table_t* t4, const uint32_t* a, Py_ssize_t n, int mode,
                  void* dst, const int32_t* prefix_reg) noexcept nogil:
    cdef uint32_t leaves[CHUNK]
    cdef Py_ssize_t base = 0, count
    while base < n:
        count = min(<Py_ssize_t>CHUNK, n - base)
        walk4(t4, a + base, leaves, count)
        finish(leaves, count, mode, dst, base, prefix_reg)
        base += count


cdef void run_u64x2(const table_t* t4, const table_t* t6, const uint64_t* a, Py_ssize_t n,
                    int mode, void* dst, const int32_t* prefix_reg) noexcept nogil:
    cdef uint32_t leaves[CHUNK]
    cdef chunk_t c
    cdef Py_ssize_t base = 0, i, count
    c.n4 = c.n6 = 0
    while base < n:
        count = min(<Py_ssize_t>CHUNK, n - base)
        for i in range(count):
            chunk_add(&c, i, a[2 * (base + i)], a[2 * (base + i) + 1])
        chunk_resolve(&c, t4, t6, leaves)
        finish(leaves, count, mode, dst, base, prefix_reg)
        base += count


cdef void run_packed(const table_t* t4, const table_t* t6, const uint8_t* a, Py_ssize_t n,
                     Py_ssize_t width, int mode, void* dst, const int32_t* prefix_reg,
                     text_check_t* check) noexcept nogil:
    """Rows of ``width`` (4 or 16) big-endian bytes.  With ``check`` (an S4/S16 batch),
    each chunk is first read as text and the loop stops at a row of address text."""
    cdef uint32_t leaves[CHUNK]
    cdef chunk_t c
    cdef Py_ssize_t base = 0, i, count
    cdef const uint8_t* row
    c.n4 = c.n6 = 0
    while base < n:
        count = min(<Py_ssize_t>CHUNK, n - base)
        if check != NULL and read_fixed_rows(a, base, base + count, width, check):
            return
        for i in range(count):
            row = a + (base + i) * width
            if width == 4:
                chunk_add4(&c, i, load_be32(row))
            else:
                chunk_add(&c, i, load_be64(row), load_be64(row + 8))
        chunk_resolve(&c, t4, t6, leaves)
        finish(leaves, count, mode, dst, base, prefix_reg)
        base += count
