/*
 * Context model of the codec: prediction, error-energy and texture contexts, bias cancellation.
 *
 * Prediction blends several simple predictors (CALIC's GAP, MED, gradients and, for channels after
 * the first, interband predictors that add the already reconstructed reference channel to a predicted
 * channel difference). Each predictor is weighted by the inverse of its recent error around the pixel,
 * so the blend follows whichever predictor fits the local structure. Then CALIC's bias cancellation
 * (error feedback per texture x energy context) corrects systematic errors, and the residual is coded
 * with binary adaptive contexts selected by the quantised error energy.
 *
 * Everything is computed from *reconstructed* samples, so encoder and decoder stay in lock-step in
 * near-lossless mode. All arithmetic is integer, so streams decode identically on every platform.
 */
#ifndef LINF_MODEL_H
#define LINF_MODEL_H

#include <stdint.h>

#include "mixer.h"
#include "rangecoder.h"

#define PRED_FRAC_BITS 3            /* predictions carry 3 fractional bits */
#define MAX_PREDICTORS 8
#define LMS_INPUTS 8                /* inputs of the first channel's adaptive linear predictor */
#define ROW_PAD 2                   /* samples of padding left and right of every row */
#define NUM_ENERGY 40               /* error-energy buckets (two per octave) */
#define MAX_MAGNITUDE_BITS 17       /* |symbol| < 2^17 */
#define BIAS_TEXTURE_BITS 8
#define NUM_BIAS_CONTEXTS ((1 << BIAS_TEXTURE_BITS) * 8)
#define BIAS_COUNT_LIMIT 64         /* bias sums and counts halve here: fast local adaptation */
#define NUM_NEIGHBOUR_CONTEXTS 18   /* format 6: nonzero symbols among W, N, NW, NE, WW x reference's */
#define UNARY_MIXED 2               /* format 6: the first unary bits go through the mixer */
#define REGRESSORS 8                /* format 6: errors a residual is regressed on (error_regression) */
#define REGRESSION_COUNT 1024       /* format 6: error-regression sums halve here */
#define REGRESSION_MIN_COUNT 256    /* format 6: samples a bucket sees before its weights are used */
#define REGRESSION_SOLVE_EVERY 16   /* format 6: updates of a bucket between two solves of its weights */
#define REGRESSION_CLIP 2           /* format 6: regressors clipped to this many steps x 2^(bucket/2) */
#define REGRESSION_FRAC_BITS 12

/* Adaptive binary contexts for one channel's residual symbols. */
typedef struct symbol_contexts {
    rc_bit zero[NUM_ENERGY][9];
    rc_bit zero_texture[NUM_BIAS_CONTEXTS]; /* second estimate of the zero flag, by bias context */
    rc_bit sign[8 * 9];
    rc_bit unary[NUM_ENERGY][MAX_MAGNITUDE_BITS + 1];
    rc_bit mantissa_high[NUM_ENERGY][MAX_MAGNITUDE_BITS + 1];
    rc_bit mantissa_second[MAX_MAGNITUDE_BITS + 1][2];
    /* Format 6 (multichannel): further estimates for the mixer. */
    rc_bit zero_neighbours[NUM_NEIGHBOUR_CONTEXTS];
    rc_bit unary_neighbours[NUM_NEIGHBOUR_CONTEXTS][UNARY_MIXED];
    rc_bit unary_texture[NUM_BIAS_CONTEXTS][UNARY_MIXED];
} symbol_contexts;

/* Format 6: the mixers' weights, one set per energy bucket (and unary bit). */
typedef struct symbol_mixers {
    mixer zero[NUM_ENERGY];
    mixer unary[NUM_ENERGY][UNARY_MIXED];
} symbol_mixers;

/* Format 6: a channel's residual (after bias cancellation, in 1/8 steps) regressed on nearby final
 * errors (codec.c, regressors: the co-located errors of the channels coded before it, its own at W,
 * N, NE, NW, its reference's at W and N) by running least squares per energy bucket. */
typedef struct error_regression {
    int64_t cross[REGRESSORS * (REGRESSORS + 1) / 2]; /* upper triangle of the sum of e e^T */
    int64_t target[REGRESSORS];                        /* sum of residual * e */
    int32_t count;
    int32_t beta[REGRESSORS];                          /* REGRESSION_FRAC_BITS fractional bits */
} error_regression;

/* Per-row buffers of one channel: index -ROW_PAD .. width-1+ROW_PAD is valid. */
typedef struct channel_rows {
    int32_t *rec[3];                     /* reconstructed samples: current row, one up, two up */
    int32_t *err[2];                     /* final prediction error rec - pred: current, one up */
    int16_t *sign[2];                    /* sign of the coded symbol (16-bit: see rc_bit) */
    uint32_t *pred_err;                  /* current row: |error| of each predictor (x8, saturated to
                                          * 16 bits), [x][k]; 32-bit lanes: no packing, no widening */
    uint32_t *up_err_sum;                /* row above: 2 e(N) + e(NW) + e(NE) per predictor, [x][k] */
} channel_rows;

typedef struct channel_model {
    channel_rows rows;
    const struct channel_model *second;  /* format 4: a second coded channel (or the reference) */
    uint32_t second_weight;              /* format 4 interband-3 units: energy weight of second's error */
    int32_t bias_sum[NUM_BIAS_CONTEXTS];
    int32_t bias_count[NUM_BIAS_CONTEXTS];
    int32_t lms_weight[LMS_INPUTS];      /* first channel: NLMS weights, 16 fractional bits */
    symbol_contexts ctx;
    int format6;                         /* multichannel format 6: mixed coding, error regression */
    symbol_mixers mix;
    error_regression regression[NUM_ENERGY];
} channel_model;

/* Everything the per-sample coder needs that is fixed for the image. */
typedef struct coding_params {
    int32_t max_value;
    int32_t tau;
    int32_t step;          /* 2 * tau + 1 */
    int32_t gap_t8, gap_t32, gap_t80; /* GAP thresholds scaled to the bit depth */
    uint32_t width;
    uint32_t sample_offset; /* signed input: 2^(bit_depth-1) added on load, subtracted on store */
    uint32_t energy_scale; /* 2 * 2^16 / step: energy in half quantiser steps, 16 fractional bits */
    uint64_t step_inverse; /* ceil(2^40 / step): quantising multiplies instead of dividing */
} coding_params;

#endif
