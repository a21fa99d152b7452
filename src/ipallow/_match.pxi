# The single-address answer (included by _trie.pyx): ``Allowlist.lookup`` and its
# ``Match``, built in C.  The walk costs tens of nanoseconds; building an ``ipaddress``
# network costs microseconds, so a Match keeps the matched prefix row as a C integer and
# makes the network (from the row's prefix) only when ``.network`` is first read.

from collections.abc import Sequence as _Sequence

from cpython.list cimport PyList_GET_ITEM
from cpython.long cimport PyLong_FromSsize_t
from libc.stdint cimport INT32_MAX
from cpython.object cimport PyTypeObject

cdef extern from "Python.h":
    void PyObject_GC_Track(object o)
    void PyObject_GC_UnTrack(object o)
    bint PyObject_GC_IsTracked(object o)

# ipaddress network objects kept per allowlist (rows -> networks), shared by
# Match.network, covering() and al[i]; cleared when full.
NETWORK_CACHE_SIZE = 65536


cdef object cached_network(dict cache, Py_ssize_t row, int version, object value, int prefixlen):
    """The ``ipaddress`` network of prefix ``row``, from ``cache`` or built (and kept) now."""
    network = cache.get(row)
    if network is None:
        if not ipaddress_bound:
            bind_ipaddress()
        network = (IPv4Network if version == 4 else IPv6Network)((value, prefixlen))
        if len(cache) >= NETWORK_CACHE_SIZE:
            cache.clear()
        cache[row] = network
    return network


def network_of(dict cache, Py_ssize_t row, int version, value, int prefixlen):
    """Python face of ``cached_network`` (for ``Allowlist._network``)."""
    return cached_network(cache, row, version, value, prefixlen)


cdef const void* column_pointer(str name, column, dtype, Py_ssize_t n) except? NULL:
    """The data of a 1-D C-contiguous ``dtype`` array of ``n`` rows (NULL when empty)."""
    if not isinstance(column, np.ndarray) or column.dtype != dtype \
            or column.ndim != 1 or not column.flags.c_contiguous:
        raise TypeError(f"{name} must be a 1-D C-contiguous {np.dtype(dtype).name} array")
    if column.shape[0] != n:
        raise ValueError(f"{name} must have one row per prefix")
    return pointer_of(column) if n else NULL


cdef class PrefixRows:
    """Each prefix row's network (``Compiled.version``, ``hi``, ``lo``, ``prefixlen``) and
    registration, and the allowlist's cache of ``ipaddress`` networks: what a Match needs to
    make its network and index later (and all it keeps, beside its own fields).  The rows of
    an Allowlist are valid networks (its compiler makes them so; a snapshot's are checked
    before its first lookup), so a network built from one never fails."""
    cdef const uint8_t* version
    cdef const uint64_t* hi
    cdef const uint64_t* lo
    cdef const uint8_t* prefixlen
    cdef const int32_t* prefix_reg
    cdef object _arrays          # keeps the buffers behind the pointers alive
    cdef Py_ssize_t n_prefixes
    cdef dict cache

    def __cinit__(self, version, hi, lo, prefixlen, prefix_reg, dict cache not None):
        cdef Py_ssize_t n = len(prefixlen)
        if n > INT32_MAX:           # a Match keeps its row as an int32_t
            raise ValueError("more than 2**31 - 1 prefix rows")
        self.version = <const uint8_t*>column_pointer("version", version, np.uint8, n)
        self.hi = <const uint64_t*>column_pointer("hi", hi, np.uint64, n)
        self.lo = <const uint64_t*>column_pointer("lo", lo, np.uint64, n)
        self.prefixlen = <const uint8_t*>column_pointer("prefixlen", prefixlen, np.uint8, n)
        self.prefix_reg = <const int32_t*>column_pointer("prefix_reg", prefix_reg, np.int32, n)
        self._arrays = (version, hi, lo, prefixlen, prefix_reg)
        self.n_prefixes = n
        self.cache = cache

    # Row helpers for Match: here rather than as Match's own C methods, which would cost every
    # Match a method-table pointer (8 bytes, and 64 instead of 80 with the headers).

    cdef object network_value(self, Py_ssize_t row):
        """Prefix ``row``'s first address as a Python int."""
        if self.version[row] == 4:
            return self.lo[row]
        return ((<object>self.hi[row]) << 64) | self.lo[row]

    cdef object network(self, Py_ssize_t row):
        """Prefix ``row`` as an ``ipaddress`` network (from the cache, or built and kept)."""
        return cached_network(self.cache, row, self.version[row], self.network_value(row),
                              self.prefixlen[row])

    cdef object network_text(self, Py_ssize_t row):
        """Prefix ``row`` as CIDR text, without making its network."""
        if not ipaddress_bound:
            bind_ipaddress()
        address = (IPv4Address if self.version[row] == 4 else IPv6Address)(self.network_value(row))
        return f"{address}/{self.prefixlen[row]}"

    cdef bint same_network(self, Py_ssize_t row, PrefixRows other, Py_ssize_t other_row) noexcept:
        if self is other:
            return row == other_row
        return (self.version[row] == other.version[other_row] and self.hi[row] == other.hi[other_row]
                and self.lo[row] == other.lo[other_row]
                and self.prefixlen[row] == other.prefixlen[other_row])


cdef class Answers:
    """What a single lookup answers with beyond the tables: the prefix rows and the
    registrations' data.  Immutable once made."""
    cdef PrefixRows rows
    cdef object data             # sequence indexed by registration, or None
    cdef bint data_is_list
    cdef bint data_is_lazy

    def __cinit__(self, version, hi, lo, prefixlen, prefix_reg, data, dict cache not None):
        self.rows = PrefixRows(version, hi, lo, prefixlen, prefix_reg, cache)
        self.data = data
        self.data_is_list = type(data) is list
        self.data_is_lazy = type(data) is LazyList


cdef int load_answers(Index index) except -1:
    """Set the answers at the first lookup (``Allowlist._load_answers``): a snapshot reads and
    checks its prefix table only when it is first needed, and a corrupt one fails there."""
    load = getattr(index, "_load_answers", None)
    if load is None:
        raise RuntimeError("the index has no answers for lookup()")
    load()
    if index.answers is None:
        raise RuntimeError("the index has no answers")
    return 0


cdef object match_of(Index index, object ip):
    """``index.lookup(ip)``: the Match of the longest prefix covering ``ip``, or None.

    Only what every caller needs is read here: the registration's data, and so the
    registration.  Without data (a plain list) the registration index, like the prefix
    length, is one more cache miss in a big table: it waits until it is asked for.
    """
    cdef uint64_t hi = 0, lo = 0
    cdef uint32_t leaf
    cdef int version
    if index._arrays is None:
        raise RuntimeError("the index has no tables")
    version = key_from_object(ip, &hi, &lo)
    if version == 4:
        leaf = table_lookup4(&index.t4, <uint32_t>lo)
    else:
        leaf = table_lookup(&index.t6, hi, lo)
    if leaf == 0:
        return None
    if index.answers is None:               # the first match: as before, a miss reads nothing more
        load_answers(index)
    cdef Answers answers = index.answers
    cdef Py_ssize_t row = leaf - 1
    if row >= answers.rows.n_prefixes:    # validated tables never answer past the prefixes
        raise RuntimeError("the tables answer a prefix the prefix table lacks")
    cdef Py_ssize_t reg
    cdef Match m = Match.__new__(Match)
    m.row = <int32_t>row                    # fits: PrefixRows holds at most 2**31 - 1
    m.rows = answers.rows
    data = answers.data
    if data is None:
        m.reg = -1                          # read from the row when .index is asked for
        m.data = None
        # It refers to nothing that could refer back (its rows, and None), so no cycle can
        # pass through it: like a tuple of ints, CPython's collector need not follow it.  A
        # caller keeping many (``[al.lookup(q) for q in flows]``) would otherwise pay for
        # collections that walk every one of them and can find nothing.  Storing a network
        # in it tracks it again (``network``).
        PyObject_GC_UnTrack(m)
        return m
    reg = answers.rows.prefix_reg[row]
    m.reg = <int32_t>reg
    if answers.data_is_list and 0 <= reg < PyList_GET_SIZE(data):
        m.data = <object>PyList_GET_ITEM(data, reg)
    elif answers.data_is_lazy and 0 <= reg < PyList_GET_SIZE((<LazyList>data).items):
        m.data = (<LazyList>data).get(reg)
    else:
        m.data = data[reg]
    return m


@cython.freelist(64)
cdef class Match:
    """The longest registered prefix covering an address: ``(network, index, data)``.

    ``index`` is the registration index (position in ``list(allowlist)``) and
    ``data`` the registration's data (or None); reading them costs nothing more.
    ``network`` (an ``ipaddress.IPv4Network`` / ``IPv6Network``) is built when first
    read, and kept; ``prefixlen`` and ``network_text`` give the prefix without it.

    Behaves as the 3-tuple ``(network, index, data)`` it used to be (a NamedTuple):
    it unpacks, indexes, compares and hashes as that tuple, pickles, and has
    ``_fields``, ``_asdict()`` and ``_replace()``; it is a ``collections.abc.Sequence``
    but no longer a ``tuple`` subclass.
    """
    # 64 bytes with CPython's headers (and no C methods, which would add a table pointer).  A
    # gateway keeping its answers makes one per flow, and fresh memory costs page faults: at
    # 112 bytes (the address's key, its family and the given index in fields of their own) a
    # kept lookup on a 600k IPv6 table cost ~25 ns more than at 80.
    cdef PrefixRows rows         # a lookup's rows (prefix, registration, network cache); None
                                 # for a Match made from Python
    cdef object _held            # a lookup's network once built (None until then); for a Match
                                 # made from Python, the (network, index) it was given
    cdef readonly object data
    cdef int32_t row             # a lookup's matched prefix row
    cdef int32_t reg             # its registration index (-1: not read yet)

    _fields = ("network", "index", "data")
    __match_args__ = ("network", "index", "data")

    def __init__(self, network, index, data):
        self._held = (network, index)
        self.data = data

    @property
    def index(self):
        """The registration index (position in ``list(allowlist)``, ``allowlist[index]``)."""
        # Made when read: most registration indices are too big for Python's cached
        # small ints, and a lookup answered with an int object would pay for one.
        if self.rows is None:
            return self._held[1]
        if self.reg < 0:                    # a plain list's: read from the row when first asked
            self.reg = self.rows.prefix_reg[self.row]
        return PyLong_FromSsize_t(self.reg)

    @property
    def network(self):
        """The matched ``ipaddress`` network (built on first read, then kept)."""
        if self.rows is None:
            return self._held[0]
        if self._held is None:
            network = self.rows.network(self.row)
            # Threads: the GIL is held from this check to the store, so the first
            # network stored is the one every reader gets.
            if self._held is None:
                self._held = network
                if not PyObject_GC_IsTracked(self):   # an object now: it could lead back here
                    PyObject_GC_Track(self)
        return self._held

    @property
    def prefixlen(self):
        """The matched prefix length (without building the network)."""
        return self._held[0].prefixlen if self.rows is None else self.rows.prefixlen[self.row]

    @property
    def network_text(self):
        """The matched network as CIDR text, e.g. ``'10.1.0.0/16'`` (without building it)."""
        if self.rows is None:
            return str(self._held[0])
        return self.rows.network_text(self.row)

    # -- the tuple protocol ---------------------------------------------------

    def __len__(self):
        return 3

    def __getitem__(self, key):
        return (self.network, self.index, self.data)[key]

    def __iter__(self):
        return iter((self.network, self.index, self.data))

    def __contains__(self, value):
        return value in (self.network, self.index, self.data)

    def __reversed__(self):
        return iter((self.data, self.index, self.network))

    def count(self, value):
        """How many fields equal ``value`` (as ``tuple.count``)."""
        return (self.network, self.index, self.data).count(value)

    def _astuple(self):
        return (self.network, self.index, self.data)

    def __richcmp__(self, other, int op):
        cdef Match o
        if isinstance(other, Match):
            o = <Match>other
            if (op == 2 or op == 3) and self.rows is not None and o.rows is not None:
                # Both from lookups: compare the prefixes as integers, no networks built.
                same = (self.rows.prefix_reg[self.row] == o.rows.prefix_reg[o.row]
                        and self.rows.same_network(self.row, o.rows, o.row)
                        and (self.data is o.data or self.data == o.data))
                return same if op == 2 else not same
            other = o._astuple()
        elif not isinstance(other, tuple):
            return NotImplemented
        mine = self._astuple()
        if op == 0:
            return mine < other
        if op == 1:
            return mine <= other
        if op == 2:
            return mine == other
        if op == 3:
            return mine != other
        if op == 4:
            return mine > other
        return mine >= other

    def __hash__(self):
        return hash(self._astuple())

    def __repr__(self):
        return f"Match(network={self.network!r}, index={self.index!r}, data={self.data!r})"

    def __reduce__(self):
        return (Match, self._astuple())

    def _asdict(self):
        """The fields as a dict, as ``NamedTuple._asdict``."""
        return {"network": self.network, "index": self.index, "data": self.data}

    def _replace(self, **changes):
        """A new Match with some fields replaced, as ``NamedTuple._replace``."""
        fields = self._asdict()
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"got unexpected field names: {sorted(unknown)!r}")
        fields.update(changes)
        return Match(**fields)

    @classmethod
    def _make(cls, iterable):
        """A Match from an iterable of three fields, as ``NamedTuple._make``."""
        network, index, data = iterable
        return cls(network, index, data)


_Sequence.register(Match)
_Sequence.register(LazyList)     # (_lazylist.pxi)

# Users import Match from ipallow (or ipallow.allowlist): report that module, not this
# private one.  A compiled class's module is the part of its C name before the last dot.
(<PyTypeObject*>Match).tp_name = b"ipallow.allowlist.Match"
