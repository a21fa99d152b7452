def batch_input(addresses):
    """Classify a batch -> (kind, data) with data contiguous and of the loop's dtype.

    kinds: "u32" (IPv4 ints), "u64x2" (IPv6 high/low), "packed" (rows of 4 or
    16 big-endian bytes), "packed unless text" (the same rows from an S4/S16 array,
    see ``refuse_text_as_packed``), "text" (a numpy U or S array of address text, read in
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
        # S4/S16 may be address text: its rows are read for that as they are looked up.
        return ("packed unless text" if kind == "S" else "packed"), rows
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
    ROW_BINARY = 0          # a byte outside printable ASCII: only packed bytes
    ROW_PRINTABLE = 1       # empty, or printable ASCII that is no address
    ROW_ADDRESS = 2         # without its trailing NULs, the row parses as an address


ctypedef struct text_check_t:
    # How far the rows of an S4/S16 batch read as text (see read_fixed_rows).
    bint binary_seen        # some row cannot be text; from then on only address text matters
    Py_ssize_t text_row     # the first row that is address text, or -1


cdef inline bint address_char(uint8_t ch) noexcept nogil:
    # Bitwise, not short-circuit: no branch to mispredict on random packed bytes.
    return (hexval(<char>ch) >= 0) | (ch == c'.') | (ch == c':')


cdef int read_fixed_row(const uint8_t* row, Py_ssize_t width) noexcept nogil:
    """What one row of ``width`` NUL-padded bytes can be: ROW_BINARY, ROW_PRINTABLE or ROW_ADDRESS."""
    cdef Py_ssize_t k, size = width, err = 0
    cdef bint address_chars
    cdef uint8_t ch
    cdef uint64_t hi, lo
    while size > 0 and row[size - 1] == 0:
        size -= 1
    address_chars = size > 0
    for k in range(size):
        ch = row[k]
        if address_char(ch):
            continue
        address_chars = False
        if ch < 0x20 or ch > 0x7E:
            return ROW_BINARY
    if address_chars and parse_address_bytes(<const char*>row, 0, size, &hi, &lo, &err) > 0:
        return ROW_ADDRESS
    return ROW_PRINTABLE


cdef bint read_fixed_rows(const uint8_t* rows, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t width,
                          text_check_t* check) noexcept nogil:
    """Read rows [start, stop) of an S4/S16 batch as text; True when one is address text.

    Called on each chunk just before its lookups, while the rows are in cache (a
    separate pass over a large batch cost a fifth of the lookups' time).  Until the
    first binary row each row is read in full (all rows printable means text); after
    it only address text matters, and address text (two characters at least, as in
    "::") starts with two address characters, which settles 99% of random packed rows
    with one well-predicted branch."""
    cdef Py_ssize_t i = start
    cdef const uint8_t* row
    cdef int kind
    while i < stop and not check.binary_seen:
        kind = read_fixed_row(rows + i * width, width)
        if kind == ROW_ADDRESS:
            check.text_row = i
            return True
        check.binary_seen = kind == ROW_BINARY
        i += 1
    while i < stop:
        row = rows + i * width
        if (address_char(row[0]) & address_char(row[1])) and read_fixed_row(row, width) == ROW_ADDRESS:
            check.text_row = i
            return True
        i += 1
    return False


cdef int refuse_text_as_packed(rows, const text_check_t* check) except -1:
    """Raise ValueError unless the S4/S16 batch just read can only be packed addresses.

    numpy gives address text (``np.array([b"1::2", b""])`` is ``S4``) and packed
    bytes the same dtypes, and every 4 or 16 bytes are some packed address.  So the
    array is refused when any row is valid address text, or when every row is
    printable or empty (text with missing values or typos): never read half one
    way.  The caller says which it is with ``.astype(str)`` or ``.view("V16")``.
    The rows are read as they are looked up, so an ``out=`` array may hold answers
    when the batch is refused (as with a bad item in a list)."""
    cdef Py_ssize_t width = rows.shape[1], row = check.text_row
    if row < 0 and (check.binary_seen or rows.shape[0] == 0):
        return 0
    if row >= 0:
        text = bytes(rows[row]).rstrip(b"\0")        # the row as numpy shows an S item
        why = f"row {row} ({text!r}) is address text"
    else:
        why = "every row is printable text or empty"
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
