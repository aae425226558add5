/*
 * Unit tests of the public C API (csrc/include/linf_codec.h). Pure C99, no framework.
 * Build and run: csrc/tests/run_sanitized.sh (ASan + UBSan). The last line of the output is
 * "N passed, N failed"; the exit status is non-zero when anything failed.
 *
 * Buffers handed to the codec are malloc'ed at their exact size, so AddressSanitizer turns any
 * read or write past a documented size into a crash.
 */
#include "linf_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_passed, g_failed;
static char g_ctx[200]; /* describes the case under test in failure messages */

static int check_(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        g_passed++;
    } else {
        g_failed++;
        fprintf(stderr, "%s:%d: FAILED: %s [%s]\n", file, line, what, g_ctx);
    }
    return ok;
}

static int check_status_(linf_status got, linf_status want, const char *what, const char *file, int line)
{
    if (got == want) {
        g_passed++;
        return 1;
    }
    g_failed++;
    fprintf(stderr, "%s:%d: FAILED: %s returned %d (%s), expected %d [%s]\n", file, line, what, (int)got,
            linf_error_message(got), (int)want, g_ctx);
    return 0;
}

#define CHECK(cond) check_((cond) != 0, #cond, __FILE__, __LINE__)
#define CHECK_STATUS(expr, want) check_status_((expr), (want), #expr, __FILE__, __LINE__)
#define CONTEXT(...) snprintf(g_ctx, sizeof g_ctx, __VA_ARGS__)

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t g_rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(void) /* splitmix64, deterministic */
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static void *dup_bytes(const void *src, size_t n)
{
    void *p = xmalloc(n);
    if (n) memcpy(p, src, n);
    return p;
}

/* CRC-32 (IEEE, reflected), written independently of the core to re-sign edited headers. */
static uint32_t crc32_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xFFFFFFFFu;
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Header layout (csrc/src/header.h): 0 magic, 4 version, 5 mode, 6 depth, 7 reserved, 8 width,
 * 12 height, 16 channels (u16), 18 tau (u16), 20 payload bytes (u64), 28 payload CRC, 32 header CRC. */
static void resign_header(uint8_t *s) { put_le(s + 32, crc32_ref(s, 32), 4); }

static void resign_all(uint8_t *s, size_t n)
{
    const uint64_t payload = get_le(s + 20, 8);
    const size_t avail = n - LINF_HEADER_BYTES;
    put_le(s + 28, crc32_ref(s + LINF_HEADER_BYTES, payload < avail ? (size_t)payload : avail), 4);
    resign_header(s);
}

static linf_image_desc make_desc(uint32_t w, uint32_t h, uint32_t c, uint32_t depth, uint32_t tau)
{
    linf_image_desc d;
    d.width = w;
    d.height = h;
    d.channels = c;
    d.bit_depth = depth;
    d.tau = tau;
    return d;
}

static size_t num_samples(const linf_image_desc *d) { return (size_t)d->width * d->height * d->channels; }
static uint32_t max_value(uint32_t depth) { return (1u << depth) - 1u; }
static uint32_t max_tau(uint32_t depth) { return max_value(depth) / 2u; }

static void *pack(const linf_image_desc *d, const uint32_t *v)
{
    const size_t n = num_samples(d);
    if (d->bit_depth <= 8) {
        uint8_t *p = xmalloc(n);
        for (size_t i = 0; i < n; i++) p[i] = (uint8_t)v[i];
        return p;
    }
    uint16_t *p = xmalloc(n * 2);
    for (size_t i = 0; i < n; i++) p[i] = (uint16_t)v[i];
    return p;
}

static uint32_t sample_at(const linf_image_desc *d, const void *pixels, size_t i)
{
    return d->bit_depth <= 8 ? ((const uint8_t *)pixels)[i] : ((const uint16_t *)pixels)[i];
}

/* Encode into a max-size buffer and return a copy of exactly the written size (NULL on failure). */
static uint8_t *encode_exact(const linf_image_desc *d, const void *pixels, size_t *size)
{
    const size_t cap = linf_max_encoded_size(d);
    uint8_t *buf = xmalloc(cap);
    size_t written = 0;
    uint8_t *out = NULL;
    if (CHECK_STATUS(linf_encode(d, pixels, linf_pixel_bytes(d), buf, cap, &written), LINF_OK)) {
        out = dup_bytes(buf, written);
        *size = written;
    }
    free(buf);
    return out;
}

/* A small image with both smooth regions and noise: takes the predictive path. */
static uint8_t *small_stream(linf_image_desc *d, size_t *size)
{
    *d = make_desc(13, 7, 3, 8, 1);
    uint32_t v[13 * 7 * 3];
    for (size_t i = 0; i < 13 * 7 * 3; i++) v[i] = (uint32_t)(i / 3 * 2 + rnd() % 4) & 255u;
    void *pixels = pack(d, v);
    uint8_t *s = encode_exact(d, pixels, size);
    free(pixels);
    if (!s) {
        fprintf(stderr, "cannot build the test stream\n");
        exit(2);
    }
    return s;
}

/* ---- API misuse: NULL, zero sizes, small buffers, invalid descriptions ------------------- */

static void test_version_and_messages(void)
{
    CONTEXT("version/messages");
    const char *v = linf_version();
    CHECK(v != NULL && v[0] != '\0');

    const linf_status all[] = {LINF_OK, LINF_ERR_TRUNCATED, LINF_ERR_BAD_MAGIC, LINF_ERR_BAD_VERSION,
                               LINF_ERR_BAD_HEADER, LINF_ERR_CRC_MISMATCH, LINF_ERR_CORRUPT_PAYLOAD,
                               LINF_ERR_TOO_LARGE, LINF_ERR_NULL_ARGUMENT, LINF_ERR_INVALID_DIMENSIONS,
                               LINF_ERR_INVALID_BIT_DEPTH, LINF_ERR_INVALID_TAU,
                               LINF_ERR_SAMPLE_OUT_OF_RANGE, LINF_ERR_BUFFER_TOO_SMALL,
                               LINF_ERR_OUT_OF_MEMORY};
    const size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        CONTEXT("status %d", (int)all[i]);
        const char *m = linf_error_message(all[i]);
        if (!CHECK(m != NULL && m[0] != '\0')) continue;
        for (size_t j = 0; j < i; j++) CHECK(strcmp(m, linf_error_message(all[j])) != 0);
    }
    const int unknown[] = {-1, 8, 99, 107, 1000, 0x7FFFFFFF};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CONTEXT("unknown status %d", unknown[i]);
        const char *m = linf_error_message((linf_status)unknown[i]);
        CHECK(m != NULL && m[0] != '\0');
    }
}

static void test_sizes(void)
{
    CONTEXT("pixel_bytes/max_encoded_size");
    CHECK(linf_pixel_bytes(NULL) == 0);
    CHECK(linf_max_encoded_size(NULL) == 0);

    linf_image_desc d = make_desc(3, 2, 3, 8, 0);
    CHECK(linf_pixel_bytes(&d) == 18);
    CHECK(linf_max_encoded_size(&d) >= LINF_HEADER_BYTES + 18);
    d.bit_depth = 1;
    CHECK(linf_pixel_bytes(&d) == 18);
    d.bit_depth = 9;
    CHECK(linf_pixel_bytes(&d) == 36);
    d.bit_depth = 16;
    CHECK(linf_pixel_bytes(&d) == 36);
    CHECK(linf_max_encoded_size(&d) >= LINF_HEADER_BYTES + 36);

    const linf_image_desc bad[] = {
        make_desc(0, 2, 3, 8, 0), make_desc(3, 0, 3, 8, 0), make_desc(3, 2, 0, 8, 0),
        make_desc(3, 2, LINF_MAX_CHANNELS + 1, 8, 0), make_desc(LINF_MAX_DIMENSION + 1, 1, 1, 8, 0),
        make_desc(1, LINF_MAX_DIMENSION + 1, 1, 8, 0), make_desc(3, 2, 3, 0, 0), make_desc(3, 2, 3, 17, 0),
        make_desc(LINF_MAX_DIMENSION, LINF_MAX_DIMENSION, 1, 8, 0), /* 2^40 samples > LINF_MAX_SAMPLES */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CONTEXT("invalid desc #%zu", i);
        CHECK(linf_pixel_bytes(&bad[i]) == 0);
        CHECK(linf_max_encoded_size(&bad[i]) == 0);
    }
}

static void test_encode_misuse(void)
{
    linf_image_desc d = make_desc(4, 3, 2, 8, 0);
    uint8_t pixels[24] = {0};
    uint8_t dst[4096];
    size_t written = 0;
    const size_t pb = sizeof pixels, cap = sizeof dst;
    CONTEXT("encode misuse");
    CHECK(linf_max_encoded_size(&d) <= cap);

    CHECK_STATUS(linf_encode(NULL, pixels, pb, dst, cap, &written), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode(&d, NULL, pb, dst, cap, &written), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode(&d, pixels, pb, NULL, cap, &written), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode(&d, pixels, pb, dst, cap, NULL), LINF_ERR_NULL_ARGUMENT);

    CHECK_STATUS(linf_encode(&d, pixels, 0, dst, cap, &written), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode(&d, pixels, pb - 1, dst, cap, &written), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode(&d, pixels, pb, dst, 0, &written), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode(&d, pixels, pb, dst, LINF_HEADER_BYTES - 1, &written), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode(&d, pixels, pb, dst, LINF_HEADER_BYTES, &written), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode(&d, pixels, pb, dst, cap, &written), LINF_OK);

    uint8_t recon[24];
    CONTEXT("encode_reconstruct misuse");
    CHECK_STATUS(linf_encode_reconstruct(NULL, pixels, pb, dst, cap, &written, recon, pb), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_reconstruct(&d, NULL, pb, dst, cap, &written, recon, pb), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, NULL, cap, &written, recon, pb), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, dst, cap, NULL, recon, pb), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, 0, dst, cap, &written, recon, pb), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, dst, 0, &written, recon, pb), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, dst, cap, &written, recon, 0), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, dst, cap, &written, recon, pb - 1),
                 LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, dst, cap, &written, NULL, 0), LINF_OK); /* optional */
    CHECK_STATUS(linf_encode_reconstruct(&d, pixels, pb, dst, cap, &written, recon, pb), LINF_OK);
    CHECK(memcmp(recon, pixels, pb) == 0); /* tau = 0 */

    const struct { linf_image_desc d; linf_status want; } bad[] = {
        {make_desc(0, 3, 2, 8, 0), LINF_ERR_INVALID_DIMENSIONS},
        {make_desc(4, 0, 2, 8, 0), LINF_ERR_INVALID_DIMENSIONS},
        {make_desc(4, 3, 0, 8, 0), LINF_ERR_INVALID_DIMENSIONS},
        {make_desc(4, 3, LINF_MAX_CHANNELS + 1, 8, 0), LINF_ERR_INVALID_DIMENSIONS},
        {make_desc(LINF_MAX_DIMENSION + 1, 1, 1, 8, 0), LINF_ERR_INVALID_DIMENSIONS},
        {make_desc(1, LINF_MAX_DIMENSION + 1, 1, 8, 0), LINF_ERR_INVALID_DIMENSIONS},
        {make_desc(4, 3, 2, 0, 0), LINF_ERR_INVALID_BIT_DEPTH},
        {make_desc(4, 3, 2, 17, 0), LINF_ERR_INVALID_BIT_DEPTH},
        {make_desc(4, 3, 2, 8, 128), LINF_ERR_INVALID_TAU},
        {make_desc(4, 3, 2, 1, 1), LINF_ERR_INVALID_TAU},
        {make_desc(4, 3, 2, 5, 16), LINF_ERR_INVALID_TAU},
        {make_desc(4, 3, 2, 16, 32768), LINF_ERR_INVALID_TAU},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CONTEXT("encode invalid desc #%zu", i);
        CHECK_STATUS(linf_encode(&bad[i].d, pixels, pb, dst, cap, &written), bad[i].want);
        CHECK_STATUS(linf_encode_reconstruct(&bad[i].d, pixels, pb, dst, cap, &written, recon, pb), bad[i].want);
    }

    /* One sample just above the bit depth's maximum, at each position class (first, middle, last). */
    const uint32_t depths[] = {1, 2, 5, 7, 9, 12, 15};
    for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
        for (size_t at = 0; at < 24; at += 11) {
            linf_image_desc e = make_desc(4, 3, 2, depths[k], 0);
            uint32_t v[24] = {0};
            v[at] = 1u << depths[k];
            void *p = pack(&e, v);
            CONTEXT("sample out of range depth %u index %zu", (unsigned)depths[k], at);
            CHECK_STATUS(linf_encode(&e, p, linf_pixel_bytes(&e), dst, cap, &written),
                         LINF_ERR_SAMPLE_OUT_OF_RANGE);
            free(p);
        }
    }
}

static void test_read_header_misuse(void)
{
    linf_image_desc d;
    size_t n;
    uint8_t *s = small_stream(&d, &n);
    linf_header h;
    CONTEXT("read_header misuse");
    CHECK_STATUS(linf_read_header(NULL, n, &h), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_read_header(s, n, NULL), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_read_header(s, 0, &h), LINF_ERR_TRUNCATED);
    for (size_t len = 1; len < LINF_HEADER_BYTES; len++) {
        uint8_t *prefix = dup_bytes(s, len);
        CONTEXT("read_header prefix %zu", len);
        CHECK_STATUS(linf_read_header(prefix, len, &h), LINF_ERR_TRUNCATED);
        free(prefix);
    }
    CONTEXT("read_header valid");
    if (CHECK_STATUS(linf_read_header(s, n, &h), LINF_OK)) {
        CHECK(h.desc.width == d.width && h.desc.height == d.height && h.desc.channels == d.channels);
        CHECK(h.desc.bit_depth == d.bit_depth && h.desc.tau == d.tau);
        CHECK(h.format_version == LINF_FORMAT_VERSION && h.coding_mode == 0);
        CHECK(h.header_bytes == LINF_HEADER_BYTES && h.header_bytes + h.payload_bytes == n);
        CHECK(h.payload_crc32 == crc32_ref(s + LINF_HEADER_BYTES, n - LINF_HEADER_BYTES));
    }
    free(s);
}

static void test_decode_misuse(void)
{
    linf_image_desc d;
    size_t n;
    uint8_t *s = small_stream(&d, &n);
    const size_t pb = linf_pixel_bytes(&d);
    uint8_t *out = xmalloc(pb + 1);
    const uint64_t samples = num_samples(&d);
    CONTEXT("decode misuse");
    CHECK_STATUS(linf_decode(NULL, n, out, pb, 0), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_decode(s, n, NULL, pb, 0), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_decode(s, 0, out, pb, 0), LINF_ERR_TRUNCATED);
    CHECK_STATUS(linf_decode(s, n, out, 0, 0), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_decode(s, n, out, pb - 1, 0), LINF_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(linf_decode(s, n, out, pb, samples - 1), LINF_ERR_TOO_LARGE);
    CHECK_STATUS(linf_decode(s, n, out, pb, 1), LINF_ERR_TOO_LARGE);
    CHECK_STATUS(linf_decode(s, n, out, pb, samples), LINF_OK);
    CHECK_STATUS(linf_decode(s, n, out, pb, 0), LINF_OK);
    CHECK_STATUS(linf_decode(s, n, out, pb + 1, 0), LINF_OK); /* a larger buffer is fine */

    /* A header that needs more pixel memory than given (width + 1, re-signed) must not overflow. */
    uint8_t *wider = dup_bytes(s, n);
    put_le(wider + 8, d.width + 1, 4);
    resign_header(wider);
    CONTEXT("decode header wider than buffer");
    CHECK_STATUS(linf_decode(wider, n, out, pb, 0), LINF_ERR_BUFFER_TOO_SMALL);
    free(wider);
    free(out);
    free(s);
}

/* ---- header fields: every out-of-range value is rejected, even with a valid header CRC ----- */

static void test_header_fields(void)
{
    linf_image_desc d;
    size_t n;
    uint8_t *s = small_stream(&d, &n);
    const size_t pb = linf_pixel_bytes(&d);
    uint8_t *out = xmalloc(pb);
    linf_header h;
    const struct { int offset, bytes; uint64_t value; linf_status want; const char *what; } edits[] = {
        {0, 1, 'l', LINF_ERR_BAD_MAGIC, "magic"},
        {3, 1, 0, LINF_ERR_BAD_MAGIC, "magic last byte"},
        {4, 1, 0, LINF_ERR_BAD_VERSION, "version 0"},
        {4, 1, LINF_FORMAT_VERSION + 1, LINF_ERR_BAD_VERSION, "version + 1"},
        {4, 1, 255, LINF_ERR_BAD_VERSION, "version 255"},
        {5, 1, 2, LINF_ERR_BAD_HEADER, "coding mode 2"},
        {5, 1, 255, LINF_ERR_BAD_HEADER, "coding mode 255"},
        {6, 1, 0, LINF_ERR_BAD_HEADER, "bit depth 0"},
        {6, 1, 17, LINF_ERR_BAD_HEADER, "bit depth 17"},
        {6, 1, 1, LINF_ERR_BAD_HEADER, "bit depth 1 with tau 1"},
        {7, 1, 1, LINF_ERR_BAD_HEADER, "reserved byte"},
        {8, 4, 0, LINF_ERR_BAD_HEADER, "width 0"},
        {8, 4, LINF_MAX_DIMENSION + 1, LINF_ERR_BAD_HEADER, "width too large"},
        {8, 4, 0xFFFFFFFFu, LINF_ERR_BAD_HEADER, "width 2^32-1"},
        {12, 4, 0, LINF_ERR_BAD_HEADER, "height 0"},
        {12, 4, LINF_MAX_DIMENSION + 1, LINF_ERR_BAD_HEADER, "height too large"},
        {16, 2, 0, LINF_ERR_BAD_HEADER, "channels 0"},
        {16, 2, LINF_MAX_CHANNELS + 1, LINF_ERR_BAD_HEADER, "channels 257"},
        {18, 2, 128, LINF_ERR_BAD_HEADER, "tau above max"},
        {18, 2, 0xFFFF, LINF_ERR_BAD_HEADER, "tau 65535"},
        {20, 8, 0, LINF_ERR_BAD_HEADER, "payload 0 bytes"},
        {20, 8, UINT64_MAX, LINF_ERR_BAD_HEADER, "payload 2^64-1 bytes"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        uint8_t *e = dup_bytes(s, n);
        put_le(e + edits[i].offset, edits[i].value, edits[i].bytes);
        resign_header(e);
        CONTEXT("header edit: %s", edits[i].what);
        CHECK_STATUS(linf_read_header(e, n, &h), edits[i].want);
        CHECK_STATUS(linf_decode(e, n, out, pb, 0), edits[i].want);
        free(e);
    }

    /* Same edits without re-signing: the header CRC catches them. */
    uint8_t *e = dup_bytes(s, n);
    e[12] ^= 1;
    CONTEXT("header edit without CRC");
    CHECK_STATUS(linf_read_header(e, n, &h), LINF_ERR_BAD_HEADER);
    free(e);

    /* A huge image claimed by a tiny payload is refused before any allocation. */
    e = dup_bytes(s, n);
    put_le(e + 8, 1u << 16, 4);
    put_le(e + 12, 1u << 16, 4);
    put_le(e + 16, 1, 2);
    resign_header(e);
    CONTEXT("2^32 samples in a %zu-byte payload", n - LINF_HEADER_BYTES);
    CHECK_STATUS(linf_read_header(e, n, &h), LINF_ERR_BAD_HEADER);
    free(e);

    /* Payload claims more bytes than the stream holds. */
    e = dup_bytes(s, n);
    put_le(e + 20, n - LINF_HEADER_BYTES + 1, 8);
    resign_header(e);
    CONTEXT("payload longer than stream");
    CHECK_STATUS(linf_decode(e, n, out, pb, 0), LINF_ERR_TRUNCATED);
    free(e);

    /* Raw mode: the payload must be exactly the pixel bytes. */
    e = dup_bytes(s, n);
    e[5] = 1;
    put_le(e + 20, pb + 1, 8);
    resign_header(e);
    CONTEXT("raw payload size mismatch");
    CHECK_STATUS(linf_read_header(e, n, &h), LINF_ERR_BAD_HEADER);
    free(e);

    free(out);
    free(s);
}

/* ---- corrupt streams: truncations, bit flips, garbage payloads ---------------------------- */

/* Decode a damaged stream into a buffer of exactly the size its header asks for; an OK result
 * must come with a valid header whose samples all fit the bit depth. */
#define DAMAGED_MAX_SAMPLES (1u << 16) /* edited dimensions would otherwise decode huge images */

static void decode_damaged(const uint8_t *s, size_t n, size_t fallback_pb)
{
    linf_header h;
    size_t pb = fallback_pb;
    const linf_status hs = linf_read_header(s, n, &h);
    if (hs == LINF_OK && num_samples(&h.desc) <= DAMAGED_MAX_SAMPLES) pb = linf_pixel_bytes(&h.desc);
    uint8_t *out = xmalloc(pb);
    const linf_status st = linf_decode(s, n, out, pb, DAMAGED_MAX_SAMPLES);
    if (st == LINF_OK) {
        CHECK_STATUS(hs, LINF_OK);
        if (hs == LINF_OK && CHECK(linf_pixel_bytes(&h.desc) <= pb)) {
            uint32_t worst = 0;
            for (size_t i = 0; i < num_samples(&h.desc); i++) {
                const uint32_t v = sample_at(&h.desc, out, i);
                if (v > worst) worst = v;
            }
            CHECK(worst <= max_value(h.desc.bit_depth));
        }
    } else {
        CHECK(st != LINF_ERR_NULL_ARGUMENT && st != LINF_ERR_OUT_OF_MEMORY);
    }
    free(out);
}

static void test_truncation(void)
{
    linf_image_desc descs[2];
    size_t sizes[2];
    uint8_t *streams[2];
    streams[0] = small_stream(&descs[0], &sizes[0]);
    /* Noise at tau 0 does not compress: the raw-mode path. */
    descs[1] = make_desc(9, 5, 1, 16, 0);
    uint32_t v[45];
    for (size_t i = 0; i < 45; i++) v[i] = rnd() & 0xFFFFu;
    void *p = pack(&descs[1], v);
    streams[1] = encode_exact(&descs[1], p, &sizes[1]);
    free(p);
    for (int k = 0; k < 2; k++) {
        if (!streams[k]) continue;
        const size_t pb = linf_pixel_bytes(&descs[k]);
        uint8_t *out = xmalloc(pb);
        for (size_t len = 0; len < sizes[k]; len++) {
            uint8_t *prefix = dup_bytes(streams[k], len);
            CONTEXT("stream %d truncated to %zu of %zu bytes", k, len, sizes[k]);
            CHECK_STATUS(linf_decode(prefix, len, out, pb, 0), LINF_ERR_TRUNCATED);
            free(prefix);
        }
        free(out);
        free(streams[k]);
    }
}

static void test_bit_flips(void)
{
    linf_image_desc d;
    size_t n;
    uint8_t *s = small_stream(&d, &n);
    const size_t pb = linf_pixel_bytes(&d);
    uint8_t *out = xmalloc(pb);
    /* Every single-bit flip: the header CRC and the payload CRC-32 detect all of them. */
    for (size_t bit = 0; bit < 8 * n; bit++) {
        uint8_t *e = dup_bytes(s, n);
        e[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        const size_t at = bit / 8;
        const linf_status st = linf_decode(e, n, out, pb, 0);
        CONTEXT("single bit flip at byte %zu bit %zu", at, bit % 8);
        if (at < 4)
            CHECK_STATUS(st, LINF_ERR_BAD_MAGIC);
        else if (at == 4)
            CHECK_STATUS(st, LINF_ERR_BAD_VERSION);
        else if (at < LINF_HEADER_BYTES)
            CHECK_STATUS(st, LINF_ERR_BAD_HEADER);
        else
            CHECK(st == LINF_ERR_CRC_MISMATCH || st == LINF_ERR_CORRUPT_PAYLOAD);
        free(e);
    }
    /* Random multi-bit damage anywhere, and the same damage with both CRCs re-signed so that the
     * header checks and the payload decoder see the corruption. */
    for (int trial = 0; trial < 2000; trial++) {
        uint8_t *e = dup_bytes(s, n);
        const int flips = 1 + (int)(rnd() % 12);
        for (int f = 0; f < flips; f++) e[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
        CONTEXT("random flips trial %d", trial);
        decode_damaged(e, n, pb);
        resign_all(e, n);
        decode_damaged(e, n, pb);
        free(e);
    }
    free(out);
    free(s);
}

/* Random payloads behind valid, CRC-correct headers of many shapes. */
static void test_garbage_payloads(void)
{
    for (int trial = 0; trial < 1500; trial++) {
        const uint32_t depth = 1 + rnd() % 16;
        linf_image_desc d = make_desc(1 + rnd() % 40, 1 + rnd() % 40, 1 + rnd() % 4, depth,
                                      rnd() % (max_tau(depth) + 1));
        const int raw = trial % 5 == 0;
        const size_t payload = raw ? linf_pixel_bytes(&d) : 1 + rnd() % 300;
        const size_t n = LINF_HEADER_BYTES + payload;
        uint8_t *s = xmalloc(n);
        memcpy(s, "LINF", 4);
        s[4] = LINF_FORMAT_VERSION;
        s[5] = (uint8_t)raw;
        s[6] = (uint8_t)depth;
        s[7] = 0;
        put_le(s + 8, d.width, 4);
        put_le(s + 12, d.height, 4);
        put_le(s + 16, d.channels, 2);
        put_le(s + 18, d.tau, 2);
        put_le(s + 20, payload, 8);
        const int style = (int)(rnd() % 3); /* random, all zero, all 0xFF */
        for (size_t i = LINF_HEADER_BYTES; i < n; i++)
            s[i] = style == 0 ? (uint8_t)rnd() : style == 1 ? 0 : 0xFF;
        resign_all(s, n);
        CONTEXT("garbage payload trial %d: %ux%ux%u depth %u tau %u raw %d, %zu bytes", trial,
                (unsigned)d.width, (unsigned)d.height, (unsigned)d.channels, (unsigned)depth,
                (unsigned)d.tau, raw, payload);
        linf_header h;
        CHECK_STATUS(linf_read_header(s, n, &h), LINF_OK);
        decode_damaged(s, n, linf_pixel_bytes(&d));
        free(s);
    }
}

/* ---- round trips -------------------------------------------------------------------------- */

enum pattern { CONST_ZERO, CONST_MAX, CONST_MID, NOISE, GRADIENT, CHECKER, SMOOTH_NOISY, NUM_PATTERNS };
static const char *const PATTERN_NAMES[] = {"zero", "max", "mid", "noise", "gradient", "checker", "smooth+noise"};

static uint32_t *make_image(const linf_image_desc *d, enum pattern p)
{
    const size_t n = num_samples(d);
    const uint32_t top = max_value(d->bit_depth);
    uint32_t *v = xmalloc(n * sizeof *v);
    size_t i = 0;
    for (uint32_t y = 0; y < d->height; y++)
        for (uint32_t x = 0; x < d->width; x++)
            for (uint32_t c = 0; c < d->channels; c++, i++) {
                const uint64_t ramp = (uint64_t)(3 * x + 2 * y + 5 * c) * top /
                                      (3 * d->width + 2 * d->height + 5 * d->channels);
                int64_t s;
                switch (p) {
                case CONST_ZERO: s = 0; break;
                case CONST_MAX: s = top; break;
                case CONST_MID: s = top / 2 + 1; break;
                case NOISE: s = rnd() & top; break;
                case GRADIENT: s = (int64_t)ramp; break;
                case CHECKER: s = ((x + y + c) & 1) ? top : 0; break;
                default: s = (int64_t)ramp + (int64_t)(rnd() % 7) - 3; break;
                }
                v[i] = (uint32_t)(s < 0 ? 0 : s > (int64_t)top ? (int64_t)top : s);
            }
    return v;
}

static void roundtrip(const linf_image_desc *d, const uint32_t *v, const char *name)
{
    CONTEXT("roundtrip %s %ux%ux%u depth %u tau %u", name, (unsigned)d->width, (unsigned)d->height,
            (unsigned)d->channels, (unsigned)d->bit_depth, (unsigned)d->tau);
    const size_t n = num_samples(d), pb = linf_pixel_bytes(d), cap = linf_max_encoded_size(d);
    void *pixels = pack(d, v);
    void *before = dup_bytes(pixels, pb);
    uint8_t *dst = xmalloc(cap);
    size_t written = 0;
    if (!CHECK(pb == n * (d->bit_depth > 8 ? 2 : 1)) ||
        !CHECK_STATUS(linf_encode(d, pixels, pb, dst, cap, &written), LINF_OK))
        goto done;
    CHECK(written > LINF_HEADER_BYTES && written <= cap);
    CHECK(memcmp(pixels, before, pb) == 0);

    /* Deterministic, fits a buffer of exactly its size, and not one byte less. */
    uint8_t *exact = xmalloc(written);
    size_t again = 0;
    CHECK_STATUS(linf_encode(d, pixels, pb, exact, written, &again), LINF_OK);
    CHECK(again == written && memcmp(exact, dst, written) == 0);
    CHECK_STATUS(linf_encode(d, pixels, pb, exact, written - 1, &again), LINF_ERR_BUFFER_TOO_SMALL);

    /* linf_encode_reconstruct: the same stream, plus exactly what linf_decode will return. */
    void *recon = xmalloc(pb);
    const int recon_ok = CHECK_STATUS(linf_encode_reconstruct(d, pixels, pb, exact, written, &again, recon, pb),
                                      LINF_OK);
    CHECK(again == written && memcmp(exact, dst, written) == 0);
    memcpy(exact, dst, written);

    linf_header h;
    if (CHECK_STATUS(linf_read_header(exact, written, &h), LINF_OK)) {
        CHECK(h.desc.width == d->width && h.desc.height == d->height && h.desc.channels == d->channels &&
              h.desc.bit_depth == d->bit_depth && h.desc.tau == d->tau);
        CHECK(h.header_bytes + h.payload_bytes == written);
    }

    void *out = xmalloc(pb);
    if (CHECK_STATUS(linf_decode(exact, written, out, pb, 0), LINF_OK)) {
        uint32_t worst = 0, top = 0;
        for (size_t i = 0; i < n; i++) {
            const uint32_t y = sample_at(d, out, i);
            const uint32_t err = y > v[i] ? y - v[i] : v[i] - y;
            if (err > worst) worst = err;
            if (y > top) top = y;
        }
        if (!CHECK(worst <= d->tau)) fprintf(stderr, "  max error %u > tau %u\n", worst, (unsigned)d->tau);
        CHECK(top <= max_value(d->bit_depth));
        if (d->tau == 0) CHECK(memcmp(out, pixels, pb) == 0);
        if (recon_ok) CHECK(memcmp(recon, out, pb) == 0);
    }
    free(recon);
    free(out);
    free(exact);
done:
    free(dst);
    free(before);
    free(pixels);
}

static void test_roundtrips(void)
{
    const uint32_t shapes[][2] = {{1, 1}, {1, 19}, {19, 1}, {23, 11}, {64, 40}};
    const uint32_t channels[] = {1, 3, 4};
    const uint32_t depths[] = {1, 2, 5, 8, 9, 12, 16};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (size_t ci = 0; ci < sizeof channels / sizeof channels[0]; ci++)
            for (size_t di = 0; di < sizeof depths / sizeof depths[0]; di++) {
                const uint32_t depth = depths[di], mt = max_tau(depth);
                const uint32_t taus[] = {0, 1, 3, mt / 3, mt > 0 ? mt - 1 : 0, mt};
                for (int p = 0; p < NUM_PATTERNS; p++) {
                    for (size_t ti = 0; ti < sizeof taus / sizeof taus[0]; ti++) {
                        int seen = taus[ti] > mt;
                        for (size_t tj = 0; tj < ti; tj++) seen |= taus[tj] == taus[ti];
                        if (seen) continue;
                        linf_image_desc d = make_desc(shapes[si][0], shapes[si][1], channels[ci], depth, taus[ti]);
                        uint32_t *v = make_image(&d, (enum pattern)p);
                        roundtrip(&d, v, PATTERN_NAMES[p]);
                        free(v);
                    }
                }
            }

    /* Larger and odd shapes: real prediction contexts, many channels, extreme values. */
    const struct { uint32_t w, h, c, depth, tau; enum pattern p; } extra[] = {
        {160, 120, 3, 8, 0, SMOOTH_NOISY}, {160, 120, 3, 8, 2, SMOOTH_NOISY},
        {160, 120, 1, 16, 0, SMOOTH_NOISY}, {160, 120, 1, 16, 100, GRADIENT},
        {128, 96, 1, 12, 0, NOISE}, {128, 96, 1, 16, 0, NOISE}, {128, 96, 4, 8, 0, NOISE},
        {2, 3, 256, 8, 0, NOISE}, {2, 3, 256, 16, 7, SMOOTH_NOISY}, {1, 1, LINF_MAX_CHANNELS, 16, 32767, NOISE},
        {1, 1, 1, 16, 32767, CONST_MAX}, {1, 1, 1, 16, 0, CONST_MAX}, {300, 2, 2, 16, 32767, CHECKER},
        {97, 61, 3, 8, 127, CHECKER}, {97, 61, 3, 16, 0, CHECKER},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        linf_image_desc d = make_desc(extra[i].w, extra[i].h, extra[i].c, extra[i].depth, extra[i].tau);
        uint32_t *v = make_image(&d, extra[i].p);
        roundtrip(&d, v, PATTERN_NAMES[extra[i].p]);
        free(v);
    }
}

/* A constant image must compress far below its raw size (the predictive path really works). */
static void test_compresses(void)
{
    linf_image_desc d = make_desc(64, 64, 3, 8, 0);
    uint32_t *v = make_image(&d, CONST_MID);
    void *p = pack(&d, v);
    size_t n = 0;
    uint8_t *s = encode_exact(&d, p, &n);
    CONTEXT("constant 64x64x3 compresses");
    CHECK(s != NULL && n < linf_pixel_bytes(&d) / 20);
    free(s);
    free(p);
    free(v);
}

int main(void)
{
    test_version_and_messages();
    test_sizes();
    test_encode_misuse();
    test_read_header_misuse();
    test_decode_misuse();
    test_header_fields();
    test_truncation();
    test_bit_flips();
    test_garbage_payloads();
    test_roundtrips();
    test_compresses();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
