# CSV columns (included by _trie.pyx): a registry export without quotes split into its columns
# in one pass.  Splitting it in Python made a str for every cell (3.6M for 600k rows) and the
# registry kept only a few distinct ones of most columns; here a column whose cells repeat
# (status, category, dates, owner) comes back as a code per row and its distinct cells.

from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.string cimport memcmp

cdef extern from "Python.h":
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)

# Codes of a coded column fit an int32; the bulk reader declines anything bigger.
cdef Py_ssize_t CSV_MAX_ROWS = 0x7FFFFFFF
cdef Py_ssize_t CSV_MAX_WIDTH = 4096
# Probing past this many slots means crafted collisions (a good hash at half load stays
# far below it): the reader gives up and the row-by-row loader reads the file.
cdef Py_ssize_t CSV_MAX_PROBES = 256
# Mixed into every cell's hash, so which cells collide cannot be known from outside.
cdef uint64_t _csv_hash_seed = <uint64_t>int.from_bytes(os.urandom(8), "little")


cdef struct distinct_cell:
    const char* start           # NULL: a free slot
    Py_ssize_t length
    uint64_t hash
    int32_t code


cdef inline uint64_t cell_hash(const char* start, Py_ssize_t length) noexcept nogil:
    """FNV-1a from the seed, then a 64-bit finaliser (so the low bits index well)."""
    cdef uint64_t h = 0xCBF29CE484222325ULL ^ _csv_hash_seed
    cdef Py_ssize_t i
    for i in range(length):
        h = (h ^ <uint8_t>start[i]) * 0x100000001B3ULL
    h ^= h >> 33
    h *= 0xFF51AFD7ED558CCDULL
    h ^= h >> 33
    h *= 0xC4CEB93FE1A85EC5ULL
    h ^= h >> 33
    return h


cdef class _CellCodes:
    """The distinct cells of one column seen so far, in an open-addressing table of spans of
    the text (which outlives it), and their order of first appearance."""
    cdef distinct_cell* slots
    cdef Py_ssize_t capacity     # a power of two
    cdef Py_ssize_t used
    cdef list distinct           # the distinct cells as str, by code

    # Set up by setup(), not __cinit__: Cython's argument parsing for a __cinit__ without
    # arguments offsets a NULL pointer when called with none (UBSan stops there).
    cdef int setup(self) except -1:
        self.capacity = 64
        self.used = 0
        self.slots = <distinct_cell*>calloc(self.capacity, sizeof(distinct_cell))
        if self.slots == NULL:
            raise MemoryError()
        self.distinct = []
        return 0

    def __dealloc__(self):
        free(self.slots)

    cdef int grow(self) except -1:
        cdef Py_ssize_t old_capacity = self.capacity, i, j
        cdef distinct_cell* old = self.slots
        cdef distinct_cell* new
        if old_capacity > (<Py_ssize_t>1 << 40):
            raise MemoryError()
        new = <distinct_cell*>calloc(old_capacity * 2, sizeof(distinct_cell))
        if new == NULL:
            raise MemoryError()
        for i in range(old_capacity):
            if old[i].start != NULL:
                j = <Py_ssize_t>(old[i].hash & <uint64_t>(old_capacity * 2 - 1))
                while new[j].start != NULL:
                    j = (j + 1) & (old_capacity * 2 - 1)
                new[j] = old[i]
        self.slots = new
        self.capacity = old_capacity * 2
        free(old)
        return 0

    cdef int32_t code_of(self, const char* start, Py_ssize_t length) except -2:
        """The code of the cell ``start[:length]``, a new one for a cell not seen before; -1
        when probing went on too long."""
        cdef uint64_t h = cell_hash(start, length)
        cdef Py_ssize_t mask = self.capacity - 1
        cdef Py_ssize_t j = <Py_ssize_t>(h & <uint64_t>mask), probes = 0
        cdef distinct_cell* slot
        while True:
            slot = &self.slots[j]
            if slot.start == NULL:
                break
            if slot.hash == h and slot.length == length and memcmp(slot.start, start, length) == 0:
                return slot.code
            probes += 1
            if probes > CSV_MAX_PROBES:
                return -1
            j = (j + 1) & mask
        cell = PyUnicode_DecodeUTF8(start, length, NULL)
        self.distinct.append(cell)
        slot.start = start
        slot.length = length
        slot.hash = h
        slot.code = <int32_t>self.used
        self.used += 1
        if self.used * 2 > self.capacity:
            self.grow()
        return <int32_t>(self.used - 1)


def csv_columns(str text, Py_ssize_t width, coded):
    """The data columns of CSV ``text`` with no quote, CR or NUL (the caller has checked),
    the header line left out: ``coded`` holds a truth per column; a column is the list of its
    cells, or, where coded, ``(codes, distinct)``: an ``int32`` code per row and its distinct
    cells in the order they first come.  The text is read as ``text.split("\\n")`` then each
    line ``.split(",")`` would read it (one line end at the very end is no empty last line).

    None unless every line has ``width`` fields (an empty line has one) and there is at
    least one data line; None too, so that the csv reader reads the file instead, for
    ``width`` under 2 or over 4096, a column with over 2**31 rows, a text that is not UTF-8
    (lone surrogates) and cells crafted to collide.
    """
    cdef Py_ssize_t size = 0, data_start, end, rows, row, column
    cdef const char* buf
    cdef const char* p
    cdef const char* line_end
    cdef const char* field_end
    cdef int32_t code
    if width < 2 or width > CSV_MAX_WIDTH:
        return None
    wanted = [bool(c) for c in coded]
    if len(wanted) != width:
        raise ValueError(f"coded must hold one truth per column ({width}), not {len(wanted)}")
    try:
        buf = PyUnicode_AsUTF8AndSize(text, &size)
    except UnicodeEncodeError:
        return None
    first_end = <const char*>memchr(buf, b'\n', size)
    if first_end == NULL:
        return None                         # a header alone
    data_start = (first_end - buf) + 1
    end = size
    if end > data_start and buf[end - 1] == b'\n':
        end -= 1                            # the last line's end
    if end <= data_start:
        return None
    rows = 1
    p = buf + data_start
    while True:
        line_end = <const char*>memchr(p, b'\n', (buf + end) - p)
        if line_end == NULL:
            break
        rows += 1
        p = line_end + 1
    if rows > CSV_MAX_ROWS:
        return None

    # Per column, borrowed (``out`` and ``tables`` keep them alive): the list of cells, or
    # the codes' memory and the table of distinct cells.
    cdef void** cell_lists = <void**>calloc(width, sizeof(void*))
    cdef void** cell_tables = <void**>calloc(width, sizeof(void*))
    cdef int32_t** code_rows = <int32_t**>calloc(width, sizeof(int32_t*))
    try:
        if cell_lists == NULL or cell_tables == NULL or code_rows == NULL:
            raise MemoryError()
        out = []
        tables = []
        for column in range(width):
            if wanted[column]:
                codes = np.empty(rows, dtype=np.int32)
                table = _CellCodes()
                (<_CellCodes>table).setup()
                out.append(codes)
                tables.append(table)
                code_rows[column] = <int32_t*>pointer_of(codes)
                cell_tables[column] = <void*>table
            else:
                cells = PyList_New(rows)    # every item set below before it is returned
                out.append(cells)
                tables.append(None)
                cell_lists[column] = <void*>cells

        p = buf + data_start
        for row in range(rows):
            line_end = <const char*>memchr(p, b'\n', (buf + end) - p)
            if line_end == NULL:
                line_end = buf + end
            for column in range(width):
                if column < width - 1:
                    field_end = <const char*>memchr(p, b',', line_end - p)
                    if field_end == NULL:
                        return None         # a field too few
                else:
                    if memchr(p, b',', line_end - p) != NULL:
                        return None         # a field too many
                    field_end = line_end
                if code_rows[column] != NULL:
                    code = (<_CellCodes>cell_tables[column]).code_of(p, field_end - p)
                    if code < 0:
                        return None
                    code_rows[column][row] = code
                else:
                    cell = PyUnicode_DecodeUTF8(p, field_end - p, NULL)
                    Py_INCREF(cell)         # PyList_SET_ITEM takes this reference
                    PyList_SET_ITEM(<object>cell_lists[column], row, cell)
                p = field_end + 1
        return [(out[column], (<_CellCodes>tables[column]).distinct) if wanted[column] else out[column]
                for column in range(width)]
    finally:
        free(cell_lists)
        free(cell_tables)
        free(code_rows)
