# The C half of the core, declared for the .pxi files behind _trie.pyx.  Everything
# here is a header in include/ (found through setup.py's include_dirs); nothing is
# compiled on its own, so cimporting this file adds no module at run time.

from libc.stdint cimport uint8_t, uint32_t, uint64_t


cdef extern from "ipallow_node.h" nogil:
    enum:
        NODE_FLAG "IPALLOW_NODE_FLAG"
        INNER_FLAG "IPALLOW_INNER_FLAG"
        OFFSET_MASK "IPALLOW_OFFSET_MASK"
        HEAD_WORDS "IPALLOW_HEAD_WORDS"
        INNER_HEAD_WORDS "IPALLOW_INNER_HEAD_WORDS"
        HEAP_SLACK "IPALLOW_HEAP_SLACK"
        CHUNK "IPALLOW_CHUNK"

    ctypedef struct table_t "ipallow_table":
        const uint32_t* dir
        const uint32_t* heap
        int dir_bits
        uint32_t n_words

    uint64_t load64 "ipallow_load64"(const uint32_t* p) noexcept
    void store64 "ipallow_store64"(uint32_t* p, uint64_t x) noexcept
    int popcount64 "IPALLOW_POPCOUNT64"(uint64_t x) noexcept
    unsigned slot_of "ipallow_slot_of"(uint64_t hi, uint64_t lo, int offset) noexcept
    int cpu_ok "ipallow_cpu_ok"() noexcept


cdef extern from "ipallow_lookup.h" nogil:
    uint32_t table_lookup "ipallow_table_lookup"(const table_t* t, uint64_t hi, uint64_t lo) noexcept
    uint32_t table_lookup4 "ipallow_table_lookup4"(const table_t* t, uint32_t addr) noexcept
    void walk "ipallow_walk"(const table_t* t, const uint64_t* hi, const uint64_t* lo,
                             uint32_t* out, Py_ssize_t count) noexcept
    void walk4 "ipallow_walk4"(const table_t* t, const uint32_t* keys, uint32_t* out,
                               Py_ssize_t count) noexcept
    const char* select_paths "ipallow_select_paths"(int force_scalar) noexcept


cdef extern from "ipallow_parse.h" nogil:
    const signed char* HEX "ipallow_hex"
    void hex_init "ipallow_hex_init"() noexcept
    int parse_ipv4_fast "ipallow_parse_ipv4_fast"(const char* s, Py_ssize_t n, uint32_t* out) noexcept
    int parse_ipv6_fast "ipallow_parse_ipv6_fast"(const char* s, Py_ssize_t n, uint64_t* hi, uint64_t* lo) noexcept


cdef extern from "ipallow_checksum.h" nogil:
    uint64_t c_checksum "ipallow_checksum"(const unsigned char* p, size_t n) noexcept
