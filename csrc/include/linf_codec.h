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
 *   striped, multi-threaded (format 3): linf_max_encoded_size_ex / linf_encode_ex / linf_decode_ex
 *   with a linf_options. The bytes of a stream depend on the stripe height, never on the thread
 *   count. Threads are POSIX threads created and joined inside the call; no state outlives it.
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
    LINF_ERR_TRAILING_DATA = 8,      /* bytes after the end of the stream (a stream must be exact) */
    LINF_ERR_NULL_ARGUMENT = 100,    /* a required pointer is NULL */
    LINF_ERR_INVALID_DIMENSIONS = 101, /* width/height/channels zero or too large */
    LINF_ERR_INVALID_BIT_DEPTH = 102,  /* bit depth outside 1..16 */
    LINF_ERR_INVALID_TAU = 103,        /* tau outside 0..(2^bit_depth - 1) / 2 */
    LINF_ERR_SAMPLE_OUT_OF_RANGE = 104, /* a sample exceeds 2^bit_depth - 1 */
    LINF_ERR_BUFFER_TOO_SMALL = 105,   /* destination or source buffer too small */
    LINF_ERR_OUT_OF_MEMORY = 106       /* internal working memory not available */
} linf_status;

/* Image geometry and coding parameters. Samples are interleaved H x W x C, one byte each when
 * bit_depth <= 8, else native-endian 16-bit. Unsigned samples (is_signed = 0) lie in
 * 0..2^bit_depth - 1 (uint8/uint16); signed ones (is_signed = 1, format 3) are two's complement
 * (int8/int16) in -2^(bit_depth-1)..2^(bit_depth-1) - 1 and are coded as the unsigned samples
 * v + 2^(bit_depth-1) (an order-preserving shift, so |decoded - original| <= tau still holds). */
typedef struct linf_image_desc {
    uint32_t width;
    uint32_t height;
    uint32_t channels;   /* 1..LINF_MAX_CHANNELS */
    uint32_t bit_depth;  /* 1..16 */
    uint32_t tau;        /* 0..(2^bit_depth - 1) / 2 */
    uint32_t is_signed;  /* 0 or 1; zero-initialise the struct so older callers get 0 */
} linf_image_desc;

/* What a stream's header says. A stream is exactly header_bytes + payload_bytes long. */
typedef struct linf_header {
    linf_image_desc desc;
    uint32_t format_version;
    uint32_t coding_mode;      /* 0 = predictive, 1 = stored raw (incompressible input); striped: 0,
                                * each stripe has its own mode */
    uint64_t payload_bytes;    /* coded samples (all stripes), excluding the stripe table */
    uint32_t payload_crc32;    /* CRC-32 of the payload; striped: of the stripe table */
    size_t header_bytes;       /* LINF_HEADER_BYTES, plus the stripe table when striped */
    uint32_t stripe_height;    /* rows per stripe (the last may be shorter); height when not striped */
    uint32_t stripe_count;     /* 1 when not striped */
} linf_header;

/* Options of the _ex functions; zero-initialise and set what you need. */
typedef struct linf_options {
    uint32_t threads;          /* worker threads, the calling thread included (0 or 1: just it) */
    uint32_t stripe_height;    /* encode: rows per independent stripe; 0 (or >= height): one stripe,
                                * no stripe table (the same payload bytes as format 2) */
    uint64_t max_samples;      /* decode: cap on width*height*channels (0 = LINF_MAX_SAMPLES) */
    uint32_t format_version;   /* encode: 0 = LINF_FORMAT_VERSION; 4 writes multichannel images in
                                * format 4 (about 1.7 x faster, 1.5-7 % larger); gray images are
                                * format 3 either way; anything else is LINF_ERR_BAD_VERSION */
} linf_options;

#define LINF_FORMAT_VERSION 6u         /* written for multichannel images (gray: 3); 2, 3, 4 and 6 are read */
#define LINF_FORMAT_VERIFIED 5u        /* not a codec stream: the Python layer's verified-restoration container */
#define LINF_OLDEST_FORMAT_VERSION 2u
#define LINF_HEADER_BYTES 36u           /* fixed part; a striped stream adds its stripe table */
#define LINF_STRIPE_TABLE_BYTES(count) (8u + 16u * (size_t)(count))
#define LINF_MAX_THREADS 256u
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

/* An upper bound of linf_encode_ex's output for desc with that stripe height (0 if invalid). */
size_t linf_max_encoded_size_ex(const linf_image_desc *desc, uint32_t stripe_height);

/* Encode pixels (pixel_bytes = linf_pixel_bytes(desc)) into dst. */
linf_status linf_encode(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                        uint8_t *dst, size_t dst_capacity, size_t *written);

/* As linf_encode, and also writes what linf_decode will return for the stream into reconstruction
 * (reconstruction_bytes >= pixel_bytes): the encoder computes it anyway, so callers that need both
 * (training pipelines) save a full decode. */
linf_status linf_encode_reconstruct(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                                    uint8_t *dst, size_t dst_capacity, size_t *written,
                                    void *reconstruction, size_t reconstruction_bytes);

/* As linf_encode_reconstruct (reconstruction may be NULL), with options: stripe_height splits the
 * image into independently coded stripes (each falls back to raw storage on its own), coded on up
 * to options->threads threads. options may be NULL (one stripe, one thread). */
linf_status linf_encode_ex(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                           uint8_t *dst, size_t dst_capacity, size_t *written,
                           void *reconstruction, size_t reconstruction_bytes, const linf_options *options);

/* Parse and validate the header of src (does not check the payload). src may be longer than the
 * header; a striped stream's stripe table must be complete (it is validated, CRC included). */
linf_status linf_read_header(const uint8_t *src, size_t src_bytes, linf_header *header);

/* Decode src into pixels (pixel_bytes >= linf_pixel_bytes of its header). src_bytes must be the
 * stream's exact length: shorter is LINF_ERR_TRUNCATED, longer LINF_ERR_TRAILING_DATA.
 * max_samples caps width*height*channels (0 = LINF_MAX_SAMPLES). */
linf_status linf_decode(const uint8_t *src, size_t src_bytes, void *pixels, size_t pixel_bytes,
                        uint64_t max_samples);

/* As linf_decode, with options (threads, max_samples; NULL: one thread, no cap beyond the
 * format's). If failed_stripe is not NULL it receives the index of the lowest stripe whose
 * checksum or payload is bad, or -1 when the error is not a stripe's (or there is none). */
linf_status linf_decode_ex(const uint8_t *src, size_t src_bytes, void *pixels, size_t pixel_bytes,
                           const linf_options *options, int64_t *failed_stripe);

/* Level maps of encoder-verified restoration (format 5, written by the Python runtime layer): a
 * width x height map of symbols below `levels` (<= LINF_LEVELMAP_MAX_LEVELS), context-coded. */
#define LINF_LEVELMAP_MAX_LEVELS 8u
size_t linf_levelmap_max_bytes(uint32_t width, uint32_t height);
linf_status linf_encode_levelmap(const uint8_t *map, uint32_t width, uint32_t height, uint32_t levels,
                                 uint8_t *dst, size_t capacity, size_t *written);
/* Decodes into `map` (width * height bytes); a symbol >= levels is LINF_ERR_CORRUPT_PAYLOAD. */
linf_status linf_decode_levelmap(const uint8_t *src, size_t src_bytes, uint32_t width, uint32_t height,
                                 uint32_t levels, uint8_t *map);

#ifdef __cplusplus
}
#endif
#endif /* LINF_CODEC_H */
