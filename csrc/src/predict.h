/* Prediction: the candidate predictors (GAP, MED, gradients, self-correcting, NW, the first
 * channel's adaptive linear predictor, the later channels' interband ones) and their blend.
 *
 * Invariants every function here keeps:
 * - predictions carry PRED_FRAC_BITS (3) fractional bits and are computed from reconstructed
 *   samples only, so encoder and decoder compute identical values;
 * - all floating-point arithmetic operates on exact integers below 2^53 and ends in a correctly
 *   rounded division or a truncation proven exact, so results do not depend on the platform
 *   (built with -ffp-contract=off);
 * - the vector (LINF_VECTOR) and scalar paths compute the same values. */
#ifndef LINF_PREDICT_H
#define LINF_PREDICT_H

#include "model.h"
#include "util.h"

#define FIRST_CHANNEL_PREDICTORS 8 /* 4 spatial + 2 self-correcting + NW + adaptive linear */
#define SPATIAL_PREDICTORS 4
#define INTER_PREDICTORS (SPATIAL_PREDICTORS + 3)

#define BLEND_ERROR_FLOOR 8u /* added to every predictor's error sum: softens the weights */

/* The blend weight of a predictor whose local error sum is e (8 <= e < 2^24): 2^24 / e with e cut
 * to its top 8 significant bits (exact below 256, within 1 % above), rounded down: with s the
 * number of dropped low bits, floor(2^24 / ((e >> s) << s)). The stream format fixes this value
 * (docs/codec_design.md has the table form it must equal). Computed in floating point,
 * lane-parallel (no table look-up, no variable shift):
 * - e as a float is exact (e < 2^24); clearing the 16 low bits of its 23-bit mantissa keeps the
 *   top 8 significant bits, which is (e >> s) << s;
 * - the quotient q = 2^24 / t is below 2^21, so its double rounding error is below 2^-32, while a
 *   non-integer q = 2^(24-s) / m lies at least 1/m >= 2^-8 below the next integer: truncating
 *   the rounded quotient gives floor(q) exactly (checked for every e in 2 .. 2^24 - 1).
 * The result is an exact integer below 2^22, returned as a double for the blend's sums. */
#if !LINF_VECTOR
FORCE_INLINE double blend_weight(uint32_t e)
{
    float f = (float)(int32_t)e;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits &= 0xFFFF0000u;
    memcpy(&f, &bits, sizeof f);
    return (double)(int32_t)(16777216.0 / (double)f);
}
#else
/* blend_weight of four lanes, e = BLEND_ERROR_FLOOR + 2 west + west2 + up; out by pointer (a
 * 32-byte vector passed by value would change the ABI without AVX). */
FORCE_INLINE void blend_weights4(const uint32_t *west, const uint32_t *west2, const uint32_t *up, v4f64 *out)
{
    v4u32 a, b, c;
    memcpy(&a, west, sizeof a);
    memcpy(&b, west2, sizeof b);
    memcpy(&c, up, sizeof c);
    const v4u32 e = BLEND_ERROR_FLOOR + 2u * a + b + c;
    const v4f32 top8 = (v4f32)((v4u32)__builtin_convertvector((v4i32)e, v4f32) & 0xFFFF0000u);
    const v4f64 q = 16777216.0 / __builtin_convertvector(top8, v4f64);
    *out = __builtin_convertvector(__builtin_convertvector(q, v4i32), v4f64);
}
#endif

/* ---------------------------------------------------------------- prediction */

typedef struct neighbours {
    int32_t w, ww, n, nw, ne, nn, nne;
} neighbours;

FORCE_INLINE neighbours gather(const channel_rows *r, int32_t x)
{
    neighbours nb;
    nb.w = r->rec[0][x - 1];
    nb.ww = r->rec[0][x - 2];
    nb.n = r->rec[1][x];
    nb.nw = r->rec[1][x - 1];
    nb.ne = r->rec[1][x + 1];
    nb.nn = r->rec[2][x];
    nb.nne = r->rec[2][x + 1];
    return nb;
}

/* CALIC's gradient-adjusted prediction, with 3 fractional bits. Also returns dh + dv. */
FORCE_INLINE int32_t gap_predict(const neighbours *nb, const coding_params *cp, int32_t *gradient)
{
    const int32_t dh = iabs(nb->w - nb->ww) + iabs(nb->n - nb->nw) + iabs(nb->n - nb->ne);
    const int32_t dv = iabs(nb->w - nb->nw) + iabs(nb->n - nb->nn) + iabs(nb->ne - nb->nne);
    const int32_t d = dv - dh;
    *gradient = dh + dv;
    /* CALIC's cascade of thresholds on d, made symmetric (|d| picks the step, the sign of d the
     * side: W for a vertical edge, N for a horizontal one) and evaluated with selects instead of
     * branches, which mispredicted often: every candidate is cheap to compute. */
    const int32_t ad = iabs(d);
    const int32_t side = d > 0 ? 8 * nb->w : 8 * nb->n;
    const int32_t p = 4 * (nb->w + nb->n) + 2 * (nb->ne - nb->nw);
    /* The candidates p, (3p + side) / 4, (p + side) / 2 and side (C division) are all
     * (4p + f (side - p)) / 4 for f = 0, 1, 2, 4, so the step only picks f: one multiply and
     * one division instead of a table of four (the thresholds increase, so ad > t80 implies the
     * other two and f = idx + (idx == 3)). Arithmetic, not selects, so no compiler turns it
     * back into branches. */
    const int32_t f = (ad > cp->gap_t8) + (ad > cp->gap_t32) + 2 * (ad > cp->gap_t80);
    return (4 * p + f * (side - p)) / 4;
}

/* Candidate predictions (x8) of the spatial predictors; the first channel (no reference channel to
 * lean on) also gets two self-correcting ones: N or W moved by a share of the neighbours' final
 * errors, JPEG XL's idea, which tracks slow drifts that the others miss; and the plain NW sample,
 * which the blend picks where the texture runs diagonally. Its last candidate (lane 7) is the
 * adaptive linear predictor, lms_predict. */
FORCE_INLINE void intra_candidates(const neighbours *nb, const coding_params *cp, const channel_rows *r,
                                   int32_t x, int32_t *pred, int32_t *gradient, const int first_channel)
{
    pred[0] = gap_predict(nb, cp, gradient);
    pred[1] = 8 * median3(nb->n, nb->w, nb->n + nb->w - nb->nw);
    pred[2] = 8 * (nb->w + nb->ne - nb->n);
    pred[3] = 8 * nb->n + 4 * (nb->ne - nb->nne) + 4 * (nb->w - nb->nw);
    if (first_channel) {
        const int32_t ew = r->err[0][x - 1], en = r->err[1][x], ene = r->err[1][x + 1], enw = r->err[1][x - 1];
        pred[4] = 8 * nb->n + 4 * (ew + en + ene);
        pred[5] = 8 * nb->w + (5 * (ew + en + enw)) / 2;
        pred[6] = 8 * nb->nw;
    }
}

/* Adaptive linear predictor of the first channel: GAP's prediction plus a learnt combination of
 * the neighbours' offsets from it (N, W, NW, NE, NN, WW, NEE) and of the final error at N, trained
 * by normalised LMS with the normaliser rounded down to a power of two (a shift, no division). It
 * fits each image's texture, which the fixed predictors cannot. Invariant: weights have 16
 * fractional bits and stay within +-2^22 (+-64), which the overflow bounds below rely on. */
#define LMS_WEIGHT_LIMIT (INT32_C(1) << 22)
#if LINF_VECTOR
/* The LMS_INPUTS (8) lanes at p as two 4-lane vectors; memcpy because p is only int32-aligned. */
FORCE_INLINE void load_lanes(const int32_t *p, v4i32 *low, v4i32 *high)
{
    memcpy(low, p, sizeof *low);
    memcpy(high, p + 4, sizeof *high);
}
#endif

/* Sum of a[i] b[i] over the LMS_INPUTS lanes, in doubles: exact for the callers' magnitudes
 * (every product and partial sum an integer below 2^53), so any summation order gives the same
 * value as an int64 sum. Four lanes at a time with vector extensions. */
FORCE_INLINE double lms_dot(const int32_t *a, const int32_t *b)
{
#if LINF_VECTOR
    v4i32 a0, a1, b0, b1;
    load_lanes(a, &a0, &a1);
    load_lanes(b, &b0, &b1);
    const v4f64 s = __builtin_convertvector(a0, v4f64) * __builtin_convertvector(b0, v4f64) +
                    __builtin_convertvector(a1, v4f64) * __builtin_convertvector(b1, v4f64);
    return (s[0] + s[2]) + (s[1] + s[3]); /* lanes 0-1 and 2-3 share a register without AVX */
#else
    double s = 0.0;
    for (int i = 0; i < LMS_INPUTS; i++) s += (double)a[i] * (double)b[i];
    return s;
#endif
}

/* The adaptive linear prediction base + weight . u / 2^16 from prepared inputs u, clamped to
 * 0..max8, and the update's normaliser shift. */
FORCE_INLINE int32_t lms_finish(const int32_t *weight, const int32_t *u, int32_t base, int32_t max8, int *norm_log2)
{
    /* |weight| <= 2^22 and |u| < 2^21: every product and the sum stay below 2^46, exact in
     * doubles whatever the order; dot / 2^16 is then exact too, and the conversion truncates
     * toward zero like the integer division. */
    const double dot = lms_dot(weight, u);
    const int64_t p = base + (int64_t)(dot / 65536.0);
    /* The update's normaliser, here because it depends only on u: 64 + |u|^2 < 2^45 is exact
     * in a double, whose exponent is its floor(log2). */
    const double norm = 64.0 + lms_dot(u, u);
    uint64_t norm_bits;
    memcpy(&norm_bits, &norm, sizeof norm_bits);
    *norm_log2 = (int)(norm_bits >> 52) - 1023; /* >= 6 */
    return p < 0 ? 0 : (p > max8 ? max8 : (int32_t)p);
}


FORCE_INLINE int32_t lms_predict(const int32_t *weight, const channel_rows *r, const neighbours *nb, int32_t x,
                                 int32_t nee, int32_t base, int32_t max8, int32_t *u, int *norm_log2)
{
#if LINF_VECTOR
    /* Built as vectors, not lane by lane: lms_dot and lms_update load them as vectors, and a
     * vector load of scalar stores cannot be forwarded (a stall of ~10 cycles). */
    const v4i32 near = {nb->n, nb->w, nb->nw, nb->ne}, far = {nb->nn, nb->ww, nee, r->err[1][x]};
    const v4i32 near_u = 8 * near - base, far_u = 8 * far - (v4i32){base, base, base, 0};
    memcpy(u, &near_u, sizeof near_u);
    memcpy(u + 4, &far_u, sizeof far_u);
#else
    u[0] = 8 * nb->n - base;
    u[1] = 8 * nb->w - base;
    u[2] = 8 * nb->nw - base;
    u[3] = 8 * nb->ne - base;
    u[4] = 8 * nb->nn - base;
    u[5] = 8 * nb->ww - base;
    u[6] = 8 * nee - base;
    u[7] = 8 * r->err[1][x];
#endif
    return lms_finish(weight, u, base, max8, norm_log2);
}

/* Format 4, channels with a reference: nd holds the neighbours moved by the reference's local
 * change (nd.w = w + ref(x) - ref(W), ...), so a translation-invariant predictor P gives
 * ref(x) + P(channel - ref): the channel difference predicted like a first channel. Lanes:
 * 0 GAP, 1 MED, 2-3 self-correcting, all on nd; 4 GAP and 5 MED on the raw neighbours nb, for
 * areas where the channels do not move together; 6 gradient W + NE - N on nd; 7 the adaptive
 * linear predictor (lms_predict_inter). */
FORCE_INLINE void inter4_candidates(const neighbours *nd, const neighbours *nb, const coding_params *cp,
                                    const channel_rows *r, int32_t x, int32_t *pred, int32_t *gradient,
                                    const int moved_only)
{
    int32_t raw_gradient;
    pred[0] = gap_predict(nd, cp, gradient);
    pred[1] = 8 * median3(nd->n, nd->w, nd->n + nd->w - nd->nw);
    const int32_t ew = r->err[0][x - 1], en = r->err[1][x], ene = r->err[1][x + 1], enw = r->err[1][x - 1];
    pred[2] = 8 * nd->n + 4 * (ew + en + ene);
    pred[3] = 8 * nd->w + (5 * (ew + en + enw)) / 2;
    if (moved_only) {
        pred[4] = 8 * nd->n + 4 * (nd->ne - nd->nne) + 4 * (nd->w - nd->nw);
        pred[5] = 8 * nd->nw;
        pred[6] = 8 * (nd->w + nd->ne - nd->n);
        return;
    }
    pred[4] = gap_predict(nb, cp, &raw_gradient);
    pred[5] = 8 * median3(nb->n, nb->w, nb->n + nb->w - nb->nw);
    pred[6] = 8 * (nd->w + nd->ne - nd->n);
    /* The smaller of the two gradients: where the channels do not move together, nd's gradient
     * overstates the activity that the raw candidates can follow. */
    *gradient = *gradient < raw_gradient ? *gradient : raw_gradient;
}

/* The adaptive linear predictor of a channel with a reference: base (nd's GAP) plus a learnt
 * combination of offsets from it: nd's N, W, NW, NE; n2, N moved by the second channel's change
 * (see code_sample); two more neighbours a and b; and the second channel's final error at this
 * pixel, e2 (where channels share a surprise, a learnt share of it). With the mixed
 * candidates a, b are the raw N and W: mixing moved and raw inputs lets it learn how strongly
 * this image's channel follows its reference (nd.n - n is the reference's change); with the
 * moved-only ones, nd's NN and WW. Same bounds as lms_predict: |u| < 2^21 still holds for moved
 * neighbours (within -max .. 2 max, max < 2^16) less a base within 8 (-2 max .. 3 max). */
FORCE_INLINE int32_t lms_predict_inter(const int32_t *weight, const neighbours *nd,
                                       int32_t n2, int32_t a, int32_t b, int32_t e2, int32_t base, int32_t max8,
                                       int32_t *u, int *norm_log2)
{
#if LINF_VECTOR
    const v4i32 near = {nd->n, nd->w, nd->nw, nd->ne}, far = {n2, a, b, e2};
    const v4i32 near_u = 8 * near - base, far_u = 8 * far - (v4i32){base, base, base, 0};
    memcpy(u, &near_u, sizeof near_u);
    memcpy(u + 4, &far_u, sizeof far_u);
#else
    u[0] = 8 * nd->n - base;
    u[1] = 8 * nd->w - base;
    u[2] = 8 * nd->nw - base;
    u[3] = 8 * nd->ne - base;
    u[4] = 8 * n2 - base;
    u[5] = 8 * a - base;
    u[6] = 8 * b - base;
    u[7] = 8 * e2;
#endif
    return lms_finish(weight, u, base, max8, norm_log2);
}

/* w += u e / 2^(2 + shift), shift = floor(log2(64 + |u|^2)) from lms_predict: the NLMS step 1/4, with a power-of-two normaliser.
 * Overflow-free in 32 bits: with |e| clamped to 2^18, |gain| <= 2^18 2^14 / 2^shift, and since
 * 2^shift > (64 + u_i^2) / 2, |gain u_i| <= 2^33 |u_i| / (64 + u_i^2) <= 2^29; the weights were
 * within 2^22, so the sums fit too. A weight that leaves +-2^22 (rare) brings
 * the clamp, one test per sample instead of two selects per weight. */
FORCE_INLINE void lms_update(int32_t *weight, const int32_t *u, int shift, int32_t error8)
{
    const int32_t e = clamp32(error8, -(1 << 18), 1 << 18);
    const int32_t mask = -(int32_t)(e < 0);
    /* |e| 2^14 / 2^shift, shifted in 64 bits: shift reaches 45 at 16 bits. */
    const int32_t magnitude = (int32_t)(((uint64_t)iabs(e) << 8) >> (shift - 6));
    const int32_t gain = (magnitude ^ mask) - mask;
    /* w is within +-LMS_WEIGHT_LIMIT iff neither w + limit nor limit - w is negative (|w| < 2^30,
     * so neither overflows): one OR per lane and a test of the sign bit of the OR of all lanes. */
#if LINF_VECTOR
    v4i32 w0, w1, u0, u1;
    load_lanes(weight, &w0, &w1);
    load_lanes(u, &u0, &u1);
    w0 += gain * u0;
    w1 += gain * u1;
    memcpy(weight, &w0, sizeof w0);
    memcpy(weight + 4, &w1, sizeof w1);
    const v4i32 spill = (w0 + LMS_WEIGHT_LIMIT) | (LMS_WEIGHT_LIMIT - w0) | (w1 + LMS_WEIGHT_LIMIT) |
                        (LMS_WEIGHT_LIMIT - w1);
    const int32_t outside = (spill[0] | spill[1] | spill[2] | spill[3]) < 0;
#else
    int32_t any = 0;
    for (int i = 0; i < LMS_INPUTS; i++) {
        const int32_t w = weight[i] + gain * u[i];
        weight[i] = w;
        any |= (w + LMS_WEIGHT_LIMIT) | (LMS_WEIGHT_LIMIT - w);
    }
    const int32_t outside = any < 0;
#endif
    if (outside)
        for (int i = 0; i < LMS_INPUTS; i++) weight[i] = clamp32(weight[i], -LMS_WEIGHT_LIMIT, LMS_WEIGHT_LIMIT);
}

/* Interband candidates: reference sample at this pixel plus a predicted channel difference. */
FORCE_INLINE void inter_candidates(const channel_rows *ref, const neighbours *nb, int32_t x, int32_t *pred)
{
    const int32_t rc = ref->rec[0][x];
    const int32_t dw = nb->w - ref->rec[0][x - 1];
    const int32_t dn = nb->n - ref->rec[1][x];
    const int32_t dnw = nb->nw - ref->rec[1][x - 1];
    const int32_t dne = nb->ne - ref->rec[1][x + 1];
    pred[SPATIAL_PREDICTORS + 0] = 8 * rc + 4 * (dw + dn) + 2 * (dne - dnw);
    pred[SPATIAL_PREDICTORS + 1] = 8 * (rc + median3(dw, dn, dw + dn - dnw));
    pred[SPATIAL_PREDICTORS + 2] = 8 * (rc + dw);
}


/* Blend candidates with weights inversely proportional to their error around the pixel:
 * 2 e(W) + e(WW) + e(NW) + e(N) + e(NE) + e(NEE) (the row above is summarised in end_row). */
FORCE_INLINE int32_t blend(const channel_rows *r, const int count, int32_t x, const int32_t *pred, uint32_t *spread)
{
    const uint32_t *west = r->pred_err + (ptrdiff_t)(x - 1) * MAX_PREDICTORS;
    const uint32_t *up = r->up_err_sum + (ptrdiff_t)x * MAX_PREDICTORS;
    /* All MAX_PREDICTORS lanes at once (unused lanes weigh 0); every product and sum is an
     * integer below 2^53, hence exact in doubles and independent of the summation order (the
     * same values as int64 sums). */
#if LINF_VECTOR
    v4f64 weight[2], term[2];
    for (int h = 0; h < 2; h++) {
        blend_weights4(west + 4 * h, west + 4 * h - MAX_PREDICTORS, up + 4 * h, &weight[h]);
        v4i32 p;
        memcpy(&p, pred + 4 * h, sizeof p);
        term[h] = weight[h] * __builtin_convertvector(p, v4f64);
    }
    if (count < MAX_PREDICTORS) weight[1][3] = 0.0; /* the unused lane's pred is 0, so its term is */
    const v4f64 wsum = weight[0] + weight[1], tsum = term[0] + term[1];
    const double total = (wsum[0] + wsum[2]) + (wsum[1] + wsum[3]);
    const double weighted = (tsum[0] + tsum[2]) + (tsum[1] + tsum[3]);
#else
    double total = 0.0, weighted = 0.0;
    for (int k = 0; k < count; k++) {
        const double w = blend_weight(BLEND_ERROR_FLOOR + 2u * west[k] + west[k - MAX_PREDICTORS] + up[k]);
        total += w;
        weighted += w * (double)pred[k];
    }
#endif
    /* Both sums are exact integers below 2^53 (total <= 8 * 2^24), and IEEE-754 division is
     * correctly rounded, so both quotients below are the same on every platform (built with
     * -ffp-contract=off). */
    const double sum = total;
    /* Harmonic mean of the predictors' local errors: how far off the blend is likely to be.
     * floor(count 2^24 / total), by a double division instead of an integer one (it sits on the
     * decoder's critical path, and divsd has the lower latency): the quotient is below 2^20, so
     * its rounding error is below 2^-33, while a non-integer quotient is at least 1/total
     * >= 2^-27 away from the next integer; truncating the rounded quotient is exact. */
    *spread = (uint32_t)((double)((uint32_t)count << 24) / sum);
    /* The blend, rounded half up: floor(y) as truncation corrected for negative y (|y| < 2^22),
     * which is the same value without the generic floor's range checks. */
    const double y = weighted / sum + 0.5;
    const int32_t t = (int32_t)y;
    return t - ((double)t > y);
}

#endif
