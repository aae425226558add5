"""ARCNN baseline (Dong, Deng, Loy, Tang, "Compression artifacts reduction by a deep convolutional
network", ICCV 2015), used by the l-inf CNN paper (§5) as a reference restoration network."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from linf_tf.learn.models.common import (
    activation_layer,
    add_global_residual,
    restoration_inputs,
    with_tau_plane,
)


def build_arcnn(
    channels: int,
    *,
    filters: Sequence[int] = (64, 32, 16),
    kernel_sizes: Sequence[int] = (9, 7, 1, 5),
    activation: str = "relu",
    global_residual: bool = True,
    tau_conditioning: bool = False,
    name: str = "arcnn",
) -> keras.Model:
    """Build ARCNN: 9x9/64 → 7x7/32 → 1x1/16 → 5x5/C, activation between, "same" padding.

    Differences from the original, both documented choices:
      * all C channels are restored jointly (the original works on the luma channel only): the
        codec bounds every channel, and joint filters can use inter-channel correlation;
      * ``global_residual=True`` (default) predicts a correction added to y with a zero-initialised
        last conv, so the network starts as the identity, i.e. inside the error box; the codec
        error is small (<= tau), so the residual is much easier to learn. False predicts the image
        directly, as in the original.

    Args:
        channels: image channels C; inputs are (batch, H, W, C) in [0, 1].
        filters: maps of the three hidden convs (original: 64, 32, 16).
        kernel_sizes: kernel of each of the four convs (original: 9, 7, 1, 5).
        activation: ``"relu"`` (original ARCNN) or ``"prelu"`` (Fast ARCNN), or ``"leaky_relu"``.
        global_residual: see above.
        tau_conditioning: add the normalised-tau plane to the input, as in the generator (default
            False: the original has no such input).
        name: model name.

    Returns:
        Functional model with inputs ``[decoded, tau]`` (tau unused unless ``tau_conditioning``),
        the same interface as the generator, and one float32 output.
    """
    if len(kernel_sizes) != len(filters) + 1:
        raise ValueError("kernel_sizes needs one entry per hidden conv plus one for the output conv")
    decoded, tau = restoration_inputs(channels)
    x = with_tau_plane(decoded, tau, tau_conditioning)
    for index, (width, size) in enumerate(zip(filters, kernel_sizes, strict=False)):
        x = keras.layers.Conv2D(width, size, padding="same", name=f"conv{index}")(x)
        x = activation_layer(activation, name=f"conv{index}_{activation}")(x)
    if global_residual:
        restored = add_global_residual(decoded, x, channels, kernel_size=kernel_sizes[-1])
    else:
        restored = keras.layers.Conv2D(
            channels, kernel_sizes[-1], padding="same", dtype="float32", name="reconstruction"
        )(x)
    return keras.Model([decoded, tau], restored, name=name)
