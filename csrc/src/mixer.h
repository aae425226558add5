/* Logistic mixing of binary probability estimates (the idea of PAQ-family coders): the estimates
 * of several contexts are combined as a weighted sum of their logits, with weights learnt online
 * per mixer context by gradient descent on coding cost. Integer only, so encoder and decoder (and
 * every platform) compute the same probabilities. */
#ifndef LINF_MIXER_H
#define LINF_MIXER_H

#include <stdint.h>

#include "logistic.h"
#include "rangecoder.h"
#include "util.h"

#define MIX_INPUTS 4            /* fixed width: the loops unroll; unused inputs are 0 */
#ifndef MIX32
#define MIX32 0
#endif
#if MIX32
#define MIX_WEIGHT_ONE 16384    /* weights carry 14 fractional bits */
#define MIX_WEIGHT_LIMIT (1 << 18) /* |w| < 16: 3 x 2^18 x 2047 + 2^18 x 256 < 2^31 */
#else
#define MIX_WEIGHT_ONE 65536    /* weights carry 16 fractional bits */
#define MIX_WEIGHT_LIMIT (1 << 22)
#endif
#ifndef MIX_RATE_SHIFT
#define MIX_RATE_SHIFT 12
#endif

typedef struct mixer {
    int32_t w[MIX_INPUTS];
} mixer;

/* The logit of a 16-bit probability, from its top 12 bits. */
FORCE_INLINE int32_t stretch16(uint32_t p0) { return STRETCH_TABLE[p0 >> 4]; }

FORCE_INLINE uint32_t mix_p0(const mixer *m, const int32_t *st)
{
#if MIX32
    int32_t dot = 0;
    for (int i = 0; i < MIX_INPUTS; i++) dot += m->w[i] * st[i];
    const int32_t x = dot >> 14;
#else
    int64_t dot = 0;
    for (int i = 0; i < MIX_INPUTS; i++) dot += (int64_t)m->w[i] * st[i];
    const int32_t x = (int32_t)(dot >> 16);
#endif
    return SQUASH_TABLE[clamp32(x, -LOGIT_MAX, LOGIT_MAX) + LOGIT_MAX];
}

FORCE_INLINE void mix_update(mixer *m, const int32_t *st, uint32_t p0, int bit)
{
    const int32_t err = ((bit ? 0 : (int32_t)RC_PROB_ONE) - (int32_t)p0) >> 4; /* 12 bits */
#ifdef MIX_SKIP
    if (iabs(err) < MIX_SKIP) return;
#endif
    for (int i = 0; i < MIX_INPUTS; i++)
        m->w[i] = clamp32(m->w[i] + ((st[i] * err) >> MIX_RATE_SHIFT), -MIX_WEIGHT_LIMIT, MIX_WEIGHT_LIMIT);
}

FORCE_INLINE void mixer_init(mixer *m, int32_t w0, int32_t w1)
{
    for (int i = 0; i < MIX_INPUTS; i++) m->w[i] = 0;
    m->w[0] = w0;
    m->w[1] = w1;
}

/* One bit from three contexts' estimates and a bias, mixed; every part adapts to the bit. */
FORCE_INLINE void mix3_encode(rc_encoder *rc, mixer *mx, rc_bit *a, rc_bit *b, rc_bit *c, int bit)
{
#if NO_NB
    const int32_t st[MIX_INPUTS] = {stretch16(a->p0), stretch16(b->p0), 0, 256};
#else
    const int32_t st[MIX_INPUTS] = {stretch16(a->p0), stretch16(b->p0), stretch16(c->p0), 256};
#endif
    const uint32_t p0 = mix_p0(mx, st);
    rc_encode_with_p0(rc, p0, bit);
    mix_update(mx, st, p0, bit);
    rc_bit_update(a, bit);
    rc_bit_update(b, bit);
    rc_bit_update(c, bit);
}

FORCE_INLINE int mix3_decode(rc_decoder *rc, mixer *mx, rc_bit *a, rc_bit *b, rc_bit *c)
{
#if NO_NB
    const int32_t st[MIX_INPUTS] = {stretch16(a->p0), stretch16(b->p0), 0, 256};
#else
    const int32_t st[MIX_INPUTS] = {stretch16(a->p0), stretch16(b->p0), stretch16(c->p0), 256};
#endif
    const uint32_t p0 = mix_p0(mx, st);
    const int bit = rc_decode_with_p0(rc, p0);
    mix_update(mx, st, p0, bit);
    rc_bit_update(a, bit);
    rc_bit_update(b, bit);
    rc_bit_update(c, bit);
    return bit;
}

#endif
