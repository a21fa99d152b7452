# LazyList (included by _trie.pyx): a read-only sequence whose items are made when first
# read.  A registry loaded in bulk keeps its columns and makes a Registration (and its
# ipaddress network) only when one is read: most of a 600k-row load was making objects
# nobody had asked for yet.  lookup() reads the items through get(), as cheaply as a list's.


@cython.final
cdef class LazyList:
    """A read-only sequence of ``length`` items, item ``i`` made by ``make(i)`` when first
    read and kept: every later read returns that same object, at the cost of a list's.

    When two threads make the same item at once, the first one kept is the one every
    reader gets.  ``make`` should not return None (an item that is None is made again at
    every read).  Pickles, and compares equal, as the list of its items.
    """
    cdef list items              # the items made so far; None where not yet made
    cdef object make

    def __cinit__(self, Py_ssize_t length, make):
        if length < 0:
            raise ValueError(f"length must be >= 0, not {length}")
        if not callable(make):
            raise TypeError(f"make must be callable, not {type(make).__name__}")
        self.items = [None] * length
        self.make = make

    cdef inline object get(self, Py_ssize_t i):
        """Item ``i``, 0 <= i < len (the caller has checked)."""
        item = <object>PyList_GET_ITEM(self.items, i)
        if item is None:
            made = self.make(i)
            # make() ran Python code: another thread (or make itself) may have kept one
            # since, and the list is never resized, so i is still in range.
            item = <object>PyList_GET_ITEM(self.items, i)
            if item is None:
                self.items[i] = made
                item = made
        return item

    def __len__(self):
        return PyList_GET_SIZE(self.items)

    def __getitem__(self, index):
        cdef Py_ssize_t i, n = PyList_GET_SIZE(self.items)
        if isinstance(index, slice):
            return [self.get(i) for i in range(*index.indices(n))]
        i = PyNumber_AsSsize_t(index, IndexError)      # as a list: TypeError, IndexError
        if i < 0:
            i += n
        if i < 0 or i >= n:
            raise IndexError("LazyList index out of range")
        return self.get(i)

    def __iter__(self):
        cdef Py_ssize_t i = 0
        while i < PyList_GET_SIZE(self.items):
            yield self.get(i)
            i += 1

    def __eq__(self, other):
        if isinstance(other, (LazyList, list)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None

    def __reduce__(self):
        return (list, (list(self),))

    def __repr__(self):
        made = PyList_GET_SIZE(self.items) - self.items.count(None)
        return f"<LazyList: {PyList_GET_SIZE(self.items):,} items, {made:,} made>"
