/*
 * libFuzzer harness for the decoder (see csrc/fuzz/README.md). Any status is an acceptable answer;
 * crashes, leaks, undefined behaviour, out-of-bounds access and the invariants below are findings.
 *
 * Each input is decoded as given and, if that differs, with both CRC-32 fields recomputed, so that
 * mutated headers and payloads get past the checksums and reach the header checks and the decoder.
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

static void decode_one(const uint8_t *data, size_t size)
{
    linf_header h;
    if (linf_read_header(data, size, &h) != LINF_OK) {
        uint8_t dummy[16];
        if (linf_decode(data, size, dummy, sizeof dummy, MAX_FUZZ_SAMPLES) == LINF_OK)
            fail("linf_decode accepted a stream whose header linf_read_header rejects");
        return;
    }
    const uint64_t samples = (uint64_t)h.desc.width * h.desc.height * h.desc.channels;
    if (samples > MAX_FUZZ_SAMPLES) {
        uint8_t dummy[16];
        if (linf_decode(data, size, dummy, sizeof dummy, MAX_FUZZ_SAMPLES) != LINF_ERR_TOO_LARGE)
            fail("linf_decode ignored max_samples");
        return;
    }
    const size_t pixel_bytes = linf_pixel_bytes(&h.desc);
    if (pixel_bytes == 0) fail("valid header with zero pixel bytes");
    uint8_t *pixels = malloc(pixel_bytes);
    if (!pixels) return;
    if (linf_decode(data, size, pixels, pixel_bytes, MAX_FUZZ_SAMPLES) == LINF_OK) {
        const uint32_t top = (1u << h.desc.bit_depth) - 1u;
        for (uint64_t i = 0; i < samples; i++) {
            uint32_t v;
            if (h.desc.bit_depth <= 8) {
                v = pixels[i];
            } else {
                uint16_t w;
                memcpy(&w, pixels + 2 * i, 2);
                v = w;
            }
            if (v > top) fail("decoded sample exceeds 2^bit_depth - 1");
        }
    }
    free(pixels);
}

static void put_u32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_one(data, size);
    if (size < LINF_HEADER_BYTES) return 0;
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    uint64_t payload = 0;
    for (int i = 7; i >= 0; i--) payload = (payload << 8) | copy[20 + i];
    const size_t avail = size - LINF_HEADER_BYTES;
    put_u32le(copy + 28, linf_crc32(copy + LINF_HEADER_BYTES, payload < avail ? (size_t)payload : avail));
    put_u32le(copy + 32, linf_crc32(copy, 32));
    if (memcmp(copy, data, size) != 0) decode_one(copy, size);
    free(copy);
    return 0;
}
