"""The l-inf CNN generator G (paper §3.2, Fig. 2) and its box-projected inference wrapper.

Training vs inference (why two models):
    :func:`build_generator` returns the *unclipped* network. A hard clip into the error box inside
    the training graph would zero the gradient of every clipped pixel, so pixels that leave the box
    would stop learning and training can stall; instead the l-inf loss (Eq. 13) pulls outputs into
    the box while training. :func:`build_inference_model` appends :class:`BoxProjection`, which
    *guarantees* the bound at inference and export: outputs are clipped into
    [y - kappa*tau, y + kappa*tau] ∩ [0, max_value], so |x_hat - x| <= (1 + kappa) * tau for every
    pixel (the original x lies in [y - tau, y + tau]); kappa = 0 reproduces the codec output.
"""

from __future__ import annotations

import keras

from linf_tf.learn.models.common import (
    BoxProjection,
    CropLike,
    PadToMultiple,
    PixelShuffle,
    PixelUnshuffle,
    add_global_residual,
    conv_bn_act,
    residual_unit,
    restoration_inputs,
    with_tau_plane,
)

ARCHITECTURES = ("full", "unshuffle")


def build_generator(
    channels: int,
    *,
    filters: int = 64,
    num_res_units: int = 16,
    tau_conditioning: bool = True,
    name: str = "linf_cnn",
) -> keras.Model:
    """Build G: ``restored = G([decoded, tau])``, unclipped, for training.

    Layout (paper Fig. 2, after SRGAN [18]): conv3x3(``filters``) + ReLU → ``num_res_units`` residual
    units (conv → BN → ReLU → conv → BN, identity skip) → conv3x3 + BN with a long skip from the
    first conv → conv3x3 to ``channels`` → global residual ``y + correction``.

    Args:
        channels: image channels C (1 gray, 3 RGB); inputs are (batch, H, W, C) in [0, 1].
        filters: feature maps of every hidden conv (paper: 64).
        num_res_units: residual units (paper: 16).
        tau_conditioning: concatenate a plane of the normalised tau to the input (default True, an
            addition for multi-rate use, §4.3). False reproduces the paper exactly; the model then
            still takes ``tau`` (unused) so that every restoration network has the same inputs.
        name: model name.

    Returns:
        Functional model with inputs ``[decoded, tau]`` (``tau`` = tau / max_value, shape (batch,)
        or (batch, 1); a dict keyed by these names works too) and one float32 output.
    """
    decoded, tau = restoration_inputs(channels)
    x = with_tau_plane(decoded, tau, tau_conditioning)
    head = conv_bn_act(x, filters, "head", batch_norm=False, activation="relu")
    x = head
    for index in range(num_res_units):
        x = residual_unit(x, filters, f"res{index}")
    x = conv_bn_act(x, filters, "body_out", activation=None)
    x = keras.layers.Add(name="long_skip")([head, x])
    restored = add_global_residual(decoded, x, channels, kernel_size=3)
    return keras.Model([decoded, tau], restored, name=name)


def build_unshuffle_generator(
    channels: int,
    *,
    filters: int = 64,
    num_res_units: int = 6,
    factor: int = 2,
    tau_conditioning: bool = True,
    name: str = "linf_cnn_unshuffle",
) -> keras.Model:
    """G with its body at 1/``factor`` of the resolution (pixel-unshuffle), for CPU-sized budgets.

    [decoded, tau plane] → mirror-pad to a multiple of ``factor`` → space-to-depth → conv3x3 →
    ``num_res_units`` residual units + long skip (as :func:`build_generator`) → conv3x3 to
    ``channels * factor**2`` → depth-to-space → crop → ``y + correction``.

    Mixed precision: the input, the first conv, the last conv, the shuffles and the residual add
    are float32 whatever the global policy; only the body runs in the policy's compute dtype. In
    bfloat16 (8 mantissa bits) 254/255 and 255/255 are the same number, so a bf16 input or add
    would move pixels by a whole level before the network has done anything.
    Same inputs and output as :func:`build_generator`; any H x W.
    """
    decoded, tau = restoration_inputs(channels)
    x = with_tau_plane(decoded, tau, tau_conditioning)
    x = PadToMultiple(factor, dtype="float32", name="pad")(x)
    x = PixelUnshuffle(factor, dtype="float32", name="unshuffle")(x)
    head = keras.layers.Conv2D(filters, 3, padding="same", dtype="float32", name="head_conv")(x)
    head = keras.layers.ReLU(name="head_relu")(head)  # first layer of the policy: casts to bf16/f16
    x = head
    for index in range(num_res_units):
        x = residual_unit(x, filters, f"res{index}")
    x = conv_bn_act(x, filters, "body_out", activation=None)
    x = keras.layers.Add(name="long_skip")([head, x])
    correction = keras.layers.Conv2D(
        channels * factor * factor,
        3,
        padding="same",
        kernel_initializer="zeros",
        bias_initializer="zeros",
        dtype="float32",
        name="correction",
    )(x)
    correction = PixelShuffle(factor, dtype="float32", name="shuffle")(correction)
    correction = CropLike(dtype="float32", name="crop")(correction, decoded)
    restored = keras.layers.Add(dtype="float32", name="restored")([decoded, correction])
    return keras.Model([decoded, tau], restored, name=name)


def build_inference_model(generator: keras.Model, *, max_value: float = 1.0) -> keras.Model:
    """Wrap a restoration network (G or ARCNN) with the box projection, for inference and export.

    The returned model takes ``[decoded, tau, slack]``: ``slack`` (kappa in [0, 1], shape (batch,)
    or (batch, 1)) sets the box half-width kappa*tau, so the result is within (1 + kappa) * tau of
    the original on every pixel. The generator's weights are shared, not copied.

    Args:
        generator: a model with inputs ``[decoded, tau]`` such as :func:`build_generator` returns.
        max_value: upper end of the pixel range (1.0 for images scaled to [0, 1]).
    """
    channels = generator.inputs[0].shape[-1]
    decoded, tau = restoration_inputs(channels)
    slack = keras.Input((1,), name="slack")
    restored = generator([decoded, tau])
    projection = BoxProjection(max_value=max_value, dtype="float32", name="box_projection")
    projected = projection(restored, decoded, tau, slack)
    return keras.Model([decoded, tau, slack], projected, name=f"{generator.name}_projected")
