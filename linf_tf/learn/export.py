"""Deployment export of the l-inf CNN: a SavedModel for TF Serving and TFLite models for the edge.

Both formats contain the *box projection*, so a deployed model keeps the guarantee of
:func:`linf_tf.learn.models.build_inference_model`: every output pixel lies in
[y - kappa*tau, y + kappa*tau] ∩ [0, max], hence within (1 + kappa) * tau of the original.

Modules: :mod:`linf_tf.learn.serving` (the SavedModel and its signatures),
:mod:`linf_tf.learn.tflite` (the TFLite variants, shipped models, op checks),
:mod:`linf_tf.learn.calibration` (the real codec output they are calibrated and checked on) and
:mod:`linf_tf.learn.parity` (the report comparing every exported model with Keras). This module
holds what both formats compute: G followed by the box projection.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from linf_tf.learn.models.common import project_to_box

OUTPUT_KEY = "restored"
PROJECTION_SCOPE = "box_projection"
# Float outputs are compared with the box up to float32 rounding of y ± kappa*tau in [0, 1].
BOUND_TOLERANCE = 1e-6


def check_channels(generator: keras.Model, channels: int) -> None:
    """Refuse an export whose declared channel count is not the generator's."""
    model_channels = generator.inputs[0].shape[-1]
    if channels != model_channels:
        raise ValueError(f"channels={channels} but the generator takes {model_channels}-channel images")


def restore_projected(
    generator: keras.Model, decoded: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor
) -> tf.Tensor:
    """G followed by the box projection, all float32 in [0, 1]; ``tau`` and ``slack`` of shape (batch,)."""
    restored = generator([decoded, tf.reshape(tau, [-1, 1])], training=False)
    with tf.name_scope(PROJECTION_SCOPE):
        # slack * tau first, on the raw inputs: the TFLite converter would otherwise merge this
        # reshape of tau with the tau-plane's, and the full-int8 model would clip with a quantised tau.
        return project_to_box(restored, decoded, slack * tau, 1.0, 1.0)
