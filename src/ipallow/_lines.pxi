# `ipallow filter`'s plain input in C: where each line's address is in a block, and the
# selected lines copied out in one buffer.  No Python object per line: the block is read in
# place, and Index._match_text_arrow reads the addresses through the offsets given here.


from cpython.bytes cimport PyBytes_FromStringAndSize


cdef inline bint bytes_blank(unsigned char c) noexcept nogil:
    # The characters bytes.strip() removes.
    return c == 32 or (9 <= c <= 13)


def line_rows(data, bint strip):
    """The lines of a block (every line ends in ``\\n``) as rows for ``_match_text_arrow``.

    Returns ``(text, offsets, starts, ends)``: ``text`` the lines' texts one after another --
    stripped as ``bytes.strip`` does when ``strip``, without their newlines -- so that row
    ``i`` is ``text[offsets[i]:offsets[i + 1]]`` (int64 ``offsets``, one more than lines);
    ``starts`` where each row's text starts in ``data`` and ``ends`` where each line's newline
    is.  Text after the last newline is not a line.  (Rows packed end to end, with no newline
    rows between them, parse about a quarter faster.)
    """
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes, not {type(data).__name__}")
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data), lines = 0, pos = 0, i = 0
    cdef const unsigned char* nl
    with nogil:
        while pos < n:
            nl = <const unsigned char*>memchr(s + pos, c'\n', <size_t>(n - pos))
            if nl == NULL:
                break
            lines += 1
            pos = nl - s + 1
    offsets_arr = np.empty(lines + 1, dtype=np.int64)
    starts_arr = np.empty(lines, dtype=np.int64)
    ends_arr = np.empty(lines, dtype=np.int64)
    cdef int64_t[::1] offsets = offsets_arr
    cdef int64_t[::1] starts = starts_arr
    cdef int64_t[::1] ends = ends_arr
    # The texts are at most the block less its newlines.
    text = PyBytes_FromStringAndSize(NULL, n - lines)
    cdef char* dst = PyBytes_AS_STRING(text)
    cdef Py_ssize_t start, end, line_end, size, packed = 0
    pos = 0
    with nogil:
        offsets[0] = 0
        for i in range(lines):
            nl = <const unsigned char*>memchr(s + pos, c'\n', <size_t>(n - pos))
            if nl == NULL:          # cannot happen: counted above, and bytes do not change
                break
            line_end = nl - s
            start = pos
            end = line_end
            if strip:
                while start < end and bytes_blank(s[start]):
                    start += 1
                while end > start and bytes_blank(s[end - 1]):
                    end -= 1
            size = end - start
            memcpy(dst + packed, s + start, <size_t>size)
            packed += size
            offsets[i + 1] = packed
            starts[i] = start
            ends[i] = line_end
            pos = line_end + 1
    return text[:packed], offsets_arr, starts_arr, ends_arr


def selected_lines(data, ends, select):
    """The lines ``i`` of ``data`` with ``select[i]`` true, each with its newline, in order.

    ``ends`` as :func:`line_rows` returns it (checked: increasing, inside ``data``, each a
    newline); ``select`` a bool array of at most as many lines.
    """
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes, not {type(data).__name__}")
    cdef const char* s = PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const int64_t[::1] e = np.ascontiguousarray(ends, dtype=np.int64)
    cdef const uint8_t[::1] pick = np.ascontiguousarray(select, dtype=bool).view(np.uint8)
    cdef Py_ssize_t lines = pick.shape[0], i, total = 0, start = 0, size
    if lines > e.shape[0]:
        raise ValueError("more selected rows than lines")
    cdef int64_t previous = -1
    for i in range(lines):
        if e[i] <= previous or e[i] >= n or s[e[i]] != c'\n':
            raise ValueError(f"line {i}: its end {e[i]} is not the newline after the previous one")
        if pick[i]:
            total += e[i] - previous
        previous = e[i]
    out = PyBytes_FromStringAndSize(NULL, total)
    cdef char* dst = PyBytes_AS_STRING(out)
    previous = -1
    with nogil:
        for i in range(lines):
            if pick[i]:
                size = e[i] - previous
                memcpy(dst, s + previous + 1, <size_t>size)
                dst += size
            previous = e[i]
    return out
