# Any accepted address object -> a key (included by _trie.pyx).

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
    # overflow < 0: below LLONG_MIN; overflow == 0 here means a negative value.  Past that,
    # an exact int (an int subclass cannot redefine bit_length or >> under us).
    if overflow <= 0 or PyNumber_Index(value).bit_length() > 128:
        raise AddressError(str(shown), "integer outside 0 .. 2**128-1", None)
    value = PyNumber_Index(value)
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
        version = parse_address_text(s, n, hi, lo, &err)
        if version < 0:
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
    else:
        if not ipaddress_bound:
            bind_ipaddress()
        if type(ip) is IPv4Address or type(ip) is IPv6Address:
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


