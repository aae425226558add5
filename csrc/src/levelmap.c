/* The level map of encoder-verified restoration (stream format 5): one small symbol (0..levels-1,
 * levels <= 8) per block, coded on the codec's adaptive binary range coder. Each symbol is three
 * decisions down a binary tree; the context is the left and upper neighbours' symbols, because a
 * network is wrong (or right) in regions larger than a block. Pure C, no Python: fuzzed with the
 * rest of the core. */
#include <stdint.h>
#include <stdlib.h>

#include "linf_codec.h"
#include "rangecoder.h"

#define LEVELMAP_BITS 3u
#define LEVELMAP_NODES (1u << LEVELMAP_BITS)
#define LEVELMAP_CONTEXTS (LINF_LEVELMAP_MAX_LEVELS * LINF_LEVELMAP_MAX_LEVELS)

typedef struct levelmap_model {
    rc_bit node[LEVELMAP_CONTEXTS][LEVELMAP_NODES];
} levelmap_model;

static levelmap_model *new_model(void)
{
    levelmap_model *m = malloc(sizeof *m);
    if (m == NULL) return NULL;
    for (unsigned c = 0; c < LEVELMAP_CONTEXTS; c++)
        for (unsigned n = 0; n < LEVELMAP_NODES; n++)
            rc_bit_init(&m->node[c][n]);
    return m;
}

/* Neighbours outside the map count as symbol 0. */
static unsigned context_at(const uint8_t *map, uint32_t width, uint32_t x, uint32_t y)
{
    const unsigned left = x > 0 ? map[(size_t)y * width + x - 1] : 0u;
    const unsigned up = y > 0 ? map[(size_t)(y - 1) * width + x] : 0u;
    return left * LINF_LEVELMAP_MAX_LEVELS + up;
}

static linf_status check_args(const void *map, uint32_t width, uint32_t height, uint32_t levels)
{
    if (map == NULL) return LINF_ERR_NULL_ARGUMENT;
    if (width == 0 || height == 0 || width > LINF_MAX_DIMENSION || height > LINF_MAX_DIMENSION)
        return LINF_ERR_INVALID_DIMENSIONS;
    if (levels == 0 || levels > LINF_LEVELMAP_MAX_LEVELS) return LINF_ERR_INVALID_DIMENSIONS;
    return LINF_OK;
}

size_t linf_levelmap_max_bytes(uint32_t width, uint32_t height)
{
    /* Three decisions per symbol can each cost up to ~11 bits at the probability floor. */
    const uint64_t bytes = (uint64_t)width * height * 5u + 16u;
    return bytes > SIZE_MAX ? 0 : (size_t)bytes; /* 0: too large for this platform */
}

linf_status linf_encode_levelmap(const uint8_t *map, uint32_t width, uint32_t height, uint32_t levels,
                                 uint8_t *dst, size_t capacity, size_t *written)
{
    linf_status status = check_args(map, width, height, levels);
    if (status != LINF_OK) return status;
    if (dst == NULL || written == NULL) return LINF_ERR_NULL_ARGUMENT;
    const size_t count = (size_t)width * height;
    for (size_t i = 0; i < count; i++)
        if (map[i] >= levels) return LINF_ERR_SAMPLE_OUT_OF_RANGE;
    levelmap_model *m = new_model();
    if (m == NULL) return LINF_ERR_OUT_OF_MEMORY;
    rc_encoder rc;
    rc_enc_init(&rc, dst, capacity);
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++) {
            rc_bit *tree = m->node[context_at(map, width, x, y)];
            const unsigned symbol = map[(size_t)y * width + x];
            unsigned node = 1;
            for (int b = (int)LEVELMAP_BITS - 1; b >= 0; b--) {
                const int bit = (int)((symbol >> b) & 1u);
                rc_encode_bit(&rc, &tree[node], bit);
                node = 2 * node + (unsigned)bit;
            }
        }
    }
    rc_enc_finish(&rc);
    free(m);
    *written = rc.size;
    return rc.overflow ? LINF_ERR_BUFFER_TOO_SMALL : LINF_OK;
}

linf_status linf_decode_levelmap(const uint8_t *src, size_t src_bytes, uint32_t width, uint32_t height,
                                 uint32_t levels, uint8_t *map)
{
    linf_status status = check_args(map, width, height, levels);
    if (status != LINF_OK) return status;
    if (src == NULL) return LINF_ERR_NULL_ARGUMENT;
    levelmap_model *m = new_model();
    if (m == NULL) return LINF_ERR_OUT_OF_MEMORY;
    rc_decoder rc;
    rc_dec_init(&rc, src, src_bytes);
    for (uint32_t y = 0; y < height && status == LINF_OK; y++) {
        for (uint32_t x = 0; x < width; x++) {
            rc_bit *tree = m->node[context_at(map, width, x, y)];
            unsigned node = 1;
            for (unsigned b = 0; b < LEVELMAP_BITS; b++)
                node = 2 * node + (unsigned)rc_decode_bit(&rc, &tree[node]);
            const unsigned symbol = node - LEVELMAP_NODES;
            if (symbol >= levels) {
                status = LINF_ERR_CORRUPT_PAYLOAD;
                break;
            }
            map[(size_t)y * width + x] = (uint8_t)symbol;
        }
    }
    free(m);
    /* As in the codec's stripes: a little read-ahead past the end is normal, more is a cut stream
     * (the container's CRC of the map bytes catches any other damage). */
    if (status == LINF_OK && rc.overrun > 8) status = LINF_ERR_TRUNCATED;
    return status;
}
