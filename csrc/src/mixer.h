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

#define MIX_INPUTS 4            /* three estimates and a constant: the loops unroll */
#define MIX_WEIGHT_ONE 65536    /* weights carry 16 fractional bits */
#define MIX_WEIGHT_LIMIT (1 << 22)
#define MIX_RATE_SHIFT 12       /* learning rate 2^-12 (of 9-14, the best on the dev sets) */
#define MIX_BIAS_INPUT 256      /* the constant input: a learnt offset in the logit domain */

typedef struct mixer {
    int32_t w[MIX_INPUTS];
} mixer;

/* The logit of a 16-bit probability, from its top 12 bits. */
FORCE_INLINE int32_t stretch16(uint32_t p0) { return STRETCH_TABLE[p0 >> 4]; }

/* P(0) of the weighted sum of the inputs' logits (16 bits, inside the range coder's clamp). */
FORCE_INLINE uint32_t mix_p0(const mixer *m, const int32_t *st)
{
    int64_t dot = 0;
    for (int i = 0; i < MIX_INPUTS; i++) dot += (int64_t)m->w[i] * st[i];
    const int32_t x = (int32_t)(dot >> 16);
    return SQUASH_TABLE[clamp32(x, -LOGIT_MAX, LOGIT_MAX) + LOGIT_MAX];
}

/* One gradient step on the coding cost of `bit`: w += input * error * rate. */
FORCE_INLINE void mix_update(mixer *m, const int32_t *st, uint32_t p0, int bit)
{
    const int32_t err = ((bit ? 0 : (int32_t)RC_PROB_ONE) - (int32_t)p0) >> 4; /* 12 bits */
    for (int i = 0; i < MIX_INPUTS; i++)
        m->w[i] = clamp32(m->w[i] + ((st[i] * err) >> MIX_RATE_SHIFT), -MIX_WEIGHT_LIMIT, MIX_WEIGHT_LIMIT);
}

FORCE_INLINE void mixer_init(mixer *m, int32_t w0, int32_t w1)
{
    for (int i = 0; i < MIX_INPUTS; i++) m->w[i] = 0;
    m->w[0] = w0;
    m->w[1] = w1;
}

/* The mixer's inputs for three contexts' estimates. */
FORCE_INLINE void mix3_inputs(const rc_bit *a, const rc_bit *b, const rc_bit *c, int32_t *st)
{
    st[0] = stretch16(a->p0);
    st[1] = stretch16(b->p0);
    st[2] = stretch16(c->p0);
    st[3] = MIX_BIAS_INPUT;
}

/* After a bit: the mixer and every context adapt to it. */
FORCE_INLINE void mix3_adapt(mixer *mx, rc_bit *a, rc_bit *b, rc_bit *c, const int32_t *st, uint32_t p0, int bit)
{
    mix_update(mx, st, p0, bit);
    rc_bit_update(a, bit);
    rc_bit_update(b, bit);
    rc_bit_update(c, bit);
}

/* One bit from three contexts' estimates and a constant, mixed. */
FORCE_INLINE void mix3_encode(rc_encoder *rc, mixer *mx, rc_bit *a, rc_bit *b, rc_bit *c, int bit)
{
    int32_t st[MIX_INPUTS];
    mix3_inputs(a, b, c, st);
    const uint32_t p0 = mix_p0(mx, st);
    rc_encode_with_p0(rc, p0, bit);
    mix3_adapt(mx, a, b, c, st, p0, bit);
}

FORCE_INLINE int mix3_decode(rc_decoder *rc, mixer *mx, rc_bit *a, rc_bit *b, rc_bit *c)
{
    int32_t st[MIX_INPUTS];
    mix3_inputs(a, b, c, st);
    const uint32_t p0 = mix_p0(mx, st);
    const int bit = rc_decode_with_p0(rc, p0);
    mix3_adapt(mx, a, b, c, st, p0, bit);
    return bit;
}

#endif
