/* Symbol coding: quantisation of the residual (paper Eq. 3), reconstruction, and the
 * binarisation of a quantised symbol onto the adaptive binary range coder. Encoder and decoder
 * functions here are exact mirrors: every bit the encoder writes with a context, the decoder reads
 * with the same context in the same order. */
#ifndef LINF_SYMBOL_H
#define LINF_SYMBOL_H

#include "model.h"
#include "rangecoder.h"
#include "util.h"

/* Quantise the residual exactly as paper Eq. 3: step 2*tau + 1, rounding half away from zero. */
FORCE_INLINE int32_t quantise(int32_t e, const coding_params *cp)
{
    /* (|e| + tau) / step by a multiply: with n = |e| + tau < 2^17 and the inverse rounded up by
     * less than step <= 2^16, n times that rounding stays below 2^40, so the quotient is exact. */
    const uint64_t n = (uint64_t)iabs(e) + (uint64_t)cp->tau;
    const int32_t q = (int32_t)((n * cp->step_inverse) >> 40);
    return e < 0 ? -q : q;
}

/* prediction + q step, clamped to the sample range (which holds the original, so the clamp only
 * moves the reconstruction towards it). */
FORCE_INLINE int32_t reconstruct(int32_t prediction, int32_t q, const coding_params *cp)
{
    const int64_t unclamped = (int64_t)prediction + (int64_t)q * cp->step;
    return unclamped < 0 ? 0 : (unclamped > cp->max_value ? cp->max_value : (int32_t)unclamped);
}


/* A symbol s is coded as: zero flag; sign; then |s| in an adaptive Elias-gamma binarisation
 * (unary bit length, then the mantissa's top two bits adaptive, the rest equiprobable). The zero
 * flag's probability is the mean of two contexts' estimates: energy x neighbours x fraction, and
 * the bias context (texture x energy level), which sees the local shape the energy misses.
 * Format 6 (mx not NULL) mixes three estimates instead, with weights learnt per energy bucket,
 * for the zero flag (adding: how many neighbour symbols were nonzero, nctx) and for the first
 * UNARY_MIXED unary bits (energy, nctx, bias context): a learnt mix of contexts that split the
 * data differently beats any one of them and their mean (docs/codec_design.md). */
FORCE_INLINE void encode_symbol(rc_encoder *rc, symbol_contexts *c, symbol_mixers *mx, int32_t s, int bucket, int zctx,
                                int sctx, int bias_ctx, int nctx)
{
    if (mx)
        mix3_encode(rc, &mx->zero[bucket], &c->zero[bucket][zctx], &c->zero_texture[bias_ctx], &c->zero_neighbours[nctx],
                    s != 0);
    else
        rc_encode_bit2(rc, &c->zero[bucket][zctx], &c->zero_texture[bias_ctx], s != 0);
    if (s == 0) return;
    rc_encode_bit(rc, &c->sign[sctx], s < 0);
    const uint32_t m = (uint32_t)iabs(s); /* >= 1 */
    const int k = log2_floor(m);          /* m in [2^k, 2^(k+1)) */
    int i = 0;
    if (mx)
        for (; i <= k && i < UNARY_MIXED; i++)
            mix3_encode(rc, &mx->unary[bucket][i], &c->unary[bucket][i], &c->unary_neighbours[nctx][i],
                        &c->unary_texture[bias_ctx][i], i < k);
    for (; i < k; i++) rc_encode_bit(rc, &c->unary[bucket][i], 1);
    if (i == k && k < MAX_MAGNITUDE_BITS - 1) rc_encode_bit(rc, &c->unary[bucket][k], 0);
    if (k == 0) return;
    const int high = (int)((m >> (k - 1)) & 1u);
    rc_encode_bit(rc, &c->mantissa_high[bucket][k], high);
    if (k == 1) return;
    rc_encode_bit(rc, &c->mantissa_second[k][high], (int)((m >> (k - 2)) & 1u));
    for (int i = k - 3; i >= 0; i--) rc_encode_direct(rc, (int)((m >> i) & 1u));
}

FORCE_INLINE int32_t decode_symbol(rc_decoder *rc, symbol_contexts *c, symbol_mixers *mx, int bucket, int zctx,
                                   int sctx, int bias_ctx, int nctx)
{
    const int nonzero = mx ? mix3_decode(rc, &mx->zero[bucket], &c->zero[bucket][zctx], &c->zero_texture[bias_ctx],
                                         &c->zero_neighbours[nctx])
                           : rc_decode_bit2(rc, &c->zero[bucket][zctx], &c->zero_texture[bias_ctx]);
    if (!nonzero) return 0;
    const int negative = rc_decode_bit(rc, &c->sign[sctx]);
    int k = 0, longer = 1;
    if (mx)
        for (; longer && k < UNARY_MIXED; k += longer)
            longer = mix3_decode(rc, &mx->unary[bucket][k], &c->unary[bucket][k], &c->unary_neighbours[nctx][k],
                                 &c->unary_texture[bias_ctx][k]);
    if (longer)
        while (k < MAX_MAGNITUDE_BITS - 1 && rc_decode_bit(rc, &c->unary[bucket][k])) k++;
    uint32_t m = 1;
    if (k >= 1) {
        const int high = rc_decode_bit(rc, &c->mantissa_high[bucket][k]);
        m = (m << 1) | (uint32_t)high;
        if (k >= 2) {
            m = (m << 1) | (uint32_t)rc_decode_bit(rc, &c->mantissa_second[k][high]);
            for (int i = k - 3; i >= 0; i--) m = (m << 1) | (uint32_t)rc_decode_direct(rc);
        }
    }
    /* Conditional negation by mask: the sign is a coin toss, so a branch would often mispredict. */
    const int32_t mask = -(int32_t)negative;
    return ((int32_t)m ^ mask) - mask;
}

#endif
