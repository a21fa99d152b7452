/* A fast 64-bit checksum for snapshot sections: four independent lanes (so it
   runs near memory speed), each step a bijection of the lane state for a fixed
   word and of the word for a fixed state, so any change to a single 8-byte word
   -- any single bit flip -- always changes the result.  Not cryptographic: it
   guards against corruption, not forgery (crafted files are stopped by the
   structural checks instead).  docs/snapshot-format.md defines it exactly. */
#ifndef IPALLOW_CHECKSUM_H
#define IPALLOW_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t ipallow_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t ipallow_step(uint64_t h, uint64_t w) {
    return ipallow_rotl(h ^ w, 29) * 0x9E3779B97F4A7C15ULL;
}

static inline uint64_t ipallow_checksum(const unsigned char* p, size_t n) {
    uint64_t a = 0x243F6A8885A308D3ULL, b = 0x13198A2E03707344ULL,
             c = 0xA4093822299F31D0ULL, d = 0x082EFA98EC4E6C89ULL, w[4], h;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        memcpy(w, p + i, 32);
        a = ipallow_step(a, w[0]);
        b = ipallow_step(b, w[1]);
        c = ipallow_step(c, w[2]);
        d = ipallow_step(d, w[3]);
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(w, p + i, 8);
        a = ipallow_step(a, w[0]);
    }
    if (i < n) {
        w[0] = 0;
        memcpy(w, p + i, n - i);
        b = ipallow_step(b, w[0]);
    }
    /* Combine: each lane through its own bijection, then the length. */
    h = ipallow_step(a, 1) ^ ipallow_rotl(ipallow_step(b, 2), 16)
        ^ ipallow_rotl(ipallow_step(c, 3), 32) ^ ipallow_rotl(ipallow_step(d, 4), 48);
    return ipallow_step(h, (uint64_t)n);
}

#endif
