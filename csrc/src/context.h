/* Context modelling: the error-energy bucket, the texture bits of the bias context, the bias
 * cancellation's running mean, and the small tables that combine them into coding contexts.
 * Branch-free on purpose: these decisions are coin tosses in textured areas, where a branch
 * mispredicts often. */
#ifndef LINF_CONTEXT_H
#define LINF_CONTEXT_H

#include "model.h"
#include "predict.h"
#include "util.h"


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
 * 6: 17-19, 7: 20 and up), already shifted above the texture bits: one load. */
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

/* Format 6: the correction of a prediction (1/8 steps) from the regressors e, with the bucket's
 * current least-squares weights. */
FORCE_INLINE int32_t regression_term(const error_regression *g, const int32_t *e)
{
    int64_t sum = 0;
    for (int i = 0; i < REGRESSORS; i++) sum += (int64_t)g->beta[i] * e[i];
    return (int32_t)(sum >> REGRESSION_FRAC_BITS);
}

#define REGRESSION_BETA_LIMIT (32 << REGRESSION_FRAC_BITS) /* |weight| <= 4 samples per sample */

/* Solves (sum e e^T + I) beta = sum r e by Gaussian elimination: the ridge I makes the matrix
 * positive definite (no pivoting needed) and gives a regressor that stayed zero (a first channel's
 * missing reference) the weight 0. Double precision in a fixed order: IEEE-754 arithmetic is
 * correctly rounded and built without contraction (-ffp-contract=off), so every platform gets
 * the same weights. */
static void regression_solve(error_regression *g)
{
    double m[REGRESSORS][REGRESSORS + 1];
    for (int i = 0, k = 0; i < REGRESSORS; i++) {
        for (int j = i; j < REGRESSORS; j++, k++) m[i][j] = m[j][i] = (double)g->cross[k];
        m[i][i] += 1.0;
        m[i][REGRESSORS] = (double)g->target[i];
    }
    for (int p = 0; p < REGRESSORS; p++) {
        if (!(m[p][p] > 0.0)) return; /* not reached for a positive definite matrix */
        const double inverse = 1.0 / m[p][p];
        for (int i = p + 1; i < REGRESSORS; i++) {
            const double f = m[i][p] * inverse;
            for (int j = p; j <= REGRESSORS; j++) m[i][j] -= f * m[p][j];
        }
    }
    double beta[REGRESSORS];
    for (int i = REGRESSORS - 1; i >= 0; i--) {
        double v = m[i][REGRESSORS];
        for (int j = i + 1; j < REGRESSORS; j++) v -= m[i][j] * beta[j];
        beta[i] = v / m[i][i];
    }
    const double one = (double)(1 << REGRESSION_FRAC_BITS), limit = (double)REGRESSION_BETA_LIMIT;
    for (int i = 0; i < REGRESSORS; i++) {
        const double v = beta[i] * one;
        g->beta[i] = (int32_t)(v > limit ? limit : (v < -limit ? -limit : v));
    }
}

/* Adds one sample (residual r in 1/8 steps, regressors e). The sums halve every REGRESSION_COUNT
 * samples; the weights are re-solved every REGRESSION_SOLVE_EVERY samples (solving each time
 * codes within 0.05 % for 2.3 x the instructions), and not before REGRESSION_MIN_COUNT: weights
 * fitted to a few samples overfit (small images and stripes lost up to 3 %, docs/codec_design.md). */
static inline void regression_update(error_regression *g, int64_t r, const int32_t *e)
{
    for (int i = 0, k = 0; i < REGRESSORS; i++) {
        for (int j = i; j < REGRESSORS; j++, k++) g->cross[k] += (int64_t)e[i] * e[j];
        g->target[i] += r * e[i];
    }
    if (++g->count >= REGRESSION_COUNT) {
        for (int k = 0; k < REGRESSORS * (REGRESSORS + 1) / 2; k++) g->cross[k] /= 2;
        for (int i = 0; i < REGRESSORS; i++) g->target[i] /= 2;
        g->count /= 2;
    }
    if (g->count >= REGRESSION_MIN_COUNT && g->count % REGRESSION_SOLVE_EVERY == 0) regression_solve(g);
}

#endif
