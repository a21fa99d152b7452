# cython: freethreading_compatible = False
"""The compiled core of ipallow: text parsing, the Poptrie-style index, lookups.

Everything here works on C integers.  Keys live in a 128-bit space held as two
``uint64_t`` (``hi``, ``lo``): an IPv6 address is itself, an IPv4 address is
left-aligned (``hi = addr << 32``, ``lo = 0``), so one builder serves both
families while IPv4 and IPv6 still get separate tables.

The index (Asai & Ohara, "Poptrie", SIGCOMM 2015, in our own words):

* The prefix set is leaf-pushed into *elementary intervals*: every address gets
  the answer of its longest matching prefix, so a lookup never backtracks.
* Level 0 (``dir``) is a plain array over the top ``dir_bits`` bits.  An entry
  is either an answer (a leaf) or, with ``NODE_FLAG`` set, a node reference.
* A node covers the next 6 bits (64 slots).  ``vector`` marks slots that continue
  into a child node, found by a popcount over the node's child entries.  The
  other slots are leaves; runs of equal leaves are stored once, ``leafvec``
  marks where a run starts, and a popcount finds the run's one-byte code.
  Nodes of both kinds live in one array of 32-bit words (see "The index").
* An answer (leaf value) is ``prefix index + 1``; 0 means "no match".  Prefix
  indices are the builder's first-appearance numbering, which is what lets a
  leaf be one byte.

The arrays are flat and pointer free (numpy arrays owned by Python), so a
snapshot can be written and mapped back as is.
"""

cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memchr, memcpy
from cpython.unicode cimport PyUnicode_Check
from cpython.bytes cimport PyBytes_Check, PyBytes_GET_SIZE, PyBytes_AS_STRING
from cpython.long cimport PyLong_Check
from cpython.bool cimport PyBool_Check
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE
from cpython.list cimport PyList_GET_SIZE

import numpy as np
from ipaddress import IPv4Address, IPv6Address

from ipallow.errors import AddressError, TableError

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    unsigned long long PyLong_AsUnsignedLongLongMask(object o) except? <unsigned long long>-1
    size_t _PyLong_NumBits(object o) except? <size_t>-1
    bint PyUnicode_IS_COMPACT_ASCII(object s)
    void* PyUnicode_DATA(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1


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

cdef extern from *:
    """
    /* Hex digit values, -1 for anything else: one load instead of three
       range tests whose branches mispredict on random IPv6 text.
       Filled once when the module is imported. */
    static signed char ipallow_hex[256];
    static void ipallow_hex_init(void) {
        int i;
        for (i = 0; i < 256; i++) ipallow_hex[i] = -1;
        for (i = 0; i < 10; i++) ipallow_hex['0' + i] = (signed char)i;
        for (i = 0; i < 6; i++) {
            ipallow_hex['a' + i] = (signed char)(10 + i);
            ipallow_hex['A' + i] = (signed char)(10 + i);
        }
    }
    """
    const signed char* HEX "ipallow_hex"
    void hex_init "ipallow_hex_init"() noexcept nogil


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


cdef extern from *:
    """
    #include <string.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif
    /* A valid dotted quad in s[0:n], found without a data-dependent branch
       (octets of 1-3 digits at random make a digit-by-digit parser mispredict
       about once an octet).  Returns 4 and the address, or 0 for *anything*
       else, valid or not: the caller then runs the exact parser, which owns
       every error message.  Reads s[0:n] only. */
    static const unsigned char ipallow_w100[16] = {0, 1, 10, 100};
    static const unsigned char ipallow_w10[16] = {0, 0, 1, 10};
    static const unsigned char ipallow_w1[16] = {0, 0, 0, 1};
    static inline int ipallow_parse_ipv4_fast(const char* s, Py_ssize_t n, uint32_t* out) {
        unsigned char b[24];
        uint32_t dots, nondigit, valid, m, value = 0, ok = 1;
        int k, start = 0, end;
        if (n < 7 || n > 15) return 0;
        memset(b, 0, sizeof b);
        memcpy(b, s, 4);                       /* two overlapping copies: exactly n bytes */
        memcpy(b + n - 4, s + n - 4, 4);
        if (n > 8) { memcpy(b, s, 8); memcpy(b + n - 8, s + n - 8, 8); }
    #if defined(__SSE2__)
        {
            __m128i x = _mm_loadu_si128((const __m128i*)b);
            __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
            dots = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
            nondigit = (uint32_t)_mm_movemask_epi8(
                _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(10)), _mm_set1_epi8(10)));
        }
    #else
        dots = nondigit = 0;
        for (k = 0; k < 16; k++) {
            dots |= (uint32_t)(b[k] == '.') << k;
            nondigit |= (uint32_t)((unsigned char)(b[k] - '0') > 9) << k;
        }
    #endif
        valid = (1u << n) - 1;
        m = dots & valid;
        m = m & (m - 1);
        m = m & (m - 1);                       /* two dots cleared: exactly one must remain */
        if ((nondigit & ~dots & valid) || m == 0 || (m & (m - 1))) return 0;
        m = (dots & valid) | (1u << n);        /* the end of every octet */
        for (k = 0; k < 4; k++) {
            unsigned len, a, v;
            end = __builtin_ctz(m);
            m &= m - 1;
            len = (unsigned)(end - start);
            a = (unsigned)(b[start] - '0');
            v = a * ipallow_w100[len & 15] + (unsigned)(unsigned char)(b[start + 1] - '0') * ipallow_w10[len & 15]
                + (unsigned)(unsigned char)(b[start + 2] - '0') * ipallow_w1[len & 15];
            ok &= (len - 1u <= 2u) & (v <= 255u) & !(a == 0 && len > 1);
            value = (value << 8) | (v & 255u);
            start = end + 1;
        }
        if (!ok) return 0;
        *out = value;
        return 4;
    }
    """
    int parse_ipv4_fast "ipallow_parse_ipv4_fast"(const char* s, Py_ssize_t n, uint32_t* out) noexcept nogil


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
    if memchr(s + start, c':', <size_t>(end - start)) != NULL:
        return parse_ipv6(s, start, end, hi, lo, err)
    rc = parse_ipv4(s, start, end, &v4, err)
    if rc < 0:
        return rc
    hi[0] = 0
    lo[0] = v4
    return 4


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
    cdef int rc = parse_address_bytes(s, 0, n, &hi, &lo, &err)
    if rc < 0:
        if rc == ERR_CHAR and s[err] == c'/':
            rc = ERR_NETWORK
        raise address_error(text, rc, err)
    return rc, (<object>hi << 64) | lo


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


@cython.boundscheck(False)
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


# ---------------------------------------------------------------------------
# The index: one table per family
# ---------------------------------------------------------------------------
#
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
# prefixes; this one 6.8).

cdef extern from *:
    """
    #define IPALLOW_NODE_FLAG 0x80000000u
    #define IPALLOW_INNER_FLAG 0x40000000u
    #define IPALLOW_OFFSET_MASK 0x3FFFFFFFu
    """
    const uint32_t NODE_FLAG "IPALLOW_NODE_FLAG"
    const uint32_t INNER_FLAG "IPALLOW_INNER_FLAG"
    const uint32_t OFFSET_MASK "IPALLOW_OFFSET_MASK"
cdef enum:
    HEAD_WORDS = 4          # leafvec (2), default, first
    INNER_HEAD_WORDS = 6    # + vector (2)
    HEAP_SLACK = 2          # zero words after the last node: the batch walk reads
                            # words 4-5 of every node, whatever its shape

ctypedef struct table_t:
    const uint32_t* dir
    const uint32_t* heap
    int dir_bits
    uint32_t n_words


cdef extern from *:
    """
    /* Hardware popcount when the build targets it (setup.py adds -mpopcnt on
       x86-64 unless IPALLOW_PORTABLE=1); otherwise a branch-free SWAR count,
       never libgcc's slow generic routine. */
    #include <stdint.h>
    #include <string.h>
    #if defined(__POPCNT__) || defined(__aarch64__)
    #define IPALLOW_POPCOUNT64(x) ((int)__builtin_popcountll(x))
    #else
    static inline int IPALLOW_POPCOUNT64(uint64_t x) {
        x = x - ((x >> 1) & 0x5555555555555555ULL);
        x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
        return (int)((x * 0x0101010101010101ULL) >> 56);
    }
    #endif
    /* Bitmaps sit in two 4-byte-aligned heap words: memcpy is one load on
       x86-64 and arm64, and well defined everywhere. */
    static inline uint64_t ipallow_load64(const uint32_t* p) {
        uint64_t x; memcpy(&x, p, 8); return x;
    }
    static inline void ipallow_store64(uint32_t* p, uint64_t x) { memcpy(p, &x, 8); }
    /* A build that uses the POPCNT instruction refuses to load on a CPU
       without it (pre-2008 x86) instead of dying with SIGILL later. */
    static int ipallow_cpu_ok(void) {
    #if defined(__POPCNT__) && defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        return __builtin_cpu_supports("popcnt");
    #else
        return 1;
    #endif
    }
    """
    int popcount64 "IPALLOW_POPCOUNT64"(uint64_t x) noexcept nogil
    uint64_t load64 "ipallow_load64"(const uint32_t* p) noexcept nogil
    void store64 "ipallow_store64"(uint32_t* p, uint64_t x) noexcept nogil
    int cpu_ok "ipallow_cpu_ok"() noexcept nogil

if not cpu_ok():
    raise ImportError("this build of ipallow uses the POPCNT instruction, which this CPU lacks; "
                      "reinstall with IPALLOW_PORTABLE=1 in the environment")


cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define IPALLOW_PREFETCH(p) __builtin_prefetch((const void*)(p))
    #else
    #define IPALLOW_PREFETCH(p) ((void)0)
    #endif
    """
    void prefetch "IPALLOW_PREFETCH"(const void* p) noexcept nogil


cdef inline void prefetch_node(const uint32_t* node) noexcept nogil:
    # A node's header and its first leaf codes can straddle two cache lines.
    prefetch(node)
    prefetch(node + 12)


cdef inline unsigned slot_of(uint64_t hi, uint64_t lo, int offset) noexcept nogil:
    """The 6 key bits starting at bit ``offset`` (0 = most significant), zero padded."""
    if offset <= 58:
        return <unsigned>((hi >> (58 - offset)) & 63)
    if offset < 64:
        return <unsigned>(((hi << (offset - 58)) | (lo >> (122 - offset))) & 63)
    if offset <= 122:
        return <unsigned>((lo >> (122 - offset)) & 63)
    return <unsigned>((lo << (offset - 122)) & 63)


cdef inline uint32_t leaf_answer(const uint32_t* node, const uint8_t* codes, uint64_t upto) noexcept nogil:
    """The answer of the leaf run holding the slots up to ``upto``."""
    cdef uint32_t code = codes[popcount64(load64(node) & upto) - 1]
    return node[3] + code - 1 if code else node[2]


cdef inline uint32_t descend(const table_t* t, uint32_t entry, uint64_t hi, uint64_t lo,
                             int offset) noexcept nogil:
    """Answer for a key from level-0 ``entry`` on (one key at a time, branchy)."""
    cdef const uint32_t* node
    cdef unsigned v
    cdef uint64_t upto, vector
    while entry & NODE_FLAG:
        node = t.heap + (entry & OFFSET_MASK)
        prefetch(node + 12)                     # the codes may start the next cache line
        v = slot_of(hi, lo, offset)
        upto = (<uint64_t>2 << v) - 1          # slots 0..v (v = 63 wraps to all ones)
        if not entry & INNER_FLAG:
            return leaf_answer(node, <const uint8_t*>(node + HEAD_WORDS), upto)
        vector = load64(node + HEAD_WORDS)
        if (vector >> v) & 1:
            entry = node[INNER_HEAD_WORDS + popcount64(vector & upto) - 1]
            offset += 6
        else:
            return leaf_answer(node, <const uint8_t*>(node + INNER_HEAD_WORDS + popcount64(vector)), upto)
    return entry


cdef inline uint32_t table_lookup(const table_t* t, uint64_t hi, uint64_t lo) noexcept nogil:
    """Leaf value (prefix index + 1, 0 = none) for a left-aligned 128-bit key."""
    return descend(t, t.dir[hi >> (64 - t.dir_bits)], hi, lo, t.dir_bits)


cdef inline uint32_t table_lookup4(const table_t* t, uint32_t addr) noexcept nogil:
    """IPv4: the key fits in ``hi``; most lookups end at level 0."""
    cdef uint32_t entry = t.dir[addr >> (32 - t.dir_bits)]
    if not entry & NODE_FLAG:
        return entry
    return descend(t, entry, <uint64_t>addr << 32, 0, t.dir_bits)


# ---------------------------------------------------------------------------
# Building a table
# ---------------------------------------------------------------------------

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


cdef int emit_boundary(builder_t* b, uint64_t hi, uint64_t lo, uint32_t value) noexcept nogil:
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
    return 0


cdef int sweep(builder_t* b, const uint64_t* hi, const uint64_t* lo, const uint8_t* plen,
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
    return 0


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


# ---------------------------------------------------------------------------
# Turning Python objects into keys
# ---------------------------------------------------------------------------

# Converter for address objects that are not str / int / bytes (ipaddress,
# netaddr, ...): installed by the Python layer, returns (version, int value)
# or raises TypeError.  Bound here once so the lookup path does no attribute
# lookups of its own.
cdef object object_converter = None


def set_object_converter(converter):
    """Install the converter the core calls for address objects it does not know."""
    global object_converter
    object_converter = converter


cdef uint64_t TWO_32 = 1ull << 32


cdef int key_from_int_value(object value, object shown, uint64_t* hi, uint64_t* lo) except -1:
    """Split a non-negative Python int below 2**128 into (hi, lo); 4 or 6 by size."""
    cdef int overflow = 0
    cdef long long small = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow == 0 and small >= 0:
        hi[0] = 0
        lo[0] = <uint64_t>small
        return 4 if <uint64_t>small < TWO_32 else 6
    # overflow < 0: below LLONG_MIN; overflow == 0 here means a negative value.
    if overflow <= 0 or _PyLong_NumBits(value) > 128:
        raise AddressError(str(shown), "integer outside 0 .. 2**128-1", None)
    lo[0] = PyLong_AsUnsignedLongLongMask(value)
    hi[0] = PyLong_AsUnsignedLongLongMask(value >> 64)
    return 6


cdef inline uint64_t load_be64(const uint8_t* p) noexcept nogil:
    return ((<uint64_t>p[0] << 56) | (<uint64_t>p[1] << 48) | (<uint64_t>p[2] << 40)
            | (<uint64_t>p[3] << 32) | (<uint64_t>p[4] << 24) | (<uint64_t>p[5] << 16)
            | (<uint64_t>p[6] << 8) | <uint64_t>p[7])


cdef inline int64_t arrow_offset(const uint8_t* offsets, Py_ssize_t row, bint wide) noexcept nogil:
    """Offset ``row`` of an Arrow offsets buffer (int64 when ``wide``, else int32).

    Copied out byte-wise: a buffer that came through Arrow IPC or pickle need not be aligned,
    and a misaligned int32_t / int64_t load is undefined behaviour (UBSan reports it).
    """
    cdef int64_t v64
    cdef int32_t v32
    if wide:
        memcpy(&v64, offsets + row * 8, 8)
        return v64
    memcpy(&v32, offsets + row * 4, 4)
    return v32


cdef inline uint32_t load_be32(const uint8_t* p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | <uint32_t>p[3])


cdef int key_from_object(object ip, uint64_t* hi, uint64_t* lo) except -1:
    """Any accepted address form -> 4 (``lo`` = IPv4 address) or 6 (``hi``, ``lo``).

    IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) come back as IPv4.
    """
    cdef Py_ssize_t n, err = 0
    cdef const char* s
    cdef int version
    cdef const uint8_t* raw
    if PyUnicode_Check(ip):
        s = text_bytes(ip, &n, "IP address")
        version = parse_address_bytes(s, 0, n, hi, lo, &err)
        if version < 0:
            if version == ERR_CHAR and s[err] == c'/':
                version = ERR_NETWORK
            raise address_error(ip, version, err)
    elif PyLong_Check(ip):
        if PyBool_Check(ip):
            raise TypeError("expected an IP address, got bool")
        version = key_from_int_value(ip, ip, hi, lo)
    elif PyBytes_Check(ip):
        n = PyBytes_GET_SIZE(ip)
        raw = <const uint8_t*>PyBytes_AS_STRING(ip)
        if n == 4:
            hi[0] = 0
            lo[0] = load_be32(raw)
            version = 4
        elif n == 16:
            hi[0] = load_be64(raw)
            lo[0] = load_be64(raw + 8)
            version = 6
        else:
            raise AddressError(repr(ip), f"packed address must be 4 or 16 bytes, not {n}", None)
    elif type(ip) is IPv4Address or type(ip) is IPv6Address:
        # The stdlib's address objects keep their value in ``_ip``: skip the
        # Python converter (and its isinstance chain) for the common case.
        key_from_int_value(ip._ip, ip, hi, lo)
        version = 4 if type(ip) is IPv4Address else 6
    else:
        if object_converter is None:
            raise TypeError(f"expected an IP address, got {type(ip).__name__}")
        converted_version, value = object_converter(ip)
        key_from_int_value(value, ip, hi, lo)
        version = converted_version
    if version == 6 and hi[0] == 0 and (lo[0] >> 32) == 0xFFFF:
        lo[0] &= 0xFFFFFFFFu
        version = 4
    return version


cdef object address_error_of(str text):
    """The AddressError that looking up ``text`` raises (it must be malformed)."""
    cdef uint64_t hi = 0, lo = 0
    try:
        key_from_object(text, &hi, &lo)
    except AddressError as exc:
        return exc
    return AddressError(text, "invalid", None)


def address_key(ip):
    """``ip`` in any accepted form -> ``(version, value)`` as the index sees it.

    IPv4-mapped IPv6 addresses come back as ``(4, a.b.c.d)``.

    Raises:
        TypeError: ``ip`` is not of an accepted type.
        AddressError: ``ip`` is not a valid address.
    """
    cdef uint64_t hi = 0, lo = 0
    cdef int version = key_from_object(ip, &hi, &lo)
    return version, (<object>hi << 64) | lo


# ---------------------------------------------------------------------------
# The compiled index
# ---------------------------------------------------------------------------

# Special results of Index._match_text*.
NO_MATCH = -1
UNPARSEABLE = -2
MISSING = -3
cdef enum:
    UNPARSEABLE_C = -2
    MISSING_C = -3

cdef enum:
    MODE_CONTAINS = 0   # bool: any match
    MODE_REGISTRATION = 1   # int32: registration index, -1 = none
    MODE_PREFIX = 2     # int32: prefix index, -1 = none

cdef enum:
    CHUNK = 128         # addresses per batch step (a stack buffer of leaf values)
    TEXT_SLOT = 64      # bytes kept of one text item in a batch (= MAX_TEXT)
    GATHER = 512        # list items read per GIL hold (a multiple of CHUNK)


cdef class Index:
    """Compiled IPv4 and IPv6 tables plus the prefix -> registration map.

    Immutable once its tables are set, so any number of threads may read it
    at once; the batch methods release the GIL.
    """
    cdef table_t t4
    cdef table_t t6
    cdef const int32_t* prefix_reg
    cdef Py_ssize_t n_prefixes
    cdef object _arrays           # keeps the buffers behind the raw pointers alive
    cdef object _shapes           # ((nodes, leaf codes) IPv4, same IPv6), from validation

    def __cinit__(self, *args, **kwargs):
        self._arrays = None
        self.n_prefixes = 0

    def _set_tables(self, dir4, heap4, int dir_bits4, dir6, heap6, int dir_bits6, prefix_reg):
        """Point the index at compiled arrays (once; the index is immutable after)."""
        if self._arrays is not None:
            raise RuntimeError("the index is immutable: its tables are already set")
        if not isinstance(prefix_reg, np.ndarray) or prefix_reg.dtype != np.int32 \
                or prefix_reg.ndim != 1 or not prefix_reg.flags.c_contiguous:
            raise TypeError("prefix_reg must be a 1-D C-contiguous int32 array")
        # Whatever produced the arrays (our builder, a snapshot file, a pickle),
        # no lookup may read outside them or loop: check before serving any
        # (validate_table also checks the arrays' dtypes and level-0 size).
        shape4 = validate_table("IPv4", dir4, heap4, dir_bits4, 32, prefix_reg.shape[0])
        shape6 = validate_table("IPv6", dir6, heap6, dir_bits6, 128, prefix_reg.shape[0])
        self._arrays = (dir4, heap4, dir6, heap6, prefix_reg)
        self._shapes = (shape4, shape6)
        self.n_prefixes = prefix_reg.shape[0]
        self.prefix_reg = <const int32_t*>pointer_of(prefix_reg)
        fill_table(&self.t4, dir4, heap4, dir_bits4)
        fill_table(&self.t6, dir6, heap6, dir_bits6)

    cdef inline uint32_t leaf_of(self, object ip) except? 0xFFFFFFFF:
        cdef uint64_t hi = 0, lo = 0
        if self._arrays is None:
            raise RuntimeError("the index has no tables")
        if key_from_object(ip, &hi, &lo) == 4:
            return table_lookup4(&self.t4, <uint32_t>lo)
        return table_lookup(&self.t6, hi, lo)

    def __contains__(self, ip):
        return self.leaf_of(ip) != 0

    def _match_index(self, ip):
        """Index of the longest matching prefix, or -1."""
        return <Py_ssize_t>self.leaf_of(ip) - 1

    def _registration_index(self, ip):
        """Registration index of the longest matching prefix, or -1."""
        cdef uint32_t leaf = self.leaf_of(ip)
        return self.prefix_reg[leaf - 1] if leaf else -1

    def contains_many(self, addresses, out=None):
        """Membership of every address: a numpy ``bool`` array.

        Arguments:
            addresses: a numpy ``uint32`` array (IPv4); an ``(n, 2)`` ``uint64``
                array (IPv6 high, low); an ``(n, 16)`` or ``(n, 4)`` ``uint8``
                array or ``S16``/``V16``/``S4``/``V4`` array of packed addresses;
                or a list (or numpy str/object array) of addresses in any accepted
                form.  ``S4``/``S16`` are packed only when they cannot be text
                (see ``refuse_text_as_packed``).
            out: optional preallocated C-contiguous ``bool`` array of length n.

        Raises:
            TypeError: unsupported container, dtype or element type.
            ValueError: bad shape, an integer out of range, an ``S4``/``S16``
                array that may be text, or an unparseable element
                (``AddressError``, naming its position).
            RuntimeError: the list was shrunk while it was read (by another
                thread, or by Python code an item ran).
        """
        return self._batch(addresses, MODE_CONTAINS, out)

    def lookup_many(self, addresses, out=None):
        """Registration index of the longest match of every address (-1 = none).

        Takes the same inputs as :meth:`contains_many`; returns ``int32``.
        """
        return self._batch(addresses, MODE_REGISTRATION, out)

    def _match_many(self, addresses, out=None):
        """Prefix index of the longest match of every address (-1 = none)."""
        return self._batch(addresses, MODE_PREFIX, out)

    cdef object _batch(self, addresses, int mode, out):
        if self._arrays is None:
            raise RuntimeError("the index has no tables")
        kind, data = batch_input(addresses)
        cdef Py_ssize_t n = data.shape[0] if kind != "objects" else len(data)
        result = prepare_out(out, n, mode)
        cdef uint8_t[::1] out_view = result.view(np.uint8)
        cdef void* dst = <void*>&out_view[0] if n else NULL
        cdef const uint32_t[::1] a32
        cdef const uint64_t[:, ::1] a64
        cdef const uint8_t[:, ::1] packed
        if n == 0:
            return result
        if kind == "u32":
            a32 = data
            with nogil:
                run_u32(&self.t4, &a32[0], n, mode, dst, self.prefix_reg)
        elif kind == "u64x2":
            a64 = data
            with nogil:
                run_u64x2(&self.t4, &self.t6, &a64[0, 0], n, mode, dst, self.prefix_reg)
        elif kind == "packed":
            packed = data
            with nogil:
                run_packed(&self.t4, &self.t6, &packed[0, 0], n, packed.shape[1], mode, dst,
                           self.prefix_reg)
        elif kind == "text":
            self._run_text(data, mode, dst)
        else:
            self._run_objects(data, n, mode, dst)
        return result

    cdef int _run_text(self, array, int mode, void* dst) except -1:
        """A numpy U/S array of address text: parsed in place; the first bad row raises."""
        codes = self._match_text_fixed(array)
        bad = np.flatnonzero(codes < NO_MATCH)
        if len(bad):
            row = int(bad[0])
            text = array[row]
            text = text.decode("latin-1") if isinstance(text, bytes) else str(text)
            exc = address_error_of(text)
            exc.add_note(f"at position {row} of the batch")
            raise exc
        cdef const int32_t[::1] prefix = codes
        cdef Py_ssize_t i, n = codes.shape[0]
        cdef uint8_t* flags = <uint8_t*>dst
        cdef int32_t* ints = <int32_t*>dst
        with nogil:
            for i in range(n):
                if mode == MODE_CONTAINS:
                    flags[i] = prefix[i] >= 0
                elif mode == MODE_REGISTRATION:
                    ints[i] = self.prefix_reg[prefix[i]] if prefix[i] >= 0 else -1
                else:
                    ints[i] = prefix[i]
        return 0

    cdef int _run_objects(self, list items, Py_ssize_t n, int mode, void* dst) except -1:
        """A list, GATHER items at a time: with the GIL, ASCII strings are
        copied out (every other item becomes a key at once); without it, the
        copies are parsed and every key walked, CHUNK by CHUNK.  So threads
        overlap on most of the work, and the list may change meanwhile without
        harm (only copies are read).  The first bad item is reported, whichever
        phase finds it."""
        cdef uint32_t leaves[CHUNK]
        cdef char text_buf[GATHER * TEXT_SLOT]     # the texts, packed (a few KB are touched)
        cdef Py_ssize_t starts[GATHER]
        cdef Py_ssize_t sizes[GATHER]       # text length, or -1: the key is in keys_*
        cdef uint64_t keys_hi[GATHER]
        cdef uint64_t keys_lo[GATHER]
        cdef chunk_t c
        cdef Py_ssize_t base = 0, i, k, start, count, gathered, ready, bad_at, err = 0, used
        cdef uint64_t hi = 0, lo = 0
        cdef int version, bad_code = 0
        cdef bint failed
        cdef object item, failure
        c.n4 = c.n6 = 0
        while base < n:
            gathered = min(<Py_ssize_t>GATHER, n - base)
            failure = None
            failed = False
            ready = gathered
            used = 0
            for i in range(gathered):
                if base + i >= PyList_GET_SIZE(items):
                    # Another thread (or an item's own conversion code) shrank it.
                    raise list_changed_size("addresses", n, items)
                item = items[base + i]
                if (PyUnicode_Check(item) and PyUnicode_IS_COMPACT_ASCII(item)
                        and PyUnicode_GET_LENGTH(item) <= TEXT_SLOT):
                    sizes[i] = PyUnicode_GET_LENGTH(item)
                    starts[i] = used
                    memcpy(text_buf + used, PyUnicode_DATA(item), <size_t>sizes[i])
                    used += sizes[i]
                    continue
                sizes[i] = -1
                try:
                    if key_from_object(item, &hi, &lo) == 4:
                        lo |= <uint64_t>0xFFFF << 32      # IPv4-mapped: chunk_add queues it as IPv4
                    keys_hi[i] = hi
                    keys_lo[i] = lo
                except Exception as exc:            # reported after earlier texts are parsed
                    failure = exc
                    failed = True
                    ready = i
                    break
            bad_at = ready
            with nogil:
                start = 0
                while start < ready and bad_at == ready:
                    count = min(<Py_ssize_t>CHUNK, ready - start)
                    for k in range(count):
                        i = start + k
                        if sizes[i] < 0:
                            chunk_add(&c, k, keys_hi[i], keys_lo[i])
                            continue
                        version = parse_address_bytes(text_buf + starts[i], 0, sizes[i], &hi, &lo, &err)
                        if version == 4:
                            chunk_add4(&c, k, <uint32_t>lo)
                        elif version == 6:
                            chunk_add(&c, k, hi, lo)
                        else:
                            bad_at = i
                            bad_code = version
                            break
                    if bad_at == ready and not (failed and start + count == ready):
                        chunk_resolve(&c, &self.t4, &self.t6, leaves)
                        finish(leaves, count, mode, dst, base + start, self.prefix_reg)
                    start += count
            if bad_at < ready:
                text = text_buf[starts[bad_at]:starts[bad_at] + sizes[bad_at]].decode("ascii")
                if bad_code == ERR_CHAR and text_buf[starts[bad_at] + err] == c'/':
                    bad_code = ERR_NETWORK
                failure = address_error(text, bad_code, err)
            if failure is not None:
                failure.add_note(f"at position {base + bad_at} of the batch")
                raise failure
            base += gathered
        return 0

    def _match_text(self, items):
        """Prefix index of the longest match for each text item, never raising.

        Items are ``str`` or ASCII ``bytes`` address text (or None).  Result:
        int32, the prefix index, or ``NO_MATCH`` (-1), ``UNPARSEABLE`` (-2),
        ``MISSING`` (-3, for None).  For streams and columns where a bad row
        must be counted, not fatal.  A list shrunk while it is read (by Python
        code run from the loop, or another thread) raises RuntimeError.
        """
        if self._arrays is None:
            raise RuntimeError("the index has no tables")
        if type(items) is not list:
            items = list(items)               # a list subclass too: read one way, as a list
        cdef list seq = items
        cdef Py_ssize_t n = PyList_GET_SIZE(seq)
        result = np.empty(n, dtype=np.int32)
        cdef int32_t[::1] out = result
        cdef uint32_t leaves[CHUNK]
        cdef chunk_t c
        cdef Py_ssize_t base = 0, i, count, size, err
        cdef uint64_t hi = 0, lo = 0
        cdef const char* s
        cdef int version
        cdef object item
        c.n4 = c.n6 = 0
        while base < n:
            count = min(<Py_ssize_t>CHUNK, n - base)
            for i in range(count):
                leaves[i] = 0
                # Python code can run in this loop (a finalizer when an exception or the
                # previous item is freed, and then another thread): the list may have
                # shrunk, and seq[...] is not bounds-checked.
                if base + i >= PyList_GET_SIZE(seq):
                    raise list_changed_size("addresses", n, seq)
                item = seq[base + i]
                if PyBytes_Check(item):
                    s = PyBytes_AS_STRING(item)
                    size = PyBytes_GET_SIZE(item)
                elif PyUnicode_Check(item):
                    try:
                        s = PyUnicode_AsUTF8AndSize(item, &size)
                    except UnicodeEncodeError:
                        out[base + i] = UNPARSEABLE
                        continue
                else:
                    out[base + i] = MISSING if item is None else UNPARSEABLE
                    continue
                version = parse_address_bytes(s, 0, size, &hi, &lo, &err)
                if version == 4:
                    chunk_add4(&c, i, <uint32_t>lo)
                elif version == 6:
                    chunk_add(&c, i, hi, lo)
                else:
                    out[base + i] = UNPARSEABLE
                    continue
                out[base + i] = 0
            chunk_resolve(&c, &self.t4, &self.t6, leaves)
            for i in range(count):
                if out[base + i] == 0:
                    out[base + i] = <int32_t>leaves[i] - 1
            base += count
        return result

    def _match_text_arrow(self, offsets, data, validity, Py_ssize_t start, Py_ssize_t length,
                          bint large=False):
        """Like :meth:`_match_text`, reading an Arrow string array's buffers in place.

        Arguments:
            offsets: the offsets buffer: int32, or int64 with ``large`` (``large_string``).
            data: the UTF-8 data buffer.
            validity: the validity bitmap (LSB first) or None when there are no nulls.
            start, length: the array's element offset and length (for slices).
        """
        if self._arrays is None:
            raise RuntimeError("the index has no tables")
        if start < 0 or length < 0:
            raise ValueError("start and length must be non-negative")
        cdef bint wide = large
        cdef const uint8_t[::1] offs_bytes = memoryview(offsets).cast("B")
        cdef const uint8_t[::1] raw = memoryview(data).cast("B") if data is not None else b""
        cdef const uint8_t[::1] valid
        cdef bint has_validity = validity is not None
        if has_validity:
            valid = memoryview(validity).cast("B")
            # Written so that nothing overflows: start + length can pass 2**63.
            if start > valid.shape[0] * 8 - length:
                raise ValueError("validity bitmap shorter than the array")
        cdef Py_ssize_t width = 8 if wide else 4
        if start > offs_bytes.shape[0] // width - 1 - length:       # needs start + length + 1 offsets
            raise ValueError("offsets buffer shorter than the array")
        result = np.empty(length, dtype=np.int32)
        cdef int32_t[::1] out = result
        cdef const uint8_t* offs = &offs_bytes[0] if offs_bytes.shape[0] else NULL
        # An empty data buffer: every row must then be empty (checked below).
        cdef const char* base = <const char*>&raw[0] if raw.shape[0] else EMPTY_TEXT
        cdef Py_ssize_t n_data = raw.shape[0], i, row, first, last
        cdef bint bad_offsets = False
        cdef uint32_t leaves[CHUNK]
        cdef chunk_t c
        cdef Py_ssize_t chunk_base = 0, count
        c.n4 = c.n6 = 0
        with nogil:
            while chunk_base < length:
                count = min(<Py_ssize_t>CHUNK, length - chunk_base)
                for i in range(count):
                    row = start + chunk_base + i
                    if has_validity and not ((valid[row >> 3] >> (row & 7)) & 1):
                        out[chunk_base + i] = MISSING_C
                        continue
                    first, last = arrow_offset(offs, row, wide), arrow_offset(offs, row + 1, wide)
                    if first < 0 or last < first or last > n_data:
                        bad_offsets = True
                        break
                    out[chunk_base + i] = queue_text(&c, i, base + first, last - first)
                if bad_offsets:
                    break
                resolve_text(&c, &self.t4, &self.t6, leaves, &out[chunk_base], count)
                chunk_base += count
        if bad_offsets:
            raise ValueError("Arrow offsets point outside the data buffer")
        return result

    def _match_text_fixed(self, array):
        """Like :meth:`_match_text` for numpy ``S`` (NUL-padded ASCII) or ``U`` (UCS-4) arrays,
        read in place."""
        if self._arrays is None:
            raise RuntimeError("the index has no tables")
        arr = np.require(array, requirements=["C", "A"])     # U rows are read as uint32_t
        if arr.ndim != 1 or arr.dtype.kind not in "SU":
            raise TypeError("expected a 1-D numpy S or U array")
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))     # '>U': UCS-4 read as host words below
        cdef Py_ssize_t n = arr.shape[0], itemsize = arr.dtype.itemsize, i, k, size
        cdef bint ucs4 = arr.dtype.kind == "U"
        cdef const uint8_t[::1] raw = arr.view(np.uint8).reshape(-1) if n * itemsize else np.zeros(1, np.uint8)
        result = np.empty(n, dtype=np.int32)
        cdef int32_t[::1] out = result
        cdef char text[72]
        cdef const uint8_t* row
        cdef const uint32_t* wide
        cdef uint32_t ch
        cdef uint32_t leaves[CHUNK]
        cdef chunk_t c
        cdef Py_ssize_t chunk_base = 0, count
        c.n4 = c.n6 = 0
        with nogil:
            while chunk_base < n:
                count = min(<Py_ssize_t>CHUNK, n - chunk_base)
                for i in range(count):
                    row = &raw[0] + (chunk_base + i) * itemsize
                    # numpy pads with NULs at the end only: a NUL before the last
                    # character is part of the text (and makes it unparseable).
                    if ucs4:
                        wide = <const uint32_t*>row
                        size = itemsize // 4
                        while size > 0 and wide[size - 1] == 0:
                            size -= 1
                        if size > 70:
                            size = 71              # too long: the parser rejects it
                        for k in range(size):
                            ch = wide[k]
                            text[k] = <char>(ch if ch < 128 else 0x80)
                        out[chunk_base + i] = queue_text(&c, i, text, size)
                    else:
                        size = itemsize
                        while size > 0 and row[size - 1] == 0:
                            size -= 1
                        out[chunk_base + i] = queue_text(&c, i, <const char*>row, size)
                resolve_text(&c, &self.t4, &self.t6, leaves, &out[chunk_base], count)
                chunk_base += count
        return result

    @property
    def nbytes(self):
        """Bytes used by the compiled tables (level-0 arrays and node heaps)."""
        if self._arrays is None:
            return 0
        return sum(a.nbytes for a in self._arrays[:4])

    def _table_stats(self):
        """Sizes of the compiled tables, per family (for stats and benchmarks)."""
        if self._arrays is None:
            return {}
        d4, h4, d6, h6, _ = self._arrays
        (nodes4, codes4), (nodes6, codes6) = self._shapes
        return {4: {"dir_bits": self.t4.dir_bits, "nodes": nodes4, "leaves": codes4,   # leaf runs
                    "nbytes": d4.nbytes + h4.nbytes},
                6: {"dir_bits": self.t6.dir_bits, "nodes": nodes6, "leaves": codes6,
                    "nbytes": d6.nbytes + h6.nbytes}}


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


cdef extern from *:
    """
    /* A fast 64-bit checksum for snapshot sections: four independent lanes
       (so it runs near memory speed), each step a bijection of the lane state
       for a fixed word and of the word for a fixed state, so any change to a
       single 8-byte word -- any single bit flip -- always changes the result.
       Not cryptographic: it guards against corruption, not forgery (crafted
       files are stopped by the structural checks instead). */
    #include <string.h>
    static inline uint64_t ipallow_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
    static inline uint64_t ipallow_step(uint64_t h, uint64_t w) {
        return ipallow_rotl(h ^ w, 29) * 0x9E3779B97F4A7C15ULL;
    }
    static uint64_t ipallow_checksum(const unsigned char* p, size_t n) {
        uint64_t a = 0x243F6A8885A308D3ULL, b = 0x13198A2E03707344ULL,
                 c = 0xA4093822299F31D0ULL, d = 0x082EFA98EC4E6C89ULL, w[4];
        size_t i = 0;
        for (; i + 32 <= n; i += 32) {
            memcpy(w, p + i, 32);
            a = ipallow_step(a, w[0]); b = ipallow_step(b, w[1]);
            c = ipallow_step(c, w[2]); d = ipallow_step(d, w[3]);
        }
        for (; i + 8 <= n; i += 8) { memcpy(w, p + i, 8); a = ipallow_step(a, w[0]); }
        if (i < n) { w[0] = 0; memcpy(w, p + i, n - i); b = ipallow_step(b, w[0]); }
        /* Combine: each lane through its own bijection, then the length. */
        uint64_t h = ipallow_step(a, 1) ^ ipallow_rotl(ipallow_step(b, 2), 16)
                   ^ ipallow_rotl(ipallow_step(c, 3), 32) ^ ipallow_rotl(ipallow_step(d, 4), 48);
        return ipallow_step(h, (uint64_t)n);
    }
    """
    uint64_t c_checksum "ipallow_checksum"(const unsigned char* p, size_t n) noexcept nogil


def checksum(buffer):
    """64-bit checksum of a bytes-like object (snapshot sections, headers)."""
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


# ---------------------------------------------------------------------------
# Batch loops (GIL released)
# ---------------------------------------------------------------------------

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


cdef inline uint32_t select(uint32_t flag, uint32_t if_set, uint32_t if_clear) noexcept nogil:
    """``if_set`` when flag is 1, else ``if_clear``, without a branch (flag is 0 or 1):
    the batch walks' choices are coin flips a branch predictor would miss."""
    return if_clear ^ ((if_set ^ if_clear) & (<uint32_t>0 - flag))


cdef inline uint32_t code_answer(const uint32_t* node, uint32_t code) noexcept nogil:
    """A leaf code's answer without a branch: word 2 (default) for 0, else word 3 + code - 1."""
    cdef uint32_t new = code != 0
    return node[2 + new] + ((code - 1) & (<uint32_t>0 - new))


cdef inline uint32_t node_step(const table_t* t, uint32_t entry, unsigned v,
                               uint32_t* is_child) noexcept nogil:
    """One branch-free step through slot ``v`` of node ``entry``: the child entry
    (``is_child`` = 1) or the answer.  A leaf-only node is read as an inner node
    whose ``vector`` is masked to zero (the words read in its place are its own
    codes, or the heap's slack); child and answer are both computed, then one is
    picked, since which it is is a coin flip to a branch predictor.  The child
    entry is prefetched (for an answer, some heap line: prefetch never faults)."""
    cdef const uint32_t* node = t.heap + (entry & OFFSET_MASK)
    cdef uint32_t inner = (entry >> 30) & 1
    cdef uint64_t upto = (<uint64_t>2 << v) - 1
    cdef uint64_t leafvec = load64(node)
    cdef uint64_t vector = load64(node + HEAD_WORDS) & (<uint64_t>0 - inner)
    cdef const uint32_t* refs = node + HEAD_WORDS + 2 * inner
    cdef uint32_t child = refs[popcount64(vector & upto) - 1]
    cdef uint32_t code = (<const uint8_t*>(refs + popcount64(vector)))[popcount64(leafvec & upto) - 1]
    is_child[0] = <uint32_t>((vector >> v) & 1)
    prefetch_node(t.heap + (child & OFFSET_MASK))
    return select(is_child[0], child, code_answer(node, code))


cdef void walk(const table_t* t, const uint64_t* hi, const uint64_t* lo,
               uint32_t* out, Py_ssize_t count) noexcept nogil:
    """Leaf values for ``count`` (<= CHUNK) left-aligned keys, walked level by level.

    Each pass advances every unfinished key by one trie level.  The loads of
    one pass do not depend on each other, so their cache misses overlap (and
    each pass prefetches the nodes the next one reads); a one-at-a-time walk
    would wait for each miss in turn.  Only the keys still inside a node are
    revisited (``active``); each step is ``node_step``, free of branches.
    """
    cdef uint32_t active[CHUNK]
    cdef Py_ssize_t i, j, n_active = 0, n_next
    cdef uint32_t entry, is_child
    cdef int offset = t.dir_bits
    for i in range(count):
        entry = t.dir[hi[i] >> (64 - t.dir_bits)]
        out[i] = entry
        prefetch_node(t.heap + (entry & OFFSET_MASK))   # harmless for answers: prefetch never faults
        active[n_active] = <uint32_t>i
        n_active += entry >> 31
    while n_active:
        n_next = 0
        for j in range(n_active):
            i = active[j]
            out[i] = node_step(t, out[i], slot_of(hi[i], lo[i], offset), &is_child)
            active[n_next] = <uint32_t>i
            n_next += is_child
        n_active = n_next
        offset += 6


cdef void walk4(const table_t* t, const uint32_t* keys, uint32_t* out, Py_ssize_t count) noexcept nogil:
    """``walk`` for IPv4 keys as they come (host-order ``uint32``): the same
    steps, with the slot taken straight from the 32-bit key."""
    cdef uint32_t active[CHUNK]
    cdef Py_ssize_t i, j, n_active = 0, n_next
    cdef uint32_t entry, is_child, key
    cdef int shift = 32 - t.dir_bits
    for i in range(count):
        entry = t.dir[keys[i] >> shift]
        out[i] = entry
        prefetch_node(t.heap + (entry & OFFSET_MASK))
        active[n_active] = <uint32_t>i
        n_active += entry >> 31
    # IPv4 nodes start at bit dir_bits (>= 12) + 6 * level < 32: the slot is
    # the 6 bits ending ``shift - 6`` bits above the bottom, padded with zeros
    # past the last bit.
    shift -= 6
    while n_active:
        n_next = 0
        for j in range(n_active):
            i = active[j]
            key = keys[i]
            out[i] = node_step(t, out[i], ((key >> shift) if shift >= 0 else (key << -shift)) & 63,
                               &is_child)
            active[n_next] = <uint32_t>i
            n_next += is_child
        n_active = n_next
        shift -= 6


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


cdef char EMPTY_TEXT[1]


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


cdef inline void resolve_text(chunk_t* c, const table_t* t4, const table_t* t6, uint32_t* leaves,
                              int32_t* out, Py_ssize_t count) noexcept nogil:
    """Resolve the queued rows; rows already marked (negative) keep their mark."""
    cdef Py_ssize_t i
    for i in range(count):
        leaves[i] = 0
    chunk_resolve(c, t4, t6, leaves)
    for i in range(count):
        if out[i] == 0:
            out[i] = <int32_t>leaves[i] - 1


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
                     Py_ssize_t width, int mode, void* dst, const int32_t* prefix_reg) noexcept nogil:
    cdef uint32_t leaves[CHUNK]
    cdef chunk_t c
    cdef Py_ssize_t base = 0, i, count
    cdef const uint8_t* row
    c.n4 = c.n6 = 0
    while base < n:
        count = min(<Py_ssize_t>CHUNK, n - base)
        for i in range(count):
            row = a + (base + i) * width
            if width == 4:
                chunk_add4(&c, i, load_be32(row))
            else:
                chunk_add(&c, i, load_be64(row), load_be64(row + 8))
        chunk_resolve(&c, t4, t6, leaves)
        finish(leaves, count, mode, dst, base, prefix_reg)
        base += count


def batch_input(addresses):
    """Classify a batch -> (kind, data) with data contiguous and of the loop's dtype.

    kinds: "u32" (IPv4 ints), "u64x2" (IPv6 high/low), "packed" (rows of 4 or
    16 big-endian bytes), "text" (a numpy U or S array of address text, read in
    place), "objects" (a list handled element by element).
    """
    if isinstance(addresses, (str, bytes)):
        raise TypeError(f"expected a sequence of addresses, not a single {type(addresses).__name__}")
    if type(addresses) is list:
        return "objects", addresses           # a list subclass is copied below, like any sequence
    if not isinstance(addresses, np.ndarray):
        if hasattr(addresses, "__array__") and not isinstance(addresses, (tuple, range)):
            addresses = np.asarray(addresses)
        else:
            try:
                return "objects", list(addresses)
            except TypeError:
                raise TypeError(f"expected a sequence or array of addresses, "
                                f"got {type(addresses).__name__}") from None
    arr = addresses
    kind = arr.dtype.kind
    if kind == "O":
        if arr.ndim != 1:
            raise ValueError(f"an array of address objects must be 1-D, not {arr.ndim}-D")
        return "objects", arr.tolist()
    if kind in "US" and arr.ndim != 1:
        raise ValueError(f"an array of address text must be 1-D, not {arr.ndim}-D")
    if kind == "U" or (kind == "S" and arr.dtype.itemsize not in (4, 16)):
        return "text", np.ascontiguousarray(arr)          # parsed in place, no str objects
    if kind in "SV":
        if arr.ndim != 1 or arr.dtype.itemsize not in (4, 16) or arr.dtype.fields:
            raise ValueError(f"packed addresses must be a 1-D S4/S16/V4/V16 array, got {arr.dtype} "
                             f"with shape {arr.shape}")
        width = arr.dtype.itemsize
        rows = np.ascontiguousarray(arr).view(np.uint8).reshape(-1, width)
        if kind == "S":
            refuse_text_as_packed(rows, arr)
        return "packed", rows
    if kind not in "ui":
        raise TypeError(f"unsupported array dtype {arr.dtype}: use uint32 (IPv4), "
                        f"(n, 2) uint64 (IPv6) or packed uint8 rows")
    if arr.ndim == 1:
        return "u32", checked_cast(arr, np.uint32, 1 << 32)
    if arr.ndim == 2 and arr.shape[1] == 2 and arr.dtype.itemsize == 8:
        return "u64x2", checked_cast(arr, np.uint64, 1 << 64)
    if arr.ndim == 2 and arr.shape[1] in (4, 16) and arr.dtype.itemsize == 1:
        return "packed", checked_cast(arr, np.uint8, 1 << 8)
    raise ValueError(f"unsupported array shape {arr.shape} for dtype {arr.dtype}: use (n,) uint32, "
                     f"(n, 2) uint64 or (n, 4) / (n, 16) uint8")


cdef enum:
    PACKED_ONLY = 0         # no row can be text: packed bytes
    HAS_ADDRESS_TEXT = 1    # some row is valid address text
    ALL_PRINTABLE = 2       # every row is printable ASCII or empty: text, whatever it says


cdef int read_fixed_rows(const uint8_t* rows, Py_ssize_t n, Py_ssize_t width,
                         Py_ssize_t* text_row) noexcept nogil:
    """Whether rows of ``width`` NUL-padded bytes (an S4/S16 array) can be text.

    Every row is checked; a packed row usually fails at its first byte.  A row is
    address text when, without its trailing NULs, it parses as an address; printable
    when it is empty or all its bytes are ASCII 0x20-0x7E."""
    cdef bint all_printable = n > 0, printable, address_chars
    cdef Py_ssize_t i, k, size, err = 0
    cdef const uint8_t* row
    cdef uint8_t ch
    cdef uint64_t hi, lo
    for i in range(n):
        row = rows + i * width
        size = width
        while size > 0 and row[size - 1] == 0:
            size -= 1
        address_chars = size > 0
        printable = True
        for k in range(size):
            ch = row[k]
            if hexval(<char>ch) >= 0 or ch == c'.' or ch == c':':
                continue
            address_chars = False
            if ch < 0x20 or ch > 0x7E:
                printable = False
                break
            if not all_printable:
                break                   # only address text still matters
        if address_chars and parse_address_bytes(<const char*>row, 0, size, &hi, &lo, &err) > 0:
            text_row[0] = i
            return HAS_ADDRESS_TEXT
        all_printable = all_printable and printable
    return ALL_PRINTABLE if all_printable else PACKED_ONLY


cdef int refuse_text_as_packed(const uint8_t[:, ::1] rows, arr) except -1:
    """Raise ValueError unless an S4/S16 array can only be packed addresses.

    numpy gives address text (``np.array([b"1::2", b""])`` is ``S4``) and packed
    bytes the same dtypes, and every 4 or 16 bytes are some packed address.  So the
    array is refused when any row is valid address text, or when every row is
    printable or empty (text with missing values or typos): never read half one
    way.  The caller says which it is with ``.astype(str)`` or ``.view("V16")``."""
    cdef Py_ssize_t n = rows.shape[0], width = rows.shape[1], row = -1
    cdef int reading
    if n == 0:
        return 0
    with nogil:
        reading = read_fixed_rows(&rows[0, 0], n, width, &row)
    if reading == PACKED_ONLY:
        return 0
    why = (f"row {row} ({bytes(arr[row])!r}) is address text" if reading == HAS_ADDRESS_TEXT
           else "every row is printable text or empty")
    raise ValueError(f"this S{width} array holds address text, not packed addresses: {why}; "
                     f"S{width} carries both, so say which: a list or .astype(str) for text, "
                     f".view('V{width}') or (n, {width}) uint8 rows for packed bytes")


cdef object checked_cast(arr, dtype, limit):
    """``arr`` as a C-contiguous native ``dtype`` array; every value must be in [0, limit)."""
    if arr.dtype != dtype:
        flat = arr.reshape(-1)
        bad = flat < 0
        if np.iinfo(arr.dtype).max >= limit:
            bad |= flat >= limit
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(f"address value {flat[pos]} at flat position {pos} "
                             f"is out of range for {np.dtype(dtype).name}")
        arr = arr.astype(dtype)
    # Aligned too: the loops read uint32_t / uint64_t; a misaligned view (np.frombuffer at an
    # odd offset) is copied rather than read through a misaligned pointer.
    return np.require(arr, requirements=["C", "A"])


cdef object prepare_out(out, Py_ssize_t n, int mode):
    dtype = np.bool_ if mode == MODE_CONTAINS else np.int32
    if out is None:
        return np.empty(n, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, not {type(out).__name__}")
    if out.dtype != dtype or out.ndim != 1 or out.shape[0] != n:
        raise ValueError(f"out must be a 1-D {np.dtype(dtype).name} array of length {n}, "
                         f"got {out.dtype} with shape {out.shape}")
    if not out.flags.c_contiguous or not out.flags.writeable or not out.flags.aligned:
        raise ValueError("out must be C-contiguous, aligned and writeable")
    return out
