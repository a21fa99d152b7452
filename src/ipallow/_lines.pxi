# `ipallow filter`'s plain input in C.  No Python object per line: the block is read in place.
# Keeping or dropping lines (the default and --denied) is one pass, ``filter_lines``: each
# line is found, parsed, looked up and, when kept, copied out as read.  The other modes need
# every line's answer: ``line_rows`` gives the lines as rows for Index._match_text_arrow.


from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.bytearray cimport PyByteArray_FromStringAndSize, PyByteArray_AS_STRING, PyByteArray_Resize


cdef enum:
    LINE_BLANK = -6     # filter_lines' mark for a line whose (stripped) text is empty


cdef inline bint bytes_blank(unsigned char c) noexcept nogil:
    # The characters bytes.strip() removes.
    return c == 32 or (9 <= c <= 13)


cdef inline Py_ssize_t next_line(const unsigned char* s, Py_ssize_t pos, Py_ssize_t n, bint strip,
                                 Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
    """The line that starts at ``s[pos]``: where its newline is (-1 when no newline follows),
    with its text ``s[start:end]``, stripped as bytes.strip does when ``strip``."""
    cdef const unsigned char* nl = <const unsigned char*>memchr(s + pos, c'\n', <size_t>(n - pos))
    if nl == NULL:
        return -1
    cdef Py_ssize_t line_end = nl - s, a = pos, b = nl - s
    if strip:
        while a < b and bytes_blank(s[a]):
            a += 1
        while b > a and bytes_blank(s[b - 1]):
            b -= 1
    start[0] = a
    end[0] = b
    return line_end


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
            line_end = next_line(s, pos, n, strip, &start, &end)
            if line_end < 0:        # cannot happen: counted above, and bytes do not change
                break
            size = end - start
            memcpy(dst + packed, s + start, <size_t>size)
            packed += size
            offsets[i + 1] = packed
            starts[i] = start
            ends[i] = line_end
            pos = line_end + 1
    return text[:packed], offsets_arr, starts_arr, ends_arr


def filter_lines(Index index not None, data, bint keep_allowed, bint strip, bint stop_at_bad,
                 Py_ssize_t report):
    """`ipallow filter`'s plain lines in one pass: keep the allowed (or the denied) lines.

    ``data`` holds whole lines (text after the last newline is not read); each line's text is
    stripped as ``bytes.strip`` does when ``strip``, then looked up in ``index``.  Returns
    ``(kept, lines, allowed, denied, blank, bad)``: ``kept`` a bytearray of the kept lines as
    read, newlines included, in order; ``lines`` how many lines were read -- all of them, or
    with ``stop_at_bad`` those before the first unparseable one (its text is then in ``bad``
    and nothing after it is read); ``bad`` a list of ``(line, line_start, text_start,
    text_end)`` (offsets into ``data``) for the first ``report`` unparseable lines.  The
    unparseable lines read are ``lines - allowed - denied - blank``.
    """
    if not isinstance(data, bytes):
        raise TypeError(f"expected bytes, not {type(data).__name__}")
    if report < 0:
        raise ValueError("report must be >= 0")
    if index._arrays is None:
        raise RuntimeError("the index has no tables")
    cdef const unsigned char* s = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    # The kept lines are distinct lines of data: at most n bytes in all.
    kept = PyByteArray_FromStringAndSize(NULL, n)
    cdef char* dst = PyByteArray_AS_STRING(kept)
    cdef Py_ssize_t total = 0, lines = 0, allowed = 0, denied = 0, blank = 0
    cdef Py_ssize_t pos = 0, first, count, i, k, n_bad, size, a = 0, b = 0, line_end
    cdef Py_ssize_t line_start[CHUNK]
    cdef Py_ssize_t text_start[CHUNK]
    cdef Py_ssize_t text_end[CHUNK]
    cdef Py_ssize_t ends[CHUNK]
    cdef Py_ssize_t bad_at[CHUNK]
    cdef int32_t code[CHUNK]
    cdef uint32_t leaves[CHUNK]
    cdef chunk_t c
    cdef bint keep, stopped = False
    cdef list bad = []
    c.n4 = c.n6 = 0
    while not stopped:
        n_bad = 0
        first = lines               # the chunk's first line
        with nogil:
            count = 0
            while count < CHUNK:
                line_end = next_line(s, pos, n, strip, &a, &b)
                if line_end < 0:
                    break
                line_start[count] = pos
                ends[count] = line_end
                text_start[count] = a
                text_end[count] = b
                code[count] = LINE_BLANK if a == b else queue_text(&c, count, <const char*>s + a, b - a)
                leaves[count] = 0
                pos = line_end + 1
                count += 1
            if count:
                chunk_resolve(&c, &index.t4, &index.t6, leaves)
            for i in range(count):
                if code[i] == 0:                    # queued: its answer
                    code[i] = <int32_t>leaves[i] - 1
                if code[i] >= 0:
                    allowed += 1
                    keep = keep_allowed
                elif code[i] == NO_MATCH_C:
                    denied += 1
                    keep = not keep_allowed
                elif code[i] == LINE_BLANK:
                    blank += 1
                    keep = False
                else:
                    bad_at[n_bad] = i
                    n_bad += 1
                    if stop_at_bad:
                        stopped = True
                        break
                    keep = False
                if keep:
                    size = ends[i] + 1 - line_start[i]
                    memcpy(dst + total, s + line_start[i], <size_t>size)
                    total += size
                lines += 1
        for k in range(n_bad):
            if len(bad) >= report and not stop_at_bad:
                break
            i = bad_at[k]
            bad.append((first + i, line_start[i], text_start[i], text_end[i]))
        if count < CHUNK:
            break
    PyByteArray_Resize(kept, total)
    return kept, lines, allowed, denied, blank, bad
