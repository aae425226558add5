"""The TF Serving export: a SavedModel (``OUT/serving/<model_name>/<version>/``, the layout
``tensorflow_model_server`` scans) of G plus the box projection, with two signatures:

``serving_default(image, tau, slack) -> {"restored"}``: integer pixels (uint8 or uint16,
(batch, H, W, C)), integer tau (pixel units, one per image), float slack kappa in [0, 1].
The output has the input's dtype. After rounding, the result is clipped once more into the
*integer* box [y - floor(kappa*tau), y + floor(kappa*tau)]: rounding a float inside the
box can otherwise step past a fractional edge (y + 2.6 -> y + 3).
``restore_float(image, tau, slack) -> {"restored"}``: float32 images in [0, 1] and tau scaled
by the maximum value, as the Keras model takes them.
Inputs are validated inside the graph (``tf.debugging.assert_*`` / ``tf.ensure_shape``) because
a loaded signature, TF Serving and ``saved_model_cli`` do not check shapes against the
signature: without the checks a wrong channel count would fail deep in a convolution.

Pitfall met (TF 2.21 / Keras 3.15): a Keras 3 model tracked as a child of the exported ``tf.Module``
saves fine and reloads with ``tf.saved_model.load``, but TF1-style loading (TF Serving,
``saved_model_cli run``) then fails with "Could not find variable head_conv/bias". The module tracks
the tf.Variables its signatures capture instead (as ``keras.export.ExportArchive`` does).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from linf_tf.learn.export import OUTPUT_KEY, check_channels, restore_projected

INPUT_DTYPES: dict[str, tf.DType] = {"uint8": tf.uint8, "uint16": tf.uint16}
SERVING_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "restore_float"
SERVING_INPUTS: tuple[str, ...] = ("image", "tau", "slack")


def _dtype_of(input_dtype: str | tf.DType | np.dtype | type) -> tf.DType:
    dtype = tf.as_dtype(np.dtype(input_dtype).name if not isinstance(input_dtype, tf.DType) else input_dtype)
    if dtype not in INPUT_DTYPES.values():
        raise ValueError(f"input_dtype must be one of {sorted(INPUT_DTYPES)}, got {dtype.name}")
    return dtype


class RestorationModule(tf.Module):
    """The exported object: G plus two signatures (see the module docstring)."""

    def __init__(
        self, generator: keras.Model, channels: int, input_dtype: tf.DType, max_value: float
    ) -> None:
        super().__init__(name="linf_restoration")
        # G is reached through a closure, not tracked as a child: a Keras 3 model saved as a child
        # gives a SavedModel whose TF1-style loading (TF Serving, saved_model_cli run) fails with
        # "Could not find variable head_conv/bias". Tracking the tf.Variables the signatures
        # capture (as keras.export.ExportArchive does) loads correctly in both loaders.
        self._restore = functools.partial(restore_projected, generator)
        self.channels = channels
        self.input_dtype = input_dtype
        self.max_value = float(max_value)
        per_image = {
            "tau": tf.TensorSpec([None], tf.int32, name="tau"),
            "slack": tf.TensorSpec([None], tf.float32, name="slack"),
        }
        image = tf.TensorSpec([None, None, None, channels], input_dtype, name="image")
        self.serving_default = tf.function(
            self._restore_pixels, input_signature=[image, per_image["tau"], per_image["slack"]]
        )
        float_image = tf.TensorSpec([None, None, None, channels], tf.float32, name="image")
        float_tau = tf.TensorSpec([None], tf.float32, name="tau")
        self.restore_float = tf.function(
            self._restore_float, input_signature=[float_image, float_tau, per_image["slack"]]
        )
        self.model_variables = _captured_variables([self.serving_default, self.restore_float])

    def _checks(
        self, image: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor
    ) -> tuple[tf.Tensor, list[tf.Operation]]:
        """Runtime checks: loaded signatures and TF Serving do not enforce the declared shapes.

        Returns the shape-checked image (use it, so that the check cannot be pruned) and the
        assertions to run first.
        """
        image = tf.ensure_shape(image, [None, None, None, self.channels], name="check_image_shape")
        shape = tf.shape(image)
        batch = shape[0]
        return image, [
            tf.debugging.assert_positive(
                shape[1:3], message="image must have at least one pixel (height and width > 0)"
            ),
            tf.debugging.assert_equal(
                _leading_size(tau), batch,
                message="tau must be a vector with one value per image (a scalar or a batch size that "
                "differs from the image's)",
            ),
            tf.debugging.assert_equal(
                _leading_size(slack), batch,
                message="slack must be a vector with one value per image (a scalar or a batch size that "
                "differs from the image's)",
            ),
            tf.debugging.assert_non_negative(tau, message="tau must be >= 0"),
            tf.debugging.assert_greater_equal(slack, 0.0, message="slack (kappa) must be in [0, 1]"),
            tf.debugging.assert_less_equal(slack, 1.0, message="slack (kappa) must be in [0, 1]"),
        ]  # fmt: skip

    def _restore_float(self, image: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor) -> dict[str, tf.Tensor]:
        image, checks = self._checks(image, tau, slack)
        checks.append(
            tf.debugging.assert_less_equal(
                tf.reduce_max(tf.abs(image - 0.5)), 0.5, message="image must be scaled to [0, 1]"
            )
        )
        with tf.control_dependencies(checks):
            image = tf.identity(image)
        return {OUTPUT_KEY: self._restore(image, tau, slack)}

    def _restore_pixels(self, image: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor) -> dict[str, tf.Tensor]:
        image, checks = self._checks(image, tau, slack)
        max_tau = int(self.max_value) // 2  # the codec's own limit for this pixel range
        checks.append(
            tf.debugging.assert_less_equal(
                tau, max_tau, message=f"tau must be <= {max_tau}, the codec limit for max_value "
                f"{self.max_value:g} (a larger tau lets the output move further than the bound allows)",
            )
        )
        if self.max_value < self.input_dtype.max:  # e.g. 12-bit data in uint16
            checks.append(
                tf.debugging.assert_less_equal(
                    tf.cast(tf.reduce_max(image), tf.float32),
                    self.max_value,
                    message=f"image values must be <= max_value={self.max_value:g}",
                )
            )
        with tf.control_dependencies(checks):
            pixels = tf.cast(image, tf.float32)
            tau_pixels = tf.cast(tau, tf.float32)
        scale = 1.0 / self.max_value
        restored = self._restore(pixels * scale, tau_pixels * scale, slack)
        rounded = tf.round(restored * self.max_value)
        # Integer box: floor(kappa*tau) so that the rounded output still satisfies the float bound.
        half_width = tf.reshape(tf.floor(slack * tau_pixels), [-1, 1, 1, 1])
        lower = tf.maximum(pixels - half_width, 0.0)
        upper = tf.minimum(pixels + half_width, self.max_value)
        clipped = tf.minimum(tf.maximum(rounded, lower), upper)
        return {OUTPUT_KEY: tf.cast(clipped, self.input_dtype)}


def _leading_size(values: tf.Tensor) -> tf.Tensor:
    """``values``' first dimension, or -1 for a scalar, read at run time.

    ``tf.shape(values)[0]`` fails on a scalar with "slice index 0 of dimension 0 out of bounds";
    TF Serving and ``saved_model_cli`` do not check fed shapes against the signature, so a scalar
    tau reaches the graph. Appending -1 before slicing keeps the slice valid.
    """
    return tf.concat([tf.shape(values), [-1]], axis=0)[0]


def _captured_variables(functions: Sequence[Any]) -> list[tf.Variable]:
    """The distinct tf.Variables read by the (traced) functions."""
    found: dict[int, tf.Variable] = {}
    for function in functions:
        for variable in function.get_concrete_function().variables:
            found.setdefault(id(variable), variable)
    return list(found.values())


def make_serving_module(
    generator: keras.Model,
    *,
    channels: int,
    input_dtype: str | tf.DType = "uint8",
    max_value: float | None = None,
) -> RestorationModule:
    """Wrap ``generator`` for TF Serving. ``max_value`` defaults to the dtype's maximum (255 / 65535);
    pass e.g. 4095 for 12-bit data stored in uint16 (tau and the pixels are scaled by it)."""
    check_channels(generator, channels)
    dtype = _dtype_of(input_dtype)
    max_value = float(dtype.max if max_value is None else max_value)
    if not 0 < max_value <= dtype.max:
        raise ValueError(f"max_value must be in (0, {dtype.max}] for {dtype.name}, got {max_value:g}")
    return RestorationModule(generator, channels, dtype, max_value)


def export_saved_model(
    module: RestorationModule,
    output_dir: str | Path,
    model_name: str,
    version: int,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``output_dir/serving/<model_name>/<version>/`` and return that path.

    TF Serving treats a version directory as immutable, so an existing one is an error unless
    ``overwrite``.
    """
    if int(version) < 1:
        raise ValueError(f"version must be a positive integer (TF Serving version dir), got {version}")
    path = Path(output_dir) / "serving" / model_name / str(int(version))
    if path.exists():
        if not overwrite:
            raise FileExistsError(f"{path} exists; pick a new --version or pass overwrite=True")
        shutil.rmtree(path)
    signatures = {SERVING_SIGNATURE: module.serving_default, FLOAT_SIGNATURE: module.restore_float}
    tf.saved_model.save(module, str(path), signatures=signatures)
    return path
