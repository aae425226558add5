/*
 * linf_codec: near-lossless (L-infinity bounded) predictive image codec.
 *
 * Every reconstructed sample differs from the original by at most tau
 * (tau = 0 is bit-exact lossless). Pure C99, no globals, no allocation
 * visible to the caller, no printing: the caller owns every buffer.
 *
 * Usage:
 *   encode: size = linf_max_encoded_size(&desc); allocate; linf_encode(...)
 *   decode: linf_read_header(...) -> size from header; allocate; linf_decode(...)
 */
#ifndef LINF_CODEC_H
#define LINF_CODEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 = success; 1..99 = bad or unsupported data; 100+ = caller misuse. */
typedef enum linf_status {
    LINF_OK = 0,
    LINF_ERR_TRUNCATED = 1,          /* stream shorter than its header says */
    LINF_ERR_BAD_MAGIC = 2,          /* not a linf stream */
    LINF_ERR_BAD_VERSION = 3,        /* format version this build cannot read */
    LINF_ERR_BAD_HEADER = 4,         /* header fields out of range or inconsistent */
    LINF_ERR_CRC_MISMATCH = 5,       /* payload checksum does not match */
    LINF_ERR_CORRUPT_PAYLOAD = 6,    /* payload decodes to invalid data */
    LINF_ERR_TOO_LARGE = 7,          /* image exceeds the decoder's size limit */
    LINF_ERR_NULL_ARGUMENT = 100,    /* a required pointer is NULL */
    LINF_ERR_INVALID_DIMENSIONS = 101, /* width/height/channels zero or too large */
    LINF_ERR_INVALID_BIT_DEPTH = 102,  /* bit depth outside 1..16 */
    LINF_ERR_INVALID_TAU = 103,        /* tau outside 0..(2^bit_depth - 1) / 2 */
    LINF_ERR_SAMPLE_OUT_OF_RANGE = 104, /* a sample exceeds 2^bit_depth - 1 */
    LINF_ERR_BUFFER_TOO_SMALL = 105,   /* destination or source buffer too small */
    LINF_ERR_OUT_OF_MEMORY = 106       /* internal working memory not available */
} linf_status;

/* Image geometry and coding parameters. Samples are interleaved H x W x C,
 * one byte each when bit_depth <= 8, else native-endian uint16. */
typedef struct linf_image_desc {
    uint32_t width;
    uint32_t height;
    uint32_t channels;   /* 1..LINF_MAX_CHANNELS */
    uint32_t bit_depth;  /* 1..16 */
    uint32_t tau;        /* 0..(2^bit_depth - 1) / 2 */
} linf_image_desc;

/* What a stream's header says. */
typedef struct linf_header {
    linf_image_desc desc;
    uint32_t format_version;
    uint32_t coding_mode;      /* 0 = predictive, 1 = stored raw (incompressible input) */
    uint64_t payload_bytes;
    uint32_t payload_crc32;
    size_t header_bytes;
} linf_header;

#define LINF_FORMAT_VERSION 2u
#define LINF_HEADER_BYTES 36u
#define LINF_MAX_CHANNELS 256u
#define LINF_MAX_DIMENSION (1u << 20)          /* per side */
#define LINF_MAX_SAMPLES ((uint64_t)1 << 32)   /* width * height * channels */
#define LINF_MAX_ROW_SAMPLES (1u << 22)        /* width * channels: bounds the row buffers (~370 MB) */

const char *linf_version(void);

/* One English sentence per status code (never NULL). */
const char *linf_error_message(linf_status status);

/* Bytes the pixel buffer of desc occupies (0 if desc is invalid). */
size_t linf_pixel_bytes(const linf_image_desc *desc);

/* An upper bound of linf_encode's output for desc (0 if desc is invalid). */
size_t linf_max_encoded_size(const linf_image_desc *desc);

/* Encode pixels (pixel_bytes = linf_pixel_bytes(desc)) into dst. */
linf_status linf_encode(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                        uint8_t *dst, size_t dst_capacity, size_t *written);

/* As linf_encode, and also writes what linf_decode will return for the stream into reconstruction
 * (reconstruction_bytes >= pixel_bytes): the encoder computes it anyway, so callers that need both
 * (training pipelines) save a full decode. */
linf_status linf_encode_reconstruct(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                                    uint8_t *dst, size_t dst_capacity, size_t *written,
                                    void *reconstruction, size_t reconstruction_bytes);

/* Parse and validate the header of src (does not check the payload). */
linf_status linf_read_header(const uint8_t *src, size_t src_bytes, linf_header *header);

/* Decode src into pixels (pixel_bytes >= linf_pixel_bytes of its header).
 * max_samples caps width*height*channels (0 = LINF_MAX_SAMPLES). */
linf_status linf_decode(const uint8_t *src, size_t src_bytes, void *pixels, size_t pixel_bytes,
                        uint64_t max_samples);

#ifdef __cplusplus
}
#endif
#endif /* LINF_CODEC_H */
