/*
 * libFuzzer harness for the level-map coder, csrc/src/levelmap.c (see csrc/fuzz/README.md). The input is read as
 *   byte 0: levels (1 + b % 8)   byte 1: width (1 + b, so 1..256)
 *   byte 2: height (1 + b % h_max, h_max = min(256, MAX_LEVELMAP_SYMBOLS / width), at least 1)
 *   byte 3: region size r of the round-trip map (1 + b % 16)
 *   the rest: the body.
 * Each input is used twice:
 *   1. the body, as given, is decoded as a level map of that shape and levels. The result must be OK,
 *      LINF_ERR_TRUNCATED or LINF_ERR_CORRUPT_PAYLOAD, an OK map must hold only symbols below levels,
 *      and the same bytes decoded with 8 levels must agree (the model does not depend on levels:
 *      same status and map unless the first decode refused a symbol, and never CORRUPT_PAYLOAD).
 *   2. a map built from the body (one symbol, body byte % levels, per r x r region, cycling through the
 *      body) must encode within linf_levelmap_max_bytes, into exactly its size but not one byte less,
 *      and decode to the same map (also with 8 levels; with levels = its top symbol it must be refused);
 *      the same map with one symbol set to levels must be refused by the encoder.
 * Every buffer is malloc'ed at its exact size, so AddressSanitizer flags any access past it.
 * Anything else aborts.
 */
#include "linf_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MAX_LEVELMAP_SYMBOLS
#define MAX_LEVELMAP_SYMBOLS 16384u
#endif

static uint32_t g_w, g_h, g_levels;

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_levelmap invariant violated: %s (%ux%u, levels %u)\n", why, (unsigned)g_w,
            (unsigned)g_h, (unsigned)g_levels);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) fail("out of memory");
    return p;
}

static uint32_t top_symbol(const uint8_t *map, size_t count)
{
    uint32_t top = 0;
    for (size_t i = 0; i < count; i++)
        if (map[i] > top) top = map[i];
    return top;
}

/* Part 1: arbitrary bytes as a level-map stream. */
static void decode_any(const uint8_t *body, size_t body_size, uint32_t w, uint32_t h, uint32_t levels)
{
    const size_t count = (size_t)w * h;
    uint8_t *src = xmalloc(body_size), *map = xmalloc(count), *map8 = xmalloc(count);
    if (body_size) memcpy(src, body, body_size);
    const linf_status st = linf_decode_levelmap(src, body_size, w, h, levels, map);
    if (st != LINF_OK && st != LINF_ERR_TRUNCATED && st != LINF_ERR_CORRUPT_PAYLOAD)
        fail("decode returned an unexpected status");
    if (st == LINF_OK && top_symbol(map, count) >= levels) fail("decoded a symbol >= levels");
    const linf_status st8 = linf_decode_levelmap(src, body_size, w, h, LINF_LEVELMAP_MAX_LEVELS, map8);
    if (st8 != LINF_OK && st8 != LINF_ERR_TRUNCATED) fail("decode with 8 levels returned an unexpected status");
    if (st != LINF_ERR_CORRUPT_PAYLOAD) {
        if (st8 != st) fail("decode with 8 levels gave another status");
        if (st == LINF_OK && memcmp(map, map8, count) != 0) fail("decode with 8 levels gave another map");
    } else if (st8 == LINF_OK && top_symbol(map8, count) < levels) {
        fail("a symbol >= levels was refused, but with 8 levels there is none");
    }
    free(map8);
    free(map);
    free(src);
}

/* Part 2: a map built from the input round-trips. */
static void roundtrip(const uint8_t *body, size_t body_size, uint32_t w, uint32_t h, uint32_t levels, uint32_t r)
{
    const size_t count = (size_t)w * h;
    const uint32_t regions_x = (w + r - 1) / r;
    uint8_t *map = xmalloc(count), *out = xmalloc(count);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            const size_t region = (size_t)(y / r) * regions_x + x / r;
            map[(size_t)y * w + x] = body_size ? (uint8_t)(body[region % body_size] % levels) : 0;
        }
    const size_t capacity = linf_levelmap_max_bytes(w, h);
    uint8_t *dst = xmalloc(capacity);
    size_t written = 0;
    if (linf_encode_levelmap(map, w, h, levels, dst, capacity, &written) != LINF_OK)
        fail("encode rejected a valid map");
    if (written == 0 || written > capacity) fail("encoder wrote 0 bytes or more than its capacity");

    uint8_t *exact = xmalloc(written);
    size_t again = 0;
    if (linf_encode_levelmap(map, w, h, levels, exact, written, &again) != LINF_OK || again != written ||
        memcmp(exact, dst, written) != 0)
        fail("encode into a buffer of exactly the size failed or differed");
    uint8_t *short_buf = xmalloc(written - 1);
    if (linf_encode_levelmap(map, w, h, levels, short_buf, written - 1, &again) != LINF_ERR_BUFFER_TOO_SMALL)
        fail("a buffer one byte short was not refused");
    free(short_buf);

    if (linf_decode_levelmap(exact, written, w, h, levels, out) != LINF_OK) fail("decode of a fresh stream failed");
    if (memcmp(out, map, count) != 0) fail("round trip changed the map");
    memset(out, 0xFF, count);
    if (linf_decode_levelmap(exact, written, w, h, LINF_LEVELMAP_MAX_LEVELS, out) != LINF_OK ||
        memcmp(out, map, count) != 0)
        fail("decode with 8 levels differs");
    const uint32_t top = top_symbol(map, count);
    if (top > 0 && linf_decode_levelmap(exact, written, w, h, top, out) != LINF_ERR_CORRUPT_PAYLOAD)
        fail("decode with levels = the top symbol was not refused");

    /* One symbol out of range, at a place the input picks. */
    const size_t at = body_size ? (size_t)body[0] * 257u % count : count - 1;
    map[at] = (uint8_t)levels;
    if (linf_encode_levelmap(map, w, h, levels, dst, capacity, &again) != LINF_ERR_SAMPLE_OUT_OF_RANGE)
        fail("a symbol >= levels was not refused by the encoder");
    free(exact);
    free(dst);
    free(out);
    free(map);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    const uint32_t levels = 1u + data[0] % LINF_LEVELMAP_MAX_LEVELS;
    const uint32_t w = 1u + data[1];
    uint32_t h_max = MAX_LEVELMAP_SYMBOLS / w;
    h_max = h_max < 1u ? 1u : h_max > 256u ? 256u : h_max;
    const uint32_t h = 1u + data[2] % h_max;
    const uint32_t r = 1u + data[3] % 16u;
    g_w = w;
    g_h = h;
    g_levels = levels;
    decode_any(data + 4, size - 4, w, h, levels);
    roundtrip(data + 4, size - 4, w, h, levels, r);
    return 0;
}
