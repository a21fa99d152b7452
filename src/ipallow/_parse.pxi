# Address and network text -> 128-bit keys, in C on raw bytes (included by _trie.pyx).
# The one table of error reasons lives here too: C and Python paths format from it.

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

cdef uint64_t ALL_ONES = 0xFFFFFFFFFFFFFFFFull
# Strings longer than this cannot be an address or a network (the longest
# valid form, a full IPv6 with embedded IPv4 and /128, is 49 characters).
cdef Py_ssize_t MAX_TEXT = 64

# Parser status codes.  Positive results are the IP version (4 or 6); errors
# are negative and come with a 0-based byte offset of the offending character.
cdef enum:
    ERR_EMPTY = -1
    ERR_CHAR = -2
    ERR_V4_OCTETS = -3
    ERR_V4_RANGE = -4
    ERR_V4_LEADING_ZERO = -5
    ERR_V4_EMPTY_OCTET = -6
    ERR_V6_TOO_MANY = -7
    ERR_V6_GROUP_LEN = -8
    ERR_V6_DOUBLE_COLON = -9
    ERR_V6_EMPTY_GROUP = -10
    ERR_V6_TOO_FEW = -11
    ERR_V6_EMBEDDED = -12
    ERR_ZONE = -13
    ERR_PLEN_MISSING = -14
    ERR_PLEN_RANGE = -15
    ERR_HOST_BITS = -16
    ERR_NOT_ASCII = -17
    ERR_NETWORK = -18
    ERR_TOO_LONG = -19
    ERR_NETMASK = -20
    ERR_WHITESPACE = -21

# The one table of reasons: the C paths and the Python paths both format
# their messages from it (see ``address_error``), so they cannot drift.
REASONS = {
    ERR_EMPTY: "empty string",
    ERR_CHAR: "unexpected character {char!r}",
    ERR_V4_OCTETS: "expected 4 octets",
    ERR_V4_RANGE: "octet greater than 255",
    ERR_V4_LEADING_ZERO: "leading zero in octet",
    ERR_V4_EMPTY_OCTET: "empty octet",
    ERR_V6_TOO_MANY: "more than 8 groups",
    ERR_V6_GROUP_LEN: "group longer than 4 hex digits",
    ERR_V6_DOUBLE_COLON: "more than one '::'",
    ERR_V6_EMPTY_GROUP: "empty group",
    ERR_V6_TOO_FEW: "fewer than 8 groups and no '::'",
    ERR_V6_EMBEDDED: "embedded IPv4 address must be the last 32 bits",
    ERR_ZONE: "zone index ('%') not allowed",
    ERR_PLEN_MISSING: "missing prefix length after '/'",
    ERR_PLEN_RANGE: "prefix length out of range",
    ERR_HOST_BITS: "host bits set",
    ERR_NOT_ASCII: "non-ASCII character {char!r}",
    ERR_NETWORK: "expected an address, not a network",
    ERR_TOO_LONG: "too long to be an IP address",
    ERR_NETMASK: "netmask is not contiguous",
    ERR_WHITESPACE: "whitespace not allowed",
}


def address_error(text, int code, Py_ssize_t offset, str kind="IP address"):
    """Build the AddressError for parser status ``code`` at byte ``offset`` of ``text``."""
    text = str(text)        # str subclasses (numpy.str_) report like str
    cdef bytes raw = text.encode("utf-8", "surrogatepass")
    offset = max(0, min(offset, len(raw)))
    # Columns are 1-based and count characters, not UTF-8 bytes.
    column = len(raw[:offset].decode("utf-8", "ignore")) + 1
    char = text[column - 1] if column <= len(text) else ""
    reason = REASONS.get(code, "invalid").format(char=char)
    return AddressError(text, reason, column, kind)


# ---------------------------------------------------------------------------
# Text parsing (dotted quad and every RFC 4291 IPv6 form), on raw bytes
# ---------------------------------------------------------------------------

hex_init()


cdef inline int hexval(char c) noexcept nogil:
    return HEX[<unsigned char>c]


cdef inline int bad_char(const char* s, Py_ssize_t i, Py_ssize_t* err) noexcept nogil:
    err[0] = i
    cdef unsigned char c = <unsigned char>s[i]
    if c >= 0x80:
        return ERR_NOT_ASCII
    if c == c'%':
        return ERR_ZONE
    if c == c' ' or c == c'\t' or c == c'\n' or c == c'\r' or c == c'\v' or c == c'\f':
        return ERR_WHITESPACE
    return ERR_CHAR


cdef int parse_ipv4(const char* s, Py_ssize_t start, Py_ssize_t end,
                    uint32_t* out, Py_ssize_t* err) noexcept nogil:
    """Strict dotted quad in s[start:end]: 4 decimal octets, no leading zeros."""
    cdef Py_ssize_t i = start, octet_start
    cdef uint32_t value = 0, octet
    cdef int octets = 0, digits
    while True:
        octet_start = i
        octet = 0
        digits = 0
        while i < end and c'0' <= s[i] <= c'9':
            if digits == 3:
                err[0] = octet_start
                return ERR_V4_RANGE
            octet = octet * 10 + <uint32_t>(s[i] - c'0')
            digits += 1
            i += 1
        if digits == 0:
            if i < end and s[i] != c'.':
                return bad_char(s, i, err)
            err[0] = i
            return ERR_V4_EMPTY_OCTET
        if octet > 255:
            err[0] = octet_start
            return ERR_V4_RANGE
        if digits > 1 and s[octet_start] == c'0':
            err[0] = octet_start
            return ERR_V4_LEADING_ZERO
        value = (value << 8) | octet
        octets += 1
        if i == end:
            break
        if s[i] != c'.':
            return bad_char(s, i, err)
        if octets == 4:
            err[0] = i
            return ERR_V4_OCTETS
        i += 1
    if octets != 4:
        err[0] = end
        return ERR_V4_OCTETS
    out[0] = value
    return 4


cdef int parse_ipv6(const char* s, Py_ssize_t start, Py_ssize_t end,
                    uint64_t* hi, uint64_t* lo, Py_ssize_t* err) noexcept nogil:
    """Any RFC 4291 text form in s[start:end]: '::' once, embedded IPv4 last."""
    cdef uint32_t groups[8]
    cdef int ngroups = 0, gap = -1, digits, k, rc
    cdef Py_ssize_t i = start, group_start
    cdef uint32_t value, v4
    if end - start >= 2 and s[i] == c':' and s[i + 1] == c':':
        gap = 0
        i += 2
    elif i < end and s[i] == c':':
        err[0] = i
        return ERR_V6_EMPTY_GROUP
    while i < end:
        group_start = i
        value = 0
        digits = 0
        while i < end and hexval(s[i]) >= 0:
            value = (value << 4) | <uint32_t>hexval(s[i])
            digits += 1
            i += 1
        if i < end and s[i] == c'.':
            # Embedded IPv4: the rest of the text, standing for the last two groups.
            if ngroups > 6 or (gap < 0 and ngroups != 6):
                err[0] = group_start
                return ERR_V6_EMBEDDED
            rc = parse_ipv4(s, group_start, end, &v4, err)
            if rc < 0:
                return rc
            groups[ngroups] = v4 >> 16
            groups[ngroups + 1] = v4 & 0xFFFF
            ngroups += 2
            i = end
            break
        if digits == 0:
            if i < end and s[i] != c':':
                return bad_char(s, i, err)
            err[0] = i
            return ERR_V6_EMPTY_GROUP
        if digits > 4:
            err[0] = group_start
            return ERR_V6_GROUP_LEN
        if ngroups == 8:
            err[0] = group_start
            return ERR_V6_TOO_MANY
        groups[ngroups] = value
        ngroups += 1
        if i == end:
            break
        if s[i] != c':':
            return bad_char(s, i, err)
        i += 1
        if i < end and s[i] == c':':
            if gap >= 0:
                err[0] = i - 1
                return ERR_V6_DOUBLE_COLON
            gap = ngroups
            i += 1
        elif i == end:
            err[0] = i
            return ERR_V6_EMPTY_GROUP
    if gap < 0 and ngroups != 8:
        err[0] = end
        return ERR_V6_TOO_FEW
    if gap >= 0 and ngroups > 7:
        err[0] = start
        return ERR_V6_TOO_MANY
    # Expand '::' into the missing zero groups.
    cdef uint32_t full[8]
    cdef int missing = 8 - ngroups
    for k in range(8):
        full[k] = 0
    for k in range(ngroups):
        if gap >= 0 and k >= gap:
            full[k + missing] = groups[k]
        else:
            full[k] = groups[k]
    hi[0] = ((<uint64_t>full[0] << 48) | (<uint64_t>full[1] << 32)
             | (<uint64_t>full[2] << 16) | <uint64_t>full[3])
    lo[0] = ((<uint64_t>full[4] << 48) | (<uint64_t>full[5] << 32)
             | (<uint64_t>full[6] << 16) | <uint64_t>full[7])
    return 6


cdef int parse_address_bytes(const char* s, Py_ssize_t start, Py_ssize_t end,
                             uint64_t* hi, uint64_t* lo, Py_ssize_t* err) noexcept nogil:
    """An address in s[start:end] -> version and its natural value (IPv4 in ``lo``)."""
    cdef uint32_t v4
    cdef int rc
    if end <= start:
        err[0] = start
        return ERR_EMPTY
    if end - start > MAX_TEXT:
        err[0] = start
        return ERR_TOO_LONG
    if parse_ipv4_fast(s + start, end - start, &v4):
        hi[0] = 0
        lo[0] = v4
        return 4
    if parse_ipv6_fast(s + start, end - start, hi, lo):
        return 6
    if memchr(s + start, c':', <size_t>(end - start)) != NULL:
        return parse_ipv6(s, start, end, hi, lo, err)
    rc = parse_ipv4(s, start, end, &v4, err)
    if rc < 0:
        return rc
    hi[0] = 0
    lo[0] = v4
    return 4


cdef int parse_address_text(const char* s, Py_ssize_t n, uint64_t* hi, uint64_t* lo,
                            Py_ssize_t* err) noexcept nogil:
    """``parse_address_bytes`` over s[0:n], where a '/' means a network was given."""
    cdef int rc = parse_address_bytes(s, 0, n, hi, lo, err)
    if rc == ERR_CHAR and s[err[0]] == c'/':
        return ERR_NETWORK
    return rc


cdef inline void ones_below(int nbits, uint64_t* hi, uint64_t* lo) noexcept nogil:
    """The low ``nbits`` bits of a 128-bit value set (0 <= nbits <= 128)."""
    if nbits >= 128:
        hi[0] = ALL_ONES
        lo[0] = ALL_ONES
    elif nbits >= 64:
        hi[0] = ((<uint64_t>1 << (nbits - 64)) - 1) if nbits > 64 else 0
        lo[0] = ALL_ONES
    elif nbits > 0:
        hi[0] = 0
        lo[0] = (<uint64_t>1 << nbits) - 1
    else:
        hi[0] = 0
        lo[0] = 0


cdef inline bint has_host_bits(int version, uint64_t hi, uint64_t lo, int plen) noexcept nogil:
    cdef uint64_t mhi, mlo
    ones_below((32 if version == 4 else 128) - plen, &mhi, &mlo)
    return ((hi & mhi) | (lo & mlo)) != 0


cdef inline void mask_host_bits(int version, uint64_t* hi, uint64_t* lo, int plen) noexcept nogil:
    cdef uint64_t mhi, mlo
    ones_below((32 if version == 4 else 128) - plen, &mhi, &mlo)
    hi[0] &= ~mhi
    lo[0] &= ~mlo


cdef inline void unmap_ipv4(int* version, uint64_t* hi, uint64_t* lo, int* plen) noexcept nogil:
    """::ffff:a.b.c.d/96+n is the IPv4 network a.b.c.d/n (and an address the same)."""
    if version[0] == 6 and hi[0] == 0 and (lo[0] >> 32) == 0xFFFF and plen[0] >= 96:
        version[0] = 4
        lo[0] = lo[0] & 0xFFFFFFFFu
        plen[0] -= 96


cdef inline int contiguous_ones_from_top(uint32_t mask) noexcept nogil:
    """n if ``mask`` is n one bits followed by 32 - n zero bits, else -1."""
    cdef uint32_t below = ~mask               # the zeros of a good mask, as a run of low ones
    cdef int n = 32
    if (below & (below + 1u)) != 0:           # not 0...01...1: the ones have a hole
        return -1
    while below != 0:                         # count the low ones, one bit at a time (<= 32)
        below >>= 1
        n -= 1
    return n


cdef int parse_network_bytes(const char* s, Py_ssize_t n, bint strict,
                             uint64_t* hi, uint64_t* lo, int* plen,
                             bint* masked, Py_ssize_t* err) noexcept nogil:
    """'addr' or 'addr/len' (IPv4 also 'addr/netmask') -> version; host bits per ``strict``."""
    cdef const char* slash = <const char*>memchr(s, c'/', <size_t>n)
    cdef Py_ssize_t addr_end = n if slash == NULL else slash - s
    cdef Py_ssize_t i
    cdef int version, length, maxlen, rc
    cdef uint32_t mask
    cdef uint64_t mhi, mlo
    version = parse_address_bytes(s, 0, addr_end, hi, lo, err)
    if version < 0:
        return version
    maxlen = 32 if version == 4 else 128
    masked[0] = False
    if slash == NULL:
        plen[0] = maxlen
    else:
        i = addr_end + 1
        if i == n:
            err[0] = i
            return ERR_PLEN_MISSING
        if version == 4 and memchr(s + i, c'.', <size_t>(n - i)) != NULL:
            rc = parse_ipv4(s, i, n, &mask, err)
            if rc < 0:
                return rc
            # As ipaddress reads it: a netmask (ones, then zeros), else a hostmask (zeros, then
            # ones), else an error.  Never a shift by the full width: 1 << 32 on a uint32_t is
            # undefined and once let '/1.2.3.4' pass as /0.
            length = contiguous_ones_from_top(mask)
            if length < 0:
                length = contiguous_ones_from_top(~mask)
            if length < 0:
                err[0] = i
                return ERR_NETMASK
            plen[0] = length
        else:
            length = 0
            while i < n:
                if not (c'0' <= s[i] <= c'9'):
                    return bad_char(s, i, err)
                length = length * 10 + (s[i] - c'0')
                if length > maxlen:
                    err[0] = addr_end + 1
                    return ERR_PLEN_RANGE
                i += 1
            plen[0] = length
        if has_host_bits(version, hi[0], lo[0], plen[0]):
            if strict:
                err[0] = 0
                return ERR_HOST_BITS
            mask_host_bits(version, hi, lo, plen[0])
            masked[0] = True
    unmap_ipv4(&version, hi, lo, plen)
    return version


cdef inline const char* text_bytes(object text, Py_ssize_t* n, str kind) except NULL:
    """The UTF-8 bytes of a str, without copying.

    ASCII strings (every valid address) are read straight from CPython's
    compact representation; anything else goes through the codec.
    """
    if PyUnicode_IS_COMPACT_ASCII(text):
        n[0] = PyUnicode_GET_LENGTH(text)
        return <const char*>PyUnicode_DATA(text)
    return text_bytes_slow(text, n, kind)


cdef const char* text_bytes_slow(object text, Py_ssize_t* n, str kind) except NULL:
    # Lone surrogates cannot be encoded; they are reported like any non-ASCII
    # character rather than as a UnicodeEncodeError.
    try:
        return PyUnicode_AsUTF8AndSize(text, n)
    except UnicodeEncodeError as exc:
        raise AddressError(text, REASONS[ERR_NOT_ASCII].format(char=text[exc.start]),
                           exc.start + 1, kind) from None


def parse_address(text):
    """Parse address text -> ``(version, value)``; ``::ffff:a.b.c.d`` stays IPv6 here.

    Raises:
        TypeError: ``text`` is not a str.
        AddressError: the text is not an IPv4 or IPv6 address.
    """
    if not PyUnicode_Check(text):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    cdef Py_ssize_t n, err = 0
    cdef const char* s = text_bytes(text, &n, "IP address")
    cdef uint64_t hi = 0, lo = 0
    cdef int rc = parse_address_text(s, n, &hi, &lo, &err)
    if rc < 0:
        raise address_error(text, rc, err)
    return rc, (<object>hi << 64) | lo


def _parse_ipv6_fast(bytes text not None):
    """The value the fast IPv6 reader gives ``text`` (ASCII bytes), or None where it leaves
    the text to the exact parser (for tests: whatever it accepts, it must read as the
    standard library does)."""
    cdef uint64_t hi = 0, lo = 0
    if not parse_ipv6_fast(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text), &hi, &lo):
        return None
    return (<object>hi << 64) | lo


def parse_network(text, bint strict=True):
    """Parse network text -> ``(version, value, prefixlen, masked)``.

    A bare address is a /32 or /128.  IPv4-mapped IPv6 networks of length
    96 or more come back as the IPv4 network.

    Raises:
        AddressError: malformed text, a bad prefix length, or host bits set
            while ``strict`` is true.
    """
    if not PyUnicode_Check(text):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    cdef Py_ssize_t n, err = 0
    cdef const char* s = text_bytes(text, &n, "network")
    cdef uint64_t hi = 0, lo = 0
    cdef int plen = 0
    cdef bint masked = False
    cdef int rc = parse_network_bytes(s, n, strict, &hi, &lo, &plen, &masked, &err)
    if rc < 0:
        raise address_error(text, rc, err, "network")
    return rc, (<object>hi << 64) | lo, plen, masked


cdef object list_changed_size(str what, Py_ssize_t was, list items):
    """The error for a list that shrank while a loop of the core was reading it."""
    job = "batch" if what == "addresses" else "compile"
    return RuntimeError(f"the list of {what} changed size during the {job} "
                        f"(from {was:,} to {len(items):,} items)")


def parse_entries(list items, bint strict=True):
    """Fast path for compiling: parse every ``str`` or ``(str, data)`` item in C.

    Returns ``(version, hi, lo, plen, status, data, masked)``: per item arrays,
    ``status`` 0 where parsed and -1 where the item needs the general Python
    path (other types, ranges, or an error to be reported there), ``data`` a
    list of the data of ``(str, data)`` items (None elsewhere) or None when no
    item carried data, and ``masked`` how many networks had host bits cleared.
    """
    cdef Py_ssize_t count = len(items), i, n, err
    version_arr = np.zeros(count, dtype=np.uint8)
    hi_arr = np.zeros(count, dtype=np.uint64)
    lo_arr = np.zeros(count, dtype=np.uint64)
    plen_arr = np.zeros(count, dtype=np.uint8)
    status_arr = np.zeros(count, dtype=np.int8)
    cdef uint8_t[::1] version = version_arr
    cdef uint64_t[::1] his = hi_arr
    cdef uint64_t[::1] los = lo_arr
    cdef uint8_t[::1] plens = plen_arr
    cdef signed char[::1] status = status_arr
    cdef list data = None
    cdef object item, text
    cdef const char* s
    cdef uint64_t hi, lo
    cdef int plen, rc
    cdef bint masked
    cdef Py_ssize_t masked_count = 0
    for i in range(count):
        # Python code runs inside this loop (a tuple subclass's __getitem__, building an
        # AddressError), and it may shrink the list, or let another thread do so: the
        # size is checked before every read (items[i] is not bounds-checked).
        if i >= PyList_GET_SIZE(items):
            raise list_changed_size("entries", count, items)
        item = items[i]
        if PyTuple_Check(item) and PyTuple_GET_SIZE(item) == 2:
            if data is None:
                data = [None] * count
            data[i] = item[1]
            text = item[0]
        else:
            text = item
        if not PyUnicode_Check(text):
            status[i] = -1
            continue
        try:
            s = text_bytes(text, &n, "network")
        except AddressError:
            status[i] = -1
            continue
        rc = parse_network_bytes(s, n, strict, &hi, &lo, &plen, &masked, &err)
        if rc < 0:
            status[i] = -1
            continue
        version[i] = rc
        his[i] = hi
        los[i] = lo
        plens[i] = plen
        masked_count += masked
    return version_arr, hi_arr, lo_arr, plen_arr, status_arr, data, masked_count


