# The Index class (included by _trie.pyx): the compiled tables of both families and
# every way of asking them.


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
    cdef object answers           # Answers (_match.pxi) for lookup(), or None until set

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

    def _set_answers(self, version, hi, lo, prefixlen, data, dict cache not None):
        """Give lookup() each prefix row's network (``Compiled.version``, ``hi``, ``lo``,
        ``prefixlen``: valid networks), the registrations' data and a network cache (after the
        tables; once: when two threads race to set them, the first stays)."""
        if self._arrays is None:
            raise RuntimeError("set the tables before the answers")
        if len(prefixlen) != self.n_prefixes:
            raise ValueError("prefixlen must have one row per prefix")
        answers = Answers(version, hi, lo, prefixlen, self._arrays[4], data, cache)
        if self.answers is None:
            self.answers = answers

    @cython.binding(False)
    @cython.always_allow_keywords(False)
    def lookup(self, ip):
        """The longest registered prefix covering ``ip``: a :class:`~ipallow.Match`, or None.

        Arguments:
            ip: str, int (below 2**32 is IPv4), 4/16 packed bytes, or an
                ``ipaddress`` / ``netaddr`` address.  ``::ffff:a.b.c.d`` is
                looked up as ``a.b.c.d``.

        The Match's ``data`` is ready at once; its ``index`` is read and its
        ``network`` built when first asked for (``prefixlen`` and ``network_text``
        do without the network).

        Raises:
            TypeError: ``ip`` is not an address type.
            AddressError: ``ip`` is malformed or out of range.

        >>> ipallow.Allowlist(["10.0.0.0/8", "10.1.0.0/16"]).lookup("10.1.2.3").network
        IPv4Network('10.1.0.0/16')
        """
        return match_of(self, ip)

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
            out: optional preallocated C-contiguous ``bool`` array of length n.  When
                the call raises, its contents are unspecified (some rows may be answered).

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
        cdef text_check_t check
        cdef text_check_t* checking
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
        elif kind == "packed" or kind == "packed unless text":
            packed = data
            # S4/S16 rows may be address text: the run reads them for the rule as it goes.
            checking = &check if kind == "packed unless text" else NULL
            check.binary_seen = False
            check.text_row = -1
            with nogil:
                run_packed(&self.t4, &self.t6, &packed[0, 0], n, packed.shape[1], mode, dst,
                           self.prefix_reg, checking)
            if checking != NULL:
                refuse_text_as_packed(data, &check)
        elif kind == "text":
            self._run_text(data, mode, dst)
        else:
            run_list(data, n, mode, dst, &self.t4, &self.t6, self.prefix_reg)
        return result

    cdef int _run_text(self, array, int mode, void* dst) except -1:
        """A numpy U/S array of address text: parsed in place; the first bad row raises."""
        codes = match_fixed(array, &self.t4, &self.t6)
        bad = np.flatnonzero(codes < NO_MATCH)
        if len(bad):
            row = int(bad[0])
            text = array[row]
            text = text.decode("latin-1") if isinstance(text, bytes) else str(text)
            exc = address_error_of(text)
            exc.add_note(f"at position {row} of the batch")
            raise exc
        cdef const int32_t[::1] prefix = codes
        with nogil:
            finish_codes(&prefix[0], prefix.shape[0], mode, dst, 0, self.prefix_reg)
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
        return match_list(items, &self.t4, &self.t6)

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
        return match_arrow(offsets, data, validity, start, length, large, &self.t4, &self.t6)

    def _match_text_fixed(self, array):
        """Like :meth:`_match_text` for numpy ``S`` (NUL-padded ASCII) or ``U`` (UCS-4) arrays,
        read in place."""
        if self._arrays is None:
            raise RuntimeError("the index has no tables")
        return match_fixed(array, &self.t4, &self.t6)

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


cdef extern from "Python.h":
    object PyDescr_NewMethod(type cls, PyMethodDef* method)


def method_of_subclass(type cls, str name):
    """Index's C method ``name`` as a method descriptor of ``cls``, a subclass of Index.

    ``al.lookup(q)`` on an Allowlist (a Python subclass) paid 30-60 ns more than a bound
    ``lookup(q)`` on Python 3.11, and on 3.12 and 3.13 6-8 ns more than it does with this
    descriptor: CPython (3.11-3.13) specializes that call for a method descriptor only
    while ``self`` is exactly of the descriptor's class, and Index.lookup's class is Index;
    every call then left the specialized path, and it was tried again and again.  The same
    C function, described as a method of ``cls``, keeps the call on the fast path.  Calling
    it still checks that ``self`` is a ``cls`` (so an Index of the C layout the function
    reads), as every method descriptor does.
    """
    if not issubclass(cls, Index):
        raise TypeError(f"{cls.__name__} is not a subclass of Index")
    cdef PyMethodDef* method = (<PyTypeObject*>Index).tp_methods
    while method != NULL and method.ml_name != NULL:
        if method.ml_name.decode("ascii") == name:
            return PyDescr_NewMethod(cls, method)
        method += 1
    raise AttributeError(f"Index has no C method {name!r}")
