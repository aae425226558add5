/*
 * Binary adaptive range coder (carry-propagating, LZMA-style byte output) with 16-bit
 * probabilities whose adaptation rate slows down as a context sees more symbols.
 *
 * The decoder never reads outside its buffer: past the end it reads zero bytes and counts them,
 * so a truncated or corrupt payload decodes to garbage of the right size, never out of bounds.
 */
#ifndef LINF_RANGECODER_H
#define LINF_RANGECODER_H

#include <stddef.h>
#include <stdint.h>

#define RC_PROB_BITS 16
#define RC_PROB_ONE (1u << RC_PROB_BITS)
#define RC_PROB_MIN 32u                 /* keeps every decision's cost finite and >= 0.0007 bit */
#define RC_PROB_MAX (RC_PROB_ONE - RC_PROB_MIN)
#define RC_TOP (1u << 24)
#ifndef RC_FINAL_SHIFT
#define RC_FINAL_SHIFT 7
#endif
#define RC_ADAPT_LIMIT 60               /* count after which the rate stays at its slowest */

/* Probability that the next bit is 0, plus how many bits this context has seen. */
typedef struct rc_bit {
    uint16_t p0;
    uint16_t count; /* not uint8_t: a char-typed store may alias anything and forces reloads */
} rc_bit;

/* Per count: the adaptation shift (low byte) and the next count, saturating at RC_ADAPT_LIMIT
 * (high byte). One table load gives both, instead of a load, a compare and an increment per bit.
 * Shifts: 1 (first bit), 2, 2, 3 x4, 4 x9, 5 x16, 6 x28, then RC_FINAL_SHIFT. */
#define RC_STEP_ENTRY(count, shift) \
    ((uint16_t)((shift) | ((count) < RC_ADAPT_LIMIT ? (count) + 1 : RC_ADAPT_LIMIT) << 8))
static const uint16_t RC_STEP[RC_ADAPT_LIMIT + 1] = {
    RC_STEP_ENTRY(0, 1), RC_STEP_ENTRY(1, 2), RC_STEP_ENTRY(2, 2), RC_STEP_ENTRY(3, 3),
    RC_STEP_ENTRY(4, 3), RC_STEP_ENTRY(5, 3), RC_STEP_ENTRY(6, 3), RC_STEP_ENTRY(7, 4),
    RC_STEP_ENTRY(8, 4), RC_STEP_ENTRY(9, 4), RC_STEP_ENTRY(10, 4), RC_STEP_ENTRY(11, 4),
    RC_STEP_ENTRY(12, 4), RC_STEP_ENTRY(13, 4), RC_STEP_ENTRY(14, 4), RC_STEP_ENTRY(15, 4),
    RC_STEP_ENTRY(16, 5), RC_STEP_ENTRY(17, 5), RC_STEP_ENTRY(18, 5), RC_STEP_ENTRY(19, 5),
    RC_STEP_ENTRY(20, 5), RC_STEP_ENTRY(21, 5), RC_STEP_ENTRY(22, 5), RC_STEP_ENTRY(23, 5),
    RC_STEP_ENTRY(24, 5), RC_STEP_ENTRY(25, 5), RC_STEP_ENTRY(26, 5), RC_STEP_ENTRY(27, 5),
    RC_STEP_ENTRY(28, 5), RC_STEP_ENTRY(29, 5), RC_STEP_ENTRY(30, 5), RC_STEP_ENTRY(31, 5),
    RC_STEP_ENTRY(32, 6), RC_STEP_ENTRY(33, 6), RC_STEP_ENTRY(34, 6), RC_STEP_ENTRY(35, 6),
    RC_STEP_ENTRY(36, 6), RC_STEP_ENTRY(37, 6), RC_STEP_ENTRY(38, 6), RC_STEP_ENTRY(39, 6),
    RC_STEP_ENTRY(40, 6), RC_STEP_ENTRY(41, 6), RC_STEP_ENTRY(42, 6), RC_STEP_ENTRY(43, 6),
    RC_STEP_ENTRY(44, 6), RC_STEP_ENTRY(45, 6), RC_STEP_ENTRY(46, 6), RC_STEP_ENTRY(47, 6),
    RC_STEP_ENTRY(48, 6), RC_STEP_ENTRY(49, 6), RC_STEP_ENTRY(50, 6), RC_STEP_ENTRY(51, 6),
    RC_STEP_ENTRY(52, 6), RC_STEP_ENTRY(53, 6), RC_STEP_ENTRY(54, 6), RC_STEP_ENTRY(55, 6),
    RC_STEP_ENTRY(56, 6), RC_STEP_ENTRY(57, 6), RC_STEP_ENTRY(58, 6), RC_STEP_ENTRY(59, 6),
    RC_STEP_ENTRY(RC_ADAPT_LIMIT, RC_FINAL_SHIFT)};
#undef RC_STEP_ENTRY

static inline void rc_bit_init(rc_bit *b)
{
    b->p0 = RC_PROB_ONE / 2;
    b->count = 0;
}

static inline void rc_bit_update(rc_bit *b, int bit)
{
    const unsigned step = RC_STEP[b->count];
    const unsigned shift = step & 0xFFu;
    int32_t p = b->p0;
    /* A 1 only lowers p and a 0 only raises it, so each side needs one clamp. */
    if (bit) {
        p -= p >> shift;
        if (p < (int32_t)RC_PROB_MIN) p = RC_PROB_MIN;
    } else {
        p += (int32_t)(RC_PROB_ONE - (uint32_t)p) >> shift;
        if (p > (int32_t)RC_PROB_MAX) p = RC_PROB_MAX;
    }
    b->p0 = (uint16_t)p;
    b->count = (uint16_t)(step >> 8);
}

typedef struct rc_encoder {
    uint64_t low;
    uint32_t range;
    uint8_t cache;
    uint64_t pending;   /* bytes of 0xFF (plus the cache) waiting for a possible carry */
    uint8_t *out;
    size_t capacity;
    size_t size;
    int overflow;       /* output would exceed capacity */
} rc_encoder;

static inline void rc_enc_init(rc_encoder *e, uint8_t *out, size_t capacity)
{
    e->low = 0;
    e->range = 0xFFFFFFFFu;
    e->cache = 0;
    e->pending = 1;
    e->out = out;
    e->capacity = capacity;
    e->size = 0;
    e->overflow = 0;
}

static inline void rc_put_byte(rc_encoder *e, uint8_t byte)
{
    if (e->size < e->capacity)
        e->out[e->size] = byte;
    else
        e->overflow = 1;
    e->size++;
}

static inline void rc_shift_low(rc_encoder *e)
{
    if ((uint32_t)e->low < 0xFF000000u || (e->low >> 32) != 0) {
        const uint8_t carry = (uint8_t)(e->low >> 32);
        uint8_t byte = e->cache;
        do {
            rc_put_byte(e, (uint8_t)(byte + carry));
            byte = 0xFF;
        } while (--e->pending != 0);
        e->cache = (uint8_t)(e->low >> 24);
    }
    e->pending++;
    e->low = (e->low & 0x00FFFFFFu) << 8;
}

/* Codes `bit` with P(0) = p0 / 2^RC_PROB_BITS; the callers adapt their contexts. */
static inline void rc_encode_with_p0(rc_encoder *e, uint32_t p0, int bit)
{
    const uint32_t bound = (e->range >> RC_PROB_BITS) * p0;
    if (!bit) {
        e->range = bound;
    } else {
        e->low += bound;
        e->range -= bound;
    }
    while (e->range < RC_TOP) {
        e->range <<= 8;
        rc_shift_low(e);
    }
}

static inline void rc_encode_bit(rc_encoder *e, rc_bit *b, int bit)
{
    rc_encode_with_p0(e, b->p0, bit);
    rc_bit_update(b, bit);
}

/* A bit whose probability is the mean of two contexts' estimates (one more add and shift than
 * rc_encode_bit); both contexts adapt to it. */
static inline void rc_encode_bit2(rc_encoder *e, rc_bit *a, rc_bit *b, int bit)
{
    rc_encode_with_p0(e, ((uint32_t)a->p0 + b->p0) >> 1, bit);
    rc_bit_update(a, bit);
    rc_bit_update(b, bit);
}

/* An equiprobable bit with no context (mantissa tails). */
static inline void rc_encode_direct(rc_encoder *e, int bit)
{
    e->range >>= 1;
    if (bit) e->low += e->range;
    while (e->range < RC_TOP) {
        e->range <<= 8;
        rc_shift_low(e);
    }
}

static inline void rc_enc_finish(rc_encoder *e)
{
    for (int i = 0; i < 5; i++)
        rc_shift_low(e);
}

typedef struct rc_decoder {
    uint32_t range;
    uint32_t code;
    const uint8_t *in;
    size_t size;
    size_t pos;
    size_t overrun;     /* bytes requested past the end of the input */
} rc_decoder;

static inline uint8_t rc_get_byte(rc_decoder *d)
{
    if (d->pos < d->size) return d->in[d->pos++];
    d->overrun++;
    return 0;
}

static inline void rc_dec_init(rc_decoder *d, const uint8_t *in, size_t size)
{
    d->range = 0xFFFFFFFFu;
    d->code = 0;
    d->in = in;
    d->size = size;
    d->pos = 0;
    d->overrun = 0;
    for (int i = 0; i < 5; i++)
        d->code = (d->code << 8) | rc_get_byte(d);
}

static inline int rc_decode_with_p0(rc_decoder *d, uint32_t p0)
{
    const uint32_t bound = (d->range >> RC_PROB_BITS) * p0;
    int bit;
    if (d->code < bound) {
        d->range = bound;
        bit = 0;
    } else {
        d->code -= bound;
        d->range -= bound;
        bit = 1;
    }
    while (d->range < RC_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | rc_get_byte(d);
    }
    return bit;
}

static inline int rc_decode_bit(rc_decoder *d, rc_bit *b)
{
    const int bit = rc_decode_with_p0(d, b->p0);
    rc_bit_update(b, bit);
    return bit;
}

static inline int rc_decode_bit2(rc_decoder *d, rc_bit *a, rc_bit *b)
{
    const int bit = rc_decode_with_p0(d, ((uint32_t)a->p0 + b->p0) >> 1);
    rc_bit_update(a, bit);
    rc_bit_update(b, bit);
    return bit;
}

static inline int rc_decode_direct(rc_decoder *d)
{
    d->range >>= 1;
    int bit = 0;
    if (d->code >= d->range) {
        d->code -= d->range;
        bit = 1;
    }
    while (d->range < RC_TOP) {
        d->range <<= 8;
        d->code = (d->code << 8) | rc_get_byte(d);
    }
    return bit;
}

#endif
