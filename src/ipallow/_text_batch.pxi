# The one driver for batches of address text (included by _trie.pyx).
#
# Every text batch -- a Python list, an Arrow string array, a numpy S or U array --
# runs the same loop, ``match_rows``: CHUNK rows at a time, each row's text is
# parsed and its key queued by family, the queues are walked, and each row gets
# its prefix index, NO_MATCH_C, UNPARSEABLE_C or MISSING_C.  The sources differ
# only in how row i's text is found, ``read_row``, specialised per source at
# compile time (a fused type: no indirect call and no switch inside the loop).
# A Python list cannot be read without the GIL, so it is taken GATHER items at a
# time: a slice of the list (which holds a reference to each item, so the items
# and their immutable text outlive any change to the list) and, per item, a
# pointer to its text or its key (``gather_rows``); the driver then runs with
# the GIL released.  Callers that must raise on a bad row
# (``contains_many`` and friends) turn the codes into their answers with
# ``finish_codes`` and report the first UNPARSEABLE_C row.

cdef enum:
    GATHER = 512        # list items taken per GIL hold (a multiple of CHUNK)
    UCS4_SCRATCH = 72   # a numpy U row narrowed to bytes (71 = "too long" for the parser)
    # read_row's marks besides MISSING_C and UNPARSEABLE_C (written out as they are)
    ROW_KEY = -4        # the row is a key already (gathered rows: an int, bytes, an object...)
    ROW_BROKEN = -5     # the source contradicts itself (Arrow offsets outside the data): stop


ctypedef struct gathered_rows_t:
    # A slice of a Python list, read while the GIL was held (the slice keeps the items alive).
    const char* text[GATHER]        # the item's own text (str or bytes: immutable)
    Py_ssize_t sizes[GATHER]        # text length, or ROW_KEY, MISSING_C, UNPARSEABLE_C
    uint64_t keys_hi[GATHER]        # ROW_KEY rows: the key (IPv4 as ::ffff:a.b.c.d)
    uint64_t keys_lo[GATHER]

ctypedef struct arrow_rows_t:
    # An Arrow string / large_string array, read in its buffers.
    const uint8_t* offsets          # int32, or int64 when ``wide``
    const char* data
    const uint8_t* validity         # LSB-first bitmap, or NULL when there are no nulls
    Py_ssize_t start                # the array's first row in the buffers (slices)
    Py_ssize_t n_data
    bint wide

ctypedef struct fixed_rows_t:
    # A numpy S (NUL-padded ASCII) or U (NUL-padded UCS-4) array, read in place.
    const uint8_t* data
    Py_ssize_t itemsize
    bint ucs4

ctypedef fused row_source_t:
    gathered_rows_t
    arrow_rows_t
    fixed_rows_t


cdef char EMPTY_TEXT[1]


cdef inline Py_ssize_t read_row(const row_source_t* src, Py_ssize_t row, char* scratch,
                                const char** text, uint64_t* hi, uint64_t* lo) noexcept nogil:
    """Row ``row``'s text: its length, with ``text`` set (into the source, or ``scratch``);
    else ROW_KEY with ``hi``, ``lo`` set, MISSING_C, UNPARSEABLE_C or ROW_BROKEN."""
    cdef Py_ssize_t size, k
    cdef int64_t first, last
    cdef const uint8_t* fixed
    cdef const uint32_t* wide
    cdef uint32_t ch
    if row_source_t is gathered_rows_t:
        size = src.sizes[row]
        if size >= 0:
            text[0] = src.text[row]
        elif size == ROW_KEY:
            hi[0] = src.keys_hi[row]
            lo[0] = src.keys_lo[row]
        return size
    elif row_source_t is arrow_rows_t:
        row += src.start
        if src.validity != NULL and not ((src.validity[row >> 3] >> (row & 7)) & 1):
            return MISSING_C
        first = arrow_offset(src.offsets, row, src.wide)
        last = arrow_offset(src.offsets, row + 1, src.wide)
        if first < 0 or last < first or last > src.n_data:
            return ROW_BROKEN
        text[0] = src.data + first
        return <Py_ssize_t>(last - first)
    else:
        fixed = src.data + row * src.itemsize
        # numpy pads with NULs at the end only: a NUL before the last
        # character is part of the text (and makes it unparseable).
        if src.ucs4:
            wide = <const uint32_t*>fixed
            size = src.itemsize // 4
            while size > 0 and wide[size - 1] == 0:
                size -= 1
            if size > UCS4_SCRATCH - 2:
                size = UCS4_SCRATCH - 1         # too long: the parser rejects it
            for k in range(size):
                ch = wide[k]
                scratch[k] = <char>(ch if ch < 128 else 0x80)
            text[0] = scratch
            return size
        size = src.itemsize
        while size > 0 and fixed[size - 1] == 0:
            size -= 1
        text[0] = <const char*>fixed
        return size


cdef inline int32_t queue_text(chunk_t* c, Py_ssize_t i, const char* s, Py_ssize_t n) noexcept nogil:
    """Parse address text into the chunk's queues: 0 when queued, UNPARSEABLE_C otherwise."""
    cdef uint64_t hi = 0, lo = 0
    cdef Py_ssize_t err
    cdef int version = parse_address_bytes(s, 0, n, &hi, &lo, &err)
    if version == 4:
        chunk_add4(c, i, <uint32_t>lo)
    elif version == 6:
        chunk_add(c, i, hi, lo)
    else:
        return UNPARSEABLE_C
    return 0


cdef Py_ssize_t match_rows(const row_source_t* src, Py_ssize_t n, const table_t* t4,
                           const table_t* t6, int32_t* out) noexcept nogil:
    """``out[i]`` for rows 0..n-1: the prefix index of the longest match, NO_MATCH_C,
    UNPARSEABLE_C or MISSING_C.  Returns n, or the row where a broken source stopped it."""
    cdef uint32_t leaves[CHUNK]
    cdef chunk_t c
    cdef char scratch[UCS4_SCRATCH]
    cdef const char* text = NULL
    cdef uint64_t hi = 0, lo = 0
    cdef Py_ssize_t base = 0, i, count, size
    c.n4 = c.n6 = 0
    while base < n:
        count = min(<Py_ssize_t>CHUNK, n - base)
        for i in range(count):
            size = read_row(src, base + i, scratch, &text, &hi, &lo)
            if size >= 0:
                out[base + i] = queue_text(&c, i, text, size)
            elif size == ROW_KEY:
                chunk_add(&c, i, hi, lo)
                out[base + i] = 0
            elif size == ROW_BROKEN:
                return base + i
            else:
                out[base + i] = <int32_t>size
            leaves[i] = 0
        chunk_resolve(&c, t4, t6, leaves)
        for i in range(count):
            if out[base + i] == 0:              # queued; marked rows keep their mark
                out[base + i] = <int32_t>leaves[i] - 1
        base += count
    return n


cdef list take_rows(list items, Py_ssize_t n, Py_ssize_t base):
    """Items ``base``.. (GATHER at most) of a list that had ``n`` items, as a new list.

    Only this slice is read afterwards, so the list may change meanwhile without
    harm (Python code runs between slices: an item's conversion, a finalizer, then
    another thread); a list that has shrunk is refused in words."""
    cdef Py_ssize_t count = min(<Py_ssize_t>GATHER, n - base)
    cdef list block = items[base:base + count]
    if PyList_GET_SIZE(block) < count:
        raise list_changed_size("addresses", n, items)
    return block


cdef object gather_rows(list block, gathered_rows_t* g, bint raising, Py_ssize_t* ready):
    """Point ``g`` at the text of each item of ``block`` (a slice from ``take_rows``).

    Address text (str, compact ASCII) is pointed at; with ``raising``, any other item
    becomes its key at once (``key_from_object``), and the exception of the first that
    cannot stops the gathering and is returned (``ready`` rows were gathered before it).
    Without, str and bytes are pointed at and anything else is MISSING_C (None) or
    UNPARSEABLE_C, never an exception.
    """
    cdef Py_ssize_t count = PyList_GET_SIZE(block), i, size = 0
    cdef const char* s
    cdef uint64_t hi = 0, lo = 0
    cdef object item
    for i in range(count):
        item = block[i]
        if PyUnicode_Check(item) and PyUnicode_IS_COMPACT_ASCII(item):
            g.text[i] = <const char*>PyUnicode_DATA(item)
            g.sizes[i] = PyUnicode_GET_LENGTH(item)
            continue
        if not raising:
            if PyBytes_Check(item):
                g.text[i] = PyBytes_AS_STRING(item)
                g.sizes[i] = PyBytes_GET_SIZE(item)
            elif PyUnicode_Check(item):
                try:
                    g.text[i] = PyUnicode_AsUTF8AndSize(item, &size)   # cached in the str
                    g.sizes[i] = size
                except UnicodeEncodeError:
                    g.sizes[i] = UNPARSEABLE_C
            else:
                g.sizes[i] = MISSING_C if item is None else UNPARSEABLE_C
            continue
        try:
            if key_from_object(item, &hi, &lo) == 4:
                lo |= <uint64_t>0xFFFF << 32    # IPv4-mapped: chunk_add queues it as IPv4
        except Exception as exc:                # reported after earlier rows are parsed
            ready[0] = i
            return exc
        g.sizes[i] = ROW_KEY
        g.keys_hi[i] = hi
        g.keys_lo[i] = lo
    ready[0] = count
    return None


cdef int run_list(list items, Py_ssize_t n, int mode, void* dst, const table_t* t4,
                  const table_t* t6, const int32_t* prefix_reg) except -1:
    """A list of addresses in any accepted form -> answers in ``dst``; the first bad item
    raises (with its position), whichever phase finds it.  Threads overlap on the
    parsing and the walks (GIL released)."""
    cdef gathered_rows_t g
    cdef int32_t codes[GATHER]
    cdef Py_ssize_t base = 0, ready = 0, bad_at
    cdef object failure
    cdef list block
    while base < n:
        block = take_rows(items, n, base)
        failure = gather_rows(block, &g, True, &ready)
        with nogil:
            match_rows(&g, ready, t4, t6, codes)
            bad_at = 0
            while bad_at < ready and codes[bad_at] != UNPARSEABLE_C:
                bad_at += 1
            finish_codes(codes, bad_at, mode, dst, base, prefix_reg)
        if bad_at < ready:
            failure = address_error_of(block[bad_at])
        if failure is not None:
            failure.add_note(f"at position {base + bad_at} of the batch")
            raise failure
        base += ready
    return 0


cdef object match_list(list items, const table_t* t4, const table_t* t6):
    """``Index._match_text`` for a list: codes per item, never an AddressError."""
    cdef Py_ssize_t n = PyList_GET_SIZE(items), base = 0, ready = 0
    result = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] out = result
    cdef gathered_rows_t g
    cdef list block
    while base < n:
        block = take_rows(items, n, base)
        gather_rows(block, &g, False, &ready)
        with nogil:
            match_rows(&g, ready, t4, t6, &out[base])
        base += ready
    return result


cdef object match_arrow(offsets, data, validity, Py_ssize_t start, Py_ssize_t length, bint wide,
                        const table_t* t4, const table_t* t6):
    """``Index._match_text_arrow``: an Arrow string array's buffers, read in place."""
    if start < 0 or length < 0:
        raise ValueError("start and length must be non-negative")
    cdef const uint8_t[::1] offs_bytes = memoryview(offsets).cast("B")
    cdef const uint8_t[::1] raw = memoryview(data).cast("B") if data is not None else b""
    cdef const uint8_t[::1] valid
    cdef arrow_rows_t src
    src.validity = NULL
    if validity is not None:
        valid = memoryview(validity).cast("B")
        # Written so that nothing overflows: start + length can pass 2**63.
        if start > valid.shape[0] * 8 - length:
            raise ValueError("validity bitmap shorter than the array")
        if valid.shape[0]:
            src.validity = &valid[0]
    cdef Py_ssize_t width = 8 if wide else 4
    if start > offs_bytes.shape[0] // width - 1 - length:       # needs start + length + 1 offsets
        raise ValueError("offsets buffer shorter than the array")
    result = np.empty(length, dtype=np.int32)
    cdef int32_t[::1] out = result
    src.offsets = &offs_bytes[0] if offs_bytes.shape[0] else NULL
    # An empty data buffer: every row must then be empty (checked by read_row).
    src.data = <const char*>&raw[0] if raw.shape[0] else EMPTY_TEXT
    src.n_data = raw.shape[0]
    src.start = start
    src.wide = wide
    cdef Py_ssize_t done
    with nogil:
        done = match_rows(&src, length, t4, t6, &out[0] if length else NULL)
    if done < length:
        raise ValueError("Arrow offsets point outside the data buffer")
    return result


cdef object match_fixed(array, const table_t* t4, const table_t* t6):
    """``Index._match_text_fixed``: a numpy S or U array, read in place."""
    arr = np.require(array, requirements=["C", "A"])     # U rows are read as uint32_t
    if arr.ndim != 1 or arr.dtype.kind not in "SU":
        raise TypeError("expected a 1-D numpy S or U array")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))     # '>U': UCS-4 read as host words
    cdef Py_ssize_t n = arr.shape[0]
    cdef fixed_rows_t src
    src.itemsize = arr.dtype.itemsize
    src.ucs4 = arr.dtype.kind == "U"
    cdef const uint8_t[::1] raw = (arr.view(np.uint8).reshape(-1) if n * src.itemsize
                                   else np.zeros(1, np.uint8))
    src.data = &raw[0]
    result = np.empty(n, dtype=np.int32)
    cdef int32_t[::1] out = result
    with nogil:
        match_rows(&src, n, t4, t6, &out[0] if n else NULL)
    return result
