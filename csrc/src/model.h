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

/* Adaptive binary contexts for one channel's residual symbols. */
typedef struct symbol_contexts {
    rc_bit zero[NUM_ENERGY][9];
    rc_bit zero_texture[NUM_BIAS_CONTEXTS]; /* second estimate of the zero flag, by bias context */
    rc_bit sign[8 * 9];
    rc_bit unary[NUM_ENERGY][MAX_MAGNITUDE_BITS + 1];
    rc_bit mantissa_high[NUM_ENERGY][MAX_MAGNITUDE_BITS + 1];
    rc_bit mantissa_second[MAX_MAGNITUDE_BITS + 1][2];
} symbol_contexts;

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
