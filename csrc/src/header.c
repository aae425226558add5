#include "header.h"

#include "crc32.h"

/* A predictive payload spends at least -log2(RC_PROB_MAX / 2^16) ~ 0.0007 bit per sample, i.e.
 * at most ~11,400 samples per byte. A header claiming far more samples than that for its payload
 * is forged or corrupt; refusing it keeps tiny streams from making the decoder allocate gigabytes. */
#define MAX_SAMPLES_PER_PAYLOAD_BYTE 16384u

static void put_u16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32); }

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

uint32_t linf_stripe_count(uint32_t height, uint32_t stripe_height)
{
    if (stripe_height == 0 || stripe_height >= height) return 1;
    return (uint32_t)(((uint64_t)height + stripe_height - 1) / stripe_height);
}

uint32_t linf_stripe_rows(uint32_t height, uint32_t stripe_height, uint32_t i)
{
    const uint64_t y0 = (uint64_t)i * stripe_height;
    const uint64_t left = height - y0;
    return left < stripe_height ? (uint32_t)left : stripe_height;
}

linf_status linf_check_desc(const linf_image_desc *desc)
{
    if (desc->width == 0 || desc->height == 0 || desc->channels == 0 ||
        desc->width > LINF_MAX_DIMENSION || desc->height > LINF_MAX_DIMENSION ||
        desc->channels > LINF_MAX_CHANNELS)
        return LINF_ERR_INVALID_DIMENSIONS;
    const uint64_t samples = (uint64_t)desc->width * desc->height * desc->channels;
    if (samples > LINF_MAX_SAMPLES || (uint64_t)desc->width * desc->channels > LINF_MAX_ROW_SAMPLES)
        return LINF_ERR_INVALID_DIMENSIONS;
    if (desc->bit_depth < 1 || desc->bit_depth > 16) return LINF_ERR_INVALID_BIT_DEPTH;
    if (desc->tau > ((1u << desc->bit_depth) - 1) / 2) return LINF_ERR_INVALID_TAU;
    if (desc->is_signed > 1) return LINF_ERR_INVALID_DIMENSIONS;
    return LINF_OK;
}

void linf_write_header(uint8_t *dst, const linf_header *h)
{
    dst[0] = 'L'; dst[1] = 'I'; dst[2] = 'N'; dst[3] = 'F';
    dst[4] = (uint8_t)h->format_version;
    dst[5] = (uint8_t)h->coding_mode;
    dst[6] = (uint8_t)h->desc.bit_depth;
    dst[7] = (uint8_t)((h->desc.is_signed ? LINF_FLAG_SIGNED : 0u) | (h->stripe_count > 1 ? LINF_FLAG_STRIPED : 0u));
    put_u32(dst + 8, h->desc.width);
    put_u32(dst + 12, h->desc.height);
    put_u16(dst + 16, h->desc.channels);
    put_u16(dst + 18, h->desc.tau);
    put_u32(dst + 20, (uint32_t)h->payload_bytes);
    put_u32(dst + 24, (uint32_t)(h->payload_bytes >> 32));
    put_u32(dst + 28, h->payload_crc32);
    put_u32(dst + 32, linf_crc32(dst, 32));
}

uint32_t linf_write_stripe_table(uint8_t *dst, uint32_t stripe_height, uint32_t count,
                                 const linf_stripe_entry *entries)
{
    put_u32(dst, stripe_height);
    put_u32(dst + 4, count);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = dst + 8 + 16 * (size_t)i;
        put_u64(e, entries[i].bytes);
        put_u32(e + 8, entries[i].crc32);
        e[12] = (uint8_t)entries[i].mode;
        e[13] = e[14] = e[15] = 0;
    }
    return linf_crc32(dst, LINF_STRIPE_TABLE_BYTES(count));
}

linf_stripe_entry linf_read_stripe_entry(const uint8_t *table, uint32_t i)
{
    const uint8_t *e = table + 8 + 16 * (size_t)i;
    linf_stripe_entry entry;
    entry.bytes = get_u64(e);
    entry.crc32 = get_u32(e + 8);
    entry.mode = e[12];
    return entry;
}

/* Whether a payload of `bytes` in `mode` is plausible for `samples` samples of h's image: raw is
 * exactly their size; predictive is non-empty and spends at least 1/MAX_SAMPLES_PER_PAYLOAD_BYTE
 * byte each; palette (format 4, tau = 0, 2-4 channels) holds its 2-byte count and at least one
 * colour, and codes one index per pixel (at least 1/4 of the samples) at the predictive rate;
 * moved-only and interband-3 (format 4, 2+ channels) are predictive. */
static int payload_size_ok(const linf_header *h, uint32_t mode, uint64_t bytes, uint64_t samples)
{
    if (mode == LINF_MODE_RAW) return bytes == samples * (h->desc.bit_depth > 8 ? 2u : 1u);
    if (bytes == 0 || bytes > ((uint64_t)1 << 40)) return 0;
    if (mode == LINF_MODE_PALETTE)
        return h->format_version >= 4 && h->desc.tau == 0 && h->desc.channels >= 2 && h->desc.channels <= 4 &&
               bytes > 2u + h->desc.channels && samples / 4u / MAX_SAMPLES_PER_PAYLOAD_BYTE <= bytes;
    if ((mode == LINF_MODE_MOVED || mode == LINF_MODE_INTERBAND3) && (h->format_version < 4 || h->desc.channels < 2))
        return 0;
    if (mode != LINF_MODE_PREDICTIVE && mode != LINF_MODE_MOVED && mode != LINF_MODE_INTERBAND3) return 0;
    return samples / MAX_SAMPLES_PER_PAYLOAD_BYTE <= bytes;
}

/* Validates the stripe table at src + LINF_HEADER_BYTES (src_bytes long in all) against h. */
static linf_status parse_stripe_table(const uint8_t *src, size_t src_bytes, linf_header *h)
{
    if (src_bytes < LINF_HEADER_BYTES + 8u) return LINF_ERR_TRUNCATED;
    const uint8_t *table = src + LINF_HEADER_BYTES;
    h->stripe_height = get_u32(table);
    h->stripe_count = get_u32(table + 4);
    /* A striped stream has at least two stripes: one stripe is written without a table. */
    if (h->stripe_height == 0 || h->stripe_height >= h->desc.height ||
        h->stripe_count != linf_stripe_count(h->desc.height, h->stripe_height))
        return LINF_ERR_BAD_HEADER;
    const size_t table_bytes = LINF_STRIPE_TABLE_BYTES(h->stripe_count);
    h->header_bytes = LINF_HEADER_BYTES + table_bytes;
    if (src_bytes < h->header_bytes) return LINF_ERR_TRUNCATED;
    if (linf_crc32(table, table_bytes) != h->payload_crc32) return LINF_ERR_BAD_HEADER;
    if (h->coding_mode != LINF_MODE_PREDICTIVE) return LINF_ERR_BAD_HEADER;
    const uint64_t row_samples = (uint64_t)h->desc.width * h->desc.channels;
    uint64_t total = 0; /* at most 2^20 stripes of at most 2^40 bytes: no overflow */
    for (uint32_t i = 0; i < h->stripe_count; i++) {
        const uint8_t *e = table + 8 + 16 * (size_t)i;
        if (e[13] || e[14] || e[15]) return LINF_ERR_BAD_HEADER;
        const linf_stripe_entry entry = linf_read_stripe_entry(table, i);
        const uint64_t samples = row_samples * linf_stripe_rows(h->desc.height, h->stripe_height, i);
        if (!payload_size_ok(h, entry.mode, entry.bytes, samples)) return LINF_ERR_BAD_HEADER;
        total += entry.bytes;
    }
    return total == h->payload_bytes ? LINF_OK : LINF_ERR_BAD_HEADER;
}

linf_status linf_parse_header(const uint8_t *src, size_t src_bytes, linf_header *h)
{
    if (src_bytes < LINF_HEADER_BYTES) return LINF_ERR_TRUNCATED;
    if (src[0] != 'L' || src[1] != 'I' || src[2] != 'N' || src[3] != 'F') return LINF_ERR_BAD_MAGIC;
    if (src[4] < LINF_OLDEST_FORMAT_VERSION || src[4] > LINF_FORMAT_VERSION || src[4] == LINF_FORMAT_VERIFIED)
        return LINF_ERR_BAD_VERSION;
    if (get_u32(src + 32) != linf_crc32(src, 32)) return LINF_ERR_BAD_HEADER;
    h->format_version = src[4];
    h->coding_mode = src[5];
    h->desc.bit_depth = src[6];
    h->desc.width = get_u32(src + 8);
    h->desc.height = get_u32(src + 12);
    h->desc.channels = get_u16(src + 16);
    h->desc.tau = get_u16(src + 18);
    h->payload_bytes = get_u64(src + 20);
    h->payload_crc32 = get_u32(src + 28);
    h->header_bytes = LINF_HEADER_BYTES;
    const uint32_t flags = src[7];
    const uint32_t known = h->format_version >= 3 ? (LINF_FLAG_SIGNED | LINF_FLAG_STRIPED) : 0u;
    const uint32_t last_mode = h->format_version >= 4 ? LINF_MODE_INTERBAND3 : LINF_MODE_RAW;
    if ((flags & ~known) != 0 || h->coding_mode > last_mode) return LINF_ERR_BAD_HEADER;
    h->desc.is_signed = (flags & LINF_FLAG_SIGNED) ? 1u : 0u;
    h->stripe_height = h->desc.height;
    h->stripe_count = 1;
    if (linf_check_desc(&h->desc) != LINF_OK) return LINF_ERR_BAD_HEADER;
    if (flags & LINF_FLAG_STRIPED) return parse_stripe_table(src, src_bytes, h);
    const uint64_t samples = (uint64_t)h->desc.width * h->desc.height * h->desc.channels;
    return payload_size_ok(h, h->coding_mode, h->payload_bytes, samples) ? LINF_OK
                                                                                          : LINF_ERR_BAD_HEADER;
}
