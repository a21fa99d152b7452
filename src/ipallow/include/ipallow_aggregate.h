/* Aggregation of a prefix list into the minimal CIDR cover, and CIDR text, for `ipallow export`.
 *
 * The prefixes become address spans [first, last], sorted by first address and merged where
 * they overlap or touch; every merged span is then cut into the largest aligned blocks, left
 * to right.  The blocks of a span are maximal (each is as large as its start's alignment and
 * the span's remaining length allow), so the list is the unique minimal CIDR cover of the
 * same addresses: what ipaddress.collapse_addresses returns.
 *
 * IPv4 spans sit in one uint64_t (first << 32 | last) and are sorted by a radix sort (8-bit
 * digits) on the first address; IPv6 spans are four words and go through qsort.  No 128-bit integer
 * type (MSVC has none): the 128-bit arithmetic is written on (hi, lo) pairs.
 *
 * Every function takes its sizes from the caller and writes within them; the caller (the
 * Cython in _export.pxi) sizes the buffers with ia_*_count / IA_TEXT_MAX first.
 */
#ifndef IPALLOW_AGGREGATE_H
#define IPALLOW_AGGREGATE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- IPv4 ------------------------------------------------------------------------------- */

/* The span of an IPv4 prefix (host bits of `value` ignored), packed first << 32 | last. */
static inline uint64_t ia_span4(uint64_t value, int plen)
{
    uint32_t host = plen >= 32 ? 0u : (plen <= 0 ? 0xFFFFFFFFu : (0xFFFFFFFFu >> plen));
    uint32_t first = (uint32_t)value & ~host;
    return ((uint64_t)first << 32) | (uint64_t)(first | host);
}

/* Sort n packed spans by their first address (the high 32 bits); tmp holds n values.
 * Four stable passes of 8 bits each, least significant first; the low half (last) needs no
 * order.  The counts of all four digits come from one read of the spans, and a pass whose
 * digit is the same in every span is skipped (it would move nothing).  256 counters a digit
 * stay in L1; two passes of 16 bits had 65536, and each scattered write missed the cache. */
static void ia_sort4(uint64_t *spans, uint64_t *tmp, size_t n)
{
    size_t count[4][256];
    uint64_t *src = spans, *dst = tmp, *swap;
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) {
        uint32_t first = (uint32_t)(spans[i] >> 32);
        count[0][first & 0xFF]++;
        count[1][(first >> 8) & 0xFF]++;
        count[2][(first >> 16) & 0xFF]++;
        count[3][first >> 24]++;
    }
    for (int digit = 0; digit < 4; digit++) {
        int shift = 32 + 8 * digit;
        size_t *c = count[digit], total = 0;
        if (n == 0 || c[(src[0] >> shift) & 0xFF] == n) continue;     /* one value: in order */
        for (int d = 0; d < 256; d++) { size_t k = c[d]; c[d] = total; total += k; }
        for (size_t i = 0; i < n; i++) dst[c[(src[i] >> shift) & 0xFF]++] = src[i];
        swap = src; src = dst; dst = swap;
    }
    if (src != spans) memcpy(spans, src, n * sizeof(uint64_t));
}

/* Merge sorted spans in place (overlapping or touching ones become one); returns how many. */
static size_t ia_merge4(uint64_t *spans, size_t n)
{
    if (n == 0) return 0;
    size_t out = 0;
    uint64_t first = spans[0] >> 32, last = spans[0] & 0xFFFFFFFFu;
    for (size_t i = 1; i < n; i++) {
        uint64_t f = spans[i] >> 32, l = spans[i] & 0xFFFFFFFFu;
        if (f <= last + 1) {            /* 64-bit sum: last + 1 never wraps */
            if (l > last) last = l;
        } else {
            spans[out++] = (first << 32) | last;
            first = f;
            last = l;
        }
    }
    spans[out++] = (first << 32) | last;
    return out;
}

/* Trailing zero bits of x != 0, and the bit length of x (0 for 0): one instruction each with
 * GCC and Clang, a loop elsewhere (MSVC) that gives the same. */
static inline int ia_ctz64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int n = 0;
    while ((x & 1u) == 0) { x >>= 1; n++; }
    return n;
#endif
}

static inline int ia_bit_length64(uint64_t x)
{
#if defined(__GNUC__) || defined(__clang__)
    return x ? 64 - __builtin_clzll(x) : 0;
#else
    int n = 0;
    while (x) { x >>= 1; n++; }
    return n;
#endif
}

/* The size exponent of the largest aligned block starting at `first` inside [first, last]
 * (first <= last < 2**32): the smaller of first's alignment and floor(log2(the span's size)). */
static inline int ia_block4(uint64_t first, uint64_t last)
{
    int align = first ? ia_ctz64(first) : 32;
    int fit = ia_bit_length64(last - first + 1) - 1;      /* size 1 .. 2**32: no wrap in 64 bits */
    return align < fit ? align : fit;
}

/* How many CIDRs the merged spans cut into. */
static size_t ia_count4(const uint64_t *spans, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t first = spans[i] >> 32, last = spans[i] & 0xFFFFFFFFu;
        while (first <= last) {
            first += 1ull << ia_block4(first, last);
            total++;
        }
    }
    return total;
}

/* The CIDRs of the merged spans: at most `cap` (address, prefix length) rows; returns how many. */
static size_t ia_cut4(const uint64_t *spans, size_t n, uint64_t *addr, uint8_t *plen, size_t cap)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t first = spans[i] >> 32, last = spans[i] & 0xFFFFFFFFu;
        while (first <= last && out < cap) {
            int k = ia_block4(first, last);
            addr[out] = first;
            plen[out] = (uint8_t)(32 - k);
            out++;
            first += 1ull << k;
        }
    }
    return out;
}

/* ---- IPv6 ------------------------------------------------------------------------------- */

typedef struct { uint64_t fhi, flo, lhi, llo; } ia_span6;

/* The span of an IPv6 prefix (host bits ignored). */
static inline ia_span6 ia_make6(uint64_t hi, uint64_t lo, int plen)
{
    uint64_t hhost, lhost;
    if (plen <= 0) { hhost = ~0ull; lhost = ~0ull; }
    else if (plen < 64) { hhost = ~0ull >> plen; lhost = ~0ull; }
    else if (plen == 64) { hhost = 0; lhost = ~0ull; }
    else if (plen < 128) { hhost = 0; lhost = ~0ull >> (plen - 64); }
    else { hhost = 0; lhost = 0; }
    ia_span6 s;
    s.fhi = hi & ~hhost;
    s.flo = lo & ~lhost;
    s.lhi = s.fhi | hhost;
    s.llo = s.flo | lhost;
    return s;
}

static int ia_cmp6(const void *a, const void *b)
{
    const ia_span6 *x = (const ia_span6 *)a, *y = (const ia_span6 *)b;
    if (x->fhi != y->fhi) return x->fhi < y->fhi ? -1 : 1;
    if (x->flo != y->flo) return x->flo < y->flo ? -1 : 1;
    return 0;
}

static inline int ia_le6(uint64_t ahi, uint64_t alo, uint64_t bhi, uint64_t blo)
{
    return ahi < bhi || (ahi == bhi && alo <= blo);
}

/* Merge spans sorted by first address in place; returns how many. */
static size_t ia_merge6(ia_span6 *s, size_t n)
{
    if (n == 0) return 0;
    size_t out = 0;
    ia_span6 cur = s[0];
    for (size_t i = 1; i < n; i++) {
        /* touching: first <= last + 1, where last + 1 does not exist for the all-ones last */
        int all_ones = cur.lhi == ~0ull && cur.llo == ~0ull;
        uint64_t nlo = cur.llo + 1, nhi = cur.lhi + (nlo == 0);
        if (all_ones || ia_le6(s[i].fhi, s[i].flo, nhi, nlo)) {
            if (!ia_le6(s[i].lhi, s[i].llo, cur.lhi, cur.llo)) { cur.lhi = s[i].lhi; cur.llo = s[i].llo; }
        } else {
            s[out++] = cur;
            cur = s[i];
        }
    }
    s[out++] = cur;
    return out;
}

/* As ia_block4 for [(hi, lo), (lhi, llo)], first <= last: the start's trailing zeros (128 for
 * ::) against floor(log2(last - first + 1)), where the whole space's size 2**128 wraps to 0. */
static inline int ia_block6(uint64_t hi, uint64_t lo, uint64_t lhi, uint64_t llo)
{
    int align = lo ? ia_ctz64(lo) : (hi ? 64 + ia_ctz64(hi) : 128);
    uint64_t span_lo = llo - lo, span_hi = lhi - hi - (llo < lo);     /* last - first */
    uint64_t size_lo = span_lo + 1, size_hi = span_hi + (size_lo == 0);
    int fit = size_hi ? 63 + ia_bit_length64(size_hi)
                      : (size_lo ? ia_bit_length64(size_lo) - 1 : 128);
    return align < fit ? align : fit;
}

/* Walk the blocks of one span; `emit` rows go to (ohi, olo, oplen) when they are not NULL. */
static size_t ia_cut6(const ia_span6 *s, size_t n, uint64_t *ohi, uint64_t *olo, uint8_t *oplen,
                      size_t cap)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t hi = s[i].fhi, lo = s[i].flo;
        for (;;) {
            int k = ia_block6(hi, lo, s[i].lhi, s[i].llo);
            if (ohi != NULL) {
                if (out >= cap) return out;
                ohi[out] = hi; olo[out] = lo; oplen[out] = (uint8_t)(128 - k);
            }
            out++;
            /* the block's last address; stop when it is the span's last */
            uint64_t ehi, elo;
            if (k >= 128) break;
            if (k >= 64) { ehi = hi | (k == 64 ? 0 : (~0ull >> (128 - k))); elo = ~0ull; }
            else { ehi = hi; elo = lo | ((1ull << k) - 1); }
            if (ehi == s[i].lhi && elo == s[i].llo) break;
            lo = elo + 1;
            hi = ehi + (lo == 0);
        }
    }
    return out;
}

/* ---- text ------------------------------------------------------------------------------- */

/* The longest CIDR text: 39 characters of IPv6 address, '/', 3 digits. */
#define IA_TEXT_MAX 43

static inline char *ia_decimal(char *p, unsigned v)
{
    if (v >= 100) { *p++ = (char)('0' + v / 100); v %= 100; *p++ = (char)('0' + v / 10); v %= 10; }
    else if (v >= 10) { *p++ = (char)('0' + v / 10); v %= 10; }
    *p++ = (char)('0' + v);
    return p;
}

/* "a.b.c.d/p" at p (at most 18 characters); returns the end. */
static inline char *ia_text4(char *p, uint32_t a, unsigned plen)
{
    p = ia_decimal(p, a >> 24); *p++ = '.';
    p = ia_decimal(p, (a >> 16) & 255); *p++ = '.';
    p = ia_decimal(p, (a >> 8) & 255); *p++ = '.';
    p = ia_decimal(p, a & 255); *p++ = '/';
    return ia_decimal(p, plen);
}

/* RFC 5952 text of an IPv6 prefix (at most 43 characters): lowercase, no leading zeros, the
 * first longest run of two or more zero groups as "::", never a dotted quad. */
static inline char *ia_text6(char *p, uint64_t hi, uint64_t lo, unsigned plen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned g[8];
    for (int i = 0; i < 4; i++) {
        g[i] = (unsigned)((hi >> (48 - 16 * i)) & 0xFFFF);
        g[4 + i] = (unsigned)((lo >> (48 - 16 * i)) & 0xFFFF);
    }
    int best = -1, best_len = 1;
    for (int i = 0; i < 8;) {
        if (g[i] != 0) { i++; continue; }
        int j = i;
        while (j < 8 && g[j] == 0) j++;
        if (j - i > best_len) { best = i; best_len = j - i; }
        i = j;
    }
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *p++ = ':'; *p++ = ':';
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len) *p++ = ':';
        unsigned v = g[i];
        int started = 0;
        for (int shift = 12; shift >= 0; shift -= 4) {
            unsigned d = (v >> shift) & 15;
            if (d || started || shift == 0) { *p++ = hex[d]; started = 1; }
        }
    }
    *p++ = '/';
    return ia_decimal(p, plen);
}

#endif
