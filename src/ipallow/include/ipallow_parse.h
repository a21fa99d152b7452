/* Text scanning the exact parsers (_parse.pxi) lean on: a hex digit table and a
   branch-free dotted-quad reader, SSE2 or scalar. */
#ifndef IPALLOW_PARSE_H
#define IPALLOW_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipallow_node.h"               /* ipallow_popcount64_swar */
/* SSE2 is part of x86-64 (and of MSVC's x64 target), so it needs no run-time check;
   the scalar scan stays selectable (IPALLOW_SCALAR=1) so that it is tested too. */
#if defined(__SSE2__) || (defined(_MSC_VER) && (defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2)))
#define IPALLOW_HAVE_SSE2 1
#include <emmintrin.h>
#endif
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

/* Hex digit values, -1 for anything else: one load instead of three range
   tests whose branches mispredict on random IPv6 text.  Filled once when the
   module is imported. */
static signed char ipallow_hex[256];

static inline void ipallow_hex_init(void) {
    int i;
    for (i = 0; i < 256; i++) ipallow_hex[i] = -1;
    for (i = 0; i < 10; i++) ipallow_hex['0' + i] = (signed char)i;
    for (i = 0; i < 6; i++) {
        ipallow_hex['a' + i] = (signed char)(10 + i);
        ipallow_hex['A' + i] = (signed char)(10 + i);
    }
}

/* Index of the lowest set bit of a nonzero word. */
static inline int ipallow_ctz32(uint32_t m) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(m);
#elif defined(_MSC_VER)
    unsigned long index;
    _BitScanForward(&index, m);
    return (int)index;
#else
    int n = 0;
    while (!(m & 1u)) {
        m >>= 1;
        n++;
    }
    return n;
#endif
}

/* 1: scan with SSE2 where the build has it; 0: the scalar scan.  Set once at import
   (ipallow_select_paths), read on every dotted quad: a branch that always goes one way. */
static int ipallow_scan_sse2 = 0;

#if defined(IPALLOW_HAVE_SSE2)
/* Bit k of *dots / *nondigit: byte k of x is '.' / not a decimal digit. */
static inline void ipallow_classify_sse2(__m128i x, uint32_t* dots, uint32_t* nondigit) {
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    *dots = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('.')));
    *nondigit = (uint32_t)_mm_movemask_epi8(
        _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(10)), _mm_set1_epi8(10)));
}

/* s[0:n] (7 <= n <= 15) zero-padded to 16 bytes, as two words loaded straight from s (x86
   is little-endian: byte k of a word is its bits 8k..8k+7).  The bytes used to be copied
   into a stack buffer and read back as one 16-byte vector, which stalled every parse: a
   load cannot be forwarded the bytes of several narrower stores still in flight. */
static inline void ipallow_words16(const char* s, ptrdiff_t n, uint64_t* lo, uint64_t* hi) {
    uint32_t head, tail4;
    uint64_t tail;
    if (n >= 8) {
        memcpy(lo, s, 8);
        memcpy(&tail, s + n - 8, 8);                    /* s[n-8:n]; s[8] is its byte 16-n */
        *hi = n > 8 ? tail >> ((16 - n) * 8) : 0;       /* a shift of 8..56 bits */
    } else {                                            /* n == 7: s[0:4] and s[3:7] */
        memcpy(&head, s, 4);
        memcpy(&tail4, s + n - 4, 4);
        *lo = (uint64_t)head | ((uint64_t)tail4 << ((n - 4) * 8));
        *hi = 0;
    }
}
#endif

/* The scalar ipallow_classify_sse2, for the 16 bytes of b. */
static inline void ipallow_classify16(const unsigned char* b, uint32_t* dots, uint32_t* nondigit) {
    uint32_t dot_bits = 0, nondigit_bits = 0;
    int k;
    for (k = 0; k < 16; k++) {
        dot_bits |= (uint32_t)(b[k] == '.') << k;
        nondigit_bits |= (uint32_t)((unsigned char)(b[k] - '0') > 9) << k;
    }
    *dots = dot_bits;
    *nondigit = nondigit_bits;
}

static const unsigned char ipallow_w100[16] = {0, 1, 10, 100};
static const unsigned char ipallow_w10[16] = {0, 0, 1, 10};
static const unsigned char ipallow_w1[16] = {0, 0, 0, 1};

/* A valid dotted quad in s[0:n], found without a data-dependent branch (octets
   of 1-3 digits at random make a digit-by-digit parser mispredict about once an
   octet).  Returns 4 and the address, or 0 for *anything* else, valid or not:
   the caller then runs the exact parser, which owns every error message.
   Reads s[0:n] only. */
static inline int ipallow_parse_ipv4_fast(const char* s, ptrdiff_t n, uint32_t* out) {
    unsigned char b[24];
    uint32_t dots, nondigit, valid, m, value = 0, ok = 1;
    int k, start = 0, end;
    if (n < 7 || n > 15) return 0;
#if defined(IPALLOW_HAVE_SSE2)
    if (ipallow_scan_sse2) {
        uint64_t lo, hi;
        ipallow_words16(s, n, &lo, &hi);
        ipallow_classify_sse2(_mm_set_epi64x((long long)hi, (long long)lo), &dots, &nondigit);
        memcpy(b, &lo, 8);                 /* the octets' digits are read from b below */
        memcpy(b + 8, &hi, 8);
        memset(b + 16, 0, 8);
    } else
#endif
    {
        memset(b, 0, sizeof b);
        memcpy(b, s, 4);                   /* two overlapping copies: exactly n bytes */
        memcpy(b + n - 4, s + n - 4, 4);
        if (n > 8) {
            memcpy(b, s, 8);
            memcpy(b + n - 8, s + n - 8, 8);
        }
        ipallow_classify16(b, &dots, &nondigit);
    }
    valid = (1u << n) - 1;
    m = dots & valid;
    m = m & (m - 1);
    m = m & (m - 1);                       /* two dots cleared: exactly one must remain */
    if ((nondigit & ~dots & valid) || m == 0 || (m & (m - 1))) return 0;
    m = (dots & valid) | (1u << n);        /* the end of every octet */
    for (k = 0; k < 4; k++) {
        unsigned len, a, v;
        end = ipallow_ctz32(m);
        m &= m - 1;
        len = (unsigned)(end - start);
        a = (unsigned)(b[start] - '0');
        v = a * ipallow_w100[len & 15]
            + (unsigned)(unsigned char)(b[start + 1] - '0') * ipallow_w10[len & 15]
            + (unsigned)(unsigned char)(b[start + 2] - '0') * ipallow_w1[len & 15];
        ok &= (len - 1u <= 2u) & (v <= 255u) & !(a == 0 && len > 1);
        value = (value << 8) | (v & 255u);
        start = end + 1;
    }
    if (!ok) return 0;
    *out = value;
    return 4;
}

/* Index of the lowest set bit of a nonzero word below 2**64 (two 32-bit halves: no
   64-bit bit scan is needed, which 32-bit MSVC lacks). */
static inline int ipallow_ctz64(uint64_t m) {
    return (uint32_t)m ? ipallow_ctz32((uint32_t)m) : 32 + ipallow_ctz32((uint32_t)(m >> 32));
}

#if defined(IPALLOW_HAVE_SSE2)
/* Bit k of *colons / *hexd: byte k of x is ':' / a hex digit; the digits' values are
   stored to nib[0:16] (0 for any other byte). */
static inline void ipallow_classify_hex_sse2(__m128i x, unsigned char* nib, uint32_t* colons, uint32_t* hexd) {
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    __m128i l = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
    __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);       /* d <= 9 */
    __m128i is_letter = _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(5)), l);      /* l <= 5 */
    __m128i value = _mm_or_si128(_mm_and_si128(is_digit, d),
                                 _mm_and_si128(is_letter, _mm_add_epi8(l, _mm_set1_epi8(10))));
    _mm_storeu_si128((__m128i*)nib, value);
    *colons = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':')));
    *hexd = (uint32_t)_mm_movemask_epi8(_mm_or_si128(is_digit, is_letter));
}
#endif

/* The groups of s between `from` and the terminators in `ends` (the colons after each
   group, and the bit just past the last), written to g[0..]: every group must hold 1 to 4
   digits.  nib[k + 4] is the value of hex digit s[k]; a group is read as the 4 bytes
   before its terminator, masked to its length, so no branch depends on the digits. */
static inline int ipallow_hex_groups(const unsigned char* nib, uint64_t ends, int from, uint32_t* g) {
    int count = 0, ok = 1;
    while (ends) {
        int end = ipallow_ctz64(ends);
        unsigned len = (unsigned)(end - from);
        uint32_t w = ((uint32_t)nib[end] << 24) | ((uint32_t)nib[end + 1] << 16)
                     | ((uint32_t)nib[end + 2] << 8) | (uint32_t)nib[end + 3];
        ends &= ends - 1;
        ok &= len - 1u <= 3u;
        w &= 0xFFFFFFFFu >> (8 * ((4u - len) & 3u));
        g[count++] = ((w >> 12) & 0xF000u) | ((w >> 8) & 0x0F00u) | ((w >> 4) & 0x00F0u) | (w & 0x000Fu);
        from = end + 1;
    }
    return ok ? count : -1;
}

/* A valid IPv6 address in s[0:n] written with hex groups and colons only (no embedded
   IPv4, no zone): 6 and its value in *hi, *lo; 0 for *anything* else, valid or not, and
   the caller runs the exact parser, which owns every error message.  One pass classifies
   every byte (SSE2, or a table), and the structure is checked on the bitmaps: no branch
   depends on how many digits a group has, where a digit-by-digit parser mispredicts at
   most group ends on random text.  Reads s[0:n] only. */
static inline int ipallow_parse_ipv6_fast(const char* s, ptrdiff_t n, uint64_t* hi, uint64_t* lo) {
    unsigned char nib[4 + 48];             /* nib[k + 4]: the value of hex digit s[k] */
    uint32_t g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint64_t colons = 0, hexd = 0, all, pairs;
    int k, gap, n_left = 0, n_right = 0;
    if (n < 2 || n > 39) return 0;
    memset(nib, 0, 4);
#if defined(IPALLOW_HAVE_SSE2)
    if (ipallow_scan_sse2) {
        uint32_t c, h;
        if (n >= 16) {                     /* blocks at 0, 16 and n - 16: never past s[n-1] */
            ipallow_classify_hex_sse2(_mm_loadu_si128((const __m128i*)s), nib + 4, &c, &h);
            colons = c;
            hexd = h;
            if (n > 32) {
                ipallow_classify_hex_sse2(_mm_loadu_si128((const __m128i*)(s + 16)), nib + 20, &c, &h);
                colons |= (uint64_t)c << 16;
                hexd |= (uint64_t)h << 16;
            }
            ipallow_classify_hex_sse2(_mm_loadu_si128((const __m128i*)(s + n - 16)), nib + 4 + n - 16, &c, &h);
            colons |= (uint64_t)c << (n - 16);
            hexd |= (uint64_t)h << (n - 16);
        } else {
            unsigned char b[16];
            memset(b, 0, sizeof b);
            memcpy(b, s, (size_t)n);
            ipallow_classify_hex_sse2(_mm_loadu_si128((const __m128i*)b), nib + 4, &c, &h);
            colons = c;
            hexd = h;
        }
    } else
#endif
    {
        for (k = 0; k < n; k++) {
            signed char v = ipallow_hex[(unsigned char)s[k]];
            colons |= (uint64_t)(s[k] == ':') << k;
            hexd |= (uint64_t)(v >= 0) << k;
            nib[k + 4] = (unsigned char)(v & 15);
        }
    }
    all = ((uint64_t)1 << n) - 1;
    colons &= all;
    hexd &= all;
    if ((colons | hexd) != all) return 0;            /* another character: '.', '%', ... */
    /* Any other colon out of place (one at either end, ":::", a second "::") leaves an
       empty group, which the group reader refuses.  The counts keep g[8] from overflowing. */
    pairs = colons & (colons >> 1);                  /* bit k: "::" at s[k] */
    if (!pairs) {                                    /* eight groups */
        if (ipallow_popcount64_swar(colons) > 7) return 0;
        if (ipallow_hex_groups(nib, colons | ((uint64_t)1 << n), 0, g) != 8) return 0;
    } else {
        gap = ipallow_ctz64(pairs);                  /* the first "::", at s[gap:gap+2] */
        if (gap > 0) {                               /* groups before it */
            uint64_t ends = (colons & (((uint64_t)1 << gap) - 1)) | ((uint64_t)1 << gap);
            if (ipallow_popcount64_swar(ends) > 7) return 0;
            n_left = ipallow_hex_groups(nib, ends, 0, g);
            if (n_left < 0) return 0;
        }
        if (gap + 2 < n) {                           /* groups after it, read into the last ones */
            uint64_t ends = (colons & ~(((uint64_t)1 << (gap + 2)) - 1)) | ((uint64_t)1 << n);
            n_right = ipallow_popcount64_swar(ends);
            if (n_left + n_right > 7 || ipallow_hex_groups(nib, ends, gap + 2, g + 8 - n_right) < 0) return 0;
        }
    }
    *hi = ((uint64_t)g[0] << 48) | ((uint64_t)g[1] << 32) | ((uint64_t)g[2] << 16) | g[3];
    *lo = ((uint64_t)g[4] << 48) | ((uint64_t)g[5] << 32) | ((uint64_t)g[6] << 16) | g[7];
    return 6;
}

#endif
