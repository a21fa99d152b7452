# `ipallow export`'s work in C: a plain text list read in one pass, its prefixes merged into
# the minimal CIDR cover, and the cover written as text in one string.  The C is in
# include/ipallow_aggregate.h; this seam checks every length and value before it runs.

cdef extern from "ipallow_aggregate.h" nogil:
    ctypedef struct ia_span6:
        uint64_t fhi, flo, lhi, llo
    uint64_t ia_span4(uint64_t value, int plen)
    void ia_sort4(uint64_t* spans, uint64_t* tmp, size_t n)
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
from cpython cimport array as carray
import array as _stdlib_array

# This seam's results are the standard library's array.array, not numpy's arrays: numpy views
# them without a copy (np.frombuffer), and `ipallow export` of a text list or a snapshot, which
# needs nothing else of numpy, runs without its import (65 ms, against the 25 ms FireHOL
# iprange takes for a whole 100k-CIDR export).
cdef carray.array _U8 = _stdlib_array.array("B")
cdef carray.array _U64 = _stdlib_array.array("Q")
cdef carray.array _I64 = _stdlib_array.array("q")


cdef inline carray.array new_rows(carray.array template, Py_ssize_t n):
    return carray.clone(template, n, False)


# Inputs: a C-contiguous 1-D buffer of the element type (a numpy array, an array.array, a
# snapshot section's memoryview) is read in place; anything else (a list, another dtype, a
# strided array) is converted by numpy, as before this seam took buffers.
cdef object u8_buffer(obj):
    cdef const uint8_t[::1] view
    try:
        view = obj
    except (TypeError, ValueError, BufferError):
        return np.ascontiguousarray(obj, dtype=np.uint8)
    return obj


cdef object u64_buffer(obj):
    cdef const uint64_t[::1] view
    try:
        view = obj
    except (TypeError, ValueError, BufferError):
        return np.ascontiguousarray(obj, dtype=np.uint64)
    return obj


cdef tuple cover_of_rows(const uint8_t[::1] ver, const uint64_t[::1] his, const uint64_t[::1] los,
                         const uint8_t[::1] plens, uint64_t* scratch_hi=NULL, uint64_t* scratch_lo=NULL):
    """The minimal CIDR cover of the rows (the four views of one length; see aggregate_prefixes).

    ``scratch_hi`` / ``scratch_lo``: the memory of ``his`` / ``los`` when the caller lets the
    cover overwrite them (rows it made itself).  The IPv4 spans then go over ``his`` and the
    sort's other buffer over ``los``, instead of two fresh allocations of 8 bytes a row: an
    export of 100k CIDRs paid ~400 page faults (~1 ms on this VM) for those.
    """
    cdef Py_ssize_t n = ver.shape[0], i, n4 = 0, n6 = 0
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
    if n6 > <Py_ssize_t>(PY_SSIZE_T_MAX // sizeof(ia_span6)):
        raise MemoryError()
    # One spare element each, so that no allocation is of zero bytes (malloc may return NULL).
    cdef bint own = scratch_hi == NULL or scratch_lo == NULL
    cdef uint64_t* spans = scratch_hi
    cdef uint64_t* tmp = scratch_lo
    if own:
        spans = <uint64_t*>malloc(<size_t>(n4 + 1) * sizeof(uint64_t))
        tmp = <uint64_t*>malloc(<size_t>(n4 + 1) * sizeof(uint64_t))
    cdef ia_span6* s6 = <ia_span6*>malloc(<size_t>(n6 + 1) * sizeof(ia_span6))
    cdef size_t k4 = 0, k6 = 0, merged, total
    cdef carray.array addr4, plen4, hi6, lo6, plen6
    try:
        if spans == NULL or tmp == NULL or s6 == NULL:
            raise MemoryError()
        # Over scratch, spans[k4] is his[k4] with k4 <= i: only rows already read are overwritten.
        for i in range(n):
            if ver[i] == 4:
                spans[k4] = ia_span4(los[i], plens[i])
                k4 += 1
            else:
                s6[k6] = ia_make6(his[i], los[i], plens[i])
                k6 += 1
        # IPv4: packed spans, radix-sorted, merged, cut (a count pass sizes the result).
        with nogil:
            ia_sort4(spans, tmp, <size_t>n4)
            merged = ia_merge4(spans, <size_t>n4)
            total = ia_count4(spans, merged)
        addr4, plen4 = new_rows(_U64, <Py_ssize_t>total), new_rows(_U8, <Py_ssize_t>total)
        if total and ia_cut4(spans, merged, <uint64_t*>addr4.data.as_voidptr, plen4.data.as_uchars,
                   total) != total:
            raise AssertionError("IPv4 cover: the count and the cut disagree")
        # IPv6: four-word spans, qsort, merged, counted, cut.
        with nogil:
            qsort(s6, <size_t>n6, sizeof(ia_span6), ia_cmp6)
            merged = ia_merge6(s6, <size_t>n6)
            total = ia_cut6(s6, merged, NULL, NULL, NULL, 0)
        hi6, lo6 = new_rows(_U64, <Py_ssize_t>total), new_rows(_U64, <Py_ssize_t>total)
        plen6 = new_rows(_U8, <Py_ssize_t>total)
        if total and ia_cut6(s6, merged, <uint64_t*>hi6.data.as_voidptr, <uint64_t*>lo6.data.as_voidptr,
                   plen6.data.as_uchars, total) != total:
            raise AssertionError("IPv6 cover: the count and the cut disagree")
        return addr4, plen4, hi6, lo6, plen6
    finally:
        if own:
            free(spans)
            free(tmp)
        free(s6)


def aggregate_prefixes(version, hi, lo, prefixlen):
    """The minimal CIDR cover of a prefix table, per IP version.

    Arguments: parallel 1-D arrays (``version`` 4 or 6, ``hi`` / ``lo`` the value as two
    uint64 words -- an IPv4 value in ``lo`` --, ``prefixlen``); host bits are ignored.
    Contiguous buffers of the right element type are read in place; anything else array-like
    goes through numpy.

    Returns ``(addr4, plen4, hi6, lo6, plen6)``, each an ``array.array`` (``"Q"`` or ``"B"``):
    the IPv4 cover as addresses and lengths, the IPv6 cover as two words and lengths, each
    sorted by address, disjoint, with no two blocks that make one CIDR.

    Raises:
        ValueError: arrays of different lengths, a version other than 4 or 6, or a prefix
            length beyond the version's width.
    """
    cdef const uint8_t[::1] ver = u8_buffer(version)
    cdef const uint64_t[::1] his = u64_buffer(hi)
    cdef const uint64_t[::1] los = u64_buffer(lo)
    cdef const uint8_t[::1] plens = u8_buffer(prefixlen)
    cdef Py_ssize_t n = ver.shape[0]
    if his.shape[0] != n or los.shape[0] != n or plens.shape[0] != n:
        raise ValueError("version, hi, lo and prefixlen must have the same length")
    return cover_of_rows(ver, his, los, plens)


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
    cdef const uint64_t[::1] los = u64_buffer(lo)
    cdef Py_ssize_t n = los.shape[0]
    cdef const uint64_t[::1] his = u64_buffer(hi) if version == 6 else los
    cdef const uint8_t[::1] plens = u8_buffer(prefixlen)
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


cdef enum:
    SCAN_DONE = 0       # the whole text read
    SCAN_GIVE_UP = 1    # the general loader's: see scan_network_text
    SCAN_ROOM = 2       # an entry needs more rows than the arrays have left; nothing of it written


cdef struct ScanRows:
    # The scanner's output arrays (array.array's, sized by the caller) and how far it got.
    uint8_t* vers
    uint64_t* his
    uint64_t* los
    uint8_t* plens
    int64_t* reg_first      # one slot per line and one more: an entry's first row, then the end
                            # (NULL: not kept, as for a cover, which has no use for entries' rows)
    Py_ssize_t cap          # rows the four row arrays hold
    Py_ssize_t count        # rows written
    Py_ssize_t entries      # entries read


cdef bint ascii_newlines(const unsigned char* s, Py_ssize_t n, Py_ssize_t* newlines) noexcept nogil:
    """Whether s[:n] is all ASCII; if so, ``newlines`` is its count of newline bytes.

    Eight bytes at a time: the byte-wise loop it replaces was 15% of the scan of a
    million short lines (perf)."""
    cdef uint64_t w, x, ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL
    cdef uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL
    cdef Py_ssize_t i = 0, count = 0
    while i + 8 <= n:
        memcpy(&w, s + i, 8)
        if w & highs:
            return False
        x = w ^ (ones * c'\n')                    # a zero byte where w has a newline
        # High bit of each byte set when the byte is not zero (no carry between bytes);
        # the zero bytes, one bit each, summed by the multiply into the top byte.
        x = ~(((x & low7) + low7) | x) & highs
        count += <Py_ssize_t>(((x >> 7) * ones) >> 56)
        i += 8
    while i < n:
        if s[i] >= 0x80:
            return False
        count += s[i] == c'\n'
        i += 1
    newlines[0] = count
    return True


cdef inline Py_ssize_t entry_end(const unsigned char* s, Py_ssize_t pos, Py_ssize_t line_end,
                                 Py_ssize_t* dash) noexcept nogil:
    """Where the entry of the line s[pos:line_end] ends (at a '#' comment, else the line's
    end), and its first '-' (``dash``, -1 if none): one pass over a short line, not two
    memchr calls."""
    cdef Py_ssize_t k
    dash[0] = -1
    for k in range(pos, line_end):
        if s[k] == c'#':
            return k
        if s[k] == c'-' and dash[0] < 0:
            dash[0] = k
    return line_end


cdef inline void strip_blanks(const unsigned char* s, Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
    while start[0] < end[0] and list_blank(s[start[0]]):
        start[0] += 1
    while end[0] > start[0] and list_blank(s[end[0] - 1]):
        end[0] -= 1


cdef int scan_range(const unsigned char* s, Py_ssize_t start, Py_ssize_t dash, Py_ssize_t end,
                    ScanRows* out) noexcept nogil:
    """The range 'a - b' in s[start:end] ('-' at ``dash``) as its CIDR blocks at ``out``'s next
    rows, as ``ipallow._parse._parse_range`` cuts it: both ends addresses of one version,
    a <= b, each block ascending, IPv4-mapped IPv6 blocks as IPv4."""
    cdef Py_ssize_t ls = start, le = dash, rs = dash + 1, rend = end, err = 0, need, j
    cdef uint64_t fhi = 0, flo = 0, lhi = 0, llo = 0, span4
    cdef ia_span6 span6
    cdef int v1, v2, version, plen
    strip_blanks(s, &ls, &le)
    strip_blanks(s, &rs, &rend)
    v1 = parse_address_bytes(<const char*>s, ls, le, &fhi, &flo, &err)
    v2 = parse_address_bytes(<const char*>s, rs, rend, &lhi, &llo, &err)
    if v1 < 0 or v2 < 0 or v1 != v2:
        return SCAN_GIVE_UP
    if fhi > lhi or (fhi == lhi and flo > llo):
        return SCAN_GIVE_UP                 # start after end: an error to report there
    if v1 == 4:
        span4 = (flo << 32) | llo           # both below 2**32: parse_address_bytes made them
        need = <Py_ssize_t>ia_count4(&span4, 1)
    else:
        span6.fhi, span6.flo, span6.lhi, span6.llo = fhi, flo, lhi, llo
        need = <Py_ssize_t>ia_cut6(&span6, 1, NULL, NULL, NULL, 0)
    if need > out.cap - out.count:
        return SCAN_ROOM
    j = out.count
    if v1 == 4:
        if <Py_ssize_t>ia_cut4(&span4, 1, out.los + j, out.plens + j, <size_t>need) != need:
            return SCAN_GIVE_UP             # cannot happen: the count and the cut agree
        for j in range(out.count, out.count + need):
            out.vers[j] = 4
            out.his[j] = 0
    else:
        if <Py_ssize_t>ia_cut6(&span6, 1, out.his + j, out.los + j, out.plens + j,
                               <size_t>need) != need:
            return SCAN_GIVE_UP
        for j in range(out.count, out.count + need):
            version = 6
            plen = out.plens[j]
            unmap_ipv4(&version, out.his + j, out.los + j, &plen)
            out.vers[j] = <uint8_t>version
            out.plens[j] = <uint8_t>plen
    out.count += need
    return SCAN_DONE


cdef inline void add_network(ScanRows* out, int version, uint64_t h, uint64_t l, int plen) noexcept nogil:
    out.vers[out.count] = <uint8_t>version
    out.his[out.count] = h
    out.los[out.count] = l
    out.plens[out.count] = <uint8_t>plen
    out.count += 1


cdef int scan_lines(const unsigned char* s, Py_ssize_t n, Py_ssize_t* pos, bint strict,
                    ScanRows* out) noexcept nogil:
    """Read entries from s[pos:] into ``out`` until the text ends (SCAN_DONE), an entry is the
    general loader's (SCAN_GIVE_UP) or an entry does not fit (SCAN_ROOM, ``pos`` at its line)."""
    cdef const unsigned char* nl
    cdef Py_ssize_t start, end, body_end, line_end, dash, err = 0
    cdef uint64_t h = 0, l = 0
    cdef int plen = 0, rc
    cdef bint masked = False
    while pos[0] < n:
        nl = <const unsigned char*>memchr(s + pos[0], c'\n', <size_t>(n - pos[0]))
        line_end = n if nl == NULL else nl - s
        end = line_end
        if end > pos[0] and s[end - 1] == c'\r':
            end -= 1                                # a CRLF line
        if (out.count < out.cap and end > pos[0] and not list_blank(s[pos[0]])
                and not list_blank(s[end - 1])):
            # The common line, a network and nothing else: the parser takes no blank, '#'
            # or '-', so when it reads the whole line there is nothing else to look for.
            rc = parse_network_bytes(<const char*>(s + pos[0]), end - pos[0], strict,
                                     &h, &l, &plen, &masked, &err)
            if rc >= 0 and not masked:
                if out.reg_first != NULL:
                    out.reg_first[out.entries] = out.count
                add_network(out, rc, h, l, plen)
                out.entries += 1
                pos[0] = line_end + 1
                continue
        body_end = entry_end(s, pos[0], line_end, &dash)
        start = pos[0]
        end = body_end
        strip_blanks(s, &start, &end)
        if start < end:
            if out.reg_first != NULL:
                out.reg_first[out.entries] = out.count
            if dash >= 0:
                rc = scan_range(s, start, dash, end, out)
                if rc != SCAN_DONE:
                    return rc
            else:
                if out.count >= out.cap:    # ranges before took the rows of later lines
                    return SCAN_ROOM
                rc = parse_network_bytes(<const char*>(s + start), end - start, strict,
                                         &h, &l, &plen, &masked, &err)
                if rc < 0 or masked:
                    return SCAN_GIVE_UP
                add_network(out, rc, h, l, plen)
            out.entries += 1
        pos[0] = line_end + 1
    if out.reg_first != NULL:
        out.reg_first[out.entries] = out.count
    return SCAN_DONE


cdef object scan_rows(raw, bint strict, bint keep_entries=True):
    """The rows scan_network_text describes, as array.array's with room to spare:
    ``(version, hi, lo, prefixlen, reg_first, rows, entries)``, or None (the general loader's).
    Without ``keep_entries``, ``reg_first`` is None: its 8 bytes a line are not written."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, not {type(raw).__name__}")
    cdef carray.array reg_first = None
    if not len(raw):
        reg_first = new_rows(_I64, 1)
        reg_first.data.as_longlongs[0] = 0
        return (new_rows(_U8, 0), new_rows(_U64, 0), new_rows(_U64, 0), new_rows(_U8, 0),
                reg_first, 0, 0)
    cdef const unsigned char[::1] view = memoryview(raw).cast("B")
    cdef Py_ssize_t n = view.shape[0]
    cdef Py_ssize_t rows = 1
    cdef const unsigned char* s = &view[0]
    cdef Py_ssize_t pos = 0
    cdef bint ascii
    with nogil:
        # Lines: an entry has a row at least, a range more (the arrays grow for them).
        ascii = ascii_newlines(s, n, &rows)
    if not ascii:
        return None
    rows += 1
    cdef carray.array vers = new_rows(_U8, rows), his = new_rows(_U64, rows)
    cdef carray.array los = new_rows(_U64, rows), plens = new_rows(_U8, rows)
    cdef carray.array grown
    cdef ScanRows out
    cdef int rc
    out.reg_first = NULL
    if keep_entries:
        reg_first = new_rows(_I64, rows + 1)
        out.reg_first = <int64_t*>reg_first.data.as_voidptr
    out.cap = rows
    out.count = out.entries = 0
    while True:
        out.vers, out.plens = vers.data.as_uchars, plens.data.as_uchars
        out.his, out.los = <uint64_t*>his.data.as_voidptr, <uint64_t*>los.data.as_voidptr
        with nogil:
            rc = scan_lines(s, n, &pos, strict, &out)
        if rc == SCAN_DONE:
            break
        if rc != SCAN_ROOM:
            return None
        # Double (an entry is at most 254 blocks, so + 256 always makes room for it).
        if out.cap > (PY_SSIZE_T_MAX // 8 - 256) // 2:
            raise MemoryError()
        out.cap = 2 * out.cap + 256
        for grown in (vers, his, los, plens):
            carray.resize(grown, out.cap)
    return vers, his, los, plens, reg_first, out.count, out.entries


def scan_network_text(raw, bint strict=True):
    """A plain text list (one network or ``a - b`` range a line, ``#`` comments, blank lines)
    parsed in one pass.

    Returns ``(version, hi, lo, prefixlen, reg_first)`` as numpy arrays: the rows in file
    order (a range's CIDR blocks in ascending order, as the general loader cuts it), entry
    ``i`` owning rows ``reg_first[i]:reg_first[i + 1]``; or None when the text needs the
    general loader: a byte outside ASCII (a BOM, UTF-8 to check), or an entry the C parser
    does not take as it is (an error to report with its line and column, host bits set).
    Lines are split as ``ipallow._parse.iter_text_lines`` does.
    """
    scanned = scan_rows(raw, strict)
    if scanned is None:
        return None
    vers, his, los, plens, reg_first, count, entries = scanned
    return (np.frombuffer(vers, np.uint8)[:count], np.frombuffer(his, np.uint64)[:count],
            np.frombuffer(los, np.uint64)[:count], np.frombuffer(plens, np.uint8)[:count],
            np.frombuffer(reg_first, np.int64)[:entries + 1])


def text_list_cover(raw):
    """A plain text list (as :func:`scan_network_text` reads it) straight to its minimal
    CIDR cover, without numpy: ``(entries, addr4, plen4, hi6, lo6, plen6)``, the cover as
    :func:`aggregate_prefixes` returns it; or None when the text needs the general loader.
    This is ``ipallow export``'s whole work on a text list."""
    scanned = scan_rows(raw, True, False)
    if scanned is None:
        return None
    vers, his, los, plens, _, count, entries = scanned
    cdef carray.array hi_rows = his, lo_rows = los
    cdef const uint8_t[::1] v = vers
    cdef const uint64_t[::1] h = his
    cdef const uint64_t[::1] l = los
    cdef const uint8_t[::1] p = plens
    # The rows are this call's own: the cover may sort its spans in their memory.
    return (entries,) + cover_of_rows(v[:count], h[:count], l[:count], p[:count],
                                      <uint64_t*>hi_rows.data.as_voidptr,
                                      <uint64_t*>lo_rows.data.as_voidptr)
