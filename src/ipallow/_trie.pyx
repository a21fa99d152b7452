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
snapshot can be written and mapped back as is (see "The index" in _build.pxi).

The module is a hub: the C lives in headers under ``include/`` (declared in
``_core.pxd``), the Cython in the ``.pxi`` files included below, one seam each.
"""

cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int32_t, int64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memchr, memcpy
from cpython.unicode cimport PyUnicode_Check
from cpython.bytes cimport PyBytes_Check, PyBytes_GET_SIZE, PyBytes_AS_STRING
from cpython.long cimport PyLong_Check
from cpython.number cimport PyNumber_Index
from cpython.bool cimport PyBool_Check
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_SIZE
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.number cimport PyNumber_AsSsize_t
from cpython.object cimport PyMethodDef, PyTypeObject

from ipallow._core cimport (
    NODE_FLAG, INNER_FLAG, OFFSET_MASK, HEAD_WORDS, INNER_HEAD_WORDS, HEAP_SLACK, CHUNK,
    table_t, load64, store64, popcount64, slot_of, cpu_ok,
    table_lookup, table_lookup4, walk, walk4, select_paths,
    HEX, hex_init, parse_ipv4_fast, parse_ipv6_fast, c_checksum,
)

import os

from ipallow.errors import AddressError, TableError

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    unsigned long long PyLong_AsUnsignedLongLongMask(object o) except? <unsigned long long>-1
    bint PyUnicode_IS_COMPACT_ASCII(object s)
    void* PyUnicode_DATA(object s)
    Py_ssize_t PyUnicode_GET_LENGTH(object s)
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1


class _NumpyOnFirstUse:
    """Stands in for numpy until the core first reads one of its names.

    The core's arrays are numpy's, but a command that touches none (``ipallow export``
    of a text list or a snapshot) should not pay numpy's import: 65 ms, against 25 ms for
    FireHOL iprange's whole 100k-CIDR export.  The first attribute read imports numpy and
    puts it in this one's place, so every later ``np.NAME`` is numpy's own.
    """

    def __getattr__(self, name):
        global np
        import numpy
        np = numpy
        return getattr(numpy, name)


np = _NumpyOnFirstUse()

# ipaddress's classes, bound when first needed (an address object looked up, a match's network
# or its text): its import is ~1.5 ms of a command's start-up that needs none of them.
cdef object IPv4Address = None, IPv6Address = None, IPv4Network = None, IPv6Network = None
cdef bint ipaddress_bound = False


cdef int bind_ipaddress() except -1:
    global IPv4Address, IPv6Address, IPv4Network, IPv6Network, ipaddress_bound
    import ipaddress
    IPv4Address, IPv6Address = ipaddress.IPv4Address, ipaddress.IPv6Address
    IPv4Network, IPv6Network = ipaddress.IPv4Network, ipaddress.IPv6Network
    ipaddress_bound = True
    return 0

if not cpu_ok():
    raise ImportError("this build of ipallow was compiled for CPUs with the POPCNT instruction "
                      "(ARCH or CFLAGS at build time), which this CPU lacks; rebuild it without")

# The lookup and text-scanning code for this process, chosen once from the CPU;
# IPALLOW_SCALAR=1 (any value but "" or "0") forces the portable scalar paths.
cdef str _cpu_path = select_paths(os.environ.get("IPALLOW_SCALAR", "") not in ("", "0")).decode("ascii")


def cpu_path():
    """The lookup path this process uses: "popcnt" (x86 POPCNT, chosen at import),
    "native" (a target whose every CPU counts bits in hardware, e.g. aarch64) or
    "scalar" (portable C; forced by IPALLOW_SCALAR=1, which also turns off the SSE2
    text scan)."""
    return _cpu_path

include "_parse.pxi"        # address and network text -> keys; the error reasons
include "_build.pxi"        # prefixes -> level-0 array and node heap
include "_validate.pxi"     # tables and prefix tables checked before use; checksum
include "_keys.pxi"         # any accepted address object -> key
include "_batch.pxi"        # batch loops over keys, GIL released
include "_text_batch.pxi"   # the one driver for batches of address text
include "_batch_input.pxi"  # what a batch is (numpy, list, text) and where its answers go
include "_index.pxi"        # the Index class
include "_lazylist.pxi"     # a sequence whose items are made when first read (registry records)
include "_match.pxi"        # the single-address answer: Index.lookup's Match
include "_export.pxi"        # export: a text list read in one pass, the minimal CIDR cover, its text
include "_csvcolumns.pxi"   # registry CSV: columns in one pass, repeated cells coded
include "_lines.pxi"         # filter: the lines of a block as rows, and the selected lines copied out
