# `ipallow export`'s work in C: a plain text list read in one pass, its prefixes merged into
# the minimal CIDR cover, and the cover written as text in one string.  The C is in
# include/ipallow_aggregate.h; this seam checks every length and value before it runs.

cdef extern from "ipallow_aggregate.h" nogil:
    ctypedef struct ia_span6:
        uint64_t fhi, flo, lhi, llo
    uint64_t ia_span4(uint64_t value, int plen)
    int ia_sort4(uint64_t* spans, uint64_t* tmp, size_t n)
    size_t ia_merge4(uint64_t* spans, size_t n)
    size_t ia_count4(const uint64_t* spans, size_t n)
    size_t ia_cut4(const uint64_t* spans, size_t n, uint64_t* addr, uint8_t* plen, size_t cap)
    ia_span6 ia_make6(uint64_t hi, uint64_t lo, int plen)
    int ia_cmp6(const void* a, const void* b)
    size_t ia_merge6(ia_span6* s, size_t n)
    size_t ia_cut6(const ia_span6* s, size_t n, uint64_t* ohi, uint64_t* olo, uint8_t* oplen,
                   size_t cap)
    int IA_TEXT_MAX
    char* ia_text4(char* p, uint32_t a, unsigned plen)
    char* ia_text6(char* p, uint64_t hi, uint64_t lo, unsigned plen)

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

from libc.stdlib cimport qsort


def aggregate_prefixes(version, hi, lo, prefixlen):
    """The minimal CIDR cover of a prefix table, per IP version.

    Arguments: parallel 1-D arrays (``version`` 4 or 6, ``hi`` / ``lo`` the value as two
    uint64 words -- an IPv4 value in ``lo`` --, ``prefixlen``); host bits are ignored.

    Returns ``(addr4, plen4, hi6, lo6, plen6)``: the IPv4 cover as uint64 addresses and
    uint8 lengths, the IPv6 cover as two uint64 words and uint8 lengths, each sorted by
    address, disjoint, with no two blocks that make one CIDR.

    Raises:
        ValueError: arrays of different lengths, a version other than 4 or 6, or a prefix
            length beyond the version's width.
    """
    cdef const uint8_t[::1] ver = np.ascontiguousarray(version, dtype=np.uint8)
    cdef const uint64_t[::1] his = np.ascontiguousarray(hi, dtype=np.uint64)
    cdef const uint64_t[::1] los = np.ascontiguousarray(lo, dtype=np.uint64)
    cdef const uint8_t[::1] plens = np.ascontiguousarray(prefixlen, dtype=np.uint8)
    cdef Py_ssize_t n = ver.shape[0], i, n4 = 0, n6 = 0
    if his.shape[0] != n or los.shape[0] != n or plens.shape[0] != n:
        raise ValueError("version, hi, lo and prefixlen must have the same length")
    for i in range(n):
        if ver[i] == 4:
            if plens[i] > 32:
                raise ValueError(f"row {i}: IPv4 prefix length {plens[i]} > 32")
            n4 += 1
        elif ver[i] == 6:
            if plens[i] > 128:
                raise ValueError(f"row {i}: IPv6 prefix length {plens[i]} > 128")
            n6 += 1
        else:
            raise ValueError(f"row {i}: IP version {ver[i]}, not 4 or 6")

    # IPv4: packed spans, radix-sorted, merged, cut (a count pass sizes the result).
    spans_arr = np.empty(n4, dtype=np.uint64)
    tmp_arr = np.empty(n4, dtype=np.uint64)
    cdef uint64_t[::1] spans = spans_arr
    cdef uint64_t[::1] tmp = tmp_arr
    cdef size_t k = 0, merged, total
    for i in range(n):
        if ver[i] == 4:
            spans[k] = ia_span4(los[i], plens[i])
            k += 1
    cdef int sorted_rc = 0
    if n4:
        with nogil:
            sorted_rc = ia_sort4(&spans[0], &tmp[0], <size_t>n4)
            if sorted_rc == 0:
                merged = ia_merge4(&spans[0], <size_t>n4)
                total = ia_count4(&spans[0], merged)
        if sorted_rc != 0:
            raise MemoryError("no memory for the radix sort's counts")
    else:
        merged = total = 0
    addr4_arr = np.empty(total, dtype=np.uint64)
    plen4_arr = np.empty(total, dtype=np.uint8)
    cdef uint64_t[::1] addr4 = addr4_arr
    cdef uint8_t[::1] plen4 = plen4_arr
    if total and ia_cut4(&spans[0], merged, &addr4[0], &plen4[0], total) != total:
        raise AssertionError("IPv4 cover: the count and the cut disagree")

    # IPv6: four-word spans, qsort, merged, counted, cut.
    span6_arr = np.empty((n6, 4), dtype=np.uint64)
    cdef uint64_t[:, ::1] span6 = span6_arr
    cdef ia_span6* s6 = NULL
    cdef ia_span6 one
    k = 0
    for i in range(n):
        if ver[i] == 6:
            one = ia_make6(his[i], los[i], plens[i])
            span6[k, 0] = one.fhi
            span6[k, 1] = one.flo
            span6[k, 2] = one.lhi
            span6[k, 3] = one.llo
            k += 1
    if n6:
        s6 = <ia_span6*>&span6[0, 0]
        with nogil:
            qsort(s6, <size_t>n6, sizeof(ia_span6), ia_cmp6)
            merged = ia_merge6(s6, <size_t>n6)
            total = ia_cut6(s6, merged, NULL, NULL, NULL, 0)
    else:
        merged = total = 0
    hi6_arr = np.empty(total, dtype=np.uint64)
    lo6_arr = np.empty(total, dtype=np.uint64)
    plen6_arr = np.empty(total, dtype=np.uint8)
    cdef uint64_t[::1] hi6 = hi6_arr
    cdef uint64_t[::1] lo6 = lo6_arr
    cdef uint8_t[::1] plen6 = plen6_arr
    if total and ia_cut6(s6, merged, &hi6[0], &lo6[0], &plen6[0], total) != total:
        raise AssertionError("IPv6 cover: the count and the cut disagree")
    return addr4_arr, plen4_arr, hi6_arr, lo6_arr, plen6_arr


def cidr_text(int version, hi, lo, prefixlen, Py_ssize_t per_line=1, bytes line_start not None=b"",
              bytes item_sep not None=b"", bytes line_end not None=b"\n"):
    """CIDR text of a prefix list as one str: the items in lines of ``per_line``, each line
    ``line_start + item (item_sep item)... + line_end`` (the last line may be shorter).

    ``version`` 4 (the address in ``lo``; ``hi`` is ignored and may be None) or 6.  IPv6 is
    written as RFC 5952 says (as ``ipaddress`` does: never a dotted quad).

    Raises:
        ValueError: a bad version, per_line < 1, arrays of different lengths, a prefix
            length beyond the version's width, or non-ASCII separators.
    """
    if version != 4 and version != 6:
        raise ValueError(f"version must be 4 or 6, not {version}")
    if per_line < 1:
        raise ValueError("per_line must be at least 1")
    for part in (line_start, item_sep, line_end):
        if not part.isascii():
            raise ValueError("the separators must be ASCII")
    cdef const uint64_t[::1] los = np.ascontiguousarray(lo, dtype=np.uint64)
    cdef Py_ssize_t n = los.shape[0]
    cdef const uint64_t[::1] his = (np.ascontiguousarray(hi, dtype=np.uint64) if version == 6
                                    else los)
    cdef const uint8_t[::1] plens = np.ascontiguousarray(prefixlen, dtype=np.uint8)
    if his.shape[0] != n or plens.shape[0] != n:
        raise ValueError("hi, lo and prefixlen must have the same length")
    cdef int width = 32 if version == 4 else 128
    cdef Py_ssize_t i
    for i in range(n):
        if plens[i] > width:
            raise ValueError(f"row {i}: IPv{version} prefix length {plens[i]} > {width}")
    if n == 0:
        return ""
    cdef Py_ssize_t ls = len(line_start), sep = len(item_sep), le = len(line_end)
    cdef Py_ssize_t lines = (n + per_line - 1) // per_line
    cdef Py_ssize_t item = IA_TEXT_MAX + sep
    if n > (PY_SSIZE_T_MAX // 2 - lines * (ls + le)) // item:
        raise MemoryError("the CIDR text would not fit in memory")
    cdef Py_ssize_t size = n * item + lines * (ls + le)
    cdef char* buf = <char*>malloc(<size_t>size)
    if buf == NULL:
        raise MemoryError()
    cdef const char* cs = line_start
    cdef const char* csep = item_sep
    cdef const char* ce = line_end
    cdef char* p = buf
    cdef Py_ssize_t col = 0
    try:
        with nogil:
            for i in range(n):
                if col == 0:
                    memcpy(p, cs, <size_t>ls)
                    p += ls
                else:
                    memcpy(p, csep, <size_t>sep)
                    p += sep
                if version == 4:
                    p = ia_text4(p, <uint32_t>los[i], plens[i])
                else:
                    p = ia_text6(p, his[i], los[i], plens[i])
                col += 1
                if col == per_line or i == n - 1:
                    memcpy(p, ce, <size_t>le)
                    p += le
                    col = 0
        return buf[:p - buf].decode("ascii")
    finally:
        free(buf)


cdef inline bint list_blank(unsigned char c) noexcept nogil:
    # The ASCII characters str.strip() removes.
    return c == 32 or (9 <= c <= 13) or (28 <= c <= 31)


def scan_network_text(raw, bint strict=True):
    """A plain text list (one network a line, ``#`` comments, blank lines) parsed in one pass.

    Returns ``(version, hi, lo, prefixlen)`` arrays, one row per entry in file order, or None
    when the text needs the general loader: a byte outside ASCII (a BOM, UTF-8 to check), or
    an entry the C parser does not take as it is (a range, an error to report with its line
    and column, host bits set).  Lines are split as ``ipallow._parse.iter_text_lines`` does.
    """
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, not {type(raw).__name__}")
    if not len(raw):
        return (np.zeros(0, np.uint8), np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                np.zeros(0, np.uint8))
    cdef const unsigned char[::1] view = memoryview(raw).cast("B")
    cdef Py_ssize_t n = view.shape[0]
    cdef Py_ssize_t i, rows = 1
    cdef const unsigned char* s = &view[0]
    cdef const unsigned char* nl
    cdef Py_ssize_t pos = 0
    # Rows: one per line at most.
    nl = s
    while pos < n:
        nl = <const unsigned char*>memchr(s + pos, c'\n', <size_t>(n - pos))
        if nl == NULL:
            break
        rows += 1
        pos = nl - s + 1
    version_arr = np.empty(rows, dtype=np.uint8)
    hi_arr = np.empty(rows, dtype=np.uint64)
    lo_arr = np.empty(rows, dtype=np.uint64)
    plen_arr = np.empty(rows, dtype=np.uint8)
    cdef uint8_t[::1] vers = version_arr
    cdef uint64_t[::1] his = hi_arr
    cdef uint64_t[::1] los = lo_arr
    cdef uint8_t[::1] plens = plen_arr
    cdef Py_ssize_t count = 0, start, end, body_end, line_end
    cdef uint64_t h, l
    cdef int plen, rc
    cdef bint masked, bad = False
    cdef Py_ssize_t err
    with nogil:
        for i in range(n):
            if s[i] >= 0x80:
                bad = True
                break
        pos = 0
        while not bad and pos < n:
            nl = <const unsigned char*>memchr(s + pos, c'\n', <size_t>(n - pos))
            line_end = n if nl == NULL else nl - s
            nl = <const unsigned char*>memchr(s + pos, c'#', <size_t>(line_end - pos))
            body_end = line_end if nl == NULL else nl - s
            start = pos
            end = body_end
            while start < end and list_blank(s[start]):
                start += 1
            while end > start and list_blank(s[end - 1]):
                end -= 1
            pos = line_end + 1
            if start == end:
                continue
            if count >= rows:           # cannot happen: one entry a line
                bad = True
                break
            rc = parse_network_bytes(<const char*>(s + start), end - start, strict,
                                     &h, &l, &plen, &masked, &err)
            if rc < 0 or masked:
                bad = True
                break
            vers[count] = <uint8_t>rc
            his[count] = h
            los[count] = l
            plens[count] = <uint8_t>plen
            count += 1
    if bad:
        return None
    return version_arr[:count], hi_arr[:count], lo_arr[:count], plen_arr[:count]
