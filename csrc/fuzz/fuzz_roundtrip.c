/*
 * libFuzzer harness for the encoder + decoder (see csrc/fuzz/README.md). The input is read as
 *   byte 0: bit depth (1 + b % 16)   byte 1: channels (1 + b % 5)   byte 2: width (1 + b % 64)
 *   byte 3: height (1 + b % h_max, h_max = min(64, MAX_SAMPLES / (width * channels)), at least 1)
 *   bytes 4-5: tau (mod max tau + 1)
 *   byte 6: bit 0 signed samples (format 3); bits 1-7: stripe height (0 = one stripe, else 1 + v % height)
 *   byte 7: threads (1 + b % 4); bit 7: write format 4 (options.format_version = 4), else the newest
 *   the rest: samples (1 byte each up to 8 bits, else 2 little-endian), cycled and masked to the depth
 *   (signed: the same bits read as two's complement of the depth).
 * Images stay at or below MAX_SAMPLES samples (except 1-row images up to 64 x 5), keeping the fuzzer fast.
 * A valid image must encode (linf_encode_ex) within linf_max_encoded_size_ex and decode; every decoded
 * sample must be within tau of the original (identical at tau = 0); the encoder's reconstruction must
 * equal the decoder's output; the stream must not depend on the thread count (one thread gives the
 * same bytes); and one byte more or less must be refused. Anything else aborts.
 */
#include "linf_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MAX_SAMPLES
#define MAX_SAMPLES 1024u
#endif

static void fail(const char *why, const linf_image_desc *d)
{
    fprintf(stderr, "fuzz_roundtrip invariant violated: %s (%ux%ux%u depth %u tau %u)\n", why,
            (unsigned)d->width, (unsigned)d->height, (unsigned)d->channels, (unsigned)d->bit_depth,
            (unsigned)d->tau);
    abort();
}

/* The sample as the caller sees it: unsigned, or two's complement of the item size when signed. */
static int32_t get_sample(const linf_image_desc *d, const void *pixels, size_t i)
{
    if (d->bit_depth <= 8) {
        const uint8_t v = ((const uint8_t *)pixels)[i];
        return d->is_signed ? (int32_t)(v >= 128u ? (int32_t)v - 256 : (int32_t)v) : (int32_t)v;
    }
    uint16_t v;
    memcpy(&v, (const uint8_t *)pixels + 2 * i, 2);
    return d->is_signed ? (int32_t)(v >= 32768u ? (int32_t)v - 65536 : (int32_t)v) : (int32_t)v;
}

static linf_options make_options(uint32_t stripe_height, uint32_t threads, uint32_t format_version)
{
    linf_options o;
    memset(&o, 0, sizeof o);
    o.stripe_height = stripe_height;
    o.threads = threads;
    o.format_version = format_version;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    linf_image_desc d;
    memset(&d, 0, sizeof d);
    d.bit_depth = 1u + data[0] % 16u;
    d.channels = 1u + data[1] % 5u;
    d.width = 1u + data[2] % 64u;
    uint32_t h_max = MAX_SAMPLES / (d.width * d.channels);
    h_max = h_max < 1u ? 1u : h_max > 64u ? 64u : h_max;
    d.height = 1u + data[3] % h_max;
    const uint32_t top = (1u << d.bit_depth) - 1u;
    d.tau = ((uint32_t)data[4] | (uint32_t)data[5] << 8) % (top / 2u + 1u);
    d.is_signed = data[6] & 1u;
    const uint32_t stripe_code = data[6] >> 1;
    const uint32_t stripe_height = stripe_code == 0 ? 0 : 1u + stripe_code % d.height;
    const uint32_t threads = 1u + data[7] % 4u;
    const uint32_t format_version = (data[7] & 0x80u) ? 4u : 0u;

    const uint8_t *body = data + 8;
    const size_t body_size = size - 8;
    const size_t samples = (size_t)d.width * d.height * d.channels;
    const size_t pixel_bytes = linf_pixel_bytes(&d);
    const size_t capacity = linf_max_encoded_size_ex(&d, stripe_height);
    uint8_t *pixels = malloc(pixel_bytes), *out = malloc(pixel_bytes), *stream = malloc(capacity);
    if (!pixels || !out || !stream) fail("out of memory", &d);
    for (size_t i = 0; i < samples; i++) {
        uint32_t v = 0;
        if (body_size) {
            v = body[(2 * i) % body_size];
            if (d.bit_depth > 8) v |= (uint32_t)body[(2 * i + 1) % body_size] << 8;
        }
        v &= top;
        if (d.is_signed) v -= (top + 1u) / 2u; /* wraps: the two's complement pattern of v - offset */
        if (d.bit_depth <= 8) {
            pixels[i] = (uint8_t)v;
        } else {
            const uint16_t w = (uint16_t)v;
            memcpy(pixels + 2 * i, &w, 2);
        }
    }

    size_t written = 0;
    uint8_t *recon = malloc(pixel_bytes);
    if (!recon) fail("out of memory", &d);
    const linf_options options = make_options(stripe_height, threads, format_version);
    if (linf_encode_ex(&d, pixels, pixel_bytes, stream, capacity, &written, recon, pixel_bytes, &options) != LINF_OK)
        fail("encode rejected a valid image", &d);
    if (written > capacity) fail("encoder reports more bytes than its capacity", &d);
    uint8_t *exact = malloc(written + 1); /* exact size: ASan flags any read past the stream */
    if (!exact) fail("out of memory", &d);
    memcpy(exact, stream, written);
    if (exact[4] != (d.channels > 1 ? (format_version ? format_version : LINF_FORMAT_VERSION) : 3u))
        fail("the stream's format version is not the one asked for", &d);
    if (threads > 1) { /* the bytes depend on the stripe height only */
        const linf_options one = make_options(stripe_height, 1, format_version);
        size_t again = 0;
        if (linf_encode_ex(&d, pixels, pixel_bytes, stream, capacity, &again, NULL, 0, &one) != LINF_OK ||
            again != written || memcmp(stream, exact, written) != 0)
            fail("the thread count changed the stream", &d);
    }
    const linf_options dec = make_options(0, threads, 0);
    int64_t failed = 0;
    if (linf_decode_ex(exact, written, out, pixel_bytes, &dec, &failed) != LINF_OK || failed != -1)
        fail("decode of a fresh stream failed", &d);
    if (linf_decode(exact, written - 1, out, pixel_bytes, 0) != LINF_ERR_TRUNCATED)
        fail("a stream one byte short was not refused as truncated", &d);
    exact[written] = 0;
    if (linf_decode(exact, written + 1, out, pixel_bytes, 0) != LINF_ERR_TRAILING_DATA)
        fail("a stream with a trailing byte was not refused", &d);
    if (linf_decode_ex(exact, written, out, pixel_bytes, &dec, &failed) != LINF_OK)
        fail("second decode failed", &d);
    for (size_t i = 0; i < samples; i++) {
        const int32_t x = get_sample(&d, pixels, i), y = get_sample(&d, out, i);
        if ((x > y ? x - y : y - x) > (int32_t)d.tau) fail("max error above tau", &d);
    }
    if (d.tau == 0 && memcmp(pixels, out, pixel_bytes) != 0) fail("tau = 0 is not bit-exact", &d);
    if (memcmp(recon, out, pixel_bytes) != 0) fail("encoder's reconstruction differs from the decoder's output", &d);
    free(recon);
    free(exact);
    free(stream);
    free(out);
    free(pixels);
    return 0;
}
