/* POSIX threads (pthread.h) under -std=c99. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

/* Encoder and decoder loops of the near-lossless codec, and the public API.
 *
 * The per-sample pieces live in static-inline headers: predict.h (candidates, NLMS, blend),
 * context.h (energy, texture, bias cancellation), symbol.h (quantisation and binarisation),
 * rangecoder.h (the binary range coder). This file ties them together in code_sample, runs the
 * image loops, owns the working memory and implements the public API. */
#include <stdlib.h>
#include <string.h>

/* Stripes are coded on POSIX threads; -DLINF_THREADS=0 builds a core that codes them one after
 * another on the calling thread (same streams, same results). */
#ifndef LINF_THREADS
#define LINF_THREADS 1
#endif
#if LINF_THREADS
#include <pthread.h>
#endif

#include "crc32.h"
#include "header.h"
#include "linf_codec.h"
#include "context.h"
#include "model.h"
#include "predict.h"
#include "rangecoder.h"
#include "symbol.h"
#include "util.h"

/* ---------------------------------------------------------------- one sample */

typedef struct coder {
    coding_params params;
    channel_model *models;
    int colour4;                          /* format 4 multichannel model: 1, 2 moved-only (code_sample) */
    uint16_t order[LINF_MAX_CHANNELS];    /* coding position -> channel */
    uint16_t ref[LINF_MAX_CHANNELS];      /* channel -> its reference channel (unused for order[0]) */
    rc_encoder enc;
    rc_decoder dec;
} coder;

/* What the encoder's model pass hands its coding pass for one sample: the symbol and its
 * contexts. The model never depends on the coder's state, so the encoder models a run of samples
 * first and codes them after, in two tight loops instead of one that spills registers. */
typedef struct coded_symbol {
    int32_t symbol;
    uint16_t bias_ctx;
    uint8_t bucket, zctx, sctx, channel, nctx;
} coded_symbol;

#define ENCODE_CHUNK 256 /* samples modelled before they are coded (3 KB of stack); >= LINF_MAX_CHANNELS */

/* What code_sample does; tau = 0 encoding has its own copy, so neither pays for a test of tau. */
typedef enum coding_mode { ENCODE, ENCODE_LOSSLESS, DECODE } coding_mode;

/* Codes one sample of channel model m (ref: the reference channel or NULL) and returns its
 * reconstruction. Encoder and decoder share this function, so they cannot drift apart.
 * colour4 (format 4, a compile-time constant): a channel with a reference is predicted by the
 * first channel's full machinery applied to its neighbours moved by the reference's local change
 * (w' = w + ref(x) - ref(W), ...): every candidate P of translation-invariant form then predicts
 * ref(x) + P(channel - ref), the channel difference, with the self-correcting and adaptive linear
 * predictors on it too. Formats 2 and 3 (colour4 = 0) keep their three interband candidates.
 * multichannel (a compile-time constant, 0 for gray rows) lets format 6's mixing and regression
 * exist at all: the gray rows, whose streams never use them, keep their former code and speed. */
FORCE_INLINE int32_t code_sample(coder *cd, channel_model *m, const channel_model *ref, int32_t x,
                                 int32_t original, coded_symbol *out, const coding_mode mode, const int num_predictors,
                                 const int colour4, const int multichannel)
{
    const int format6 = multichannel && m->format6;
    const coding_params *cp = &cd->params;
    channel_rows *r = &m->rows;
    const neighbours nb = gather(r, x);
    neighbours nd = nb;
    int32_t pred[MAX_PREDICTORS] = {0}; /* unused lanes defined: the error update writes all 8 */
    int32_t gradient;
    int32_t lms_input[LMS_INPUTS];
    int lms_shift = 0;
    const int full = colour4 || ref == NULL;
    if (colour4 && ref) {
        const channel_rows *q = &ref->rows;
        const int32_t rc = q->rec[0][x];
        nd.w += rc - q->rec[0][x - 1];
        nd.ww += rc - q->rec[0][x - 2];
        nd.n += rc - q->rec[1][x];
        nd.nw += rc - q->rec[1][x - 1];
        nd.ne += rc - q->rec[1][x + 1];
        nd.nn += rc - q->rec[2][x];
        nd.nne += rc - q->rec[2][x + 1];
        inter4_candidates(&nd, &nb, cp, r, x, pred, &gradient, colour4 == 2);
        /* N moved by the second channel's change: a third channel leans on both before it. */
        const int32_t n2 = nb.n + m->second->rows.rec[0][x] - m->second->rows.rec[1][x];
        const int32_t a = colour4 == 2 ? nd.nn : nb.n, b = colour4 == 2 ? nd.ww : nb.w;
        const int32_t e2 = m->second->rows.err[0][x];
        pred[7] = lms_predict_inter(m->lms_weight, &nd, n2, a, b, e2, pred[0], 8 * cp->max_value, lms_input, &lms_shift);
    } else {
        intra_candidates(&nb, cp, r, x, pred, &gradient, ref == NULL);
        if (ref) inter_candidates(&ref->rows, &nb, x, pred);
        else pred[7] = lms_predict(m->lms_weight, r, &nb, x, r->rec[1][x + 2], pred[0], 8 * cp->max_value,
                                   lms_input, &lms_shift);
    }
    uint32_t spread;
    const int32_t blended = blend(r, num_predictors, x, pred, &spread);

    /* Error energy: the predictors' local error, the local gradient and the last error. */
    uint32_t energy = spread / 4u + (uint32_t)gradient / 2u + (uint32_t)iabs(r->err[0][x - 1]);
    /* The reference's error at this pixel: weight 2 in formats 2-3; in format 4, 4 with the
     * mixed candidates and 0 with moved-only ones, whose moved neighbours already carry the
     * reference's surprise. A third channel adds the second channel's error at this pixel
     * (weight 16 moved-only, 2 mixed): what the reference did not explain in one difference
     * channel it often does not in the other. Measured: docs/codec_design.md. */
    const uint32_t ref_weight = colour4 == 2 ? 0u : colour4 ? 4u : 2u;
    if (ref && ref_weight) energy += ref_weight * (uint32_t)iabs(ref->rows.err[0][x]);
    if (!colour4 && ref) energy += m->second_weight * (uint32_t)iabs(m->second->rows.err[0][x]);
    if (colour4 && ref && m->second != ref)
        energy += (colour4 == 2 ? 16u : 2u) * (uint32_t)iabs(m->second->rows.err[0][x]);
    const int bucket = energy_bucket(energy, cp);
    /* Mixed candidate set (format 4): the bias context's 2N - NN texture bit becomes the sign of
     * the reference's error at this pixel (the co-located surprise of the channel it leans on):
     * mcmaster -0.1 to -0.3 %. Moved-only candidates already carry it in their neighbours. */
    int texture = texture_bits(&nd, blended);
    if (colour4 == 1 && ref) texture = (texture & ~(1 << 6)) | ((ref->rows.err[0][x] > 0) << 6);
    const int bias_ctx = texture | BIAS_ENERGY_LEVEL[bucket];
    const int32_t correction = bias_mean(m->bias_sum[bias_ctx], m->bias_count[bias_ctx]);
    /* Format 6: what the nearby errors say about this residual, by regression: the co-located
     * errors of the reference and of the second channel coded before it (the surprise this
     * channel probably shares), its own errors at W, N, NE, NW and the reference's at W and N.
     * A first channel has the own errors only (the others stay 0 and get weight 0). */
    error_regression *regression = NULL;
    int32_t regressors[REGRESSORS], regressed = 0, clip = 0;
    if (format6) {
        regressors[0] = ref ? ref->rows.err[0][x] : 0;
        regressors[1] = ref && m->second != ref ? m->second->rows.err[0][x] : 0;
        regressors[6] = ref ? ref->rows.err[0][x - 1] : 0;
        regressors[7] = ref ? ref->rows.err[1][x] : 0;
        regressors[2] = r->err[0][x - 1];
        regressors[3] = r->err[1][x];
        regressors[4] = r->err[1][x + 1];
        regressors[5] = r->err[1][x - 1];
        /* An outlier (a hot pixel's error) would dominate the sums: the regressors and the
         * residual are clipped to 2 steps x 2^(bucket/2), a few times the bucket's error scale (a
         * 16-bit stack with hot pixels lost 4-5 % without; elsewhere within 0.03 %). */
        const int64_t scaled = (int64_t)cp->step * ((int64_t)REGRESSION_CLIP << (bucket >> 1));
        clip = scaled > cp->max_value ? cp->max_value : (int32_t)scaled;
        for (int i = 0; i < REGRESSORS; i++) regressors[i] = clamp32(regressors[i], -clip, clip);
        regression = &m->regression[bucket];
        regressed = regression_term(regression, regressors);
    }
    const int32_t pred8 = clamp32(blended + correction + regressed, 0, cp->max_value * 8);
    const int32_t prediction = (pred8 + 4) >> PRED_FRAC_BITS;
    const int flip = m->bias_sum[bias_ctx] < 0;

    /* The prediction's dropped fraction says which way the sample probably lies (sign) and how
     * likely it is to fall on the rounded prediction (zero flag). */
    const int32_t fraction = pred8 - 8 * prediction; /* -4 .. 3 */
    const int signs = 3 * (r->sign[0][x - 1] + 1) + r->sign[1][x] + 1;
    const int zctx = ZERO_NEIGHBOURS[signs] + FRACTION_CTX[0][fraction + 4];
    const int sctx = FRACTION_CTX[1 + flip][fraction + 4] + signs;
    /* Format 6: how many of W, N, NW, NE, WW had a nonzero symbol, and whether the reference's
     * symbol at this pixel did (the first channel: a class of its own). */
    symbol_mixers *mixers = NULL;
    int nctx = 0;
    if (format6) {
        mixers = &m->mix;
        nctx = (r->sign[0][x - 1] != 0) + (r->sign[1][x] != 0) + (r->sign[1][x - 1] != 0) + (r->sign[1][x + 1] != 0) +
               (r->sign[0][x - 2] != 0) + 6 * (ref ? 1 + (ref->rows.sign[0][x] != 0) : 0);
    }
    int32_t symbol;
    if (mode == DECODE) {
        symbol = decode_symbol(&cd->dec, &m->ctx, mixers, bucket, zctx, sctx, bias_ctx, nctx);
    } else {
        const int32_t e = original - prediction;
        const int32_t q = mode == ENCODE_LOSSLESS ? e : quantise(e, cp); /* tau = 0: q = e */
        symbol = flip ? -q : q;
        out->symbol = symbol;
        out->bias_ctx = (uint16_t)bias_ctx;
        out->bucket = (uint8_t)bucket;
        out->zctx = (uint8_t)zctx;
        out->sctx = (uint8_t)sctx;
        out->nctx = (uint8_t)nctx;
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
    if (full) lms_update(m->lms_weight, lms_input, lms_shift, 8 * rec - pred[7]);
    /* The bias context learns what the regression leaves (format 6; -0.1 to -0.9 %). */
    if (regression) {
        const int64_t residual = 8 * (int64_t)rec - (blended + correction), limit = 8 * (int64_t)clip;
        regression_update(regression, residual > limit ? limit : residual < -limit ? -limit : residual,
                          regressors);
    }
    m->bias_sum[bias_ctx] += 8 * rec - blended - regressed;
    if (++m->bias_count[bias_ctx] >= BIAS_COUNT_LIMIT) {
        m->bias_sum[bias_ctx] /= 2;
        m->bias_count[bias_ctx] /= 2;
    }
    return rec;
}

/* One out-of-line function per (direction, channel kind): each gets its own register allocation,
 * which costs a call per sample but avoids the spills of one giant inlined loop. */
NOINLINE int32_t encode_gray(coder *cd, channel_model *m, int32_t x, int32_t original, coded_symbol *out)
{ return code_sample(cd, m, NULL, x, original, out, ENCODE, FIRST_CHANNEL_PREDICTORS, 0, 0); }
NOINLINE int32_t encode_gray_lossless(coder *cd, channel_model *m, int32_t x, int32_t original, coded_symbol *out)
{ return code_sample(cd, m, NULL, x, original, out, ENCODE_LOSSLESS, FIRST_CHANNEL_PREDICTORS, 0, 0); }
NOINLINE int32_t encode_intra(coder *cd, channel_model *m, int32_t x, int32_t original, coded_symbol *out)
{ return code_sample(cd, m, NULL, x, original, out, ENCODE, FIRST_CHANNEL_PREDICTORS, 0, 1); }
NOINLINE int32_t encode_intra_lossless(coder *cd, channel_model *m, int32_t x, int32_t original, coded_symbol *out)
{ return code_sample(cd, m, NULL, x, original, out, ENCODE_LOSSLESS, FIRST_CHANNEL_PREDICTORS, 0, 1); }
NOINLINE int32_t encode_inter(coder *cd, channel_model *m, const channel_model *ref, int32_t x, int32_t original,
                              coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE, INTER_PREDICTORS, 0, 1); }
NOINLINE int32_t encode_inter_lossless(coder *cd, channel_model *m, const channel_model *ref, int32_t x,
                                       int32_t original, coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE_LOSSLESS, INTER_PREDICTORS, 0, 1); }
NOINLINE int32_t encode_inter4(coder *cd, channel_model *m, const channel_model *ref, int32_t x, int32_t original,
                               coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE, FIRST_CHANNEL_PREDICTORS, 1, 1); }
NOINLINE int32_t encode_inter4_lossless(coder *cd, channel_model *m, const channel_model *ref, int32_t x,
                                        int32_t original, coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE_LOSSLESS, FIRST_CHANNEL_PREDICTORS, 1, 1); }
NOINLINE int32_t encode_inter4m(coder *cd, channel_model *m, const channel_model *ref, int32_t x, int32_t original,
                               coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE, FIRST_CHANNEL_PREDICTORS, 2, 1); }
NOINLINE int32_t encode_inter4m_lossless(coder *cd, channel_model *m, const channel_model *ref, int32_t x,
                                        int32_t original, coded_symbol *out)
{ return code_sample(cd, m, ref, x, original, out, ENCODE_LOSSLESS, FIRST_CHANNEL_PREDICTORS, 2, 1); }
NOINLINE int32_t decode_intra(coder *cd, channel_model *m, int32_t x)
{ return code_sample(cd, m, NULL, x, 0, NULL, DECODE, FIRST_CHANNEL_PREDICTORS, 0, 1); }
NOINLINE int32_t decode_inter(coder *cd, channel_model *m, const channel_model *ref, int32_t x)
{ return code_sample(cd, m, ref, x, 0, NULL, DECODE, INTER_PREDICTORS, 0, 1); }
NOINLINE int32_t decode_inter4(coder *cd, channel_model *m, const channel_model *ref, int32_t x)
{ return code_sample(cd, m, ref, x, 0, NULL, DECODE, FIRST_CHANNEL_PREDICTORS, 1, 1); }
NOINLINE int32_t decode_inter4m(coder *cd, channel_model *m, const channel_model *ref, int32_t x)
{ return code_sample(cd, m, ref, x, 0, NULL, DECODE, FIRST_CHANNEL_PREDICTORS, 2, 1); }

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
static void begin_row(channel_model *m)
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

static void init_channel(channel_model *m, uint8_t *block, uint32_t width, int32_t mid)
{
    const size_t n = (size_t)width + 2 * ROW_PAD;
    memset(m, 0, sizeof(*m));
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
    /* Mixers start as the mean of the first two estimates' logits (zero flag) or as the first
     * estimate alone (unary bits, whose first context is format 4's). */
    for (int b = 0; b < NUM_ENERGY; b++) {
        mixer_init(&m->mix.zero[b], MIX_WEIGHT_ONE / 2, MIX_WEIGHT_ONE / 2);
        for (int i = 0; i < UNARY_MIXED; i++) mixer_init(&m->mix.unary[b][i], MIX_WEIGHT_ONE, 0);
    }
}

static void init_params(coding_params *cp, const linf_image_desc *d)
{
    cp->max_value = (int32_t)((1u << d->bit_depth) - 1);
    cp->tau = (int32_t)d->tau;
    cp->step = 2 * (int32_t)d->tau + 1;
    cp->width = d->width;
    cp->sample_offset = d->is_signed ? 1u << (d->bit_depth - 1) : 0u;
    cp->energy_scale = (2u << 16) / (uint32_t)cp->step;
    cp->step_inverse = ((UINT64_C(1) << 40) + (uint64_t)cp->step - 1) / (uint64_t)cp->step;
    const int s = (int)d->bit_depth - 8;
    cp->gap_t8 = s >= 0 ? 8 << s : (8 >> -s > 0 ? 8 >> -s : 1);
    cp->gap_t32 = s >= 0 ? 32 << s : (32 >> -s > 0 ? 32 >> -s : 1);
    cp->gap_t80 = s >= 0 ? 80 << s : (80 >> -s > 0 ? 80 >> -s : 1);
}

/* Allocates the models of every channel in one block (and the block itself for freeing). */
static linf_status setup_coder(coder *cd, const linf_image_desc *d, uint32_t version, void **memory)
{
    init_params(&cd->params, d);
    cd->colour4 = version >= 4 && d->channels > 1;
    const int format6 = version >= 6 && d->channels > 1;
    for (uint32_t c = 0; c < d->channels; c++) {
        cd->order[c] = (uint16_t)c;
        cd->ref[c] = (uint16_t)(c ? c - 1 : 0);
    }
    if (cd->colour4 && d->channels == 3) {
        /* RGB: green first, red and blue predicted from it (the order of subtract-green
         * transforms; measured best of the orders tried, docs/codec_design.md). */
        static const uint16_t order[3] = {1, 0, 2}, ref[3] = {1, 1, 1};
        memcpy(cd->order, order, sizeof order);
        memcpy(cd->ref, ref, sizeof ref);
    }    const size_t rows = channel_row_bytes(d->width);
    const size_t per_channel = sizeof(channel_model) + rows;
    uint8_t *block = malloc(per_channel * d->channels);
    if (!block) return LINF_ERR_OUT_OF_MEMORY;
    cd->models = (channel_model *)(void *)block;
    uint8_t *row_memory = block + sizeof(channel_model) * d->channels;
    const int32_t mid = (int32_t)(1u << (d->bit_depth - 1));
    for (uint32_t c = 0; c < d->channels; c++) {
        init_channel(&cd->models[c], row_memory + rows * c, d->width, mid);
        cd->models[c].format6 = format6;
    }
    for (uint32_t k = 1; k < d->channels; k++) {
        channel_model *m = &cd->models[cd->order[k]];
        const uint32_t r = cd->ref[cd->order[k]];
        m->second = &cd->models[k >= 2 && cd->order[k - 1] == r ? cd->order[k - 2] : cd->order[k - 1]];
    }
    *memory = block;
    return LINF_OK;
}

/* ---------------------------------------------------------------- image loops */

/* Samples are coded unsigned. Signed input (two's complement) is shifted by offset =
 * 2^(bit_depth-1): modulo 2^16 (or 2^8), adding the offset to the bit pattern gives v + offset, and
 * subtracting it gives the pattern back. Unsigned input has offset 0. */
FORCE_INLINE int32_t load_sample(const void *pixels, size_t i, int wide, uint32_t offset)
{
    return wide ? (int32_t)(uint16_t)(((const uint16_t *)pixels)[i] + offset)
                : (int32_t)(uint8_t)(((const uint8_t *)pixels)[i] + offset);
}

FORCE_INLINE void store_sample(void *pixels, size_t i, int wide, int32_t v, uint32_t offset)
{
    if (wide) ((uint16_t *)pixels)[i] = (uint16_t)((uint32_t)v - offset);
    else ((uint8_t *)pixels)[i] = (uint8_t)((uint32_t)v - offset);
}

/* Signed output: subtracts the offset from count decoded samples at i, in a separate loop (which
 * vectorises) so that the decoder's per-sample loops stay the same for unsigned images. */
static void unshift_row(void *pixels, size_t i, size_t count, int wide, uint32_t offset)
{
    if (wide) {
        uint16_t *p = (uint16_t *)pixels + i;
        for (size_t k = 0; k < count; k++) p[k] = (uint16_t)(p[k] - offset);
    } else {
        uint8_t *p = (uint8_t *)pixels + i;
        for (size_t k = 0; k < count; k++) p[k] = (uint8_t)(p[k] - offset);
    }
}

/* One function per row and (direction, single channel or not), so each loop keeps the row's
 * invariants in registers and skips per-sample tests of the channel count. The encoder models up
 * to ENCODE_CHUNK samples, then codes them (encode_symbols). Decoding a single channel inlines
 * the per-sample decoder into its loop; the encoder and multichannel rows (more values live at
 * once) call the out-of-line coders instead. The measurements behind this split are in
 * docs/codec_design.md. */
NOINLINE void decode_gray_row(coder *cd, void *pixels, size_t i, int wide)
{
    const uint32_t offset = 0; /* the signed shift is undone per row by unshift_row */
    channel_model *m = &cd->models[0];
    const int32_t width = (int32_t)cd->params.width;
    for (int32_t x = 0; x < width; x++, i++)
        store_sample(pixels, i, wide, code_sample(cd, m, NULL, x, 0, NULL, DECODE, FIRST_CHANNEL_PREDICTORS, 0, 0), offset);
}

NOINLINE void decode_colour_row(coder *cd, void *pixels, size_t i, int wide, uint32_t channels)
{
    const uint32_t offset = 0; /* the signed shift is undone per row by unshift_row */
    channel_model *models = cd->models;
    const int32_t width = (int32_t)cd->params.width;
    const uint16_t *order = cd->order, *ref = cd->ref;
    int storage_order = 1; /* formats 2-3: each channel from the one before, in storage order */
    for (uint32_t k = 0; k < channels; k++) storage_order &= order[k] == k && ref[k] == (k ? k - 1 : 0);
    if (!cd->colour4 && storage_order) {
        for (int32_t x = 0; x < width; x++) {
            store_sample(pixels, i++, wide, decode_intra(cd, models, x), offset);
            for (uint32_t c = 1; c < channels; c++, i++)
                store_sample(pixels, i, wide, decode_inter(cd, &models[c], &models[c - 1], x), offset);
        }
        return;
    }
    for (int32_t x = 0; x < width; x++, i += channels) {
        const uint32_t first = order[0];
        store_sample(pixels, i + first, wide, decode_intra(cd, &models[first], x), offset);
        for (uint32_t k = 1; k < channels; k++) {
            const uint32_t c = order[k];
            store_sample(pixels, i + c, wide,
                         cd->colour4 == 2 ? decode_inter4m(cd, &models[c], &models[ref[c]], x)
                         : cd->colour4    ? decode_inter4(cd, &models[c], &models[ref[c]], x)
                                          : decode_inter(cd, &models[c], &models[ref[c]], x), offset);
        }
    }
}

/* The encoder's coding pass over a run of modelled samples (gray: all of channel 0). */
FORCE_INLINE void encode_symbols(coder *cd, const coded_symbol *symbols, size_t count, const int gray)
{
    channel_model *models = cd->models;
    for (size_t j = 0; j < count; j++) {
        const coded_symbol *s = &symbols[j];
        channel_model *m = &models[gray ? 0 : s->channel];
        encode_symbol(&cd->enc, &m->ctx, !gray && m->format6 ? &m->mix : NULL, s->symbol, s->bucket, s->zctx, s->sctx,
                      s->bias_ctx, s->nctx);
    }
}
NOINLINE void encode_gray_symbols(coder *cd, const coded_symbol *symbols, size_t count)
{ encode_symbols(cd, symbols, count, 1); }
NOINLINE void encode_colour_symbols(coder *cd, const coded_symbol *symbols, size_t count)
{ encode_symbols(cd, symbols, count, 0); }

/* offset is a compile-time 0 in the unsigned copies (see the dispatchers), which then pay nothing
 * for signed support. */
FORCE_INLINE void encode_gray_row_as(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide,
                                     const uint32_t offset)
{
    channel_model *m = &cd->models[0];
    const int lossless = cd->params.tau == 0;
    const int32_t width = (int32_t)cd->params.width;
    coded_symbol symbols[ENCODE_CHUNK];
    for (int32_t x0 = 0; x0 < width; x0 += ENCODE_CHUNK) {
        const int32_t end = width - x0 < ENCODE_CHUNK ? width : x0 + ENCODE_CHUNK;
        for (int32_t x = x0; x < end; x++, i++) {
            coded_symbol *s = &symbols[x - x0];
            const int32_t original = load_sample(pixels, i, wide, offset);
            const int32_t rec = lossless ? encode_gray_lossless(cd, m, x, original, s)
                                         : encode_gray(cd, m, x, original, s);
            if (reconstruction) store_sample(reconstruction, i, wide, rec, offset);
        }
        encode_gray_symbols(cd, symbols, (size_t)(end - x0));
    }
}

NOINLINE void encode_gray_row(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide)
{
    const uint32_t offset = cd->params.sample_offset;
    if (offset) encode_gray_row_as(cd, pixels, reconstruction, i, wide, offset);
    else encode_gray_row_as(cd, pixels, reconstruction, i, wide, 0);
}

FORCE_INLINE void encode_colour_row_as(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide,
                                       uint32_t channels, const int lossless, const uint32_t offset)
{
    channel_model *models = cd->models;
    const int32_t width = (int32_t)cd->params.width;
    const int colour4 = cd->colour4;
    const uint16_t *order = cd->order, *ref = cd->ref;
    coded_symbol symbols[ENCODE_CHUNK];
    size_t n = 0;
    for (int32_t x = 0; x < width; x++, i += channels) {
        if (n + channels > ENCODE_CHUNK) {
            encode_colour_symbols(cd, symbols, n);
            n = 0;
        }
        const uint32_t first = order[0];
        symbols[n].channel = (uint8_t)first;
        int32_t original = load_sample(pixels, i + first, wide, offset);
        int32_t rec = lossless ? encode_intra_lossless(cd, &models[first], x, original, &symbols[n])
                               : encode_intra(cd, &models[first], x, original, &symbols[n]);
        n++;
        if (reconstruction) store_sample(reconstruction, i + first, wide, rec, offset);
        for (uint32_t k = 1; k < channels; k++) {
            const uint32_t c = order[k];
            const channel_model *rm = &models[ref[c]];
            symbols[n].channel = (uint8_t)c;
            original = load_sample(pixels, i + c, wide, offset);
            if (colour4 == 2)
                rec = lossless ? encode_inter4m_lossless(cd, &models[c], rm, x, original, &symbols[n])
                               : encode_inter4m(cd, &models[c], rm, x, original, &symbols[n]);
            else if (colour4)
                rec = lossless ? encode_inter4_lossless(cd, &models[c], rm, x, original, &symbols[n])
                               : encode_inter4(cd, &models[c], rm, x, original, &symbols[n]);
            else
                rec = lossless ? encode_inter_lossless(cd, &models[c], rm, x, original, &symbols[n])
                               : encode_inter(cd, &models[c], rm, x, original, &symbols[n]);
            n++;
            if (reconstruction) store_sample(reconstruction, i + c, wide, rec, offset);
        }
    }
    encode_colour_symbols(cd, symbols, n);
}

NOINLINE void encode_colour_row(coder *cd, const void *pixels, void *reconstruction, size_t i, int wide,
                                uint32_t channels)
{
    const uint32_t offset = cd->params.sample_offset;
    if (offset) encode_colour_row_as(cd, pixels, reconstruction, i, wide, channels, cd->params.tau == 0, offset);
    else if (cd->params.tau == 0) encode_colour_row_as(cd, pixels, reconstruction, i, wide, channels, 1, 0);
    else encode_colour_row_as(cd, pixels, reconstruction, i, wide, channels, 0, 0);
}

/* Raster order, channels interleaved pixel by pixel. */
FORCE_INLINE void code_image(coder *cd, const linf_image_desc *d, void *pixels, void *reconstruction,
                             const int decoding)
{
    const int wide = d->bit_depth > 8;
    const uint32_t channels = d->channels;
    for (uint32_t y = 0; y < d->height; y++) {
        for (uint32_t c = 0; c < channels; c++) begin_row(&cd->models[c]);
        const size_t i = (size_t)y * d->width * channels;
        if (decoding) {
            if (channels == 1) decode_gray_row(cd, pixels, i, wide);
            else decode_colour_row(cd, pixels, i, wide, channels);
            if (cd->params.sample_offset)
                unshift_row(pixels, i, (size_t)d->width * channels, wide, cd->params.sample_offset);
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

const char *linf_version(void)
{
    return "linf_codec 6.0.0 (writes format 3 for gray, 6 (or 4 on request) for multichannel; reads 2, 3, 4 and 6)";
}

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
    case LINF_ERR_TRAILING_DATA: return "the stream has bytes after its end: it is longer than its header says";
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
    return linf_max_encoded_size_ex(desc, 0);
}

size_t linf_max_encoded_size_ex(const linf_image_desc *desc, uint32_t stripe_height)
{
    const size_t raw = linf_pixel_bytes(desc);
    if (raw == 0) return 0;
    const uint32_t count = linf_stripe_count(desc->height, stripe_height);
    const size_t table = count > 1 ? LINF_STRIPE_TABLE_BYTES(count) : 0;
    if (raw > SIZE_MAX - LINF_HEADER_BYTES - table) return 0;
    return raw + LINF_HEADER_BYTES + table;
}

static linf_status check_samples(const linf_image_desc *d, const void *pixels, size_t count, uint32_t offset)
{
    /* The largest sample (after the signed shift), by loops without an early exit, which
     * vectorise; a full 8- or 16-bit depth needs no check at all. */
    const uint32_t max_value = (1u << d->bit_depth) - 1;
    uint32_t largest = 0;
    if (d->bit_depth > 8) {
        if (d->bit_depth == 16) return LINF_OK;
        const uint16_t *s = pixels;
        uint16_t m = 0;
        for (size_t i = 0; i < count; i++) {
            const uint16_t v = (uint16_t)(s[i] + offset);
            m = v > m ? v : m;
        }
        largest = m;
    } else {
        if (d->bit_depth == 8) return LINF_OK;
        const uint8_t *s = pixels;
        uint8_t m = 0;
        for (size_t i = 0; i < count; i++) {
            const uint8_t v = (uint8_t)(s[i] + offset);
            m = v > m ? v : m;
        }
        largest = m;
    }
    return largest > max_value ? LINF_ERR_SAMPLE_OUT_OF_RANGE : LINF_OK;
}

static uint32_t sample_offset(const linf_image_desc *d) { return d->is_signed ? 1u << (d->bit_depth - 1) : 0u; }

/* Stores samples uncompressed (little-endian, unsigned: signed ones shifted), for input the
 * predictive coder cannot shrink. */
static void store_raw(const linf_image_desc *d, const void *pixels, size_t count, uint8_t *out)
{
    const uint32_t offset = sample_offset(d);
    if (d->bit_depth <= 8) {
        const uint8_t *s = pixels;
        for (size_t i = 0; i < count; i++) out[i] = (uint8_t)(s[i] + offset);
        return;
    }
    const uint16_t *s = pixels;
    for (size_t i = 0; i < count; i++) {
        const uint16_t v = (uint16_t)(s[i] + offset);
        out[2 * i] = (uint8_t)v;
        out[2 * i + 1] = (uint8_t)(v >> 8);
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
    if (check_samples(d, pixels, count, 0) != LINF_OK) return LINF_ERR_CORRUPT_PAYLOAD;
    const uint32_t offset = sample_offset(d);
    if (offset == 0) return LINF_OK;
    if (d->bit_depth <= 8) {
        uint8_t *s = pixels;
        for (size_t i = 0; i < count; i++) s[i] = (uint8_t)(s[i] - offset);
    } else {
        uint16_t *s = pixels;
        for (size_t i = 0; i < count; i++) s[i] = (uint16_t)(s[i] - offset);
    }
    return LINF_OK;
}

/* ---------------------------------------------------------------- units: the whole image or a stripe */

/* Bytes of one row of samples in the caller's buffers. */
static size_t row_bytes(const linf_image_desc *d)
{
    return (size_t)d->width * d->channels * (d->bit_depth > 8 ? 2u : 1u);
}

/* ---------------------------------------------------------------- moved-only units (format 4) */

/* Which candidate set a multichannel unit uses, from the horizontal activity of the channel
 * differences (channel minus its reference) against that of the channels themselves, measured
 * on every other row:
 * - below MOVED_RATIO_LOSSLESS % at tau = 0, max(MOVED_RATIO_NEAR / (tau + 1),
 *   MOVED_RATIO_NEAR_MIN) % at tau > 0: the channels move together and the raw lanes only add
 *   noise to the blend: moved-only candidates (colour4 = 2; quantisation noise in the reference
 *   makes the differences less useful as tau grows);
 * - above INTERBAND3_RATIO_LOSSLESS % (tau = 0) or INTERBAND3_RATIO_NEAR % (tau > 0): the
 *   channels hardly move together (fluorescence channels, weakly correlated colour): formats
 *   2-3's interband model, four raw spatial candidates and three interband ones, in storage
 *   order, each channel from the one before (colour4 = 0);
 * - else the mixed set (colour4 = 1).
 * Thresholds and the measurements behind them: docs/codec_design.md. */
#define MOVED_RATIO_LOSSLESS 33u
#define MOVED_RATIO_NEAR 50u
#define MOVED_RATIO_NEAR_MIN 12u
#define INTERBAND3_RATIO_LOSSLESS 85u
#define INTERBAND3_RATIO_NEAR 80u
static int choose_candidate_set(const coder *cd, const linf_image_desc *u, const void *px)
{
    const int wide = u->bit_depth > 8;
    const uint32_t channels = u->channels, width = u->width, offset = cd->params.sample_offset;
    uint64_t raw = 0, moved = 0;
    for (uint32_t y = 0; y < u->height; y += 2)
        for (uint32_t k = 1; k < channels; k++) {
            const uint32_t c = cd->order[k], r = cd->ref[c];
            const size_t row = (size_t)y * width * channels;
            /* Signed input is shifted first, as the coder sees it (the same decision as for the
             * shifted unsigned image, hence the same payload). */
            int32_t prev = load_sample(px, row + c, wide, offset), prev_ref = load_sample(px, row + r, wide, offset);
            for (uint32_t x = 1; x < width; x++) {
                const size_t i = row + (size_t)x * channels;
                const int32_t v = load_sample(px, i + c, wide, offset), vr = load_sample(px, i + r, wide, offset);
                raw += (uint64_t)iabs(v - prev);
                moved += (uint64_t)iabs((v - vr) - (prev - prev_ref));
                prev = v;
                prev_ref = vr;
            }
        }
    uint64_t low = MOVED_RATIO_LOSSLESS, high = INTERBAND3_RATIO_LOSSLESS;
    if (u->tau) {
        low = MOVED_RATIO_NEAR / (u->tau + 1u);
        if (low < MOVED_RATIO_NEAR_MIN) low = MOVED_RATIO_NEAR_MIN;
        high = INTERBAND3_RATIO_NEAR;
    }
    /* At most 2^32 samples with differences below 2^17: moved, raw < 2^49, the products < 2^56. */
    if (moved * 100u < raw * low) return 2;
    return moved * 100u > raw * high ? 0 : 1;
}

/* Format 4 interband-3 units: formats 2-3's model. 8-bit RGB units (photographs) keep format 4's
 * coding order (G first, R and B from G) and B's energy adds twice R's error at the pixel (the
 * reference's own error already enters with weight 2): mcmaster -0.2 to -0.4 %. Every other unit
 * (microscopy stacks, where G-first lost up to 0.8 %) codes exactly as in formats 2-3: storage
 * order, each channel from the one before, no second channel. */
static void interband3_setup(coder *cd, const linf_image_desc *u)
{
    const uint32_t channels = u->channels;
    if (channels != 3 || u->bit_depth > 8) {
        for (uint32_t c = 0; c < channels; c++) {
            cd->order[c] = (uint16_t)c;
            cd->ref[c] = (uint16_t)(c ? c - 1 : 0);
            cd->models[c].second = &cd->models[cd->ref[c]]; /* read with weight 0 */
        }
        return;
    }
    for (uint32_t k = 1; k < channels; k++) {
        channel_model *m = &cd->models[cd->order[k]];
        m->second = &cd->models[cd->order[k - (k >= 2)]];
        m->second_weight = k >= 2 ? 2u : 0u;
    }
}

/* ---------------------------------------------------------------- palette units (format 4, tau = 0) */

/* A lossless unit of 2 to 4 channels with at most PALETTE_MAX distinct colours is coded as its
 * palette and an index image: the colours sorted by luma (channels 0-2 weighted 299/587/114 as
 * R, G, B; two channels: their sum), ties broken by the samples in channel order, so that near
 * indices are near colours and the gray coder predicts the index image well; the index image
 * (bit depth ceil(log2 n), at least 1) goes through the unchanged gray model. Payload:
 *   u16 n - 1 | n colours, channel by channel, 1 byte per sample (2, little-endian, above 8 bits)
 *   | the gray predictive payload of the index image.
 * Measured on set14's four images of <= 256 colours (docs/codec_design.md): 4-6 bits/sample as
 * RGB, 1.3-2.2 as palette; images with more colours never take this path. */
#define PALETTE_MAX 256u
#define PALETTE_SLOTS 1024u /* open-addressing hash of the colours: load <= 1/4 */

typedef struct palette {
    uint32_t count;
    uint64_t colour[PALETTE_MAX];   /* channel c at bits 16c.. (unsigned samples) */
} palette;

FORCE_INLINE uint64_t pixel_key(const void *pixels, size_t i, uint32_t channels, int wide, uint32_t offset)
{
    uint64_t key = 0;
    for (uint32_t c = 0; c < channels; c++) key |= (uint64_t)load_sample(pixels, i + c, wide, offset) << (16 * c);
    return key;
}

FORCE_INLINE uint32_t key_slot(uint64_t key)
{
    return (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 54); /* top 10 bits: PALETTE_SLOTS */
}

static uint64_t palette_order(uint64_t colour, uint32_t channels)
{
    const uint64_t s0 = colour & 0xFFFFu, s1 = (colour >> 16) & 0xFFFFu, s2 = (colour >> 32) & 0xFFFFu;
    return channels == 2 ? s0 + s1 : 299u * s0 + 587u * s1 + 114u * s2;
}

/* Collects the unit's colours; 0 when there are more than PALETTE_MAX (or no memory). */
static int build_palette(const linf_image_desc *d, const void *px, size_t pixels, palette *pal, uint8_t *index)
{
    const int wide = d->bit_depth > 8;
    const uint32_t channels = d->channels, offset = d->is_signed ? 1u << (d->bit_depth - 1) : 0u;
    uint64_t *keys = malloc(PALETTE_SLOTS * sizeof *keys);
    int16_t *slot_index = malloc(PALETTE_SLOTS * sizeof *slot_index);
    int ok = keys && slot_index;
    if (ok) {
        memset(slot_index, 0xFF, PALETTE_SLOTS * sizeof *slot_index); /* -1: empty */
        pal->count = 0;
        for (size_t p = 0; p < pixels && ok; p++) {
            const uint64_t key = pixel_key(px, p * channels, channels, wide, offset);
            uint32_t slot = key_slot(key);
            while (slot_index[slot] >= 0 && keys[slot] != key) slot = (slot + 1) & (PALETTE_SLOTS - 1);
            if (slot_index[slot] < 0) {
                if (pal->count == PALETTE_MAX) { ok = 0; break; }
                keys[slot] = key;
                slot_index[slot] = (int16_t)pal->count;
                pal->colour[pal->count++] = key;
            }
        }
    }
    if (ok) {
        /* Insertion sort by (luma, samples): n <= 256, once per unit. */
        uint64_t order[PALETTE_MAX];
        for (uint32_t k = 0; k < pal->count; k++) order[k] = palette_order(pal->colour[k], channels);
        uint8_t rank[PALETTE_MAX]; /* old position -> sorted position */
        uint32_t perm[PALETTE_MAX];
        for (uint32_t k = 0; k < pal->count; k++) perm[k] = k;
        for (uint32_t k = 1; k < pal->count; k++) {
            const uint32_t v = perm[k];
            uint32_t j = k;
            while (j > 0 && (order[perm[j - 1]] > order[v] ||
                             (order[perm[j - 1]] == order[v] && pal->colour[perm[j - 1]] > pal->colour[v]))) {
                perm[j] = perm[j - 1];
                j--;
            }
            perm[j] = v;
        }
        uint64_t sorted[PALETTE_MAX];
        for (uint32_t k = 0; k < pal->count; k++) {
            sorted[k] = pal->colour[perm[k]];
            rank[perm[k]] = (uint8_t)k;
        }
        memcpy(pal->colour, sorted, sizeof(uint64_t) * pal->count);
        for (size_t p = 0; p < pixels; p++) {
            const uint64_t key = pixel_key(px, p * channels, channels, wide, offset);
            uint32_t slot = key_slot(key);
            while (keys[slot] != key) slot = (slot + 1) & (PALETTE_SLOTS - 1);
            index[p] = rank[slot_index[slot]];
        }
    }
    free(keys);
    free(slot_index);
    return ok;
}

static uint32_t palette_depth(uint32_t count)
{
    uint32_t depth = 1;
    while ((1u << depth) < count) depth++;
    return depth;
}

static size_t palette_bytes(const linf_image_desc *d, uint32_t count)
{
    return 2u + (size_t)count * d->channels * (d->bit_depth > 8 ? 2u : 1u);
}

/* Codes the unit as palette + index image into out (capacity cap); 0 if it does not fit. */
static size_t encode_palette_unit(const linf_image_desc *u, const void *px, uint8_t *out, size_t cap)
{
    const size_t pixels = (size_t)u->width * u->height;
    palette pal;
    uint8_t *index = malloc(pixels);
    size_t size = 0;
    if (index && build_palette(u, px, pixels, &pal, index) && palette_bytes(u, pal.count) < cap) {
        uint8_t *o = out;
        *o++ = (uint8_t)(pal.count - 1);
        *o++ = (uint8_t)((pal.count - 1) >> 8);
        for (uint32_t k = 0; k < pal.count; k++)
            for (uint32_t c = 0; c < u->channels; c++) {
                const uint32_t v = (uint32_t)(pal.colour[k] >> (16 * c)) & 0xFFFFu;
                *o++ = (uint8_t)v;
                if (u->bit_depth > 8) *o++ = (uint8_t)(v >> 8);
            }
        linf_image_desc g = *u;
        g.channels = 1;
        g.bit_depth = palette_depth(pal.count);
        g.tau = 0;
        g.is_signed = 0;
        coder cd;
        void *memory = NULL;
        if (setup_coder(&cd, &g, 3u, &memory) == LINF_OK) {
            const size_t head = (size_t)(o - out);
            rc_enc_init(&cd.enc, o, cap - head);
            encode_image(&cd, &g, index, NULL);
            if (!cd.enc.overflow) rc_enc_finish(&cd.enc);
            if (!cd.enc.overflow) size = head + cd.enc.size;
            free(memory);
        }
    }
    free(index);
    return size;
}

/* Decodes a palette unit (see encode_palette_unit) into px; every field is checked, so a forged
 * payload with a valid CRC is an error, never an out-of-range sample or index. */
static linf_status decode_palette_unit(const linf_image_desc *u, void *px, const uint8_t *in, size_t bytes)
{
    if (u->tau != 0 || u->channels < 2 || u->channels > 4 || bytes < 2) return LINF_ERR_CORRUPT_PAYLOAD;
    const uint32_t count = (uint32_t)in[0] + ((uint32_t)in[1] << 8) + 1u;
    if (count > PALETTE_MAX || palette_bytes(u, count) >= bytes) return LINF_ERR_CORRUPT_PAYLOAD;
    const int wide = u->bit_depth > 8;
    const uint32_t max_value = (1u << u->bit_depth) - 1u;
    uint64_t colour[PALETTE_MAX];
    const uint8_t *p = in + 2;
    for (uint32_t k = 0; k < count; k++) {
        colour[k] = 0;
        for (uint32_t c = 0; c < u->channels; c++) {
            uint32_t v = *p++;
            if (wide) v |= (uint32_t)*p++ << 8;
            if (v > max_value) return LINF_ERR_CORRUPT_PAYLOAD;
            colour[k] |= (uint64_t)v << (16 * c);
        }
    }
    const size_t pixels = (size_t)u->width * u->height;
    linf_image_desc g = *u;
    g.channels = 1;
    g.bit_depth = palette_depth(count);
    g.tau = 0;
    g.is_signed = 0;
    uint8_t *index = malloc(pixels);
    if (!index) return LINF_ERR_OUT_OF_MEMORY;
    coder cd;
    void *memory = NULL;
    linf_status status = setup_coder(&cd, &g, 3u, &memory);
    if (status == LINF_OK) {
        rc_dec_init(&cd.dec, p, bytes - (size_t)(p - in));
        decode_image(&cd, &g, index);
        free(memory);
        if (cd.dec.overrun > 8) status = LINF_ERR_CORRUPT_PAYLOAD;
    }
    const uint32_t offset = u->is_signed ? 1u << (u->bit_depth - 1) : 0u;
    for (size_t i = 0; i < pixels && status == LINF_OK; i++) {
        if (index[i] >= count) {
            status = LINF_ERR_CORRUPT_PAYLOAD;
            break;
        }
        for (uint32_t c = 0; c < u->channels; c++)
            store_sample(px, i * u->channels + c, wide, (int32_t)((colour[index[i]] >> (16 * c)) & 0xFFFFu), offset);
    }
    free(index);
    return status;
}

/* Codes rows y0 .. y0 + rows - 1 as an image of their own (fresh models: a stripe depends on no
 * other) into out (capacity cap), predictive if that is smaller than the raw samples, else raw.
 * Writes the byte count and mode. The whole image as one unit gives exactly the format-2 payload. */
static linf_status encode_unit(const linf_image_desc *d, uint32_t version, const void *pixels, void *reconstruction,
                               uint32_t y0, uint32_t rows, uint8_t *out, size_t cap, size_t *size, uint32_t *mode)
{
    linf_image_desc u = *d;
    u.height = rows;
    const size_t at = (size_t)y0 * row_bytes(d), raw = (size_t)rows * row_bytes(d);
    const uint8_t *px = (const uint8_t *)pixels + at;
    uint8_t *rec = reconstruction ? (uint8_t *)reconstruction + at : NULL;
    /* Lossless units of 2-4 channels with few colours: palette, if it is the smallest. The
     * predictive coder then only gets the palette's size as its budget (and stops early when
     * it cannot beat it). */
    size_t limit = cap < raw ? cap : raw, palette_size = 0;
    uint8_t *palette_out = NULL;
    if (d->tau == 0 && d->channels >= 2 && d->channels <= 4) {
        palette_out = malloc(limit);
        if (palette_out) palette_size = encode_palette_unit(&u, px, palette_out, limit);
        if (palette_size >= raw) palette_size = 0; /* raw storage is as small: simpler to decode */
        if (palette_size) limit = palette_size;
    }
    coder cd;
    void *memory = NULL;
    const linf_status status = setup_coder(&cd, &u, u.channels > 1 ? version : 3u, &memory);
    if (status != LINF_OK) {
        free(palette_out);
        return status;
    }
    if (cd.colour4) {
        cd.colour4 = choose_candidate_set(&cd, &u, px);
        if (!cd.colour4) interband3_setup(&cd, &u);
    }
    const uint32_t predictive_mode = u.channels == 1 ? LINF_MODE_PREDICTIVE
                                     : cd.colour4 == 2 ? LINF_MODE_MOVED
                                     : cd.colour4 == 0 ? LINF_MODE_INTERBAND3 : LINF_MODE_PREDICTIVE;
    rc_enc_init(&cd.enc, out, limit);
    encode_image(&cd, &u, px, rec);
    if (!cd.enc.overflow) rc_enc_finish(&cd.enc);
    free(memory);
    if (!cd.enc.overflow && cd.enc.size < raw && (!palette_size || cd.enc.size < palette_size)) {
        free(palette_out);
        *size = cd.enc.size;
        *mode = predictive_mode;
        return LINF_OK;
    }
    if (palette_size) {
        memcpy(out, palette_out, palette_size);
        free(palette_out);
        if (rec) memcpy(rec, px, raw); /* lossless */
        *size = palette_size;
        *mode = LINF_MODE_PALETTE;
        return LINF_OK;
    }
    free(palette_out);
    if (cap < raw) return LINF_ERR_BUFFER_TOO_SMALL;
    const size_t count = (size_t)rows * d->width * d->channels;
    store_raw(&u, px, count, out);
    if (rec) memcpy(rec, px, raw); /* raw storage decodes exactly */
    *size = raw;
    *mode = LINF_MODE_RAW;
    return LINF_OK;
}

/* Decodes one unit (see encode_unit) after checking its CRC. */
static linf_status decode_unit(const linf_image_desc *d, uint32_t version, void *pixels, uint32_t y0, uint32_t rows,
                               const uint8_t *in, size_t bytes, uint32_t mode, uint32_t crc)
{
    if (linf_crc32(in, bytes) != crc) return LINF_ERR_CRC_MISMATCH;
    linf_image_desc u = *d;
    u.height = rows;
    uint8_t *px = (uint8_t *)pixels + (size_t)y0 * row_bytes(d);
    if (mode == LINF_MODE_RAW) return load_raw(&u, in, (size_t)rows * d->width * d->channels, px);
    if (mode == LINF_MODE_PALETTE) return decode_palette_unit(&u, px, in, bytes);
    coder cd;
    void *memory = NULL;
    const linf_status status = setup_coder(&cd, &u, version, &memory);
    if (status != LINF_OK) return status;
    /* The header check allows modes 3 and 4 for format 4 and more than one channel only. */
    if (mode == LINF_MODE_MOVED) cd.colour4 = 2;
    if (mode == LINF_MODE_INTERBAND3) {
        cd.colour4 = 0;
        interband3_setup(&cd, &u);
    }
    rc_dec_init(&cd.dec, in, bytes);
    decode_image(&cd, &u, px);
    free(memory);
    /* A valid payload is consumed up to its flush bytes; far more means it was cut or forged. */
    return cd.dec.overrun > 8 ? LINF_ERR_CORRUPT_PAYLOAD : LINF_OK;
}

/* ---------------------------------------------------------------- stripes on threads */

/* One striped encode or decode. Workers claim stripes in increasing order under the lock and
 * stop claiming once a stripe has failed; every stripe below a claimed one was claimed, so the
 * lowest failing index found is the lowest failing index of the stream, whatever the thread
 * count. Stripes write disjoint regions of the output (and of the encoder's scratch area), so
 * the bytes produced do not depend on which thread coded which stripe. */
typedef struct stripe_run {
    const linf_image_desc *desc;
    uint32_t stripe_height, count;
    uint32_t version;            /* the stream's format version (encode: multichannel units) */
    int decoding;
    const void *pixels;          /* encode: input */
    void *output;                /* encode: reconstruction (or NULL); decode: pixels */
    uint8_t *area;               /* encode: stripe i is coded at area + its raw offset */
    const uint8_t *payload;      /* decode: the stripes, back to back */
    const uint8_t *table;        /* decode: the validated stripe table */
    const uint64_t *offsets;     /* decode: each stripe's offset in payload */
    linf_stripe_entry *entries;  /* encode: each stripe's size, CRC and mode */
    linf_status status;          /* of the lowest failing stripe (guarded by lock) */
    uint32_t next, failed;       /* next stripe to claim; lowest failing stripe or count */
#if LINF_THREADS
    int locking;                 /* lock initialised (more than one thread) */
    pthread_mutex_t lock;
#endif
} stripe_run;

static void run_lock(stripe_run *run)
{
#if LINF_THREADS
    if (run->locking) pthread_mutex_lock(&run->lock);
#else
    (void)run;
#endif
}

static void run_unlock(stripe_run *run)
{
#if LINF_THREADS
    if (run->locking) pthread_mutex_unlock(&run->lock);
#else
    (void)run;
#endif
}

static linf_status run_stripe(stripe_run *run, uint32_t i)
{
    const linf_image_desc *d = run->desc;
    const uint32_t y0 = i * run->stripe_height;
    const uint32_t rows = linf_stripe_rows(d->height, run->stripe_height, i);
    if (run->decoding) {
        const linf_stripe_entry e = linf_read_stripe_entry(run->table, i);
        return decode_unit(d, run->version, run->output, y0, rows, run->payload + run->offsets[i], (size_t)e.bytes, e.mode,
                           e.crc32);
    }
    const size_t at = (size_t)y0 * row_bytes(d), raw = (size_t)rows * row_bytes(d);
    size_t size = 0;
    uint32_t mode = 0;
    const linf_status status =
        encode_unit(d, run->version, run->pixels, run->output, y0, rows, run->area + at, raw, &size, &mode);
    if (status == LINF_OK) {
        run->entries[i].bytes = size;
        run->entries[i].mode = mode;
        run->entries[i].crc32 = linf_crc32(run->area + at, size);
    }
    return status;
}

static void *stripe_worker(void *arg)
{
    stripe_run *run = arg;
    for (;;) {
        run_lock(run);
        const uint32_t i = run->next;
        const int stop = i >= run->count || run->failed < run->count;
        if (!stop) run->next++;
        run_unlock(run);
        if (stop) return NULL;
        const linf_status status = run_stripe(run, i);
        if (status != LINF_OK) {
            run_lock(run);
            if (i < run->failed) {
                run->failed = i;
                run->status = status;
            }
            run_unlock(run);
        }
    }
}

/* Runs every stripe on up to `threads` threads, the caller's included; if a thread cannot be
 * created the others (at least the caller) do its share. */
static linf_status run_stripes(stripe_run *run, uint32_t threads)
{
    run->next = 0;
    run->failed = run->count;
    run->status = LINF_OK;
    if (threads > run->count) threads = run->count;
    if (threads > LINF_MAX_THREADS) threads = LINF_MAX_THREADS;
#if LINF_THREADS
    run->locking = 0;
    if (threads > 1 && pthread_mutex_init(&run->lock, NULL) != 0) threads = 1;
    if (threads > 1) {
        run->locking = 1;
        pthread_t *ids = malloc(sizeof(pthread_t) * (threads - 1));
        uint32_t started = 0;
        if (ids)
            while (started < threads - 1 && pthread_create(&ids[started], NULL, stripe_worker, run) == 0) started++;
        stripe_worker(run);
        for (uint32_t t = 0; t < started; t++) pthread_join(ids[t], NULL);
        free(ids);
        run->locking = 0;
        pthread_mutex_destroy(&run->lock);
        return run->status;
    }
#endif
    stripe_worker(run); /* one thread: no lock */
    return run->status;
}

/* ---------------------------------------------------------------- public API */

static void finish_header(linf_header *h, const linf_image_desc *d, uint32_t version, uint8_t *dst, uint64_t payload,
                          uint32_t mode, uint32_t crc, uint32_t stripe_height, uint32_t count)
{
    h->desc = *d;
    h->format_version = d->channels > 1 ? version : 3u; /* gray streams are unchanged */
    h->coding_mode = mode;
    h->payload_bytes = payload;
    h->payload_crc32 = crc;
    h->stripe_height = stripe_height;
    h->stripe_count = count;
    h->header_bytes = LINF_HEADER_BYTES + (count > 1 ? LINF_STRIPE_TABLE_BYTES(count) : 0);
    linf_write_header(dst, h);
}

linf_status linf_encode(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                        uint8_t *dst, size_t dst_capacity, size_t *written)
{
    return linf_encode_ex(desc, pixels, pixel_bytes, dst, dst_capacity, written, NULL, 0, NULL);
}

linf_status linf_encode_reconstruct(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                                    uint8_t *dst, size_t dst_capacity, size_t *written,
                                    void *reconstruction, size_t reconstruction_bytes)
{
    return linf_encode_ex(desc, pixels, pixel_bytes, dst, dst_capacity, written, reconstruction,
                          reconstruction_bytes, NULL);
}

/* Striped encoding: stripes are coded in place at their raw offsets of a scratch area (dst when
 * it can hold the worst case, else a temporary block), then moved down to close the gaps. */
static linf_status encode_striped(const linf_image_desc *desc, const void *pixels, uint8_t *dst, size_t dst_capacity,
                                  size_t *written, void *reconstruction, uint32_t stripe_height, uint32_t count,
                                  uint32_t threads, uint32_t version)
{
    const size_t table = LINF_STRIPE_TABLE_BYTES(count);
    const size_t bound = linf_max_encoded_size_ex(desc, stripe_height);
    if (bound == 0) return LINF_ERR_INVALID_DIMENSIONS;
    uint8_t *work = dst_capacity >= bound ? dst : malloc(bound);
    linf_stripe_entry *entries = calloc(count, sizeof *entries);
    if (!work || !entries) {
        if (work != dst) free(work);
        free(entries);
        return LINF_ERR_OUT_OF_MEMORY;
    }
    stripe_run run;
    memset(&run, 0, sizeof run);
    run.desc = desc;
    run.stripe_height = stripe_height;
    run.count = count;
    run.version = version;
    run.pixels = pixels;
    run.output = reconstruction;
    run.area = work + LINF_HEADER_BYTES + table;
    run.entries = entries;
    linf_status status = run_stripes(&run, threads);
    if (status == LINF_OK) {
        uint64_t payload = 0;
        for (uint32_t i = 0; i < count; i++) { /* each move goes down, never over an unmoved stripe */
            memmove(run.area + payload, run.area + (size_t)i * stripe_height * row_bytes(desc), (size_t)entries[i].bytes);
            payload += entries[i].bytes;
        }
        const size_t total = LINF_HEADER_BYTES + table + (size_t)payload;
        if (total > dst_capacity) {
            status = LINF_ERR_BUFFER_TOO_SMALL;
        } else {
            const uint32_t crc = linf_write_stripe_table(work + LINF_HEADER_BYTES, stripe_height, count, entries);
            linf_header h;
            finish_header(&h, desc, version, work, payload, LINF_MODE_PREDICTIVE, crc, stripe_height, count);
            if (work != dst) memcpy(dst, work, total);
            *written = total;
        }
    }
    if (work != dst) free(work);
    free(entries);
    return status;
}

linf_status linf_encode_ex(const linf_image_desc *desc, const void *pixels, size_t pixel_bytes,
                           uint8_t *dst, size_t dst_capacity, size_t *written,
                           void *reconstruction, size_t reconstruction_bytes, const linf_options *options)
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
    const uint32_t version = options && options->format_version ? options->format_version : LINF_FORMAT_VERSION;
    if (version != 4u && version != LINF_FORMAT_VERSION) return LINF_ERR_BAD_VERSION;
    linf_status status = check_samples(desc, pixels, count, sample_offset(desc));
    if (status != LINF_OK) return status;

    const uint32_t stripe_height = options ? options->stripe_height : 0;
    const uint32_t stripes = linf_stripe_count(desc->height, stripe_height);
    if (stripes > 1)
        return encode_striped(desc, pixels, dst, dst_capacity, written, reconstruction, stripe_height, stripes,
                              options->threads, version);

    size_t size = 0;
    uint32_t mode = 0;
    status = encode_unit(desc, version, pixels, reconstruction, 0, desc->height, dst + LINF_HEADER_BYTES,
                         dst_capacity - LINF_HEADER_BYTES, &size, &mode);
    if (status != LINF_OK) return status;
    linf_header h;
    finish_header(&h, desc, version, dst, size, mode, linf_crc32(dst + LINF_HEADER_BYTES, size), desc->height, 1);
    *written = LINF_HEADER_BYTES + size;
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
    linf_options options;
    memset(&options, 0, sizeof options);
    options.max_samples = max_samples;
    return linf_decode_ex(src, src_bytes, pixels, pixel_bytes, &options, NULL);
}

linf_status linf_decode_ex(const uint8_t *src, size_t src_bytes, void *pixels, size_t pixel_bytes,
                           const linf_options *options, int64_t *failed_stripe)
{
    if (failed_stripe) *failed_stripe = -1;
    if (!src || !pixels) return LINF_ERR_NULL_ARGUMENT;
    linf_header h;
    linf_status status = linf_parse_header(src, src_bytes, &h);
    if (status != LINF_OK) return status;
    const uint64_t max_samples = options && options->max_samples ? options->max_samples : LINF_MAX_SAMPLES;
    const uint64_t samples = (uint64_t)h.desc.width * h.desc.height * h.desc.channels;
    if (samples > max_samples) return LINF_ERR_TOO_LARGE;
    const size_t raw = linf_pixel_bytes(&h.desc);
    if (raw == 0) return LINF_ERR_TOO_LARGE;
    if (pixel_bytes < raw) return LINF_ERR_BUFFER_TOO_SMALL;
    /* The stream must be exact: header_bytes <= src_bytes here (parse_header checked). */
    if (h.payload_bytes > src_bytes - h.header_bytes) return LINF_ERR_TRUNCATED;
    if (h.payload_bytes < src_bytes - h.header_bytes) return LINF_ERR_TRAILING_DATA;
    const uint8_t *payload = src + h.header_bytes;
    if (h.stripe_count == 1)
        return decode_unit(&h.desc, h.format_version, pixels, 0, h.desc.height, payload, (size_t)h.payload_bytes, h.coding_mode,
                           h.payload_crc32);

    uint64_t *offsets = malloc(sizeof(uint64_t) * h.stripe_count);
    if (!offsets) return LINF_ERR_OUT_OF_MEMORY;
    const uint8_t *table = src + LINF_HEADER_BYTES;
    uint64_t at = 0;
    for (uint32_t i = 0; i < h.stripe_count; i++) {
        offsets[i] = at;
        at += linf_read_stripe_entry(table, i).bytes;
    }
    stripe_run run;
    memset(&run, 0, sizeof run);
    run.desc = &h.desc;
    run.stripe_height = h.stripe_height;
    run.count = h.stripe_count;
    run.decoding = 1;
    run.version = h.format_version;
    run.output = pixels;
    run.payload = payload;
    run.table = table;
    run.offsets = offsets;
    status = run_stripes(&run, options ? options->threads : 1);
    free(offsets);
    if (status != LINF_OK && failed_stripe) *failed_stripe = run.failed;
    return status;
}
