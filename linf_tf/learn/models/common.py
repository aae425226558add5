"""Building blocks shared by the generator, the discriminator and ARCNN.

Paper: X. Zhang, X. Wu, "Near-lossless L-infinity constrained multi-rate image decompression via
deep neural network" (arXiv:1801.07987), §3.2-3.3. All images are float, pixel values scaled to
[0, 1]; the codec's error bound ``tau`` is scaled the same way (``tau / max_value``).

The two custom layers (:class:`TauPlane`, :class:`BoxProjection`) are registered with Keras under
the package ``linf_tf`` so that saved ``.keras`` models reload without ``custom_objects``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

Tensor = Any  # a backend tensor, a KerasTensor while building models, or a NumPy array

ACTIVATIONS = ("relu", "leaky_relu", "prelu")


def per_example(value: Tensor, rank: int = 4) -> Tensor:
    """Reshape a per-example scalar (shape (batch,), (batch, 1) or (batch, 1, 1, 1)) to broadcast
    against a (batch, H, W, C) image; a 0-d scalar is returned unchanged (it broadcasts anyway)."""
    value = ops.convert_to_tensor(value)
    if len(value.shape) == 0:
        return value
    return ops.reshape(value, (-1,) + (1,) * (rank - 1))


def project_to_box(
    restored: Tensor, decoded: Tensor, tau: Tensor, slack: Tensor, max_value: float = 1.0
) -> Tensor:
    """Clip ``restored`` into [y - slack*tau, y + slack*tau] ∩ [0, max_value], pixel by pixel.

    ``decoded`` is the codec output y; ``tau`` and ``slack`` (kappa in [0, 1]) are per-example
    scalars or 0-d. Since the original satisfies |x - y| <= tau, the result satisfies
    |x_hat - x| <= (1 + kappa) * tau; kappa = 0 returns y (the codec's own guarantee, |y - x| <= tau).
    With kappa = 1 the box contains x, so projecting never moves a pixel away from x: no pixel's
    error grows. Pixels already inside the box are returned unchanged.
    """
    half_width = per_example(slack) * per_example(tau)
    lower = ops.maximum(decoded - half_width, 0.0)
    upper = ops.minimum(decoded + half_width, max_value)
    return ops.minimum(ops.maximum(restored, lower), upper)


@keras.saving.register_keras_serializable(package="linf_tf")
class TauPlane(keras.layers.Layer):
    """A constant (batch, H, W, 1) plane holding each example's normalised tau.

    Concatenated to the decoded image it tells one multi-rate network (paper §4.3) how large the
    codec error may be, instead of making it guess tau from the artifacts.
    """

    def call(self, image, tau):
        plane = ops.ones_like(image[..., :1])
        return plane * ops.cast(per_example(tau), plane.dtype)

    def compute_output_shape(self, image_shape, tau_shape):
        return tuple(image_shape[:-1]) + (1,)


@keras.saving.register_keras_serializable(package="linf_tf")
class BoxProjection(keras.layers.Layer):
    """Layer form of :func:`project_to_box`; called as ``layer(restored, decoded, tau, slack)``.

    Build it with ``dtype="float32"`` under mixed precision: the bound must be checked in float32,
    since float16 resolves only 1/2048 near 1.0, too coarse for 12- or 16-bit data.
    """

    def __init__(self, max_value: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_value = float(max_value)

    def call(self, restored, decoded, tau, slack):
        return project_to_box(restored, decoded, tau, slack, self.max_value)

    def compute_output_shape(self, restored_shape, *other_shapes):
        return restored_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "max_value": self.max_value}


def activation_layer(kind: str, name: str, negative_slope: float = 0.2) -> keras.layers.Layer:
    """``"relu"``, ``"leaky_relu"`` (slope ``negative_slope``; 0.2 as in the paper's D) or ``"prelu"``.

    PReLU shares its slope over height and width so the layer accepts any image size.
    """
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    if kind == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=negative_slope, name=name)
    if kind == "prelu":
        return keras.layers.PReLU(shared_axes=[1, 2], name=name)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}")


def conv_bn_act(
    x: Tensor,
    filters: int,
    name: str,
    *,
    kernel_size: int = 3,
    strides: int = 1,
    batch_norm: bool = True,
    activation: str | None = "relu",
) -> Tensor:
    """Conv ("same" padding) → optional BatchNorm → optional activation.

    The conv has no bias when BatchNorm follows: BN's offset makes it redundant.
    """
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=not batch_norm, name=f"{name}_conv"
    )(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if activation is not None:
        x = activation_layer(activation, name=f"{name}_{activation}")(x)
    return x


def residual_unit(x: Tensor, filters: int, name: str, *, activation: str = "relu") -> Tensor:
    """Conv3x3 → BN → activation → Conv3x3 → BN, plus an identity skip (paper §3.2, SRGAN [18]).

    ``x`` must already have ``filters`` channels (the skip has no projection).
    """
    skip = x
    x = conv_bn_act(x, filters, f"{name}_a", activation=activation)
    x = conv_bn_act(x, filters, f"{name}_b", activation=None)
    return keras.layers.Add(name=f"{name}_add")([skip, x])


def restoration_inputs(channels: int) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """The (decoded, tau) inputs every restoration network takes: any H x W; tau (batch,) or (batch, 1)."""
    decoded = keras.Input((None, None, channels), name="decoded")
    tau = keras.Input((1,), name="tau")
    return decoded, tau


def with_tau_plane(decoded: Tensor, tau: Tensor, tau_conditioning: bool) -> Tensor:
    """Concatenate the constant normalised-tau plane to the image when conditioning is on."""
    if not tau_conditioning:
        return decoded
    return keras.layers.Concatenate(name="with_tau")([decoded, TauPlane(name="tau_plane")(decoded, tau)])


def add_global_residual(decoded: Tensor, features: Tensor, channels: int, kernel_size: int) -> Tensor:
    """Zero-initialised output conv predicting a correction added to y, both in float32.

    Zero weights make the whole network the identity at initialisation: training starts from the
    codec output, which is already inside the error box. float32 keeps the output exact under
    mixed precision (y + 0 == y) and resolves the box at high bit depths.
    """
    correction = keras.layers.Conv2D(
        channels,
        kernel_size,
        padding="same",
        kernel_initializer="zeros",
        bias_initializer="zeros",
        dtype="float32",
        name="correction",
    )(features)
    return keras.layers.Add(dtype="float32", name="restored")([decoded, correction])


@keras.saving.register_keras_serializable(package="linf_tf")
class PixelUnshuffle(keras.layers.Layer):
    """Space-to-depth by ``factor``: (B, H, W, C) -> (B, H/f, W/f, f*f*C); H and W must be multiples.

    A body at 1/f of the resolution costs ~1/f^2 of the FLOPs per conv for the same receptive field in
    pixels, which is the lever that lets a wide network train on CPUs. ``tf.nn.space_to_depth`` is a
    TFLite builtin (SPACE_TO_DEPTH), so the exported models need no Flex ops.
    """

    def __init__(self, factor: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        import tensorflow as tf  # the Keras backend of this project; the op has no keras.ops twin

        return tf.nn.space_to_depth(x, self.factor)

    def compute_output_shape(self, shape):
        f = self.factor
        height, width = (None if s is None else s // f for s in shape[1:3])
        return (shape[0], height, width, shape[3] * f * f)

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="linf_tf")
class PixelShuffle(keras.layers.Layer):
    """Depth-to-space by ``factor``, the inverse of :class:`PixelUnshuffle` (TFLite DEPTH_TO_SPACE)."""

    def __init__(self, factor: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        import tensorflow as tf

        return tf.nn.depth_to_space(x, self.factor)

    def compute_output_shape(self, shape):
        f = self.factor
        height, width = (None if s is None else s * f for s in shape[1:3])
        return (shape[0], height, width, shape[3] // (f * f))

    def get_config(self) -> dict:
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="linf_tf")
class PadToMultiple(keras.layers.Layer):
    """Pad H and W at the bottom/right, by mirroring, up to multiples of ``multiple``.

    Lets a pixel-unshuffle network take any image size; :class:`CropLike` cuts the result back.
    Symmetric mirroring (edge sample repeated) keeps the padded border looking like image content.
    A side shorter than the padding it needs (1 pixel at multiple 4) cannot be mirrored that far.
    """

    def __init__(self, multiple: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.multiple = int(multiple)

    def call(self, x):
        import tensorflow as tf

        # Mirrored rows/columns appended by slice + reverse + concat, not tf.pad: a pad with
        # computed amounts loses every static dimension, and TFLite's builtin Conv2D needs the
        # channel count to be static (the converter would fall back to a Flex op).
        for axis in (1, 2):
            size = tf.shape(x)[axis]
            pad = (-size) % self.multiple
            edge = x[:, size - pad :] if axis == 1 else x[:, :, size - pad :]
            x = tf.concat([x, tf.reverse(edge, axis=[axis])], axis=axis)
        return x

    def compute_output_shape(self, shape):
        m = self.multiple
        height, width = (None if s is None else -(-s // m) * m for s in shape[1:3])
        return (shape[0], height, width, shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "multiple": self.multiple}


@keras.saving.register_keras_serializable(package="linf_tf")
class CropLike(keras.layers.Layer):
    """``layer(x, reference)``: x cut to the reference's height and width (top-left corner)."""

    def call(self, x, reference):
        import tensorflow as tf

        shape = tf.shape(reference)
        return x[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, x_shape, reference_shape):
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])
