"""Deployment export of the l-inf CNN: a SavedModel for TF Serving and TFLite models for the edge.

Both formats contain the *box projection*, so a deployed model keeps the guarantee of
:func:`linf_tf.learn.models.build_inference_model`: every output pixel lies in
[y - kappa*tau, y + kappa*tau] ∩ [0, max], hence within (1 + kappa) * tau of the original.

SavedModel (``OUT/serving/<model_name>/<version>/``, the layout ``tensorflow_model_server`` scans)
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

TFLite (built-in ops only, no Flex), inputs ``decoded`` float32 [1, H, W, C] in [0, 1] (H and W
dynamic: call ``resize_tensor_input`` then ``allocate_tensors``), ``tau`` float32 [1] (scaled),
``slack`` float32 [1]; output float32 [1, H, W, C]. Variants:
    * ``float32``: reference.
    * ``float16``: weights stored as float16, computed in float32 on CPU (half the size).
    * ``dynamic_int8``: int8 weights, float activations (dynamic range quantisation).
    * ``full_int8``: int8 weights and activations, calibrated on real codec output (skimage
      images encoded at several tau). *Mixed*: the global residual add ``y + correction`` and
      the box projection stay float32. Quantised, they would compute the clip bounds from
      y and tau snapped to the 8-bit activation grid, so the box would hold only approximately
      (0.016 grey levels outside it were measured when just tau went through int8). Kept float,
      they cost one DEQUANTIZE (of the correction) and read the float inputs directly.
      Done with the public selective-quantisation API (``tf.lite.experimental.QuantizationDebugger``
      with ``denylisted_nodes``). Every exported model is then checked numerically to keep the bound.
    Every file has one named signature, ``restore`` (``interpreter.get_signature_runner("restore")``
    or ``get_signature_runner()``): inputs ``decoded``, ``tau``, ``slack`` as above, output
    ``restored``. Input contract, enforced *inside* the graph with builtin MINIMUM/MAXIMUM (no Flex
    ops; assertions would need Flex, clamps do not): ``decoded`` is clamped to [0, 1] (0-255 input
    is therefore not silently scaled: it is clipped, the caller must divide by the maximum), ``tau``
    to >= 0 and ``slack`` to [0, 1], so a direct caller cannot get more than slack * tau (hence at
    most tau) away from the clamped input. :func:`run_tflite` still rejects such values with a
    ValueError. The output is float: to get integers inside the bound, round and clip to
    y ± floor(kappa*tau) as ``serving_default`` does (``linf_tf.runtime.box.to_integer_box``).

Pitfalls met (TF 2.21 / Keras 3.15), and what the code does about them:
    * A Keras 3 model tracked as a child of the exported ``tf.Module`` saves fine and reloads with
      ``tf.saved_model.load``, but TF1-style loading (TF Serving, ``saved_model_cli run``) then fails
      with "Could not find variable head_conv/bias". The module tracks the tf.Variables its
      signatures capture instead (as ``keras.export.ExportArchive`` does).
    * ``TFLiteConverter.from_concrete_functions(..., trackable_obj)`` keeps Keras 3 variables as
      resource variables (VAR_HANDLE / READ_VARIABLE) that int8 calibration cannot read. Without
      ``trackable_obj`` the converter freezes them into constants (it logs a deprecation warning,
      silenced here).
    * The converter merges identical subexpressions: tau reshaped for the tau plane and for the
      projection became one (quantised) tensor. The projection therefore starts from slack * tau.
    * Dynamic-range quantisation leaves weight tensors under 1024 elements in float: a tiny test
      model's ``dynamic_int8`` file is no smaller than float32; the paper-size model's is 4x smaller.
    * Calibration and the parity report use 8-bit skimage images. For 12/16-bit deployments pass
      ``representative_patches`` from that data (float in [0, 1], tau / max_value).
    * ``float16`` stores weights in half precision and computes in float32 on CPU. A GPU delegate
      allowed to lose precision would run the projection in float16 too: check the bound there.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import skimage.data
import tensorflow as tf
from absl import logging as absl_logging

from linf_tf import codec
from linf_tf.learn.model_io import build_from_config, load_generator  # noqa: F401  (export API)
from linf_tf.learn.models.common import project_to_box
from linf_tf.pixels import LUMA_WEIGHTS
from linf_tf.runtime.litert import TFLiteSession, make_interpreter, run_tflite  # noqa: F401  (export API)

INPUT_DTYPES: dict[str, tf.DType] = {"uint8": tf.uint8, "uint16": tf.uint16}
TFLITE_VARIANTS: tuple[str, ...] = ("float32", "float16", "dynamic_int8", "full_int8")
FLOAT_VARIANTS: tuple[str, ...] = ("float32", "float16")
SERVING_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "restore_float"
OUTPUT_KEY = "restored"
SERVING_INPUTS: tuple[str, ...] = ("image", "tau", "slack")
TFLITE_INPUTS: tuple[str, ...] = ("decoded", "tau", "slack")
TFLITE_SIGNATURE = "restore"
GUARD_SCOPE = "input_guard"
PROJECTION_SCOPE = "box_projection"
# Kept float32 in the full-int8 model: the input guards, the box projection, the global residual add
# y + correction (layer "restored" of linf_tf.learn.models.common.add_global_residual) and the output
# (``StatefulPartitionedCall:0`` when converted from the SavedModel signature), matched on tensor names.
FLOAT_NODE_PATTERN = re.compile(
    rf"(^|[/;])({PROJECTION_SCOPE}|{GUARD_SCOPE})/|(^|/)restored(_\d+)?/Add|^Identity|^StatefulPartitionedCall:0$"
)
# Calibration and parity images: bundled with scikit-image (no download). Calibration uses images the
# trainer trains on; the parity report uses its held-out validation images (chelsea, camera).
CALIBRATION_IMAGES: tuple[str, ...] = ("astronaut", "coffee", "rocket", "immunohistochemistry", "moon")
PARITY_IMAGES: tuple[str, ...] = ("chelsea", "camera")
CALIBRATION_TAUS: tuple[int, ...] = (1, 2, 4, 8)
# Float outputs are compared with the box up to float32 rounding of y ± kappa*tau in [0, 1].
BOUND_TOLERANCE = 1e-6

GeneratorCall = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


# --- loading ------------------------------------------------------------------------------------


def _check_channels(generator: keras.Model, channels: int) -> None:
    model_channels = generator.inputs[0].shape[-1]
    if channels != model_channels:
        raise ValueError(f"channels={channels} but the generator takes {model_channels}-channel images")


def _restore_projected(
    generator: keras.Model, decoded: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor
) -> tf.Tensor:
    """G followed by the box projection, all float32 in [0, 1]; ``tau`` and ``slack`` of shape (batch,)."""
    restored = generator([decoded, tf.reshape(tau, [-1, 1])], training=False)
    with tf.name_scope(PROJECTION_SCOPE):
        # slack * tau first, on the raw inputs: the TFLite converter would otherwise merge this
        # reshape of tau with the tau-plane's, and the full-int8 model would clip with a quantised tau.
        return project_to_box(restored, decoded, slack * tau, 1.0, 1.0)


# --- SavedModel ---------------------------------------------------------------------------------


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
        # capture (as keras.export.ExportArchive does) restores correctly in both loaders.
        self._restore = functools.partial(_restore_projected, generator)
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
    _check_channels(generator, channels)
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


# --- calibration / test data --------------------------------------------------------------------


def sample_image(name: str, channels: int) -> np.ndarray:
    """A uint8 H x W x ``channels`` image from ``skimage.data`` (RGB <-> gray converted as needed)."""
    pixels = getattr(skimage.data, name)()
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    if pixels.ndim == 3 and channels == 1:
        pixels = np.clip(np.rint(pixels @ LUMA_WEIGHTS), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], channels, axis=2)
    return np.ascontiguousarray(pixels)


def codec_round_trip(image: np.ndarray, tau: int) -> np.ndarray:
    """Encode and decode with the real codec; the result is H x W x C like ``image``."""
    decoded = codec.decode(codec.encode(image if image.shape[2] > 1 else image[..., 0], int(tau)))
    return decoded.reshape(image.shape)


def calibration_patches(
    channels: int,
    *,
    patch_size: int = 64,
    patches_per_image: int = 8,
    taus: Sequence[int] = CALIBRATION_TAUS,
    names: Sequence[str] = CALIBRATION_IMAGES,
    seed: int = 0,
) -> list[tuple[np.ndarray, float]]:
    """Real decoded patches for int8 calibration: (float32 patch in [0, 1], tau / 255) pairs.

    Each image goes through the codec at every tau, so the activation ranges seen during
    calibration are those of genuine codec artifacts at all the rates the model serves.
    """
    rng = np.random.default_rng(seed)
    patches = []
    for name in names:
        image = sample_image(name, channels)
        for tau in taus:
            for _ in range(patches_per_image):
                # Encode the patch itself, not the whole image: same kind of artifacts, ~10x faster.
                top = rng.integers(0, image.shape[0] - patch_size + 1)
                left = rng.integers(0, image.shape[1] - patch_size + 1)
                crop = np.ascontiguousarray(image[top : top + patch_size, left : left + patch_size])
                patches.append((codec_round_trip(crop, tau).astype(np.float32) / 255.0, tau / 255.0))
    return patches


# --- TFLite -------------------------------------------------------------------------------------


def _guard_tflite_inputs(
    decoded: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The TFLite input contract, enforced with builtin MINIMUM/MAXIMUM (no Flex ops): decoded in
    [0, 1], tau >= 0, slack in [0, 1]. Out-of-contract values are clamped, so whatever a direct
    caller feeds, the output stays within slack * tau (at most tau) of the clamped input."""
    with tf.name_scope(GUARD_SCOPE):
        decoded = tf.minimum(tf.maximum(decoded, 0.0), 1.0)
        tau = tf.maximum(tau, 0.0)
        slack = tf.minimum(tf.maximum(slack, 0.0), 1.0)
    return decoded, tau, slack


def _tflite_function(generator: keras.Model, channels: int) -> tf.types.experimental.ConcreteFunction:
    signature = [
        tf.TensorSpec([1, None, None, channels], tf.float32, name="decoded"),
        tf.TensorSpec([1], tf.float32, name="tau"),
        tf.TensorSpec([1], tf.float32, name="slack"),
    ]

    @tf.function(input_signature=signature)
    def restore(decoded: tf.Tensor, tau: tf.Tensor, slack: tf.Tensor) -> dict[str, tf.Tensor]:
        decoded, tau, slack = _guard_tflite_inputs(decoded, tau, slack)
        return {OUTPUT_KEY: _restore_projected(generator, decoded, tau, slack)}

    return restore.get_concrete_function()


def _representative_dataset(patches: Sequence[tuple[np.ndarray, float]]) -> Callable[[], Iterator[list]]:
    def generate() -> Iterator[list[np.ndarray]]:
        for patch, tau in patches:
            # Inputs in the function's order (decoded, tau, slack); slack only feeds the float projection.
            yield [patch[None].astype(np.float32), np.array([tau], np.float32), np.ones(1, np.float32)]

    return generate


def _converter(
    function: tf.types.experimental.ConcreteFunction, variant: str, patches: Sequence | None, workdir: Path
) -> tf.lite.TFLiteConverter:
    # Through a SavedModel so that the flatbuffer carries the named signature ``restore``
    # (``from_concrete_functions`` without ``trackable_obj`` writes none). The SavedModel converter
    # freezes the Keras 3 variables into constants; ``from_concrete_functions(..., trackable_obj)``
    # would keep them as resource variables (VAR_HANDLE/READ_VARIABLE) that int8 calibration cannot
    # read ("read_variable.cc: variable != nullptr").
    module = tf.Module()
    module.model_variables = list(function.variables)  # tracked, as RestorationModule does
    tf.saved_model.save(module, str(workdir), signatures={TFLITE_SIGNATURE: function})
    converter = tf.lite.TFLiteConverter.from_saved_model(str(workdir), signature_keys=[TFLITE_SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "full_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_dataset(patches)
        # INT8 first: quantise every op that has an int8 kernel; BUILTINS: float fallback for the rest.
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return converter


def _tensor_names(model: bytes) -> list[str]:
    return [detail["name"] for detail in make_interpreter(model_content=model).get_tensor_details()]


def _mixed_int8(converter: tf.lite.TFLiteConverter, patches: Sequence) -> bytes:
    """Full-int8 conversion with the residual add and the box projection left in float32."""
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=_representative_dataset(patches[:1])
    )
    names = _tensor_names(debugger.calibrated_model)
    keep_float = [name for name in names if FLOAT_NODE_PATTERN.search(name)]
    if not any(PROJECTION_SCOPE in name for name in keep_float):
        raise RuntimeError(f"no '{PROJECTION_SCOPE}' tensors in the calibrated model; cannot keep it float")
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep_float)
    return debugger.get_nondebug_quantized_model()


def convert_tflite(
    generator: keras.Model,
    *,
    variant: str,
    channels: int,
    representative_patches: Sequence[tuple[np.ndarray, float]] | None = None,
) -> bytes:
    """The TFLite flatbuffer of G + box projection for one variant (see the module docstring)."""
    if variant not in TFLITE_VARIANTS:
        raise ValueError(f"variant must be one of {TFLITE_VARIANTS}, got {variant!r}")
    _check_channels(generator, channels)
    patches = representative_patches
    if variant == "full_int8" and patches is None:
        patches = calibration_patches(channels)
    patches = list(patches) if patches is not None else None
    if variant == "full_int8" and not patches:
        raise ValueError("full_int8 needs representative patches for calibration (got none)")
    with _quiet_absl_deprecation(), tempfile.TemporaryDirectory(prefix="linf_tflite_") as workdir:
        converter = _converter(_tflite_function(generator, channels), variant, patches, Path(workdir))
        return _mixed_int8(converter, patches) if variant == "full_int8" else converter.convert()


@contextlib.contextmanager
def _quiet_absl_deprecation() -> Iterator[None]:
    """Hide the converter's 'consider providing the trackable_obj' warning: it is omitted on purpose."""
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    try:
        yield
    finally:
        absl_logging.set_verbosity(verbosity)


def export_tflite(
    generator: keras.Model,
    out_path: str | Path,
    *,
    variant: str,
    channels: int,
    representative_patches: Sequence[tuple[np.ndarray, float]] | None = None,
    check_bound: bool = True,
) -> Path:
    """Convert (:func:`convert_tflite`), write ``out_path`` and, by default, check that the model
    has no Flex ops and keeps the box bound on a few real decoded patches."""
    model = convert_tflite(
        generator, variant=variant, channels=channels, representative_patches=representative_patches
    )
    flex = flex_ops(model)
    if flex:
        raise RuntimeError(f"{variant} TFLite model needs Flex ops {flex}; only built-in ops are allowed")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(model)
    if check_bound:
        _check_tflite_bound(out_path, channels)
    return out_path


SHIPPED_TFLITE = {"float32": "linf_float32.tflite", "float16": "linf_float16.tflite"}


def write_shipped_model(generator: keras.Model, folder: str | Path, *, default: str = "float16") -> Path:
    """Write the LiteRT files of a shipped model (``linf_float32.tflite``, ``linf_float16.tflite``)
    and its ``manifest.json`` into ``folder`` (e.g. ``linf_tf/weights/rgb``, beside the Keras
    ``generator.weights.h5`` + ``generator.json``); each file is checked to keep the bound."""
    from linf_tf.runtime.tf_loaders import receptive_radius

    folder = Path(folder)
    channels = int(generator.inputs[0].shape[-1])
    for variant, name in SHIPPED_TFLITE.items():
        export_tflite(generator, folder / name, variant=variant, channels=channels)
    manifest = {
        "channels": channels,
        "receptive_radius": receptive_radius(generator),
        "default": SHIPPED_TFLITE[default],
        "files": {
            "keras": ["generator.weights.h5", "generator.json"],
            "litert": sorted(SHIPPED_TFLITE.values()),
        },
        "signature": {
            "key": TFLITE_SIGNATURE,
            "inputs": {
                "decoded": f"float32 [1, H, W, {channels}], pixels / max_value, clamped to [0, 1]",
                "tau": "float32 [1], tau / max_value, clamped to >= 0",
                "slack": "float32 [1], kappa, clamped to [0, 1]",
            },
            "outputs": {
                OUTPUT_KEY: f"float32 [1, H, W, {channels}] in [0, 1], within slack * tau of decoded"
            },
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def analyze_tflite(model: bytes) -> str:
    """The TFLite analyzer's text dump (op list, tensors) of a flatbuffer."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        tf.lite.experimental.Analyzer.analyze(model_content=model)
    return buffer.getvalue()


def tflite_ops(model: bytes) -> list[str]:
    """Operator names used by the model, e.g. ``["CONV_2D", "ADD", ...]`` (custom ops by their name)."""
    return sorted(set(re.findall(r"Op#\d+ (\w+)\(", analyze_tflite(model))))


def flex_ops(model: bytes) -> list[str]:
    """The Flex (TF select) ops of a model; empty means the plain builtin interpreter runs it."""
    return [op for op in tflite_ops(model) if op.startswith("Flex")]


def _check_tflite_bound(model_path: Path, channels: int) -> None:
    """Run the model on real decoded patches at several kappa and fail if the box is left."""
    image = sample_image(PARITY_IMAGES[0], channels)[:40, :48]
    for tau, slack in ((4, 1.0), (4, 0.37), (2, 0.0)):
        decoded = codec_round_trip(image, tau).astype(np.float32) / 255.0
        restored = run_tflite(model_path, decoded, tau / 255.0, slack)
        excess = float(np.max(np.abs(restored - decoded)) - slack * tau / 255.0)
        if excess > BOUND_TOLERANCE:
            raise RuntimeError(
                f"{model_path} leaves the box by {excess * 255:.4f} grey levels (tau={tau}, kappa={slack})"
            )


def benchmark_tflite(model_path: str | Path, shape: Sequence[int], *, runs: int = 3) -> float:
    """Median milliseconds of one ``invoke`` on an H x W x C input (interpreter built and warmed up once,
    so that XNNPACK's weight packing at the first invoke is not counted)."""
    session = TFLiteSession(model_path)  # every core: what a deployment would configure
    decoded = np.full((1, *shape), 0.5, np.float32)
    session.run(decoded, 0.01, 1.0)
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        session.interpreter.invoke()
        timings.append(1000.0 * (time.perf_counter() - start))
    return float(np.median(timings))
