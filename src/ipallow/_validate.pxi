# Tables and prefix tables checked before any lookup reads them, and the snapshot
# checksum (included by _trie.pyx).  Whatever produced the arrays (our builder, a
# snapshot file, a pickle), nothing may read outside them or loop.

cdef enum:
    # Depth-first check stack: 64 children pushed at once, then at most 63 siblings
    # waiting on each level; with dir_bits >= 1 nodes are checked down to depth 21
    # and pushed down to depth 22: 64 + 63 * 22 = 1450 entries at the most.
    CHECK_STACK = 64 * 23


cdef int check_table(const table_t* t, int key_bits, uint32_t n_values, uint8_t* seen,
                     Py_ssize_t* n_nodes, Py_ssize_t* n_codes, const char** why) noexcept nogil:
    """0 when every lookup in ``t`` stays inside its arrays and ends; else -1 and a reason.

    Checks: level-0 entries are answers (<= n_values) or node references;
    every node, its child entries and its codes lie inside the heap (with the
    slack the batch walk reads past a node); child entries are node
    references; a node's first leaf slot starts a run (so popcount - 1 never
    underflows); every code names an answer <= n_values; every node is
    reached once (``seen``, a bitmap over word offsets: no cycles or sharing)
    and above the key's last bit.  Walks depth first, children in slot order:
    the order the builder lays nodes out, so the heap is read front to back.
    Counts the nodes and leaf codes on the way.
    """
    cdef Py_ssize_t d, top = 0, words = t.n_words
    cdef uint32_t stack[CHECK_STACK]
    cdef uint8_t stack_depth[CHECK_STACK]
    cdef uint32_t entry, at, first, child
    cdef Py_ssize_t depth, code_word, n_children, n_leaves, i
    cdef const uint32_t* node
    cdef const uint8_t* codes
    cdef uint64_t vector, leafvec, leaf_slots
    cdef unsigned max_code
    cdef Py_ssize_t nodes_seen = 0, codes_seen = 0
    for d in range((<Py_ssize_t>1) << t.dir_bits):
        entry = t.dir[d]
        if not entry & NODE_FLAG:
            if entry > n_values:
                why[0] = "level-0 answer names a prefix that does not exist"
                return -1
            continue
        stack[0] = entry
        stack_depth[0] = 0
        top = 1
        while top:
            top -= 1
            entry = stack[top]
            depth = stack_depth[top]
            at = entry & OFFSET_MASK
            if at >= words:
                why[0] = ("level-0 entry points past the heap" if depth == 0
                          else "a child entry points past the heap")
                return -1
            if seen[at >> 3] & (1 << (at & 7)):
                why[0] = "a node is reached twice"
                return -1
            seen[at >> 3] |= <uint8_t>(1 << (at & 7))
            if t.dir_bits + 6 * depth >= key_bits:
                why[0] = "a node lies below the last bit of the key"
                return -1
            if <Py_ssize_t>at + INNER_HEAD_WORDS > words:
                why[0] = "a node lies past the end of the heap"
                return -1
            node = t.heap + at
            leafvec = load64(node)
            first = node[3]
            if entry & INNER_FLAG:
                vector = load64(node + HEAD_WORDS)
                n_children = popcount64(vector)
                code_word = INNER_HEAD_WORDS + n_children
            else:
                vector = 0
                n_children = 0
                code_word = HEAD_WORDS
            n_leaves = popcount64(leafvec)
            if vector & leafvec:
                why[0] = "a slot is marked both child and leaf"
                return -1
            leaf_slots = ~vector
            # The lowest leaf slot must start a run of leaves.
            if leaf_slots and not (leafvec & leaf_slots & (0 - leaf_slots)):
                why[0] = "a node's first leaf slot does not start a run"
                return -1
            if 4 * (<Py_ssize_t>at + code_word) + n_leaves > 4 * words:
                why[0] = "a node's children or leaves lie past the end of the heap"
                return -1
            codes = <const uint8_t*>(node + code_word)
            max_code = 0
            for i in range(n_leaves):
                max_code = max_code if max_code >= codes[i] else codes[i]
            if node[2] > n_values or (max_code and (max_code > 64 or first == 0
                                                    or <uint64_t>first + max_code - 1 > n_values)):
                why[0] = "a leaf names a prefix that does not exist"
                return -1
            if top + n_children > CHECK_STACK:      # cannot happen below the depth bound; never overrun
                why[0] = "a node lies below the last bit of the key"
                return -1
            # Children pushed last first, so they are checked in slot (= heap) order.
            for i in range(n_children - 1, -1, -1):
                child = node[INNER_HEAD_WORDS + i]
                if not child & NODE_FLAG:
                    why[0] = "a child entry is not a node reference"
                    return -1
                stack[top] = child
                stack_depth[top] = <uint8_t>(depth + 1)
                top += 1
            nodes_seen += 1
            codes_seen += n_leaves
    n_nodes[0] = nodes_seen
    n_codes[0] = codes_seen
    return 0


def validate_table(str family, dir_arr, heap_arr, int dir_bits, int key_bits, Py_ssize_t n_values):
    """Raise TableError unless lookups in these arrays are safe (see ``check_table``).

    Returns ``(nodes, leaf codes)``, the table's shape for statistics.
    """
    cdef table_t t
    for arr in (dir_arr, heap_arr):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint32 or arr.ndim != 1 \
                or not arr.flags.c_contiguous:
            raise TypeError("table arrays must be 1-D C-contiguous uint32 arrays")
    if key_bits not in (32, 128):
        raise ValueError("key_bits must be 32 (IPv4) or 128 (IPv6)")
    if not 1 <= dir_bits <= 24 or dir_arr.shape[0] != (1 << dir_bits):
        raise ValueError("level-0 array does not match dir_bits")
    fill_table(&t, dir_arr, heap_arr, dir_bits)
    if heap_arr.shape[0] > <Py_ssize_t>OFFSET_MASK + 1 or n_values >= NODE_FLAG:
        raise TableError(f"corrupt {family} table: too large")
    cdef uint8_t* seen = <uint8_t*>calloc(<size_t>t.n_words // 8 + 1, 1)
    if seen == NULL:
        raise MemoryError()
    cdef const char* why = NULL
    cdef Py_ssize_t n_nodes = 0, n_codes = 0
    cdef int rc
    with nogil:
        rc = check_table(&t, key_bits, <uint32_t>n_values, seen, &n_nodes, &n_codes, &why)
    free(seen)
    if rc < 0:
        raise TableError(f"corrupt {family} table: {why.decode()}")
    return n_nodes, n_codes


def check_prefix_table(const uint8_t[::1] version, const uint64_t[::1] hi, const uint64_t[::1] lo,
                       const uint8_t[::1] prefixlen, const int64_t[::1] reg_first,
                       const int32_t[::1] reg_rows, const int32_t[::1] prefix_reg, Py_ssize_t n_prefixes):
    """None when the prefix table is consistent, else the reason (the one scratch
    bitmap is freed before returning: the check runs in every process that maps
    a snapshot, so it must not leave heap behind).

    Every row must be a network ``ipaddress`` accepts as is (version, length,
    IPv4 within 32 bits, no host bits): lookups build one from any row."""
    cdef Py_ssize_t i, reg
    cdef int32_t row
    cdef uint8_t* taken
    if version.shape[0] != n_prefixes or hi.shape[0] != n_prefixes or lo.shape[0] != n_prefixes \
            or prefixlen.shape[0] != n_prefixes:
        return "a prefix column does not have one row per prefix"
    for i in range(n_prefixes):
        if version[i] == 4:
            if prefixlen[i] > 32:
                return f"prefix length {prefixlen[i]} at row {i} is over 32"
            if hi[i] != 0 or lo[i] > 0xFFFFFFFF:
                return f"IPv4 prefix at row {i} is wider than 32 bits"
        elif version[i] == 6:
            if prefixlen[i] > 128:
                return f"prefix length {prefixlen[i]} at row {i} is over 128"
        else:
            return f"unknown IP version {version[i]} at row {i}"
        if has_host_bits(version[i], hi[i], lo[i], prefixlen[i]):
            return f"prefix at row {i} has host bits set"
    if reg_first.shape[0] == 0 or reg_first[0] != 0 or reg_first[reg_first.shape[0] - 1] != n_prefixes:
        return "registration offsets do not span the prefix table"
    for i in range(1, reg_first.shape[0]):
        if reg_first[i] < reg_first[i - 1]:
            return f"registration offsets decrease at row {i}"
    if reg_rows.shape[0] != n_prefixes:
        return "registration rows do not cover the prefix table"
    taken = <uint8_t*>calloc(<size_t>n_prefixes + 1, 1)
    if taken == NULL:
        raise MemoryError()
    try:
        for i in range(n_prefixes):
            row = reg_rows[i]
            if row < 0 or row >= n_prefixes or taken[row]:
                return f"registration rows are not a permutation (entry {i})"
            taken[row] = 1
    finally:
        free(taken)
    if prefix_reg.shape[0] != n_prefixes:
        return "prefix registrations do not cover the prefix table"
    for reg in range(reg_first.shape[0] - 1):
        for i in range(reg_first[reg], reg_first[reg + 1]):
            if prefix_reg[reg_rows[i]] != reg:
                return f"row {reg_rows[i]} is listed under registration {reg} but names another"
    return None


def checksum(buffer):
    """64-bit checksum of a bytes-like object (snapshot sections, headers).

    Defined in include/ipallow_checksum.h and, exactly, in docs/snapshot-format.md.
    """
    cdef const unsigned char[::1] view = memoryview(buffer).cast("B")
    cdef uint64_t result
    with nogil:
        result = c_checksum(&view[0] if view.shape[0] else NULL, <size_t>view.shape[0])
    return result


cdef const void* pointer_of(object array) except? NULL:
    cdef const uint8_t[::1] view = array.view(np.uint8)
    return <const void*>&view[0] if view.shape[0] else NULL


cdef int fill_table(table_t* t, dir_arr, heap_arr, int dir_bits) except -1:
    t.dir = <const uint32_t*>pointer_of(dir_arr)
    t.heap = <const uint32_t*>pointer_of(heap_arr)
    t.dir_bits = dir_bits
    t.n_words = <uint32_t>heap_arr.shape[0]
    return 0


