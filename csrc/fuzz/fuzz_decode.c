/*
 * libFuzzer harness for the decoder (see csrc/fuzz/README.md). Any status is an acceptable answer;
 * crashes, leaks, undefined behaviour, out-of-bounds access and the invariants below are findings.
 *
 * Each input is decoded as given and, if that differs, with every CRC-32 recomputed (payload or
 * stripe table, each stripe's, the header's), so that mutated headers, stripe tables and payloads
 * get past the checksums and reach the header checks and the decoder. Every decode runs on one
 * thread and on three (format 3 stripes): status, failing stripe and pixels must agree.
 */
#include "linf_codec.h"
#include "crc32.h" /* internal: the core's CRC-32, to re-sign mutated streams */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Like CharLS's fuzzer, skip images too large to decode quickly (the codec itself allows 2^32):
 * under libFuzzer's comparison tracing a sample costs ~2.5 us, and the fuzzer soon learns to write
 * headers of the largest size the cap allows. Larger headers still go through linf_read_header and
 * the decoder's own max_samples check. Override with -DMAX_FUZZ_SAMPLES=... */
#ifndef MAX_FUZZ_SAMPLES
#define MAX_FUZZ_SAMPLES 4096u
#endif

static void fail(const char *why)
{
    fprintf(stderr, "fuzz_decode invariant violated: %s\n", why);
    abort();
}

static linf_status decode_with(const uint8_t *data, size_t size, void *pixels, size_t pixel_bytes, uint32_t threads,
                               int64_t *failed)
{
    linf_options o;
    memset(&o, 0, sizeof o);
    o.threads = threads;
    o.max_samples = MAX_FUZZ_SAMPLES;
    return linf_decode_ex(data, size, pixels, pixel_bytes, &o, failed);
}

static void decode_one(const uint8_t *data, size_t size)
{
    linf_header h;
    if (linf_read_header(data, size, &h) != LINF_OK) {
        uint8_t dummy[16];
        if (linf_decode(data, size, dummy, sizeof dummy, MAX_FUZZ_SAMPLES) == LINF_OK)
            fail("linf_decode accepted a stream whose header linf_read_header rejects");
        return;
    }
    if (h.stripe_count < 1 || h.header_bytes < LINF_HEADER_BYTES) fail("header fields out of range");
    const uint64_t samples = (uint64_t)h.desc.width * h.desc.height * h.desc.channels;
    if (samples > MAX_FUZZ_SAMPLES) {
        uint8_t dummy[16];
        if (linf_decode(data, size, dummy, sizeof dummy, MAX_FUZZ_SAMPLES) != LINF_ERR_TOO_LARGE)
            fail("linf_decode ignored max_samples");
        return;
    }
    const size_t pixel_bytes = linf_pixel_bytes(&h.desc);
    if (pixel_bytes == 0) fail("valid header with zero pixel bytes");
    uint8_t *pixels = malloc(pixel_bytes), *again = malloc(pixel_bytes);
    if (!pixels || !again) {
        free(pixels);
        free(again);
        return;
    }
    int64_t failed = -2, failed3 = -2;
    const linf_status st = decode_with(data, size, pixels, pixel_bytes, 1, &failed);
    const linf_status st3 = decode_with(data, size, again, pixel_bytes, 3, &failed3);
    if (st != st3 || failed != failed3) fail("the thread count changed the decoder's answer");
    if (st == LINF_OK && failed != -1) fail("a failed stripe reported for a stream that decoded");
    if (failed < -1 || failed >= (int64_t)h.stripe_count || (failed >= 0 && h.stripe_count == 1))
        fail("failed stripe index out of range");
    if (size != h.header_bytes + h.payload_bytes && st == LINF_OK) fail("a stream of the wrong size decoded");
    if (st == LINF_OK) {
        if (memcmp(pixels, again, pixel_bytes) != 0) fail("the thread count changed the decoded pixels");
        const uint32_t top = (1u << h.desc.bit_depth) - 1u;
        const uint32_t offset = h.desc.is_signed ? 1u << (h.desc.bit_depth - 1) : 0u;
        for (uint64_t i = 0; i < samples; i++) {
            uint32_t v;
            if (h.desc.bit_depth <= 8) {
                v = (uint8_t)(pixels[i] + offset);
            } else {
                uint16_t w;
                memcpy(&w, pixels + 2 * i, 2);
                v = (uint16_t)(w + offset);
            }
            if (v > top) fail("decoded sample outside the bit depth's range");
        }
    }
    free(again);
    free(pixels);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Recomputes every checksum the stream's (possibly mutated) fields describe, as far as they fit. */
static void resign(uint8_t *s, size_t size)
{
    const size_t avail = size - LINF_HEADER_BYTES;
    if ((s[7] & 2u) && size >= LINF_HEADER_BYTES + 8u) { /* striped: each stripe, then the table */
        const uint64_t count = get_le(s + LINF_HEADER_BYTES + 4, 4);
        if (count <= (avail - 8) / 16) {
            const size_t table = LINF_STRIPE_TABLE_BYTES(count);
            size_t at = LINF_HEADER_BYTES + table;
            for (uint64_t i = 0; i < count; i++) {
                uint8_t *e = s + LINF_HEADER_BYTES + 8 + 16 * (size_t)i;
                const uint64_t bytes = get_le(e, 8);
                if (bytes > size - at) break;
                put_u32le(e + 8, linf_crc32(s + at, (size_t)bytes));
                at += (size_t)bytes;
            }
            put_u32le(s + 28, linf_crc32(s + LINF_HEADER_BYTES, table));
        }
    } else {
        const uint64_t payload = get_le(s + 20, 8);
        put_u32le(s + 28, linf_crc32(s + LINF_HEADER_BYTES, payload < avail ? (size_t)payload : avail));
    }
    put_u32le(s + 32, linf_crc32(s, 32));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_one(data, size);
    if (size < LINF_HEADER_BYTES) return 0;
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    resign(copy, size);
    if (memcmp(copy, data, size) != 0) decode_one(copy, size);
    free(copy);
    return 0;
}
