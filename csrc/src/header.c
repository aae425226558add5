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
    return LINF_OK;
}

void linf_write_header(uint8_t *dst, const linf_header *h)
{
    dst[0] = 'L'; dst[1] = 'I'; dst[2] = 'N'; dst[3] = 'F';
    dst[4] = (uint8_t)h->format_version;
    dst[5] = (uint8_t)h->coding_mode;
    dst[6] = (uint8_t)h->desc.bit_depth;
    dst[7] = 0;
    put_u32(dst + 8, h->desc.width);
    put_u32(dst + 12, h->desc.height);
    put_u16(dst + 16, h->desc.channels);
    put_u16(dst + 18, h->desc.tau);
    put_u32(dst + 20, (uint32_t)h->payload_bytes);
    put_u32(dst + 24, (uint32_t)(h->payload_bytes >> 32));
    put_u32(dst + 28, h->payload_crc32);
    put_u32(dst + 32, linf_crc32(dst, 32));
}

static linf_status check_payload_size(const linf_header *h)
{
    const uint64_t samples = (uint64_t)h->desc.width * h->desc.height * h->desc.channels;
    if (h->coding_mode == LINF_MODE_RAW) {
        const uint64_t bytes = samples * (h->desc.bit_depth > 8 ? 2u : 1u);
        return h->payload_bytes == bytes ? LINF_OK : LINF_ERR_BAD_HEADER;
    }
    if (h->payload_bytes == 0 || h->payload_bytes > ((uint64_t)1 << 40)) return LINF_ERR_BAD_HEADER;
    if (samples / MAX_SAMPLES_PER_PAYLOAD_BYTE > h->payload_bytes) return LINF_ERR_BAD_HEADER;
    return LINF_OK;
}

linf_status linf_parse_header(const uint8_t *src, size_t src_bytes, linf_header *h)
{
    if (src_bytes < LINF_HEADER_BYTES) return LINF_ERR_TRUNCATED;
    if (src[0] != 'L' || src[1] != 'I' || src[2] != 'N' || src[3] != 'F') return LINF_ERR_BAD_MAGIC;
    if (src[4] != LINF_FORMAT_VERSION) return LINF_ERR_BAD_VERSION;
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
    if (src[7] != 0 || h->coding_mode > LINF_MODE_RAW) return LINF_ERR_BAD_HEADER;
    if (linf_check_desc(&h->desc) != LINF_OK) return LINF_ERR_BAD_HEADER;
    return check_payload_size(h);
}
