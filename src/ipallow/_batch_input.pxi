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
