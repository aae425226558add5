"""The discriminator D of the l-inf CNN GAN (paper §3.3.2, Fig. 3), after SRGAN's [18]."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from linf_tf.learn.models.common import conv_bn_act, residual_unit


def build_discriminator(
    channels: int,
    *,
    base_filters: int = 64,
    filter_multipliers: Sequence[int] = (1, 1, 2, 2, 4, 4),
    dense_units: int = 1024,
    negative_slope: float = 0.2,
    name: str = "discriminator",
) -> keras.Model:
    """Build D: one real-vs-restored logit per image (apply a sigmoid for D(.) of Eq. 8-10).

    Layout: one convolutional unit per entry of ``filter_multipliers`` (paper: six), each two 3x3
    convs of ``base_filters * multiplier`` maps, each conv followed by BN and LeakyReLU(0.2), the
    second conv strided 2; then a residual unit (conv → BN → LeakyReLU → conv → BN, identity skip);
    then global average pooling → dense(``dense_units``) → LeakyReLU → dense(1).

    Global average pooling replaces SRGAN's flatten so that D accepts any H x W (training patches
    are 64x64, validation crops may differ) and its dense layers do not depend on the input size.
    The logit layer is float32, so the losses stay stable under mixed precision.

    Args:
        channels: image channels C; input is (batch, H, W, C) in [0, 1], nothing else.
        base_filters: maps of the first unit (paper: 64, giving 64, 64, 128, 128, 256, 256).
        filter_multipliers: width of each unit relative to ``base_filters``; its length is the
            number of units (each halves the resolution).
        dense_units: width of the hidden dense layer (SRGAN: 1024).
        negative_slope: LeakyReLU slope (paper: 0.2).
        name: model name.
    """
    image = keras.Input((None, None, channels), name="image")
    x = image
    for index, multiplier in enumerate(filter_multipliers):
        unit_filters = base_filters * multiplier
        x = conv_bn_act(x, unit_filters, f"unit{index}_a", activation="leaky_relu")
        x = conv_bn_act(x, unit_filters, f"unit{index}_b", strides=2, activation="leaky_relu")
    x = residual_unit(x, base_filters * filter_multipliers[-1], "res", activation="leaky_relu")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(dense_units, name="dense")(x)
    x = keras.layers.LeakyReLU(negative_slope=negative_slope, name="dense_leaky_relu")(x)
    logit = keras.layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(image, logit, name=name)
