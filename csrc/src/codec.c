/* Encoder and decoder loops of the near-lossless codec, and the public API. */
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "header.h"
#include "linf_codec.h"
#include "model.h"
#include "rangecoder.h"

#if defined(__GNUC__) || defined(__clang__)
#define FORCE_INLINE static inline __attribute__((always_inline))
#else
#define FORCE_INLINE static inline
#endif

/* GCC/Clang vector extensions: portable SIMD (SSE2 on x86-64, NEON on arm64) for the blend's
 * lanes, where the auto-vectoriser is not reliable once code_sample is inlined into a row loop.
 * Other compilers take the scalar code, which computes the same values. */
#ifndef LINF_VECTOR /* -DLINF_VECTOR=0 builds the scalar code (to test it) */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 9)
#define LINF_VECTOR 1
#else
#define LINF_VECTOR 0
#endif
#endif
#if LINF_VECTOR
typedef int32_t v4i32 __attribute__((vector_size(16)));
typedef uint32_t v4u32 __attribute__((vector_size(16)));
typedef float v4f32 __attribute__((vector_size(16)));
typedef double v4f64 __attribute__((vector_size(32))); /* two registers without AVX: never passed by value */
#endif

#define FIRST_CHANNEL_PREDICTORS 8 /* 4 spatial + 2 self-correcting + NW + adaptive linear */
#define SPATIAL_PREDICTORS 4
#define INTER_PREDICTORS (SPATIAL_PREDICTORS + 3)

/* ---------------------------------------------------------------- small integer helpers */

FORCE_INLINE int32_t iabs(int32_t v) { return v < 0 ? -v : v; }
FORCE_INLINE int32_t clamp32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Median of three as c clamped to [min(a, b), max(a, b)]: selects only, no data-dependent branch
 * (the order of a and b is a coin toss in textured areas). */
FORCE_INLINE int32_t median3(int32_t a, int32_t b, int32_t c)
{
    const int32_t lo = a < b ? a : b, hi = a < b ? b : a;
    const int32_t m = c < hi ? c : hi;
    return m > lo ? m : lo;
}

/* floor(log2(v)) for v >= 1: one instruction (bsr / clz) where the compiler has a builtin. */
FORCE_INLINE int log2_floor(uint32_t v)
{
#if defined(__GNUC__) || defined(__clang__)
    return 31 - __builtin_clz(v);
#else
    int n = -1;
    while (v) { n++; v >>= 1; }
    return n;
#endif
}

#define BLEND_ERROR_FLOOR 8u /* added to every predictor's error sum: softens the weights */

/* The blend weight of a predictor whose local error sum is e (8 <= e < 2^24): 2^24 / e with e cut
 * to its top 8 significant bits (exact below 256, within 1 % above), rounded down. Format 1 and 2
 * computed it as RECIPROCAL_24[e >> s] >> s from a table of floor(2^24 / m), m < 256; nested
 * floors of positive integers collapse, so that is floor(2^24 / ((e >> s) << s)), which this
 * computes in floating point, lane-parallel (no table look-up, no variable shift):
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
     * other two and f = idx + (idx == 3)). No selects: gcc turned those into branches. */
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

/* Adaptive linear predictor of the first channel (format 2): GAP's prediction plus a learnt
 * combination of the neighbours' offsets from it (N, W, NW, NE, NN, WW, NEE) and of the final
 * error at N, trained by normalised LMS with the normaliser rounded down to a power of two (a
 * shift, no division). It fits each image's texture, which the fixed predictors cannot: -0.3 %
 * bits at tau = 0-4 on the luma set, in place of a plain W predictor (12 inputs gained another
 * 0.08 % for 50 % more work). Weights have 16 fractional bits and are kept within +-2^22 (+-64). */
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

FORCE_INLINE int32_t lms_predict(const int32_t *weight, const channel_rows *r, const neighbours *nb, int32_t x,
                                 int32_t base, int32_t max8, int32_t *u, int *norm_log2)
{
#if LINF_VECTOR
    /* Built as vectors, not lane by lane: lms_dot and lms_update load them as vectors, and a
     * vector load of scalar stores cannot be forwarded (a stall of ~10 cycles). */
    const v4i32 near = {nb->n, nb->w, nb->nw, nb->ne}, far = {nb->nn, nb->ww, r->rec[1][x + 2], r->err[1][x]};
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
    u[6] = 8 * r->rec[1][x + 2] - base;
    u[7] = 8 * r->err[1][x];
#endif
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

/* ---------------------------------------------------------------- contexts */

/* Two buckets per octave of the energy, in units of half a quantiser step. */
FORCE_INLINE int energy_bucket(uint32_t energy, const coding_params *cp)
{
    const uint32_t v = (uint32_t)(((uint64_t)energy * cp->energy_scale) >> 16);
    /* Two buckets per octave above 4; below 4 the bucket is v itself (the octave formula gives
     * the same for 2 and 3). Both are computed and one selected, no branch; v | 2 only keeps
     * the shift count defined for v < 2, where the formula's result is not used. */
    const int top = log2_floor(v | 2u);
    const int octave = 2 * top + (int)((v >> (top - 1)) & 1u);
    const int bucket = v < 4 ? (int)v : octave;
    return bucket < NUM_ENERGY ? bucket : NUM_ENERGY - 1;
}

/* Bit i is set when the i-th neighbour (x8) is below the prediction: taken from the sign bit of
 * the difference (both below 2^22 in magnitude, so it cannot overflow), which saves a compare,
 * a set and a widening per bit. */
#define BELOW(v, pred8, i) ((((uint32_t)(8 * (v) - (pred8))) >> 31) << (i))
FORCE_INLINE int texture_bits(const neighbours *nb, int32_t pred8)
{
#if LINF_VECTOR
    /* Eight lanes in two vectors: each difference's sign, masked to its bit, OR-ed. */
    const v4i32 near = {nb->n, nb->w, nb->nw, nb->ne};
    const v4i32 far = {nb->nn, nb->ww, 2 * nb->n - nb->nn, 2 * nb->w - nb->ww};
    const v4i32 bits = (((8 * near - pred8) >> 31) & (v4i32){1, 2, 4, 8}) |
                       (((8 * far - pred8) >> 31) & (v4i32){16, 32, 64, 128});
    return (int)((bits[0] | bits[1]) | (bits[2] | bits[3]));
#else
    return (int)(BELOW(nb->n, pred8, 0) | BELOW(nb->w, pred8, 1) | BELOW(nb->nw, pred8, 2) |
                 BELOW(nb->ne, pred8, 3) | BELOW(nb->nn, pred8, 4) | BELOW(nb->ww, pred8, 5) |
                 BELOW(2 * nb->n - nb->nn, pred8, 6) | BELOW(2 * nb->w - nb->ww, pred8, 7));
#endif
}
#undef BELOW

/* The bias context's energy level (0: buckets 0-5, then one level per two buckets, 5: 14-16,
 * 6: 17-19, 7: 20 and up), already shifted above the texture bits: one load. Eight levels
 * instead of four (format 2): -0.25 % bits at tau = 0-4. */
#define L(level) ((level) << BIAS_TEXTURE_BITS)
static const uint16_t BIAS_ENERGY_LEVEL[NUM_ENERGY] = {
    L(0), L(0), L(0), L(0), L(0), L(0), L(1), L(1), L(2), L(2), L(3), L(3), L(4), L(4),
    L(5), L(5), L(5), L(6), L(6), L(6), L(7), L(7), L(7), L(7), L(7), L(7), L(7), L(7),
    L(7), L(7), L(7), L(7), L(7), L(7), L(7), L(7), L(7), L(7), L(7), L(7)};
#undef L

/* Zero-flag context part from the signs of W and N, indexed by 3 (s(W) + 1) + s(N) + 1 (which
 * is itself the sign context's part): 3 x how many of the two symbols were zero. */
static const uint8_t ZERO_NEIGHBOURS[9] = {0, 3, 0, 3, 6, 3, 0, 3, 0};

/* Context parts from the prediction's dropped fraction f (-4..3, index f + 4):
 * [0] zero flag: (|f| + 1) / 2; [1 + flip] sign: 9 min(f' + 4, 7), f' = -f when flipped. */
static const uint8_t FRACTION_CTX[3][8] = {
    {2, 2, 1, 1, 0, 1, 1, 2},
    {0, 9, 18, 27, 36, 45, 54, 63},
    {63, 63, 54, 45, 36, 27, 18, 9}};

/* ---------------------------------------------------------------- residual symbols */

/* A symbol s is coded as: zero flag; sign; then |s| in an adaptive Elias-gamma binarisation
 * (unary bit length, then the mantissa's top two bits adaptive, the rest equiprobable). The zero
 * flag's probability is the mean of two contexts' estimates: energy x neighbours x fraction, and
 * the bias context (texture x energy level), which sees the local shape the energy misses. */
FORCE_INLINE void encode_symbol(rc_encoder *rc, symbol_contexts *c, int32_t s, int bucket, int zctx, int sctx,
                                int bias_ctx)
{
    rc_encode_bit2(rc, &c->zero[bucket][zctx], &c->zero_texture[bias_ctx], s != 0);
    if (s == 0) return;
    rc_encode_bit(rc, &c->sign[sctx], s < 0);
    const uint32_t m = (uint32_t)iabs(s); /* >= 1 */
    const int k = log2_floor(m);          /* m in [2^k, 2^(k+1)) */
    for (int i = 0; i < k; i++) rc_encode_bit(rc, &c->unary[bucket][i], 1);
    if (k < MAX_MAGNITUDE_BITS - 1) rc_encode_bit(rc, &c->unary[bucket][k], 0);
    if (k == 0) return;
    const int high = (int)((m >> (k - 1)) & 1u);
    rc_encode_bit(rc, &c->mantissa_high[bucket][k], high);
    if (k == 1) return;
    rc_encode_bit(rc, &c->mantissa_second[k][high], (int)((m >> (k - 2)) & 1u));
    for (int i = k - 3; i >= 0; i--) rc_encode_direct(rc, (int)((m >> i) & 1u));
}

FORCE_INLINE int32_t decode_symbol(rc_decoder *rc, symbol_contexts *c, int bucket, int zctx, int sctx,
                                   int bias_ctx)
{
    if (!rc_decode_bit2(rc, &c->zero[bucket][zctx], &c->zero_texture[bias_ctx])) return 0;
    const int negative = rc_decode_bit(rc, &c->sign[sctx]);
    int k = 0;
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

/* ---------------------------------------------------------------- one sample */

typedef struct coder {
    coding_params params;
    channel_model *models;
    uint32_t channels;
    rc_encoder enc;
    rc_decoder dec;
} coder;

/* What the encoder's model pass hands its coding pass for one sample: the symbol and its
 * contexts. The model never depends on the coder's state, so the encoder models a run of samples
 * first and codes them after, in two tight loops instead of one that spills registers. */
typedef struct coded_symbol {
    int32_t symbol;
    uint16_t bias_ctx;
    uint8_t bucket, zctx, sctx, channel;
} coded_symbol;

#define ENCODE_CHUNK 256 /* samples modelled before they are coded (3 KB of stack); >= LINF_MAX_CHANNELS */

/* Quantise the residual exactly as paper Eq. 3: step 2*tau + 1, rounding half away from zero. */
FORCE_INLINE int32_t quantise(int32_t e, const coding_params *cp)
{
    /* (|e| + tau) / step by a multiply: with n = |e| + tau < 2^17 and the inverse rounded up by
     * less than step <= 2^16, n times that rounding stays below 2^40, so the quotient is exact. */
    const uint64_t n = (uint64_t)iabs(e) + (uint64_t)cp->tau;
    const int32_t q = (int32_t)((n * cp->step_inverse) >> 40);
    return e < 0 ? -q : q;
}

/* What code_sample does; tau = 0 encoding has its own copy, so neither pays for a test of tau. */
typedef enum coding_mode { ENCODE, ENCODE_LOSSLESS, DECODE } coding_mode;

/* prediction + q step, clamped to the sample range (which holds the original, so the clamp only
 * moves the reconstruction towards it). */
FORCE_INLINE int32_t reconstruct(int32_t prediction, int32_t q, const coding_params *cp)
{
    const int64_t unclamped = (int64_t)prediction + (int64_t)q * cp->step;
    return unclamped < 0 ? 0 : (unclamped > cp->max_value ? cp->max_value : (int32_t)unclamped);
}

/* ceil(2^24 / count): with it, (|sum| * inverse) >> 24 equals |sum| / count for the sums that occur. */
static const uint32_t BIAS_INVERSE[BIAS_COUNT_LIMIT + 1] = {
0, 16777216, 8388608, 5592406, 4194304, 3355444, 2796203, 2396746, 2097152, 1864136, 1677722,
1525202, 1398102, 1290556, 1198373, 1118482, 1048576, 986896, 932068, 883012, 838861, 798916,
762601, 729445, 699051, 671089, 645278, 621379, 599187, 578525, 559241, 541201, 524288, 508401,
493448, 479350, 466034, 453439, 441506, 430186, 419431, 409201, 399458, 390168, 381301, 372828,
364723, 356963, 349526, 342393, 335545, 328966, 322639, 316552, 310690, 305041, 299594, 294338,
289263, 284360, 279621, 275037, 270601, 266306, 262144};

/* sum / count rounded toward zero, by a multiply: counts stay below BIAS_COUNT_LIMIT. */
FORCE_INLINE int32_t bias_mean(int32_t sum, int32_t count)
{
    /* count == 0 needs no branch: BIAS_INVERSE[0] is 0 (and then sum is 0 too). The sign is
     * applied by mask, not by a branch: it flips unpredictably from context to context. */
    const int32_t mask = -(int32_t)(sum < 0);
    const int64_t magnitude = ((int64_t)((sum ^ mask) - mask) * BIAS_INVERSE[count]) >> 24;
    return ((int32_t)magnitude ^ mask) - mask;
}

FORCE_INLINE uint32_t saturate16(int32_t v) { return (uint32_t)(v > 0xFFFF ? 0xFFFF : v); }

/* Codes one sample of channel model m (ref: the reference channel or NULL) and returns its
 * reconstruction. Encoder and decoder share this function, so they cannot drift apart. */
FORCE_INLINE int32_t code_sample(coder *cd, channel_model *m, const channel_model *ref, int32_t x,
                                 int32_t original, coded_symbol *out, const coding_mode mode, const int num_predictors)
{
    const coding_params *cp = &cd->params;
    channel_rows *r = &m->rows;
    const neighbours nb = gather(r, x);
    int32_t pred[MAX_PREDICTORS] = {0}; /* unused lanes defined: the error update writes all 8 */
    int32_t gradient;
    intra_candidates(&nb, cp, r, x, pred, &gradient, ref == NULL);
    int32_t lms_input[LMS_INPUTS];
    int lms_shift = 0;
    if (ref) inter_candidates(&ref->rows, &nb, x, pred);
    else pred[7] = lms_predict(m->lms_weight, r, &nb, x, pred[0], 8 * cp->max_value, lms_input, &lms_shift);
    uint32_t spread;
    const int32_t blended = blend(r, num_predictors, x, pred, &spread);

    /* Error energy: the predictors' local error, the local gradient and the last error. */
    uint32_t energy = spread / 4u + (uint32_t)gradient / 2u + (uint32_t)iabs(r->err[0][x - 1]);
    if (ref) energy += 2u * (uint32_t)iabs(ref->rows.err[0][x]);
    const int bucket = energy_bucket(energy, cp);
    const int bias_ctx = texture_bits(&nb, blended) | BIAS_ENERGY_LEVEL[bucket];
    const int32_t correction = bias_mean(m->bias_sum[bias_ctx], m->bias_count[bias_ctx]);
    const int32_t pred8 = clamp32(blended + correction, 0, cp->max_value * 8);
    const int32_t prediction = (pred8 + 4) >> PRED_FRAC_BITS;
    const int flip = m->bias_sum[bias_ctx] < 0;

    /* The prediction's dropped fraction says which way the sample probably lies (sign) and how
     * likely it is to fall on the rounded prediction (zero flag). */
    const int32_t fraction = pred8 - 8 * prediction; /* -4 .. 3 */
    const int signs = 3 * (r->sign[0][x - 1] + 1) + r->sign[1][x] + 1;
    const int zctx = ZERO_NEIGHBOURS[signs] + FRACTION_CTX[0][fraction + 4];
    const int sctx = FRACTION_CTX[1 + flip][fraction + 4] + signs;
    int32_t symbol;
    if (mode == DECODE) {
        symbol = decode_symbol(&cd->dec, &m->ctx, bucket, zctx, sctx, bias_ctx);
    } else {
        const int32_t e = original - prediction;
        const int32_t q = mode == ENCODE_LOSSLESS ? e : quantise(e, cp); /* tau = 0: q = e */
        symbol = flip ? -q : q;
        out->symbol = symbol;
        out->bias_ctx = (uint16_t)bias_ctx;
        out->bucket = (uint8_t)bucket;
        out->zctx = (uint8_t)zctx;
        out->sctx = (uint8_t)sctx;
    }
    /* At tau = 0 the encoder's reconstruction is the sample itself. */
    const int32_t rec = mode == ENCODE_LOSSLESS ? original : reconstruct(prediction, flip ? -symbol : symbol, cp);

    /* Update the adaptive state from the reconstruction, identically on both sides. */
    r->rec[0][x] = rec;
    r->err[0][x] = rec - prediction;
    r->sign[0][x] = (int16_t)((symbol > 0) - (symbol < 0));
    /* All MAX_PREDICTORS lanes (blend never reads the unused ones): a fixed width that
     * the compiler turns into a few vector instructions instead of a scalar loop. */
    uint32_t *errors = r->pred_err + (ptrdiff_t)x * MAX_PREDICTORS;
    for (int k = 0; k < MAX_PREDICTORS; k++) errors[k] = saturate16(iabs(8 * rec - pred[k]));
    if (!ref) lms_update(m->lms_weight, lms_input, lms_shift, 8 * rec - pred[7]);
    m->bias_sum[bias_ctx] += 8 * rec - blended;
    if (++m->bias_count[bias_ctx] >= BIAS_COUNT_LIMIT) {
        m->bias_sum[bias_ctx] /= 2;
        m->bias_count[bias_ctx] /= 2;
    }
    return rec;
}

/* One out-of-line function per (direction, channel kind): each gets its own register allocation,
 * which costs a call per sample but avoids the spills of one giant inlined loop. */
#define NOINLINE static __attribute__((noinline))
NOINLINE int32_t encode_intra(coder *cd, channel_model *m, int32_t x, int32_t original, coded_symbol *out)
{ return code_sample(cd, m, NULL, x, original, out, ENCODE, FIRST_CHANNEL_PREDICTORS); }
NOINLINE int32_t encode_intra_lossless(coder *cd, channel_model *m, int32_t x, int32_t original, coded_symbol *out)
{ return code_sample(cd, m, NULL, x, original, out, ENCODE_LOSSLESS, FIRST_CHANNEL_PREDICTORS); }
NOINLINE int32_t encode_inter(coder *cd, channel_model *m, const channel_model *ref, int32_t x, int32_t original,
                              coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE, INTER_PREDICTORS); }
NOINLINE int32_t encode_inter_lossless(coder *cd, channel_model *m, const channel_model *ref, int32_t x,
                                       int32_t original, coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE_LOSSLESS, INTER_PREDICTORS); }
NOINLINE int32_t decode_intra(coder *cd, channel_model *m, int32_t x)
{ return code_sample(cd, m, NULL, x, 0, NULL, DECODE, FIRST_CHANNEL_PREDICTORS); }
NOINLINE int32_t decode_inter(coder *cd, channel_model *m, const channel_model *ref, int32_t x)
{ return code_sample(cd, m, ref, x, 0, NULL, DECODE, INTER_PREDICTORS); }

/* ---------------------------------------------------------------- rows and memory */

FORCE_INLINE void rotate3(int32_t **rows)
{
    int32_t *t = rows[2];
    rows[2] = rows[1];
    rows[1] = rows[0];
    rows[0] = t;
}

#define SWAP2(type, pair) do { type *t_ = (pair)[0]; (pair)[0] = (pair)[1]; (pair)[1] = t_; } while (0)

/* Left padding of the current row before it is coded: W of the first sample is its N. */
static void begin_row(channel_model *m, const coding_params *cp)
{
    channel_rows *r = &m->rows;
    for (int i = 1; i <= ROW_PAD; i++) {
        r->rec[0][-i] = r->rec[1][0];
        r->err[0][-i] = 0;
        r->sign[0][-i] = 0;
    }
    /* W's and WW's predictor errors at the first sample: borrow N's. */
    for (int k = 0; k < MAX_PREDICTORS; k++) {
        r->pred_err[-MAX_PREDICTORS + k] = r->up_err_sum[k] / 4u;
        r->pred_err[-2 * MAX_PREDICTORS + k] = r->up_err_sum[k] / 4u;
    }
    (void)cp;
}

/* For the next row: each predictor's e(NW) + e(N) + e(NE) + e(NEE), with edges repeating the end
 * samples. */
static void summarise_row_errors(channel_rows *r, int32_t width)
{
    /* All MAX_PREDICTORS lanes are summed (unused lanes hold values no one reads). The edge
     * samples are done apart, so the interior is one flat branch-free loop that vectorises. */
    const uint32_t *restrict e = r->pred_err;
    uint32_t *restrict sum = r->up_err_sum;
    const size_t P = MAX_PREDICTORS;
    const size_t last = (size_t)(width - 1) * P;
    if (width < 4) {
        for (int32_t x = 0; x < width; x++)
            for (size_t k = 0; k < P; k++) {
                const size_t at = (size_t)x * P + k;
                const size_t left = (x > 0 ? (size_t)(x - 1) * P : 0) + k;
                const size_t right = (x + 1 < width ? (size_t)(x + 1) * P : last) + k;
                const size_t right2 = (x + 2 < width ? (size_t)(x + 2) * P : last) + k;
                sum[at] = e[left] + e[at] + e[right] + e[right2];
            }
    } else {
        for (size_t k = 0; k < P; k++) sum[k] = 2u * e[k] + e[P + k] + e[2 * P + k];
        for (size_t i = P; i + P < last; i++)
            sum[i] = e[i - P] + e[i] + e[i + P] + e[i + 2 * P];
        for (size_t k = 0; k < P; k++) {
            sum[last - P + k] = e[last - 2 * P + k] + e[last - P + k] + 2u * e[last + k];
            sum[last + k] = e[last - P + k] + 3u * e[last + k];
        }
    }
    for (size_t k = 0; k < P; k++) sum[last + P + k] = sum[last + k];
}

/* Right and left padding of a finished row, then rotate it up. */
static void end_row(channel_model *m, const coding_params *cp, int first_row)
{
    channel_rows *r = &m->rows;
    const int32_t w = (int32_t)cp->width;
    for (int i = 1; i <= ROW_PAD; i++) {
        r->rec[0][w - 1 + i] = r->rec[0][w - 1];
        r->rec[0][-i] = r->rec[0][0];
        r->err[0][w - 1 + i] = r->err[0][w - 1];
        r->sign[0][w - 1 + i] = r->sign[0][w - 1];
    }
    summarise_row_errors(r, w);
    if (first_row) /* two rows up does not exist yet: let it repeat the first row */
        memcpy(r->rec[1] - ROW_PAD, r->rec[0] - ROW_PAD, sizeof(int32_t) * (cp->width + 2 * ROW_PAD));
    rotate3(r->rec);
    SWAP2(int32_t, r->err);
    SWAP2(int16_t, r->sign);
}

/* Bytes of row buffers one channel needs. */
static size_t channel_row_bytes(uint32_t width)
{
    const size_t n = (size_t)width + 2 * ROW_PAD;
    const size_t bytes = n * (5 * sizeof(int32_t) + MAX_PREDICTORS * 2 * sizeof(uint32_t) +
                              2 * sizeof(int16_t));
    return (bytes + 15) & ~(size_t)15; /* keeps the next channel's int32 rows aligned */
}

static void init_channel(channel_model *m, uint8_t *block, uint32_t width, int num_predictors, int32_t mid)
{
    const size_t n = (size_t)width + 2 * ROW_PAD;
    memset(m, 0, sizeof(*m));
    m->num_predictors = num_predictors;
    int32_t *i32 = (int32_t *)(void *)block;
    for (int i = 0; i < 3; i++) { m->rows.rec[i] = i32 + ROW_PAD; i32 += n; }
    for (int i = 0; i < 2; i++) { m->rows.err[i] = i32 + ROW_PAD; i32 += n; }
    uint32_t *u32 = (uint32_t *)(void *)i32;
    m->rows.up_err_sum = u32 + ROW_PAD * MAX_PREDICTORS;
    m->rows.pred_err = u32 + n * MAX_PREDICTORS + ROW_PAD * MAX_PREDICTORS;
    int16_t *i16 = (int16_t *)(void *)(u32 + 2 * n * MAX_PREDICTORS);
    for (int i = 0; i < 2; i++) { m->rows.sign[i] = i16 + ROW_PAD; i16 += n; }
    memset(block, 0, channel_row_bytes(width));
    /* Rows above the image read as mid-grey; the first row is then predicted mostly from W. */
    for (int i = 1; i < 3; i++)
        for (size_t j = 0; j < n; j++) m->rows.rec[i][(ptrdiff_t)j - ROW_PAD] = mid;
    symbol_contexts *c = &m->ctx;
    rc_bit *bits = (rc_bit *)(void *)c;
    for (size_t i = 0; i < sizeof(*c) / sizeof(rc_bit); i++) rc_bit_init(&bits[i]);
}

static void init_params(coding_params *cp, const linf_image_desc *d)
{
    cp->max_value = (int32_t)((1u << d->bit_depth) - 1);
    cp->tau = (int32_t)d->tau;
    cp->step = 2 * (int32_t)d->tau + 1;
    cp->width = d->width;
    cp->energy_scale = (2u << 16) / (uint32_t)cp->step;
    cp->step_inverse = ((UINT64_C(1) << 40) + (uint64_t)cp->step - 1) / (uint64_t)cp->step;
    const int s = (int)d->bit_depth - 8;
    cp->gap_t8 = s >= 0 ? 8 << s : (8 >> -s > 0 ? 8 >> -s : 1);
    cp->gap_t32 = s >= 0 ? 32 << s : (32 >> -s > 0 ? 32 >> -s : 1);
    cp->gap_t80 = s >= 0 ? 80 << s : (80 >> -s > 0 ? 80 >> -s : 1);
}

/* Allocates the models of every channel in one block (and the block itself for freeing). */
static linf_status setup_coder(coder *cd, const linf_image_desc *d, void **memory)
{
    init_params(&cd->params, d);
    cd->channels = d->channels;
    const size_t rows = channel_row_bytes(d->width);
    const size_t per_channel = sizeof(channel_model) + rows;
    uint8_t *block = malloc(per_channel * d->channels);
    if (!block) return LINF_ERR_OUT_OF_MEMORY;
    cd->models = (channel_model *)(void *)block;
    uint8_t *row_memory = block + sizeof(channel_model) * d->channels;
    const int32_t mid = (int32_t)(1u << (d->bit_depth - 1));
    for (uint32_t c = 0; c < d->channels; c++)
        init_channel(&cd->models[c], row_memory + rows * c, d->width, c ? INTER_PREDICTORS : FIRST_CHANNEL_PREDICTORS, mid);
    *memory = block;
    return LINF_OK;
}

/* ---------------------------------------------------------------- image loops */

FORCE_INLINE int32_t load_sample(const void *pixels, size_t i, int wide)
{
    return wide ? ((const uint16_t *)pixels)[i] : ((const uint8_t *)pixels)[i];
}

FORCE_INLINE void store_sample(void *pixels, size_t i, int wide, int32_t v)
{
    if (wide) ((uint16_t *)pixels)[i] = (uint16_t)v;
    else ((uint8_t *)pixels)[i] = (uint8_t)v;
}

/* One function per row and (direction, single channel or not). The encoder models up to
 * ENCODE_CHUNK samples, then codes them (encode_symbols). Their loops keep the row's
 * invariants in registers and skip the generic loop's per-sample tests: measured 22 fewer
 * instructions per sample for gray encoding. Decoding a single channel also inlines the
 * per-sample decoder into its loop (17 fewer); the same measured worse for the encoder and for
 * multichannel rows (more values live at once), which call the out-of-line coders instead. */
NOINLINE void decode_gray_row(coder *cd, void *pixels, size_t i, int wide)
{
    channel_model *m = &cd->models[0];
    const int32_t width = (int32_t)cd->params.width;
    for (int32_t x = 0; x < width; x++, i++)
        store_sample(pixels, i, wide, code_sample(cd, m, NULL, x, 0, NULL, DECODE, FIRST_CHANNEL_PREDICTORS));
}

NOINLINE void decode_colour_row(coder *cd, void *pixels, size_t i, int wide, uint32_t channels)
{
    channel_model *models = cd->models;
    const int32_t width = (int32_t)cd->params.width;
    for (int32_t x = 0; x < width; x++) {
        store_sample(pixels, i++, wide, decode_intra(cd, models, x));
        for (uint32_t c = 1; c < channels; c++, i++)
            store_sample(pixels, i, wide, decode_inter(cd, &models[c], &models[c - 1], x));
    }
}

/* The encoder's coding pass over a run of modelled samples (gray: all of channel 0). */
FORCE_INLINE void encode_symbols(coder *cd, const coded_symbol *symbols, size_t count, const int gray)
{
    channel_model *models = cd->models;
    for (size_t j = 0; j < count; j++) {
        const coded_symbol *s = &symbols[j];
        symbol_contexts *c = &models[gray ? 0 : s->channel].ctx;
        encode_symbol(&cd->enc, c, s->symbol, s->bucket, s->zctx, s->sctx, s->bias_ctx);
    }
}
NOINLINE void encode_gray_symbols(coder *cd, const coded_symbol *symbols, size_t count)
{ encode_symbols(cd, symbols, count, 1); }
NOINLINE void encode_colour_symbols(coder *cd, const coded_symbol *symbols, size_t count)
{ encode_symbols(cd, symbols, count, 0); }

NOINLINE void encode_gray_row(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide)
{
    channel_model *m = &cd->models[0];
    const int lossless = cd->params.tau == 0;
    const int32_t width = (int32_t)cd->params.width;
    coded_symbol symbols[ENCODE_CHUNK];
    for (int32_t x0 = 0; x0 < width; x0 += ENCODE_CHUNK) {
        const int32_t end = width - x0 < ENCODE_CHUNK ? width : x0 + ENCODE_CHUNK;
        for (int32_t x = x0; x < end; x++, i++) {
            coded_symbol *s = &symbols[x - x0];
            const int32_t original = load_sample(pixels, i, wide);
            const int32_t rec = lossless ? encode_intra_lossless(cd, m, x, original, s)
                                         : encode_intra(cd, m, x, original, s);
            if (reconstruction) store_sample(reconstruction, i, wide, rec);
        }
        encode_gray_symbols(cd, symbols, (size_t)(end - x0));
    }
}

FORCE_INLINE void encode_colour_row_as(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide,
                                       uint32_t channels, const int lossless)
{
    channel_model *models = cd->models;
    const int32_t width = (int32_t)cd->params.width;
    coded_symbol symbols[ENCODE_CHUNK];
    size_t n = 0;
    for (int32_t x = 0; x < width; x++) {
        if (n + channels > ENCODE_CHUNK) {
            encode_colour_symbols(cd, symbols, n);
            n = 0;
        }
        symbols[n].channel = 0;
        int32_t original = load_sample(pixels, i, wide);
        int32_t rec = lossless ? encode_intra_lossless(cd, models, x, original, &symbols[n])
                               : encode_intra(cd, models, x, original, &symbols[n]);
        n++;
        if (reconstruction) store_sample(reconstruction, i, wide, rec);
        i++;
        for (uint32_t c = 1; c < channels; c++, i++) {
            symbols[n].channel = (uint8_t)c;
            original = load_sample(pixels, i, wide);
            rec = lossless ? encode_inter_lossless(cd, &models[c], &models[c - 1], x, original, &symbols[n])
                           : encode_inter(cd, &models[c], &models[c - 1], x, original, &symbols[n]);
            n++;
            if (reconstruction) store_sample(reconstruction, i, wide, rec);
        }
    }
    encode_colour_symbols(cd, symbols, n);
}

NOINLINE void encode_colour_row(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide,
                                uint32_t channels)
{
    if (cd->params.tau == 0) encode_colour_row_as(cd, pixels, reconstruction, i, wide, channels, 1);
    else encode_colour_row_as(cd, pixels, reconstruction, i, wide, channels, 0);
}

/* Raster order, channels interleaved pixel by pixel. */
FORCE_INLINE void code_image(coder *cd, const linf_image_desc *d, void *pixels, void *reconstruction,
                             const int decoding)
{
    const int wide = d->bit_depth > 8;
    const uint32_t channels = d->channels;
    for (uint32_t y = 0; y < d->height; y++) {
        for (uint32_t c = 0; c < channels; c++) begin_row(&cd->models[c], &cd->params);
        const size_t i = (size_t)y * d->width * channels;
        if (decoding) {
            if (channels == 1) decode_gray_row(cd, pixels, i, wide);
            else decode_colour_row(cd, pixels, i, wide, channels);
        } else {
            if (channels == 1) encode_gray_row(cd, pixels, reconstruction, i, wide);
            else encode_colour_row(cd, pixels, reconstruction, i, wide, channels);
        }
        for (uint32_t c = 0; c < channels; c++) end_row(&cd->models[c], &cd->params, y == 0);
        if (!decoding && cd->enc.overflow) return; /* raw storage will be smaller: stop early */
    }
}

static void encode_image(coder *cd, const linf_image_desc *d, const void *pixels, void *reconstruction)
{
    code_image(cd, d, (void *)(uintptr_t)pixels, reconstruction, 0);
}

static void decode_image(coder *cd, const linf_image_desc *d, void *pixels)
{
    code_image(cd, d, pixels, NULL, 1);
}

/* ---------------------------------------------------------------- public API */

const char *linf_version(void) { return "linf_codec 2.0.0 (format 2)"; }

const char *linf_error_message(linf_status status)
{
    switch (status) {
    case LINF_OK: return "success";
    case LINF_ERR_TRUNCATED: return "the stream is truncated: it is shorter than its header says";
    case LINF_ERR_BAD_MAGIC: return "not a linf stream: the magic bytes 'LINF' are missing";
    case LINF_ERR_BAD_VERSION: return "the stream's format version is not supported by this decoder";
    case LINF_ERR_BAD_HEADER: return "the stream header is corrupt or inconsistent";
    case LINF_ERR_CRC_MISMATCH: return "the payload checksum does not match: the stream is corrupt";
    case LINF_ERR_CORRUPT_PAYLOAD: return "the payload is corrupt: it does not decode to a valid image";
    case LINF_ERR_TOO_LARGE: return "the image is larger than the decoder's sample limit";
    case LINF_ERR_NULL_ARGUMENT: return "a required pointer argument is NULL";
    case LINF_ERR_INVALID_DIMENSIONS:
        return "width, height and channels must be non-zero and within the codec's size limits";
    case LINF_ERR_INVALID_BIT_DEPTH: return "bit depth must be between 1 and 16";
    case LINF_ERR_INVALID_TAU: return "tau must be between 0 and (2^bit_depth - 1) / 2";
    case LINF_ERR_SAMPLE_OUT_OF_RANGE: return "a sample value does not fit in the given bit depth";
    case LINF_ERR_BUFFER_TOO_SMALL: return "a buffer is smaller than required";
    case LINF_ERR_OUT_OF_MEMORY: return "out of memory";
    }
    return "unknown status code";
}

size_t linf_pixel_bytes(const linf_image_desc *desc)
{
    if (!desc || linf_check_desc(desc) != LINF_OK) return 0;
    const uint64_t bytes = (uint64_t)desc->width * desc->height * desc->channels * (desc->bit_depth > 8 ? 2u : 1u);
    return bytes > (uint64_t)SIZE_MAX ? 0 : (size_t)bytes;
}

size_t linf_max_encoded_size(const linf_image_desc *desc)
{
    const size_t raw = linf_pixel_bytes(desc);
    return raw ? raw + LINF_HEADER_BYTES : 0;
}

static linf_status check_samples(const linf_image_desc *d, const void *pixels, size_t count)
{
    /* The largest sample, by loops without an early exit, which vectorise; a full 8- or 16-bit
     * depth needs no check at all. */
    const uint32_t max_value = (1u << d->bit_depth) - 1;
    uint32_t largest = 0;
    if (d->bit_depth > 8) {
        if (d->bit_depth == 16) return LINF_OK;
        const uint16_t *s = pixels;
        uint16_t m = 0;
        for (size_t i = 0; i < count; i++) m = s[i] > m ? s[i] : m;
        largest = m;
    } else {
        if (d->bit_depth == 8) return LINF_OK;
        const uint8_t *s = pixels;
        uint8_t m = 0;
        for (size_t i = 0; i < count; i++) m = s[i] > m ? s[i] : m;
        largest = m;
    }
    return largest > max_value ? LINF_ERR_SAMPLE_OUT_OF_RANGE : LINF_OK;
}

/* Stores samples uncompressed (little-endian), for input the predictive coder cannot shrink. */
static void store_raw(const linf_image_desc *d, const void *pixels, size_t count, uint8_t *out)
{
    if (d->bit_depth <= 8) {
        memcpy(out, pixels, count);
        return;
    }
    const uint16_t *s = pixels;
    for (size_t i = 0; i < count; i++) {
        out[2 * i] = (uint8_t)s[i];
        out[2 * i + 1] = (uint8_t)(s[i] >> 8);
    }
}

/* Loads raw samples, refusing any above the header's bit depth: a forged stream with a valid CRC
 * must not hand the caller values its declared depth cannot hold. */
static linf_status load_raw(const linf_image_desc *d, const uint8_t *in, size_t count, void *pixels)
{
    if (d->bit_depth <= 8) {
        memcpy(pixels, in, count);
    } else {
        uint16_t *s = pixels;
        for (size_t i = 0; i < count; i++) s[i] = (uint16_t)(in[2 * i] | (in[2 * i + 1] << 8));
    }
    return check_samples(d, pixels, count) == LINF_OK ? LINF_OK : LINF_ERR_CORRUPT_PAYLOAD;
}

static void finish_stream(linf_header *h, const linf_image_desc *d, uint8_t *dst, size_t payload, uint32_t mode)
{
    h->desc = *d;
    h->format_version = LINF_FORMAT_VERSION;
    h->coding_mode = mode;
    h->payload_bytes = payload;
    h->payload_crc32 = linf_crc32(dst + LINF_HEADER_BYTES, payload);
    h->header_bytes = LINF_HEADER_BYTES;
    linf_write_header(dst, h);
}

linf_status linf_encode(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                        uint8_t *dst, size_t dst_capacity, size_t *written)
{
    return linf_encode_reconstruct(desc, pixels, pixel_bytes, dst, dst_capacity, written, NULL, 0);
}

linf_status linf_encode_reconstruct(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                                    uint8_t *dst, size_t dst_capacity, size_t *written,
                                    void *reconstruction, size_t reconstruction_bytes)
{
    if (!desc || !pixels || !dst || !written) return LINF_ERR_NULL_ARGUMENT;
    *written = 0;
    const linf_status valid = linf_check_desc(desc);
    if (valid != LINF_OK) return valid;
    const size_t raw = linf_pixel_bytes(desc);
    if (raw == 0) return LINF_ERR_INVALID_DIMENSIONS;
    if (pixel_bytes < raw) return LINF_ERR_BUFFER_TOO_SMALL;
    if (dst_capacity < LINF_HEADER_BYTES) return LINF_ERR_BUFFER_TOO_SMALL;
    if (reconstruction && reconstruction_bytes < raw) return LINF_ERR_BUFFER_TOO_SMALL;
    const size_t count = (size_t)desc->width * desc->height * desc->channels;
    linf_status status = check_samples(desc, pixels, count);
    if (status != LINF_OK) return status;

    coder cd;
    void *memory = NULL;
    if ((status = setup_coder(&cd, desc, &memory)) != LINF_OK) return status;
    const size_t room = dst_capacity - LINF_HEADER_BYTES;
    rc_enc_init(&cd.enc, dst + LINF_HEADER_BYTES, room < raw ? room : raw);
    encode_image(&cd, desc, pixels, reconstruction);
    if (!cd.enc.overflow) rc_enc_finish(&cd.enc);
    free(memory);

    linf_header h;
    if (!cd.enc.overflow && cd.enc.size < raw) {
        finish_stream(&h, desc, dst, cd.enc.size, LINF_MODE_PREDICTIVE);
    } else {
        if (room < raw) return LINF_ERR_BUFFER_TOO_SMALL;
        store_raw(desc, pixels, count, dst + LINF_HEADER_BYTES);
        finish_stream(&h, desc, dst, raw, LINF_MODE_RAW);
        if (reconstruction) memcpy(reconstruction, pixels, raw); /* raw storage decodes exactly */
    }
    *written = LINF_HEADER_BYTES + (size_t)h.payload_bytes;
    return LINF_OK;
}

linf_status linf_read_header(const uint8_t *src, size_t src_bytes, linf_header *header)
{
    if (!src || !header) return LINF_ERR_NULL_ARGUMENT;
    return linf_parse_header(src, src_bytes, header);
}

linf_status linf_decode(const uint8_t *src, size_t src_bytes, void *pixels, size_t pixel_bytes,
                        uint64_t max_samples)
{
    if (!src || !pixels) return LINF_ERR_NULL_ARGUMENT;
    linf_header h;
    linf_status status = linf_parse_header(src, src_bytes, &h);
    if (status != LINF_OK) return status;
    const uint64_t samples = (uint64_t)h.desc.width * h.desc.height * h.desc.channels;
    if (samples > (max_samples ? max_samples : LINF_MAX_SAMPLES)) return LINF_ERR_TOO_LARGE;
    const size_t raw = linf_pixel_bytes(&h.desc);
    if (raw == 0) return LINF_ERR_TOO_LARGE;
    if (pixel_bytes < raw) return LINF_ERR_BUFFER_TOO_SMALL;
    if (h.payload_bytes > src_bytes - LINF_HEADER_BYTES) return LINF_ERR_TRUNCATED;
    const uint8_t *payload = src + LINF_HEADER_BYTES;
    const size_t payload_bytes = (size_t)h.payload_bytes;
    if (linf_crc32(payload, payload_bytes) != h.payload_crc32) return LINF_ERR_CRC_MISMATCH;
    if (h.coding_mode == LINF_MODE_RAW) return load_raw(&h.desc, payload, (size_t)samples, pixels);
    coder cd;
    void *memory = NULL;
    if ((status = setup_coder(&cd, &h.desc, &memory)) != LINF_OK) return status;
    rc_dec_init(&cd.dec, payload, payload_bytes);
    decode_image(&cd, &h.desc, pixels);
    free(memory);
    /* A valid payload is consumed up to its flush bytes; far more means it was cut or forged. */
    return cd.dec.overrun > 8 ? LINF_ERR_CORRUPT_PAYLOAD : LINF_OK;
}
