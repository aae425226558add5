"""The TFLite export of G plus the box projection: four variants, the shipped LiteRT files, op checks.

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
    * ``TFLiteConverter.from_concrete_functions(..., trackable_obj)`` keeps Keras 3 variables as
      resource variables (VAR_HANDLE / READ_VARIABLE) that int8 calibration cannot read. Without
      ``trackable_obj`` the converter freezes them into constants (it logs a deprecation warning,
      silenced here).
    * The converter merges identical subexpressions: tau reshaped for the tau plane and for the
      projection became one (quantised) tensor. The projection therefore starts from slack * tau.
    * Dynamic-range quantisation leaves weight tensors under 1024 elements in float: a tiny test
      model's ``dynamic_int8`` file is no smaller than float32; the paper-size model's is 4x smaller.
    * ``float16`` stores weights in half precision and computes in float32 on CPU. A GPU delegate
      allowed to lose precision would run the projection in float16 too: check the bound there.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging as absl_logging

from linf_tf.learn.calibration import PARITY_IMAGES, calibration_patches, codec_round_trip, sample_image
from linf_tf.learn.export import (
    BOUND_TOLERANCE,
    OUTPUT_KEY,
    PROJECTION_SCOPE,
    check_channels,
    restore_projected,
)
from linf_tf.runtime.litert import TFLiteSession, make_interpreter, run_tflite

TFLITE_VARIANTS: tuple[str, ...] = ("float32", "float16", "dynamic_int8", "full_int8")
FLOAT_VARIANTS: tuple[str, ...] = ("float32", "float16")
TFLITE_INPUTS: tuple[str, ...] = ("decoded", "tau", "slack")
TFLITE_SIGNATURE = "restore"
GUARD_SCOPE = "input_guard"
# Kept float32 in the full-int8 model: the input guards, the box projection, the global residual add
# y + correction (layer "restored" of linf_tf.learn.models.common.add_global_residual) and the output
# (``StatefulPartitionedCall:0`` when converted from the SavedModel signature), matched on tensor names.
FLOAT_NODE_PATTERN = re.compile(
    rf"(^|[/;])({PROJECTION_SCOPE}|{GUARD_SCOPE})/|(^|/)restored(_\d+)?/Add|^Identity|^StatefulPartitionedCall:0$"
)


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
        return {OUTPUT_KEY: restore_projected(generator, decoded, tau, slack)}

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
    check_channels(generator, channels)
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
