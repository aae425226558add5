/*
 * Unit tests of the public C API (csrc/include/linf_codec.h). Pure C99, no framework.
 * Build and run: csrc/tests/run_sanitized.sh (ASan + UBSan). The last line of the output is
 * "N passed, N failed"; the exit status is non-zero when anything failed.
 *
 * Buffers handed to the codec are malloc'ed at their exact size, so AddressSanitizer turns any
 * read or write past a documented size into a crash.
 */
#include "linf_codec.h"

/* Internal pieces with their own tests: the format-6 mixer and error regression. */
#include "context.h"
#include "mixer.h"

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
    d.is_signed = 0;
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
                               LINF_ERR_TOO_LARGE, LINF_ERR_TRAILING_DATA, LINF_ERR_NULL_ARGUMENT, LINF_ERR_INVALID_DIMENSIONS,
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
    const int unknown[] = {-1, 9, 99, 107, 1000, 0x7FFFFFFF};
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
        /* predictive (0), or format 4's moved-only (3) or interband-3 (4) predictive modes */
        CHECK(h.format_version == LINF_FORMAT_VERSION && (h.coding_mode == 0 || h.coding_mode == 3 || h.coding_mode == 4));
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
        {4, 1, LINF_FORMAT_VERIFIED, LINF_ERR_BAD_VERSION, "version 5 (the verified container, not a codec stream)"},
        {4, 1, 255, LINF_ERR_BAD_VERSION, "version 255"},
        {5, 1, 2, LINF_ERR_BAD_HEADER, "coding mode 2"},
        {5, 1, 255, LINF_ERR_BAD_HEADER, "coding mode 255"},
        {6, 1, 0, LINF_ERR_BAD_HEADER, "bit depth 0"},
        {6, 1, 17, LINF_ERR_BAD_HEADER, "bit depth 17"},
        {6, 1, 1, LINF_ERR_BAD_HEADER, "bit depth 1 with tau 1"},
        {7, 1, 4, LINF_ERR_BAD_HEADER, "unknown flag 4"},
        {7, 1, 0x80, LINF_ERR_BAD_HEADER, "unknown flag 0x80"},
        {7, 1, 2, LINF_ERR_BAD_HEADER, "striped flag without a stripe table"},
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
        for (size_t extra = 1; extra <= 3; extra++) { /* a stream must be exact: trailing bytes are refused */
            uint8_t *longer = xmalloc(sizes[k] + extra);
            memcpy(longer, streams[k], sizes[k]);
            memset(longer + sizes[k], 0, extra);
            CONTEXT("stream %d with %zu trailing bytes", k, extra);
            CHECK_STATUS(linf_decode(longer, sizes[k] + extra, out, pb, 0), LINF_ERR_TRAILING_DATA);
            free(longer);
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
        else if (at == 4) /* 3 -> 2 is a readable version whose header CRC then fails */
            CHECK(st == LINF_ERR_BAD_VERSION || st == LINF_ERR_BAD_HEADER);
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

/* ---- format 3: stripes, threads, signed samples, exact stream size ------------------------- */

static linf_options make_options(uint32_t stripe_height, uint32_t threads)
{
    linf_options o;
    memset(&o, 0, sizeof o);
    o.stripe_height = stripe_height;
    o.threads = threads;
    return o;
}

/* linf_encode_ex into a buffer of linf_max_encoded_size_ex; returns an exact-size copy or NULL. */
static uint8_t *encode_with(const linf_image_desc *d, const void *pixels, uint32_t stripe_height, uint32_t threads,
                            size_t *size, void *recon)
{
    const linf_options o = make_options(stripe_height, threads);
    const size_t cap = linf_max_encoded_size_ex(d, stripe_height), pb = linf_pixel_bytes(d);
    uint8_t *buf = xmalloc(cap);
    size_t written = 0;
    uint8_t *out = NULL;
    if (CHECK_STATUS(linf_encode_ex(d, pixels, pb, buf, cap, &written, recon, recon ? pb : 0, &o), LINF_OK)) {
        CHECK(written <= cap);
        out = dup_bytes(buf, written);
        *size = written;
    }
    free(buf);
    return out;
}

/* Value of sample i as the caller sees it (signed descs: two's complement int8/int16). */
static int32_t value_at(const linf_image_desc *d, const void *pixels, size_t i)
{
    if (!d->is_signed) return (int32_t)sample_at(d, pixels, i);
    return d->bit_depth <= 8 ? (int32_t)((const int8_t *)pixels)[i] : (int32_t)((const int16_t *)pixels)[i];
}

/* Decodes s with threads and checks the bound against pixels, and equality with expect if given. */
static void check_decodes(const linf_image_desc *d, const uint8_t *s, size_t n, const void *pixels, uint32_t threads,
                          const void *expect)
{
    const size_t pb = linf_pixel_bytes(d);
    void *out = xmalloc(pb);
    linf_options o = make_options(0, threads);
    int64_t failed = 7;
    if (CHECK_STATUS(linf_decode_ex(s, n, out, pb, &o, &failed), LINF_OK)) {
        CHECK(failed == -1);
        int32_t worst = 0;
        for (size_t i = 0; i < num_samples(d); i++) {
            const int32_t e = value_at(d, out, i) - value_at(d, pixels, i);
            const int32_t a = e < 0 ? -e : e;
            if (a > worst) worst = a;
        }
        if (!CHECK(worst <= (int32_t)d->tau)) fprintf(stderr, "  max error %d > tau %u\n", worst, (unsigned)d->tau);
        if (expect) CHECK(memcmp(out, expect, pb) == 0);
        if (d->tau == 0) CHECK(memcmp(out, pixels, pb) == 0);
    }
    free(out);
}

static void test_stripes(void)
{
    const struct { uint32_t w, h, c, depth, tau; } cases[] = {
        {37, 29, 1, 8, 0}, {37, 29, 1, 8, 2}, {23, 31, 3, 12, 0}, {23, 31, 3, 12, 3}, {16, 9, 4, 16, 5},
        {5, 40, 1, 1, 0}, {64, 17, 1, 16, 0},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        linf_image_desc d = make_desc(cases[ci].w, cases[ci].h, cases[ci].c, cases[ci].depth, cases[ci].tau);
        uint32_t *v = make_image(&d, ci == 6 ? NOISE : SMOOTH_NOISY);
        void *pixels = pack(&d, v);
        const size_t pb = linf_pixel_bytes(&d);
        size_t plain_n = 0;
        uint8_t *plain = encode_exact(&d, pixels, &plain_n);
        const uint32_t heights[] = {1, 2, 5, d.height - 1, d.height, d.height + 3, 0};
        for (size_t hi = 0; hi < sizeof heights / sizeof heights[0]; hi++) {
            const uint32_t sh = heights[hi];
            if (sh == 0 && hi + 1 < sizeof heights / sizeof heights[0]) continue;
            CONTEXT("stripes %ux%ux%u depth %u tau %u stripe height %u", (unsigned)d.width, (unsigned)d.height,
                    (unsigned)d.channels, (unsigned)d.bit_depth, (unsigned)d.tau, (unsigned)sh);
            size_t n = 0;
            void *recon = xmalloc(pb);
            uint8_t *s = encode_with(&d, pixels, sh, 1, &n, recon);
            if (!s) {
                free(recon);
                continue;
            }
            const uint32_t count = sh == 0 || sh >= d.height ? 1 : (d.height + sh - 1) / sh;
            linf_header h;
            if (CHECK_STATUS(linf_read_header(s, n, &h), LINF_OK)) {
                CHECK(h.stripe_count == count && h.format_version == (d.channels > 1 ? LINF_FORMAT_VERSION : 3u) && h.desc.is_signed == 0);
                CHECK(h.header_bytes + h.payload_bytes == n);
                CHECK(h.stripe_height == (count > 1 ? sh : d.height));
                CHECK(count > 1 ? (s[7] & 2) != 0 : s[7] == 0);
            }
            if (count == 1) CHECK(plain && n == plain_n && memcmp(s, plain, n) == 0);
            /* The bytes depend on the stripe height only, never on the thread count. */
            const uint32_t threads[] = {2, 3, 8, 300};
            for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
                size_t m = 0;
                void *recon2 = xmalloc(pb);
                uint8_t *t = encode_with(&d, pixels, sh, threads[ti], &m, recon2);
                CHECK(t && m == n && memcmp(t, s, n) == 0);
                CHECK(memcmp(recon2, recon, pb) == 0);
                free(t);
                free(recon2);
            }
            for (uint32_t th = 1; th <= 4; th += 3) check_decodes(&d, s, n, pixels, th, recon);
            /* Exact capacity works, one byte less does not. */
            const linf_options o = make_options(sh, 2);
            uint8_t *exact = xmalloc(n);
            size_t again = 0;
            CHECK_STATUS(linf_encode_ex(&d, pixels, pb, exact, n, &again, NULL, 0, &o), LINF_OK);
            CHECK(again == n && memcmp(exact, s, n) == 0);
            CHECK_STATUS(linf_encode_ex(&d, pixels, pb, exact, n - 1, &again, NULL, 0, &o), LINF_ERR_BUFFER_TOO_SMALL);
            free(exact);
            /* Trailing bytes and truncation. */
            uint8_t *longer = xmalloc(n + 1);
            memcpy(longer, s, n);
            longer[n] = 0;
            void *out = xmalloc(pb);
            CHECK_STATUS(linf_decode(longer, n + 1, out, pb, 0), LINF_ERR_TRAILING_DATA);
            CHECK_STATUS(linf_decode(s, n - 1, out, pb, 0), LINF_ERR_TRUNCATED);
            free(out);
            free(longer);
            free(recon);
            free(s);
        }
        free(plain);
        free(pixels);
        free(v);
    }
    /* Size bounds. */
    linf_image_desc d = make_desc(10, 10, 1, 8, 0);
    CONTEXT("max_encoded_size_ex");
    CHECK(linf_max_encoded_size_ex(&d, 0) == linf_max_encoded_size(&d));
    CHECK(linf_max_encoded_size_ex(&d, 10) == linf_max_encoded_size(&d));
    CHECK(linf_max_encoded_size_ex(&d, 3) == linf_max_encoded_size(&d) + LINF_STRIPE_TABLE_BYTES(4));
    CHECK(linf_max_encoded_size_ex(NULL, 3) == 0);
}

/* Re-signs every CRC of a striped stream whose table is intact (only stripe bytes were edited). */
static void resign_striped(uint8_t *s, size_t n)
{
    const uint32_t count = (uint32_t)get_le(s + LINF_HEADER_BYTES + 4, 4);
    const size_t table = LINF_STRIPE_TABLE_BYTES(count);
    size_t at = LINF_HEADER_BYTES + table;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = s + LINF_HEADER_BYTES + 8 + 16 * (size_t)i;
        const size_t bytes = (size_t)get_le(e, 8);
        if (at + bytes > n) return;
        put_le(e + 8, crc32_ref(s + at, bytes), 4);
        at += bytes;
    }
    put_le(s + 28, crc32_ref(s + LINF_HEADER_BYTES, table), 4);
    resign_header(s);
}

static void test_stripe_damage(void)
{
    linf_image_desc d = make_desc(32, 40, 1, 8, 1);
    uint32_t *v = make_image(&d, SMOOTH_NOISY);
    void *pixels = pack(&d, v);
    const size_t pb = linf_pixel_bytes(&d);
    size_t n = 0;
    uint8_t *s = encode_with(&d, pixels, 8, 1, &n, NULL);
    void *out = xmalloc(pb);
    if (!s) goto done;
    const uint32_t count = 5;
    const size_t table = LINF_STRIPE_TABLE_BYTES(count);
    size_t starts[6];
    starts[0] = LINF_HEADER_BYTES + table;
    for (uint32_t i = 0; i < count; i++)
        starts[i + 1] = starts[i] + (size_t)get_le(s + LINF_HEADER_BYTES + 8 + 16 * (size_t)i, 8);
    CONTEXT("stripe table sums to the stream");
    CHECK(starts[count] == n);
    for (uint32_t k = 0; k < count; k++) {
        for (uint32_t threads = 1; threads <= 3; threads += 2) {
            uint8_t *e = dup_bytes(s, n);
            e[(starts[k] + starts[k + 1]) / 2] ^= 0x10;
            if (k + 2 < count) e[starts[k + 2]] ^= 0x01; /* a later stripe too: the lowest is named */
            linf_options o = make_options(0, threads);
            int64_t failed = -5;
            CONTEXT("stripe %u damaged, %u threads", (unsigned)k, (unsigned)threads);
            CHECK_STATUS(linf_decode_ex(e, n, out, pb, &o, &failed), LINF_ERR_CRC_MISMATCH);
            CHECK(failed == (int64_t)k);
            /* With the CRCs re-signed the decoder sees the damage itself: any error names the stripe. */
            resign_striped(e, n);
            const linf_status st = linf_decode_ex(e, n, out, pb, &o, &failed);
            CHECK(st == LINF_OK ? failed == -1 : (failed >= (int64_t)k && failed < (int64_t)count));
            free(e);
        }
    }
    /* The table is covered by the header's payload CRC. */
    uint8_t *e = dup_bytes(s, n);
    e[LINF_HEADER_BYTES + 8 + 12] ^= 1;
    int64_t failed = 0;
    CONTEXT("stripe table damaged");
    CHECK_STATUS(linf_decode_ex(e, n, out, pb, NULL, &failed), LINF_ERR_BAD_HEADER);
    CHECK(failed == -1);
    free(e);
    /* Table edits with every CRC re-signed: the header checks refuse them. */
    const struct { size_t offset; int bytes; uint64_t value; const char *what; } edits[] = {
        {LINF_HEADER_BYTES, 4, 0, "stripe height 0"},
        {LINF_HEADER_BYTES, 4, 40, "stripe height = height"},
        {LINF_HEADER_BYTES, 4, 7, "stripe height 7 for 5 stripes"},
        {LINF_HEADER_BYTES + 4, 4, 6, "count 6"},
        {LINF_HEADER_BYTES + 8, 8, 0, "stripe 0 empty"},
        {LINF_HEADER_BYTES + 8 + 12, 1, 2, "stripe 0 mode 2"},
        {LINF_HEADER_BYTES + 8 + 12, 1, 1, "stripe 0 raw with a predictive size"},
        {LINF_HEADER_BYTES + 8 + 13, 1, 1, "stripe 0 reserved byte"},
        {5, 1, 1, "striped stream with coding mode raw"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        e = dup_bytes(s, n);
        put_le(e + edits[i].offset, edits[i].value, edits[i].bytes);
        put_le(e + 28, crc32_ref(e + LINF_HEADER_BYTES, table), 4);
        resign_header(e);
        CONTEXT("table edit: %s", edits[i].what);
        linf_header h;
        CHECK_STATUS(linf_read_header(e, n, &h), LINF_ERR_BAD_HEADER);
        CHECK_STATUS(linf_decode(e, n, out, pb, 0), LINF_ERR_BAD_HEADER);
        free(e);
    }
    /* Every truncation, every single-bit flip, random damage with CRCs re-signed. */
    for (size_t len = 0; len < n; len++) {
        uint8_t *prefix = dup_bytes(s, len);
        CONTEXT("striped stream truncated to %zu of %zu bytes", len, n);
        CHECK_STATUS(linf_decode(prefix, len, out, pb, 0), LINF_ERR_TRUNCATED);
        free(prefix);
    }
    for (size_t bit = 0; bit < 8 * n; bit++) {
        e = dup_bytes(s, n);
        e[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CONTEXT("striped stream, bit flip at byte %zu", bit / 8);
        CHECK(linf_decode(e, n, out, pb, 0) != LINF_OK);
        free(e);
    }
    for (int trial = 0; trial < 1000; trial++) {
        e = dup_bytes(s, n);
        const int flips = 1 + (int)(rnd() % 8);
        for (int f = 0; f < flips; f++) e[starts[0] + rnd() % (n - starts[0])] ^= (uint8_t)(1u << (rnd() % 8));
        resign_striped(e, n);
        linf_options o = make_options(0, 1 + trial % 3);
        (void)linf_decode_ex(e, n, out, pb, &o, &failed); /* any status; the sanitizers watch */
        free(e);
    }
done:
    free(out);
    free(s);
    free(pixels);
    free(v);
}

static void test_signed(void)
{
    const uint32_t depths[] = {1, 2, 5, 8, 9, 12, 16};
    const uint32_t channels[] = {1, 3};
    for (size_t di = 0; di < sizeof depths / sizeof depths[0]; di++)
        for (size_t ci = 0; ci < 2; ci++)
            for (int ti = 0; ti < 3; ti++) {
                const uint32_t depth = depths[di];
                const uint32_t tau = ti == 0 ? 0 : ti == 1 ? (max_tau(depth) > 0 ? 1 : 0) : max_tau(depth);
                linf_image_desc d = make_desc(19, 11, channels[ci], depth, tau);
                uint32_t *v = make_image(&d, SMOOTH_NOISY); /* unsigned 0..2^d-1 */
                const size_t count = num_samples(&d), pb = linf_pixel_bytes(&d);
                const int32_t offset = (int32_t)(1u << (depth - 1));
                void *unsigned_pixels = pack(&d, v);
                void *pixels = xmalloc(pb); /* the same values minus the offset, two's complement */
                for (size_t i = 0; i < count; i++) {
                    const int32_t sv = (int32_t)v[i] - offset;
                    if (depth <= 8) ((int8_t *)pixels)[i] = (int8_t)sv;
                    else ((int16_t *)pixels)[i] = (int16_t)sv;
                }
                linf_image_desc sd = d;
                sd.is_signed = 1;
                CONTEXT("signed depth %u channels %u tau %u", (unsigned)depth, (unsigned)d.channels, (unsigned)tau);
                for (uint32_t sh = 0; sh <= 4; sh += 4) {
                    size_t n = 0, un = 0;
                    void *recon = xmalloc(pb);
                    uint8_t *s = encode_with(&sd, pixels, sh, 2, &n, recon);
                    uint8_t *u = encode_with(&d, unsigned_pixels, sh, 1, &un, NULL);
                    if (s && u) {
                        linf_header h;
                        CHECK(linf_read_header(s, n, &h) == LINF_OK && h.desc.is_signed == 1 && (s[7] & 1));
                        /* Signed data is coded as the shifted unsigned data: the same payload. */
                        CHECK(n == un && memcmp(s + LINF_HEADER_BYTES, u + LINF_HEADER_BYTES, n - LINF_HEADER_BYTES) == 0);
                        check_decodes(&sd, s, n, pixels, 2, recon);
                    }
                    free(recon);
                    free(s);
                    free(u);
                }
                free(pixels);
                free(unsigned_pixels);
                free(v);
            }
    /* Out of the signed range. */
    linf_image_desc d = make_desc(3, 2, 1, 12, 0);
    d.is_signed = 1;
    int16_t bad[6] = {0, 1, -2048, 2047, 2048, 0};
    uint8_t dst[128];
    size_t written = 0;
    CONTEXT("signed 12-bit sample 2048");
    CHECK_STATUS(linf_encode(&d, bad, sizeof bad, dst, sizeof dst, &written), LINF_ERR_SAMPLE_OUT_OF_RANGE);
    bad[4] = -2049;
    CONTEXT("signed 12-bit sample -2049");
    CHECK_STATUS(linf_encode(&d, bad, sizeof bad, dst, sizeof dst, &written), LINF_ERR_SAMPLE_OUT_OF_RANGE);
    bad[4] = -2048;
    CHECK_STATUS(linf_encode(&d, bad, sizeof bad, dst, sizeof dst, &written), LINF_OK);
    d.is_signed = 2;
    CONTEXT("is_signed 2");
    CHECK_STATUS(linf_encode(&d, bad, sizeof bad, dst, sizeof dst, &written), LINF_ERR_INVALID_DIMENSIONS);
    /* Signed noise falls back to raw storage and decodes exactly. */
    d = make_desc(9, 7, 1, 16, 0);
    d.is_signed = 1;
    int16_t noise[63];
    for (size_t i = 0; i < 63; i++) noise[i] = (int16_t)(uint16_t)rnd();
    size_t n = 0;
    CONTEXT("signed raw");
    uint8_t *s = encode_with(&d, noise, 0, 1, &n, NULL);
    if (s) {
        CHECK(s[5] == 1);
        check_decodes(&d, s, n, noise, 1, NULL);
    }
    free(s);
}

/* Format 2 streams still decode: a format-3 stream without flags is a format-2 stream but for its
 * version byte (gray images are still written as format 3). Format 2 has no flags. A multichannel
 * stream is format 6 (issue 17's colour model): relabelled as format 4 or 3 it decodes with the
 * older model, to other samples (or an error), never out of bounds. */
static void test_format2(void)
{
    linf_image_desc d;
    size_t n;
    uint8_t *colour = small_stream(&d, &n);
    CONTEXT("format 6");
    CHECK(colour[4] == LINF_FORMAT_VERSION);
    for (uint8_t older = 3; older <= 4; older++) {
        const size_t cb = linf_pixel_bytes(&d);
        uint8_t *out = xmalloc(cb);
        colour[4] = older;
        resign_header(colour);
        const linf_status st = linf_decode(colour, n, out, cb, 0);
        /* format 3 has no moved-only or interband-3 unit modes: a bad header there */
        CHECK(st == LINF_OK || st == LINF_ERR_CORRUPT_PAYLOAD || (older == 3 && st == LINF_ERR_BAD_HEADER));
        free(out);
    }
    free(colour);
    d = make_desc(13, 7, 1, 8, 1);
    uint32_t v[13 * 7];
    for (size_t i = 0; i < 13 * 7; i++) v[i] = (uint32_t)(i * 2 + rnd() % 4) & 255u;
    void *pixels = pack(&d, v);
    uint8_t *s = encode_exact(&d, pixels, &n);
    free(pixels);
    if (!s) return;
    const size_t pb = linf_pixel_bytes(&d);
    uint8_t *want = xmalloc(pb), *got = xmalloc(pb);
    CONTEXT("format 2");
    CHECK(s[4] == 3);
    CHECK_STATUS(linf_decode(s, n, want, pb, 0), LINF_OK);
    s[4] = 2;
    resign_header(s);
    linf_header h;
    CHECK(linf_read_header(s, n, &h) == LINF_OK && h.format_version == 2 && h.stripe_count == 1);
    CHECK_STATUS(linf_decode(s, n, got, pb, 0), LINF_OK);
    CHECK(memcmp(want, got, pb) == 0);
    for (uint8_t flag = 1; flag <= 2; flag++) {
        s[7] = flag;
        resign_header(s);
        CONTEXT("format 2 with flag %u", (unsigned)flag);
        CHECK_STATUS(linf_read_header(s, n, &h), LINF_ERR_BAD_HEADER);
    }
    s[7] = 0;
    s[4] = 1;
    resign_header(s);
    CONTEXT("format 1");
    CHECK_STATUS(linf_read_header(s, n, &h), LINF_ERR_BAD_VERSION);
    free(want);
    free(got);
    free(s);
}

/* ---- level maps (format 5's per-block symbols, csrc/src/levelmap.c) ------------------------ */

enum lm_pattern { LM_NOISE, LM_BLOCKS, LM_STRIPES, LM_CONST_TOP, NUM_LM_PATTERNS };
static const char *const LM_PATTERN_NAMES[] = {"noise", "blocks", "stripes", "constant top"};

/* Symbols < levels: uniform noise, 8x8 regions (what real maps look like), diagonal stripes. */
static uint8_t *make_levelmap(uint32_t w, uint32_t h, uint32_t levels, enum lm_pattern p)
{
    uint8_t *map = xmalloc((size_t)w * h);
    const uint32_t salt = rnd();
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint32_t s;
            switch (p) {
            case LM_NOISE: s = rnd(); break;
            case LM_BLOCKS: s = ((x / 8) * 7919u + (y / 8) * 104729u + salt) >> 3; break;
            case LM_STRIPES: s = (x + y) / 3; break;
            default: s = levels - 1; break;
            }
            map[(size_t)y * w + x] = (uint8_t)(s % levels);
        }
    return map;
}

/* Encodes into a buffer of linf_levelmap_max_bytes; returns a copy of exactly the written size. */
static uint8_t *encode_levelmap_exact(const uint8_t *map, uint32_t w, uint32_t h, uint32_t levels, size_t *size)
{
    const size_t cap = linf_levelmap_max_bytes(w, h);
    uint8_t *dst = xmalloc(cap);
    size_t written = 0;
    uint8_t *exact = NULL;
    if (CHECK_STATUS(linf_encode_levelmap(map, w, h, levels, dst, cap, &written), LINF_OK) &&
        CHECK(written > 0 && written <= cap))
        exact = dup_bytes(dst, written);
    *size = exact ? written : 0;
    free(dst);
    return exact;
}

#define LM_GUARD 64u
#define LM_GUARD_BYTE 0xA5u

/* A map buffer of count bytes followed by LM_GUARD guard bytes (caught without ASan too). */
static uint8_t *guarded_map(size_t count)
{
    uint8_t *m = xmalloc(count + LM_GUARD);
    memset(m, LM_GUARD_BYTE, count + LM_GUARD);
    return m;
}

static int guard_intact(const uint8_t *m, size_t count)
{
    for (size_t i = 0; i < LM_GUARD; i++)
        if (m[count + i] != LM_GUARD_BYTE) return 0;
    return 1;
}

static uint32_t levelmap_top(const uint8_t *map, size_t count)
{
    uint32_t top = 0;
    for (size_t i = 0; i < count; i++)
        if (map[i] > top) top = map[i];
    return top;
}

static void levelmap_roundtrip(const uint8_t *map, uint32_t w, uint32_t h, uint32_t levels)
{
    const size_t count = (size_t)w * h;
    uint8_t *before = dup_bytes(map, count);
    size_t n = 0;
    uint8_t *s = encode_levelmap_exact(map, w, h, levels, &n);
    CHECK(memcmp(map, before, count) == 0); /* the encoder leaves its input alone */
    if (!s) goto done;

    /* Deterministic; fits exactly its size, and not one byte less. */
    uint8_t *again = xmalloc(n);
    size_t written = 0;
    CHECK_STATUS(linf_encode_levelmap(map, w, h, levels, again, n, &written), LINF_OK);
    CHECK(written == n && memcmp(again, s, n) == 0);
    free(again);
    again = xmalloc(n - 1);
    CHECK_STATUS(linf_encode_levelmap(map, w, h, levels, again, n - 1, &written), LINF_ERR_BUFFER_TOO_SMALL);
    free(again);

    uint8_t *out = xmalloc(count); /* exact size: ASan catches a write past it */
    if (CHECK_STATUS(linf_decode_levelmap(s, n, w, h, levels, out), LINF_OK)) CHECK(memcmp(out, map, count) == 0);
    /* The model does not depend on levels: at the maximum the map is the same; below its top
     * symbol that symbol is refused. */
    if (levels < LINF_LEVELMAP_MAX_LEVELS &&
        CHECK_STATUS(linf_decode_levelmap(s, n, w, h, LINF_LEVELMAP_MAX_LEVELS, out), LINF_OK))
        CHECK(memcmp(out, map, count) == 0);
    const uint32_t top = levelmap_top(map, count);
    if (top > 0) CHECK_STATUS(linf_decode_levelmap(s, n, w, h, top, out), LINF_ERR_CORRUPT_PAYLOAD);
    free(out);
    free(s);
done:
    free(before);
}

static void test_levelmap_roundtrips(void)
{
    const uint32_t shapes[][2] = {{1, 1}, {1, 97}, {97, 1}, {2, 2}, {37, 53}, {53, 37}, {256, 256}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (uint32_t levels = 1; levels <= LINF_LEVELMAP_MAX_LEVELS; levels++)
            for (int p = 0; p < NUM_LM_PATTERNS; p++) {
                const uint32_t w = shapes[si][0], h = shapes[si][1];
                CONTEXT("level map round trip %s %ux%u levels %u", LM_PATTERN_NAMES[p], (unsigned)w, (unsigned)h,
                        (unsigned)levels);
                uint8_t *map = make_levelmap(w, h, levels, (enum lm_pattern)p);
                levelmap_roundtrip(map, w, h, levels);
                free(map);
            }
    /* Random shapes, random levels, noise or blocks. */
    for (int trial = 0; trial < 60; trial++) {
        const uint32_t w = 1 + rnd() % 90, h = 1 + rnd() % 90, levels = 1 + rnd() % LINF_LEVELMAP_MAX_LEVELS;
        CONTEXT("level map round trip trial %d %ux%u levels %u", trial, (unsigned)w, (unsigned)h, (unsigned)levels);
        uint8_t *map = make_levelmap(w, h, levels, (enum lm_pattern)(rnd() % NUM_LM_PATTERNS));
        levelmap_roundtrip(map, w, h, levels);
        free(map);
    }
}

/* A uniform map costs a few bytes; regions cost far less than noise; noise needs ~log2(levels). */
static void test_levelmap_compresses(void)
{
    for (uint32_t v = 0; v < LINF_LEVELMAP_MAX_LEVELS; v++) {
        uint8_t *map = xmalloc(64 * 64);
        memset(map, (int)v, 64 * 64);
        size_t n = 0;
        CONTEXT("64x64 level map, all %u", (unsigned)v);
        uint8_t *s = encode_levelmap_exact(map, 64, 64, LINF_LEVELMAP_MAX_LEVELS, &n);
        if (s && !CHECK(n < 40)) fprintf(stderr, "  %zu bytes\n", n);
        free(s);
        free(map);
    }
    size_t noise = 0, blocks = 0;
    uint8_t *a = make_levelmap(128, 128, 8, LM_NOISE), *b = make_levelmap(128, 128, 8, LM_BLOCKS);
    CONTEXT("128x128 level maps, 8 levels");
    uint8_t *sa = encode_levelmap_exact(a, 128, 128, 8, &noise), *sb = encode_levelmap_exact(b, 128, 128, 8, &blocks);
    CHECK(noise >= 128 * 128 * 3 / 8 * 99 / 100 && noise <= 128 * 128 * 3 / 8 * 103 / 100);
    CHECK(blocks * 4 < noise);
    free(sa);
    free(sb);
    free(a);
    free(b);
}

static void test_levelmap_misuse(void)
{
    uint8_t map[16] = {0}, dst[256], out[16];
    size_t written = 0;
    CONTEXT("level map misuse");
    CHECK(linf_levelmap_max_bytes(1, 1) > 0);
    CHECK(linf_levelmap_max_bytes(4, 4) >= linf_levelmap_max_bytes(4, 3));
    CHECK(linf_levelmap_max_bytes(LINF_MAX_DIMENSION, LINF_MAX_DIMENSION) >=
          (size_t)LINF_MAX_DIMENSION * LINF_MAX_DIMENSION);

    CHECK_STATUS(linf_encode_levelmap(NULL, 4, 4, 2, dst, sizeof dst, &written), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 4, 2, NULL, sizeof dst, &written), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 4, 2, dst, sizeof dst, NULL), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_encode_levelmap(map, 0, 4, 2, dst, sizeof dst, &written), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 0, 2, dst, sizeof dst, &written), LINF_ERR_INVALID_DIMENSIONS);
    /* Refused before the (16-byte) map is read. */
    CHECK_STATUS(linf_encode_levelmap(map, LINF_MAX_DIMENSION + 1, 1, 2, dst, sizeof dst, &written),
                 LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_encode_levelmap(map, 1, LINF_MAX_DIMENSION + 1, 2, dst, sizeof dst, &written),
                 LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 4, 0, dst, sizeof dst, &written), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 4, LINF_LEVELMAP_MAX_LEVELS + 1, dst, sizeof dst, &written),
                 LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 4, 256, dst, sizeof dst, &written), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_encode_levelmap(map, 4, 4, 1, dst, sizeof dst, &written), LINF_OK);
    const size_t n = written;

    CHECK_STATUS(linf_decode_levelmap(NULL, n, 4, 4, 2, out), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_decode_levelmap(dst, n, 4, 4, 2, NULL), LINF_ERR_NULL_ARGUMENT);
    CHECK_STATUS(linf_decode_levelmap(dst, n, 0, 4, 2, out), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_decode_levelmap(dst, n, 4, 0, 2, out), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_decode_levelmap(dst, n, LINF_MAX_DIMENSION + 1, 1, 2, out), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_decode_levelmap(dst, n, 4, 4, 0, out), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_decode_levelmap(dst, n, 4, 4, LINF_LEVELMAP_MAX_LEVELS + 1, out), LINF_ERR_INVALID_DIMENSIONS);
    CHECK_STATUS(linf_decode_levelmap(dst, n, 4, 4, 1, out), LINF_OK);

    /* Symbols >= levels are refused by the encoder, wherever they are. */
    for (uint32_t levels = 1; levels <= LINF_LEVELMAP_MAX_LEVELS; levels++) {
        const uint32_t w = 9, h = 7;
        uint8_t *m = make_levelmap(w, h, levels, LM_NOISE);
        uint8_t *buf = xmalloc(linf_levelmap_max_bytes(w, h));
        const size_t spots[] = {0, w - 1, w, (size_t)w * h / 2, (size_t)w * h - 1};
        const uint32_t bad[] = {levels, levels + 1, 255};
        for (size_t si = 0; si < sizeof spots / sizeof spots[0]; si++)
            for (size_t bi = 0; bi < sizeof bad / sizeof bad[0]; bi++) {
                const uint8_t keep = m[spots[si]];
                m[spots[si]] = (uint8_t)bad[bi];
                CONTEXT("level map levels %u, symbol %u at %zu", (unsigned)levels, (unsigned)bad[bi], spots[si]);
                CHECK_STATUS(linf_encode_levelmap(m, w, h, levels, buf, linf_levelmap_max_bytes(w, h), &written),
                             LINF_ERR_SAMPLE_OUT_OF_RANGE);
                m[spots[si]] = keep;
            }
        free(buf);
        free(m);
    }

    /* Every capacity below the size (buffers of exactly that size) is refused; the size fits. */
    for (int k = 0; k < 3; k++) {
        const uint32_t w = k == 0 ? 1 : 23, h = k == 0 ? 1 : 17;
        uint8_t *m = make_levelmap(w, h, 8, k == 2 ? LM_BLOCKS : LM_NOISE);
        size_t size = 0;
        CONTEXT("level map capacities, case %d", k);
        uint8_t *s = encode_levelmap_exact(m, w, h, 8, &size);
        for (size_t cap = 0; s && cap <= size; cap++) {
            uint8_t *buf = xmalloc(cap);
            CONTEXT("level map case %d, capacity %zu of %zu", k, cap, size);
            if (cap < size) {
                CHECK_STATUS(linf_encode_levelmap(m, w, h, 8, buf, cap, &written), LINF_ERR_BUFFER_TOO_SMALL);
            } else if (CHECK_STATUS(linf_encode_levelmap(m, w, h, 8, buf, cap, &written), LINF_OK)) {
                CHECK(written == size && memcmp(buf, s, size) == 0);
            }
            free(buf);
        }
        free(s);
        free(m);
    }
}

/* Decodes damaged bytes into an exactly sized map (ASan) or one with guard bytes (plain builds):
 * an error, or a map of valid symbols; never a write past width * height. Returns the status. */
static linf_status decode_levelmap_damaged(const uint8_t *s, size_t n, uint32_t w, uint32_t h, uint32_t levels,
                                           int guarded)
{
    const size_t count = (size_t)w * h;
    uint8_t *src = dup_bytes(s, n); /* exact size: ASan catches a read past it */
    uint8_t *out = guarded ? guarded_map(count) : xmalloc(count);
    const linf_status st = linf_decode_levelmap(src, n, w, h, levels, out);
    CHECK(st == LINF_OK || st == LINF_ERR_TRUNCATED || st == LINF_ERR_CORRUPT_PAYLOAD);
    if (st == LINF_OK) {
        CHECK(levelmap_top(out, count) < levels);
        /* Deterministic: the same bytes decode to the same map. */
        uint8_t *again = xmalloc(count);
        CHECK(linf_decode_levelmap(src, n, w, h, levels, again) == LINF_OK && memcmp(again, out, count) == 0);
        free(again);
    }
    if (guarded) CHECK(guard_intact(out, count));
    free(out);
    free(src);
    return st;
}

static void test_levelmap_truncation(void)
{
    const struct { uint32_t w, h, levels; enum lm_pattern p; } cases[] = {
        {1, 1, 2, LM_NOISE}, {37, 53, 8, LM_NOISE}, {37, 53, 5, LM_BLOCKS}, {256, 3, 3, LM_NOISE},
        {1, 200, 8, LM_STRIPES}, {64, 64, 1, LM_NOISE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const uint32_t w = cases[k].w, h = cases[k].h, levels = cases[k].levels;
        uint8_t *map = make_levelmap(w, h, levels, cases[k].p);
        size_t n = 0;
        CONTEXT("level map truncation case %zu", k);
        uint8_t *s = encode_levelmap_exact(map, w, h, levels, &n);
        size_t refused = 0, long_cuts = 0;
        for (size_t len = 0; s && len < n; len++) {
            CONTEXT("level map case %zu (%ux%u levels %u) cut to %zu of %zu bytes", k, (unsigned)w, (unsigned)h,
                    (unsigned)levels, len, n);
            const linf_status st = decode_levelmap_damaged(s, len, w, h, levels, (int)(len & 1));
            if (len + 16 < n) {
                long_cuts++;
                refused += st != LINF_OK;
            }
        }
        /* A noisy map's stream is dense: losing more than 16 bytes of it is nearly always noticed.
         * Not always: the zeros read past the end decode as symbol 0, and from a fresh model (a cut
         * to 0 or 1 bytes) a small all-zero map costs under 8 bytes, so it decodes. The container's
         * CRC of the map bytes is what catches that. */
        if (cases[k].p == LM_NOISE && levels > 1) {
            CONTEXT("level map case %zu: %zu of %zu long cuts refused", k, refused, long_cuts);
            CHECK(refused * 10 >= long_cuts * 9);
        }
        free(s);
        free(map);
    }
}

static void test_levelmap_damage(void)
{
    const struct { uint32_t w, h, levels; enum lm_pattern p; } cases[] = {
        {37, 53, 8, LM_NOISE}, {37, 53, 6, LM_BLOCKS}, {16, 16, 2, LM_STRIPES}, {1, 1, 8, LM_NOISE},
        {200, 1, 4, LM_NOISE}, {64, 64, 8, LM_CONST_TOP},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const uint32_t w = cases[k].w, h = cases[k].h, levels = cases[k].levels;
        uint8_t *map = make_levelmap(w, h, levels, cases[k].p);
        size_t n = 0;
        CONTEXT("level map damage case %zu", k);
        uint8_t *s = encode_levelmap_exact(map, w, h, levels, &n);
        for (int trial = 0; s && trial < 1500; trial++) {
            uint8_t *e = dup_bytes(s, n);
            const int flips = 1 + (int)(rnd() % 8);
            for (int f = 0; f < flips; f++) {
                if (rnd() & 1)
                    e[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
                else
                    e[rnd() % n] = (uint8_t)rnd();
            }
            /* Some also cut short, and decoded as a map of another shape and levels. */
            const size_t len = trial % 5 == 0 ? rnd() % (n + 1) : n;
            CONTEXT("level map damage case %zu trial %d (%d flips, %zu of %zu bytes)", k, trial, flips, len, n);
            decode_levelmap_damaged(e, len, w, h, levels, trial & 1);
            if (trial % 7 == 0) decode_levelmap_damaged(e, len, h, w, 1 + rnd() % LINF_LEVELMAP_MAX_LEVELS, 1);
            free(e);
        }
        free(s);
        free(map);
    }
    /* Pure garbage of every small length and some longer ones, for many shapes and levels. */
    for (int trial = 0; trial < 3000; trial++) {
        const size_t n = trial < 64 ? (size_t)trial : rnd() % 600;
        uint8_t *g = xmalloc(n);
        const int fill = (int)(rnd() % 4);
        for (size_t i = 0; i < n; i++) g[i] = fill == 0 ? 0x00 : fill == 1 ? 0xFF : (uint8_t)rnd();
        const uint32_t w = 1 + rnd() % 70, h = 1 + rnd() % 70, levels = 1 + rnd() % LINF_LEVELMAP_MAX_LEVELS;
        CONTEXT("level map garbage trial %d (%zu bytes, fill %d) %ux%u levels %u", trial, n, fill, (unsigned)w,
                (unsigned)h, (unsigned)levels);
        decode_levelmap_damaged(g, n, w, h, levels, trial & 1);
        free(g);
    }
}

/* options.format_version: 0 and 6 write format 6 for multichannel images, 4 writes format 4 (which
 * decodes), gray images are format 3 whatever is asked, and any other version is refused. */
static void test_format_choice(void)
{
    linf_image_desc d;
    size_t n;
    uint8_t *colour = small_stream(&d, &n);
    const size_t pb = linf_pixel_bytes(&d);
    uint8_t *pixels = xmalloc(pb), *out = xmalloc(pb), *dst = xmalloc(linf_max_encoded_size(&d));
    CHECK_STATUS(linf_decode(colour, n, pixels, pb, 0), LINF_OK); /* some image of that shape */
    d.tau = 0; /* lossless: each decode must give the pixels back exactly */
    linf_image_desc gray = d;
    gray.channels = 1;
    const uint32_t versions[] = {0, 3, 4, 5, 6, 7, 255};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        linf_options o;
        memset(&o, 0, sizeof o);
        o.format_version = versions[i];
        const int valid = versions[i] == 0 || versions[i] == 4 || versions[i] == LINF_FORMAT_VERSION;
        for (int g = 0; g < 2; g++) {
            const linf_image_desc *dd = g ? &gray : &d;
            size_t written = 0;
            CONTEXT("format_version %u, %s", versions[i], g ? "gray" : "colour");
            const linf_status st = linf_encode_ex(dd, pixels, pb, dst, linf_max_encoded_size(&d), &written, NULL, 0, &o);
            if (!valid) {
                CHECK_STATUS(st, LINF_ERR_BAD_VERSION);
                continue;
            }
            CHECK_STATUS(st, LINF_OK);
            CHECK(dst[4] == (g ? 3u : (versions[i] == 4 ? 4u : LINF_FORMAT_VERSION)));
            CHECK_STATUS(linf_decode(dst, written, out, linf_pixel_bytes(dd), 0), LINF_OK);
            CHECK(memcmp(out, pixels, linf_pixel_bytes(dd)) == 0);
        }
    }
    free(pixels);
    free(out);
    free(dst);
    free(colour);
}

/* The format-6 error regression recovers an exact linear relation between a residual and some of
 * its regressors (the others noise: weight 0), gives a regressor that stays zero the weight 0, and
 * waits for REGRESSION_MIN_COUNT samples before it predicts anything. */
static void test_error_regression(void)
{
    error_regression g;
    memset(&g, 0, sizeof g);
    int32_t e[REGRESSORS];
    for (int i = 0; i < 3000; i++) {
        for (int k = 0; k < REGRESSORS; k++) e[k] = k == 1 ? 0 : (int32_t)(rnd() % 41) - 20;
        CONTEXT("regression sample %d", i);
        if (i < REGRESSION_MIN_COUNT - 1) CHECK(regression_term(&g, e) == 0);
        regression_update(&g, 24 * (int64_t)e[0] - 16 * (int64_t)e[3] + 4 * (int64_t)e[7], e); /* 3, -2, 0.5 */
    }
    CONTEXT("regression weights");
    const int32_t unit = 1 << REGRESSION_FRAC_BITS; /* the ridge of 1 against sums of ~10^5: 1e-5 */
    CHECK(abs(g.beta[0] - 24 * unit) <= 4 && abs(g.beta[3] + 16 * unit) <= 4 && abs(g.beta[7] - 4 * unit) <= 4);
    CHECK(g.beta[1] == 0);
    for (int k = 2; k < REGRESSORS; k++)
        if (k != 3 && k != 7) CHECK(abs(g.beta[k]) <= 4);
    for (int k = 0; k < REGRESSORS; k++) e[k] = k == 1 ? 0 : 5 - k;
    CHECK(abs(regression_term(&g, e) - (24 * 5 - 16 * 2 + 4 * -2)) <= 1);
    CHECK(g.count < REGRESSION_COUNT && g.count >= REGRESSION_COUNT / 2);
    /* All regressors zero: nothing to learn, weights 0. */
    error_regression zero;
    memset(&zero, 0, sizeof zero);
    memset(e, 0, sizeof e);
    for (int i = 0; i < 600; i++) regression_update(&zero, 8, e);
    for (int k = 0; k < REGRESSORS; k++) CHECK(zero.beta[k] == 0);
}

/* The mixer learns: on a stream of zeros, the mixed probability of a 0 rises above the inputs'
 * estimates it started from; encoding and decoding the same bits with mix3 agree. */
static void test_mixer(void)
{
    CONTEXT("mixer");
    mixer m;
    mixer_init(&m, MIX_WEIGHT_ONE / 2, MIX_WEIGHT_ONE / 2);
    const int32_t st[MIX_INPUTS] = {stretch16(40000), stretch16(40000), 0, 256};
    const uint32_t before = mix_p0(&m, st);
    CHECK(before > 39000 && before < 41000); /* the mean of two equal logits */
    for (int i = 0; i < 2000; i++) mix_update(&m, st, mix_p0(&m, st), 0);
    CHECK(mix_p0(&m, st) > before + 10000);
    uint8_t buf[4096];
    rc_encoder enc;
    rc_enc_init(&enc, buf, sizeof buf);
    mixer me, md;
    rc_bit a[3], b[3];
    mixer_init(&me, MIX_WEIGHT_ONE / 2, MIX_WEIGHT_ONE / 2);
    mixer_init(&md, MIX_WEIGHT_ONE / 2, MIX_WEIGHT_ONE / 2);
    for (int i = 0; i < 3; i++) { rc_bit_init(&a[i]); rc_bit_init(&b[i]); }
    uint8_t bits[3000];
    for (int i = 0; i < 3000; i++) bits[i] = (uint8_t)(rnd() % 7 == 0);
    for (int i = 0; i < 3000; i++) mix3_encode(&enc, &me, &a[0], &a[1], &a[2], bits[i]);
    rc_enc_finish(&enc);
    CHECK(!enc.overflow && enc.size < 3000 / 8); /* p(1) = 1/7: about 0.59 bit each */
    rc_decoder dec;
    rc_dec_init(&dec, buf, enc.size);
    int same = 1;
    for (int i = 0; i < 3000; i++) same &= mix3_decode(&dec, &md, &b[0], &b[1], &b[2]) == bits[i];
    CHECK(same);
    CHECK(memcmp(&me, &md, sizeof me) == 0);
}

int main(void)
{
    test_version_and_messages();
    test_error_regression();
    test_mixer();
    test_format_choice();
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
    test_stripes();
    test_stripe_damage();
    test_signed();
    test_format2();
    test_levelmap_misuse();
    test_levelmap_roundtrips();
    test_levelmap_compresses();
    test_levelmap_truncation();
    test_levelmap_damage();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
