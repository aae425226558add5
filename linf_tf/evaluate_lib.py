"""Evaluation behind the paper's Tables 1-4 (§5): codec vs rate-matched JPEG 2000 / WebP vs CNN restoration.

For every image and error bound ``tau`` the methods are

* ``codec``     the near-lossless codec's decoded image y (|y - x| <= tau, the paper's "CALIC" column);
* ``jpeg2000``  JPEG 2000 (OpenJPEG) at the codec's size: its PSNR target is bisected to within 2 %;
* ``webp``      lossy WebP at the codec's size (quality bisected, per encoder effort); 8-bit gray/RGB
  only, so skipped for 16-bit data;
* ``jpegls``    JPEG-LS near-lossless with NEAR = tau (CharLS), a standard codec with the same bound;
* ``NAME``      a restoration network applied to y, projected into the box y ± kappa*tau with the default
  slack kappa, so |x_hat - x| <= (1 + kappa) tau; ``NAME@k`` the same with slack k.

Outputs of every method are integer images like a decoder's (CNN outputs are rounded, then clipped
to the integer box, which keeps the guarantee exact). Measures: PSNR, SSIM, the l-inf error and bits
per sample (the codec's rate for the networks, which restore the codec's own stream).

PSNR and SSIM are computed on all samples of all channels (RGB for colour images), with the
image's own peak ``2**bit_depth - 1``. A baseline that misses the 2 % rate window (tiny images: the
encoders' size steps are coarse) keeps its closest stream and is flagged (``rate_matched=False``;
marked * in the Markdown table).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import imagecodecs
import numpy as np
from tqdm import tqdm

from linf_tf import codec, imageio, metrics

log = logging.getLogger(__name__)

BASELINE_METHODS = ("codec", "jpeg2000", "webp", "jpegls")
# The reference codecs run beside ours; the codec itself always runs (the networks restore its output).
REFERENCE_CODECS = ("jpeg2000", "webp", "jpegls")
RATE_TOLERANCE = 0.02  # rate-matched baselines must land within 2 % of the codec's size
DEFAULT_WEIGHTS_DIR = Path(__file__).parent / "weights"
KERAS_WEIGHTS_SUFFIX = ".weights.h5"
MAX_BISECTION_STEPS = 24
WEBP_METHODS = (4, 6, 5, 3, 2, 1, 0)  # libwebp's default effort first
JPEGLS_MAX_NEAR = 255  # CharLS rejects larger NEAR values


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One method on one image at one tau.

    ``bound`` is the guaranteed l-inf error (tau for the codecs, (1 + kappa) tau for a network, None
    for JPEG 2000 / WebP, which guarantee nothing); ``rate_matched`` says whether a rate-matched
    baseline got within 2 % of the codec's size (None for the other methods).
    """

    set: str
    method: str
    tau: int
    image: str
    psnr: float
    ssim: float
    linf: float
    bpp: float
    bound: float | None = None
    rate_matched: bool | None = None


@dataclass(frozen=True)
class MethodOutput:
    """A method's reconstruction (integer, same shape and dtype as the original) and its cost."""

    image: np.ndarray
    num_bytes: int
    bound: float | None = None
    rate_matched: bool | None = None


@dataclass(frozen=True)
class RateMatch:
    """Result of a rate-matching search: the decoded image, its stream and the setting used."""

    decoded: np.ndarray
    data: bytes
    setting: dict[str, float]  # the encoder settings that produced ``data``
    within_tolerance: bool


# --- restorers ----------------------------------------------------------------------------------


class Restorer(Protocol):
    """A restoration network behind one interface, whatever its file format.

    ``restore`` takes a decoded tile (HxWxC, integer) and returns the restored tile in pixel units
    (float, HxWxC), already projected into y ± slack*tau. ``channels`` is the channel count the
    network takes (a 1-channel network is applied to each channel of a colour image);
    ``receptive_radius`` is how many pixels of context the network sees on each side, or None when
    unknown (then tiling may not reproduce whole-image inference exactly).
    """

    channels: int
    receptive_radius: int | None

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray: ...


def max_value_for(bit_depth: int) -> int:
    """Largest sample value at ``bit_depth`` bits: the peak for PSNR and the network's 1.0."""
    return (1 << int(bit_depth)) - 1


class KerasRestorer:
    """A Keras model with inputs ``[decoded in [0, 1], tau / max_value]`` (the generator or ARCNN), or
    the projected inference model that also takes ``slack``.

    ``max_value`` is the pixel value mapped to 1.0; None (default) uses each image's own peak
    ``2**bit_depth - 1``, the scaling the trainer uses.
    """

    def __init__(self, model: Any, max_value: float | None = None) -> None:
        self.model = model
        self.max_value = max_value
        self.channels = int(model.inputs[0].shape[-1])
        self.receptive_radius = receptive_radius(model)
        self._takes_slack = len(model.inputs) == 3

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        import keras  # lazy: keeps TF out of baseline-only runs

        from linf_tf.models.common import project_to_box

        scale = float(self.max_value or max_value_for(bit_depth))
        y = (decoded.astype(np.float32) / scale)[None]
        tau_in = np.array([[tau / scale]], np.float32)
        slack_in = np.array([[slack]], np.float32)
        inputs = [y, tau_in, slack_in] if self._takes_slack else [y, tau_in]
        restored = self.model(inputs, training=False)
        # Project here too: a bare generator is unclipped, and re-projecting a projected output is a no-op.
        projected = project_to_box(restored, y, tau_in[:, 0], slack_in[:, 0], 1.0)
        return keras.ops.convert_to_numpy(projected)[0].astype(np.float64) * scale


class SavedModelRestorer:
    """The exporter's SavedModel: ``serving_default(image uint8/uint16 [N,H,W,C], tau int32 [N],
    slack float32 [N]) -> {"restored": [N,H,W,C]}``, with ``restored`` in the image's pixel units
    (integer or float) and already projected by the model."""

    def __init__(self, path: str | Path) -> None:
        import tensorflow as tf  # lazy: TF takes seconds to import

        self._tf = tf
        self._loaded = tf.saved_model.load(str(path))  # keep a reference: the signature needs it alive
        self._signature = self._loaded.signatures["serving_default"]
        image_spec = self._signature.structured_input_signature[1]["image"]
        self.channels = int(image_spec.shape[-1])
        self._image_dtype = image_spec.dtype.as_numpy_dtype
        self.receptive_radius = None  # the graph's layers are not introspectable

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        if bit_depth > 8 * np.dtype(self._image_dtype).itemsize:
            raise ValueError(
                f"this SavedModel takes {np.dtype(self._image_dtype).name}; image is {bit_depth}-bit"
            )
        tf = self._tf
        outputs = self._signature(
            image=tf.constant(decoded[None].astype(self._image_dtype)),
            tau=tf.constant([tau], tf.int32),
            slack=tf.constant([slack], tf.float32),
        )
        return np.asarray(outputs["restored"][0], np.float64)


class TFLiteRestorer:
    """The exporter's TFLite model: inputs decoded float32 [1,H,W,C] in [0, 1], tau and slack
    (found by name, else by order), one output in [0, 1]. Input tensors are resized per tile."""

    def __init__(self, path: str | Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        # LiteRT runs on one thread unless told otherwise: use every core.
        self._interpreter = Interpreter(model_path=str(path), num_threads=os.cpu_count() or 1)
        inputs = self._interpreter.get_input_details()
        self._image, self._tau, self._slack = _identify_tflite_inputs(inputs)
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self.channels = int(self._image["shape"][-1])
        self.receptive_radius = None
        self._allocated_shape: tuple[int, ...] | None = None

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        scale = float(max_value_for(bit_depth))
        shape = (1, *decoded.shape)
        if shape != self._allocated_shape:  # reallocating is slow: only when the tile size changes
            self._interpreter.resize_tensor_input(self._image["index"], shape)
            self._interpreter.allocate_tensors()
            self._allocated_shape = shape
        interpreter = self._interpreter
        interpreter.set_tensor(self._image["index"], (decoded.astype(np.float32) / scale)[None])
        # An integer tau input is in pixel units; a float one is scaled like the image.
        tau_value = tau if np.issubdtype(self._tau["dtype"], np.integer) else tau / scale
        interpreter.set_tensor(self._tau["index"], _scalar_tensor(self._tau, tau_value))
        interpreter.set_tensor(self._slack["index"], _scalar_tensor(self._slack, slack))
        interpreter.invoke()
        return interpreter.get_tensor(self._output_index)[0].astype(np.float64) * scale


def _identify_tflite_inputs(inputs: list[dict]) -> tuple[dict, dict, dict]:
    """(image, tau, slack) input details: by name when the names say so, else image = the rank-4
    input and tau, slack the others in order (the exporter's argument order)."""
    by_name = {key: next((d for d in inputs if key in d["name"].lower()), None) for key in ("tau", "slack")}
    image = next((d for d in inputs if len(d["shape"]) == 4), None)
    others = [d for d in inputs if d is not image]
    if image is None or len(others) != 2:
        raise ValueError(f"expected a 4-D image input plus tau and slack, got {[d['name'] for d in inputs]}")
    tau = by_name["tau"] or others[0]
    slack = by_name["slack"] or others[1]
    return image, tau, slack


def _scalar_tensor(detail: dict, value: float) -> np.ndarray:
    shape = [int(s) for s in detail["shape"]]  # [] for a 0-d input
    return np.full(shape, value, dtype=detail["dtype"])


def receptive_radius(model: Any) -> int | None:
    """Pixels of context a functional Keras model sees on each side of an output pixel.

    The longest path through the graph, summing ``dilation * (kernel // 2)`` over stride-1
    convolutions (nested models recurse); layers that do not mix pixels add 0. None when a layer
    changes resolution (strides, pooling, upsampling): tiles would then not line up exactly.
    """
    memo: dict[int, int | None] = {}

    def tensor_radius(tensor: Any) -> int | None:
        key = id(tensor)
        if key not in memo:
            operation, node_index, _ = tensor._keras_history
            node = operation._inbound_nodes[node_index]
            inputs = node.arguments.keras_tensors
            radii = [tensor_radius(t) for t in inputs]
            local = _layer_radius(operation)
            if local is None or any(r is None for r in radii):
                memo[key] = None
            else:
                memo[key] = local + max(radii, default=0)
        return memo[key]

    radii = [tensor_radius(t) for t in model.outputs]
    return None if any(r is None for r in radii) else max(radii)


def _layer_radius(layer: Any) -> int | None:
    if hasattr(layer, "outputs") and hasattr(layer, "layers"):  # a nested functional model
        return receptive_radius(layer)
    strides = getattr(layer, "strides", None)
    if strides is not None and any(s != 1 for s in np.ravel(strides)):
        return None
    if hasattr(layer, "pool_size") or hasattr(layer, "size"):  # pooling / upsampling
        return None
    kernel = getattr(layer, "kernel_size", None)
    if kernel is None:
        return 0
    dilation = np.ravel(getattr(layer, "dilation_rate", 1))
    return int(max(np.ravel(kernel) // 2 * dilation))


# --- loading models -----------------------------------------------------------------------------


def parse_model_specs(text: str) -> dict[str, str]:
    """``"NAME=PATH,NAME2=PATH2"`` -> ``{NAME: PATH}``; PATH may be ``default``."""
    specs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"model spec {item!r} is not NAME=PATH")
        if "@" in name or name in BASELINE_METHODS:
            raise ValueError(f"model name {name!r} clashes with a method name or uses '@'")
        if name in specs:
            raise ValueError(f"model name {name!r} given twice")
        specs[name] = path
    return specs


def load_restorer(path: str | Path) -> Restorer:
    """Pick the implementation from the path: a SavedModel directory, ``*.tflite``, ``*.weights.h5``
    (with its ``*.json`` config beside it), a trainer export directory, or ``default``."""
    if str(path) == "default":
        return _load_default()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model path does not exist: {path}")
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return SavedModelRestorer(path)
    if path.is_dir() and (path / f"generator{KERAS_WEIGHTS_SUFFIX}").is_file():
        return _load_keras(path / f"generator{KERAS_WEIGHTS_SUFFIX}")
    if path.is_dir() and (path / "export" / f"generator{KERAS_WEIGHTS_SUFFIX}").is_file():  # a training run
        return _load_keras(path / "export" / f"generator{KERAS_WEIGHTS_SUFFIX}")
    if path.suffix == ".tflite":
        return TFLiteRestorer(path)
    if path.name.endswith(KERAS_WEIGHTS_SUFFIX):
        return _load_keras(path)
    raise ValueError(
        f"cannot tell the model format of {path}: expected a SavedModel directory (saved_model.pb), "
        f"a .tflite file or a {KERAS_WEIGHTS_SUFFIX} file with its .json config"
    )


def _load_default() -> Restorer:
    candidates = sorted(DEFAULT_WEIGHTS_DIR.glob(f"*{KERAS_WEIGHTS_SUFFIX}")) + sorted(
        DEFAULT_WEIGHTS_DIR.glob("*.tflite")
    )
    if DEFAULT_WEIGHTS_DIR.is_dir() and (DEFAULT_WEIGHTS_DIR / "saved_model.pb").is_file():
        return SavedModelRestorer(DEFAULT_WEIGHTS_DIR)
    if not candidates:
        raise FileNotFoundError(
            f"no model is shipped in {DEFAULT_WEIGHTS_DIR} yet (expected *{KERAS_WEIGHTS_SUFFIX} + .json, "
            "*.tflite or a SavedModel); pass --models=NAME=PATH to a trained model instead"
        )
    return load_restorer(candidates[0])


def _load_keras(weights: Path) -> KerasRestorer:
    """Rebuild the network from the JSON of builder arguments beside its weights, then load them."""
    from linf_tf.export_lib import load_generator  # lazy: imports TF

    config = weights.with_name(weights.name[: -len(KERAS_WEIGHTS_SUFFIX)] + ".json")
    if not config.is_file():
        raise FileNotFoundError(f"{weights} needs its architecture config {config}")
    return KerasRestorer(load_generator(weights, config))


# --- tiled restoration --------------------------------------------------------------------------


def _as_hwc(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


def restore_tiled(
    restorer: Restorer,
    decoded: np.ndarray,
    tau: int,
    slack: float,
    tile: int = 256,
    overlap: int = 16,
    bit_depth: int | None = None,
) -> np.ndarray:
    """Restore ``decoded`` (HxW or HxWxC) tile by tile so memory stays bounded on large images.

    Each ``tile`` x ``tile`` block is run with ``overlap`` extra pixels of context on every side
    (fewer at the image border, where whole-image inference sees the same zero padding), and only
    its centre is kept. With ``overlap >= restorer.receptive_radius`` the result equals
    whole-image inference up to float rounding. Returns float pixel values, shape of ``decoded``.
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"need tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    bit_depth = bit_depth or 8 * decoded.dtype.itemsize
    radius = restorer.receptive_radius
    if radius is not None and overlap < radius:
        log.warning(
            "overlap %d < receptive radius %d: tile borders will differ from whole-image inference",
            overlap,
            radius,
        )
    image = _as_hwc(decoded)
    restored = np.empty(image.shape, np.float64)
    height, width = image.shape[:2]
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            y0, x0 = max(top - overlap, 0), max(left - overlap, 0)
            y1, x1 = min(bottom + overlap, height), min(right + overlap, width)
            block = _restore_channels(restorer, image[y0:y1, x0:x1], tau, slack, bit_depth)
            restored[top:bottom, left:right] = block[top - y0 : bottom - y0, left - x0 : right - x0]
    return restored.reshape(decoded.shape)


def _restore_channels(
    restorer: Restorer, block: np.ndarray, tau: int, slack: float, bit_depth: int
) -> np.ndarray:
    """Run the network; a 1-channel network restores each channel of a colour image separately
    (the codec bounds every channel independently, so the guarantee is unchanged)."""
    channels = block.shape[-1]
    if restorer.channels == channels:
        return restorer.restore(block, tau, slack, bit_depth)
    if restorer.channels == 1:
        planes = [restorer.restore(block[..., c : c + 1], tau, slack, bit_depth) for c in range(channels)]
        return np.concatenate(planes, axis=-1)
    if channels == 1:
        # A colour model on a gray image: feed the plane as gray RGB and average the restored
        # channels; each lies in the box around y, so their mean does too.
        restored = restorer.restore(np.repeat(block, restorer.channels, axis=-1), tau, slack, bit_depth)
        return restored.mean(axis=-1, keepdims=True)
    raise ValueError(f"a {restorer.channels}-channel model cannot restore a {channels}-channel image")


def to_integer_box(
    restored: np.ndarray, decoded: np.ndarray, tau: int, slack: float, max_value: int
) -> np.ndarray:
    """Round a network output to integers inside [y - slack*tau, y + slack*tau] ∩ [0, max_value].

    Rounding alone could step half a level out of a non-integer box (slack*tau = 1.5); clipping to
    the integer box afterwards keeps |x_hat - x| <= (1 + slack) * tau exactly. Because rounding is
    monotone, projecting a wider-box result here equals projecting the raw output directly.
    """
    half_width = slack * tau
    y = decoded.astype(np.float64)
    lower = np.maximum(np.ceil(y - half_width - 1e-9), 0)
    upper = np.minimum(np.floor(y + half_width + 1e-9), max_value)
    return np.clip(np.rint(restored), lower, upper).astype(decoded.dtype)


# --- baseline codecs ----------------------------------------------------------------------------


def rate_matched_jpeg2000(image: np.ndarray, target_bytes: int, bit_depth: int | None = None) -> RateMatch:
    """JPEG 2000 (irreversible, one quality layer) at about ``target_bytes``.

    imagecodecs' ``level`` is OpenJPEG's fixed-quality target in dB PSNR; size grows with it, so it
    is bisected (as a float) until the stream is within 2 % of the target, keeping the closest
    stream seen. OpenJPEG truncates at coding-pass boundaries, so on small images the size is a
    staircase in the level and may skip over the target: then the closest step is returned with
    ``within_tolerance=False``.
    """
    bit_depth = bit_depth or 8 * image.dtype.itemsize
    peak_db = 20 * math.log10(max_value_for(bit_depth))

    def encode(level: float) -> bytes:
        return imagecodecs.jpeg2k_encode(image, level=level, bitspersample=bit_depth)

    error, level, data = _bisect_rate(encode, target_bytes, 1.0, peak_db + 60.0, integer=False)
    return RateMatch(imagecodecs.jpeg2k_decode(data), data, {"level": level}, error <= RATE_TOLERANCE)


def rate_matched_webp(image: np.ndarray, target_bytes: int) -> RateMatch | None:
    """Lossy WebP at about ``target_bytes``: the integer quality 0-100 is bisected.

    Quality steps change the size by up to ~7 % at high quality, too coarse for 2 %; the encoder
    effort ``method`` (0-6) shifts the sizes, so the other methods are tried in turn until one
    lands within 2 % (the closest stream overall otherwise).

    WebP holds only 8-bit data, so 16-bit images and channel counts other than 1 and 3 give None
    (the method is skipped). Gray images are coded as R=G=B (WebP has no gray mode; the constant
    chroma costs next to nothing) and the decoded channels averaged back to one.
    """
    if image.dtype != np.uint8 or _as_hwc(image).shape[-1] not in (1, 3):
        return None
    gray = image.ndim == 2 or image.shape[-1] == 1
    rgb = np.repeat(_as_hwc(image), 3, axis=-1) if gray else image
    best: tuple[float, dict[str, float], bytes] | None = None
    for method in WEBP_METHODS:

        def encode(quality: float, method: int = method) -> bytes:
            return imagecodecs.webp_encode(rgb, level=int(quality), lossless=False, method=method)

        error, quality, data = _bisect_rate(encode, target_bytes, 0, 100, integer=True)
        if best is None or error < best[0]:
            best = (error, {"quality": quality, "method": method}, data)
        if error <= RATE_TOLERANCE:
            break
    error, setting, data = best
    decoded = imagecodecs.webp_decode(data)
    if gray:
        decoded = np.rint(decoded.mean(axis=-1)).astype(np.uint8).reshape(image.shape)
    return RateMatch(decoded, data, setting, error <= RATE_TOLERANCE)


def _bisect_rate(
    encode: Callable[[float], bytes], target_bytes: int, low: float, high: float, integer: bool
) -> tuple[float, float, bytes]:
    """Bisect a setting whose stream size grows with it; return (relative size error, setting,
    stream) of the stream closest to the target, stopping as soon as one is within tolerance."""
    best: tuple[float, float, bytes] | None = None
    for _ in range(MAX_BISECTION_STEPS):
        level = math.floor((low + high) / 2) if integer else (low + high) / 2
        data = encode(level)
        error = abs(len(data) - target_bytes) / target_bytes
        if best is None or error < best[0]:
            best = (error, level, data)
        if error <= RATE_TOLERANCE or (integer and high - low <= 1):
            break
        if len(data) < target_bytes:
            low = level
        else:
            high = level
    if integer and best[0] > RATE_TOLERANCE:  # floor() never tries the upper end of the last interval
        data = encode(high)
        error = abs(len(data) - target_bytes) / target_bytes
        if error < best[0]:
            best = (error, high, data)
    return best


def jpegls(image: np.ndarray, tau: int) -> bytes | None:
    """JPEG-LS near-lossless stream with NEAR = tau; None when CharLS cannot take that tau."""
    if tau > JPEGLS_MAX_NEAR:
        return None
    return imagecodecs.jpegls_encode(image, level=tau)


# --- one image ----------------------------------------------------------------------------------


def method_outputs(
    pixels: np.ndarray,
    bit_depth: int,
    tau: int,
    models: Mapping[str, Restorer],
    slacks: Sequence[float],
    default_slack: float,
    tile: int = 256,
    overlap: int = 16,
    references: Sequence[str] = REFERENCE_CODECS,
) -> dict[str, MethodOutput]:
    """Every method's integer reconstruction of ``pixels`` at ``tau``, keyed by method name;
    ``references`` picks which reference codecs run (the slow part: two rate searches)."""
    pixels = np.ascontiguousarray(pixels)  # imagecodecs rejects strided views such as image[..., :3]
    stream = codec.encode(pixels, tau, bit_depth=bit_depth)
    decoded = codec.decode(stream).reshape(pixels.shape)
    outputs = {"codec": MethodOutput(decoded, len(stream), bound=float(tau))}
    outputs.update(_baseline_outputs(pixels, bit_depth, tau, len(stream), references))
    for name, restorer in models.items():
        outputs.update(
            _model_outputs(
                name, restorer, decoded, len(stream), bit_depth, tau, slacks, default_slack, tile, overlap
            )
        )
    return outputs


def _baseline_outputs(
    pixels: np.ndarray,
    bit_depth: int,
    tau: int,
    target_bytes: int,
    references: Sequence[str] = REFERENCE_CODECS,
) -> dict[str, MethodOutput]:
    """The rate-matched and JPEG-LS baselines; one that cannot code this image (WebP on 16-bit data,
    any of them on many-channel stacks) is left out with a warning rather than ending the run."""
    coders: dict[str, Callable[[], MethodOutput | None]] = {
        "jpeg2000": lambda: _as_output(rate_matched_jpeg2000(pixels, target_bytes, bit_depth), pixels),
        "webp": lambda: _as_output(rate_matched_webp(pixels, target_bytes), pixels),
        "jpegls": lambda: _jpegls_output(pixels, tau),
    }
    outputs: dict[str, MethodOutput] = {}
    for name, code in coders.items():
        if name not in references:
            continue
        try:
            output = code()
        except (RuntimeError, ValueError) as error:  # imagecodecs' errors derive from RuntimeError
            log.warning("%s skipped for a %s image: %s", name, pixels.shape, error)
            continue
        if output is not None:
            outputs[name] = output
    return outputs


def _as_output(match: RateMatch | None, pixels: np.ndarray) -> MethodOutput | None:
    if match is None:
        return None
    return MethodOutput(
        match.decoded.reshape(pixels.shape), len(match.data), rate_matched=match.within_tolerance
    )


def _jpegls_output(pixels: np.ndarray, tau: int) -> MethodOutput | None:
    stream = jpegls(pixels, tau)
    if stream is None:
        return None
    return MethodOutput(
        imagecodecs.jpegls_decode(stream).reshape(pixels.shape), len(stream), bound=float(tau)
    )


def _model_outputs(
    name: str,
    restorer: Restorer,
    decoded: np.ndarray,
    num_bytes: int,
    bit_depth: int,
    tau: int,
    slacks: Sequence[float],
    default_slack: float,
    tile: int,
    overlap: int,
) -> dict[str, MethodOutput]:
    """``NAME`` at the default slack and ``NAME@k`` for each other slack, from one network run.

    The network runs once with the widest slack: clipping that result into a narrower box gives the
    same pixels as running with the narrower slack (the boxes are nested), at a fraction of the cost.
    """
    labels = {name: default_slack} | {f"{name}@{k:g}": k for k in slacks if k != default_slack}
    widest = max(labels.values())
    restored = restore_tiled(restorer, decoded, tau, widest, tile, overlap, bit_depth)
    max_value = max_value_for(bit_depth)
    return {
        label: MethodOutput(
            to_integer_box(restored, decoded, tau, k, max_value), num_bytes, bound=(1 + k) * tau
        )
        for label, k in labels.items()
    }


def _records_for(
    set_name: str,
    image_name: str,
    tau: int,
    original: np.ndarray,
    bit_depth: int,
    outputs: Mapping[str, MethodOutput],
) -> list[Record]:
    max_value = max_value_for(bit_depth)
    return [
        Record(
            set=set_name,
            method=method,
            tau=tau,
            image=image_name,
            psnr=metrics.psnr(original, out.image, max_value),
            ssim=metrics.ssim(original, out.image, max_value),
            linf=metrics.linf_error(original, out.image),
            bpp=metrics.bits_per_sample(out.num_bytes, original),
            bound=out.bound,
            rate_matched=out.rate_matched,
        )
        for method, out in outputs.items()
    ]


# --- whole evaluation ---------------------------------------------------------------------------


def list_images(directory: str | Path, limit: int | None = None) -> list[Path]:
    """Sorted image files of ``directory`` (not recursive); a clear error when there are none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"data directory does not exist: {directory}")
    paths = sorted(p for p in directory.iterdir() if imageio.is_supported_image(p))
    if not paths:
        raise FileNotFoundError(f"no readable images in {directory} (PNG, TIFF, BMP, PGM/PPM, DICOM)")
    return paths[:limit] if limit else paths


def evaluate(
    datasets: Mapping[str, Sequence[str | Path]],
    taus: Sequence[int],
    models: Mapping[str, Restorer],
    slacks: Sequence[float] = (),
    *,
    default_slack: float = 0.5,
    tile: int = 256,
    overlap: int = 16,
    progress: bool = True,
    references: Sequence[str] = REFERENCE_CODECS,
) -> list[Record]:
    """Run every method on every image of every set at every tau; one Record each.

    Taus too large for an image's bit depth are skipped with a warning.
    """
    check_slacks([*slacks, default_slack])
    check_references(references)
    jobs = [(set_name, Path(path)) for set_name, paths in datasets.items() for path in paths]
    records: list[Record] = []
    bar = tqdm(total=len(jobs) * len(taus), desc="evaluate", unit="image·tau", disable=not progress)
    for set_name, path in jobs:
        data = imageio.read_image(path)
        for tau in taus:
            bar.set_postfix_str(f"{set_name}/{path.name} tau={tau}")
            if tau > max_value_for(data.bit_depth) // 2:
                log.warning("skipping tau=%d for %d-bit %s", tau, data.bit_depth, path)
            else:
                outputs = method_outputs(
                    data.pixels, data.bit_depth, tau, models, slacks, default_slack, tile, overlap, references
                )
                records += _records_for(set_name, path.name, tau, data.pixels, data.bit_depth, outputs)
            bar.update()
    bar.close()
    return records


def check_slacks(slacks: Iterable[float]) -> None:
    bad = [k for k in slacks if not 0.0 <= k <= 1.0]
    if bad:
        raise ValueError(f"slacks must lie in [0, 1] (the box y ± kappa*tau), got {bad}")


def check_references(references: Iterable[str]) -> None:
    unknown = sorted(set(references) - set(REFERENCE_CODECS))
    if unknown:
        raise ValueError(f"unknown reference codecs {unknown}; choose from {list(REFERENCE_CODECS)}")


def read_records(path: str | Path) -> list[Record]:
    """The per-image records of an earlier run's results.json (null PSNR back to inf)."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())["records"]
        records = [Record(**row) for row in rows]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not an evaluate.py results.json: {error}") from error
    return [r if r.psnr is not None else dataclasses.replace(r, psnr=math.inf) for r in records]


def merge_records(earlier: Iterable[Record], current: Sequence[Record]) -> list[Record]:
    """``current`` plus the earlier records it does not redo (same set, method, tau and image):
    a new model can be added to an earlier run without rerunning its slow reference codecs."""
    done = {(r.set, r.method, r.tau, r.image) for r in current}
    kept = [r for r in earlier if (r.set, r.method, r.tau, r.image) not in done]
    return kept + list(current)


SUMMARY_MEASURES = ("psnr", "ssim", "linf", "bpp")


def aggregate(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Means of psnr/ssim/linf/bpp per (set, method, tau), ``linf_worst`` = the max over images, the
    guaranteed ``bound`` and the fraction of images a rate-matched baseline matched."""
    groups: dict[tuple[str, str, int], list[Record]] = defaultdict(list)
    for record in records:
        groups[(record.set, record.method, record.tau)].append(record)
    summary = []
    for (set_name, method, tau), group in groups.items():
        row: dict[str, Any] = {"set": set_name, "method": method, "tau": tau, "images": len(group)}
        for measure in SUMMARY_MEASURES:
            row[measure] = float(np.mean([getattr(r, measure) for r in group]))
        row["linf_worst"] = max(r.linf for r in group)
        row["bound"] = group[0].bound
        matched = [r.rate_matched for r in group if r.rate_matched is not None]
        row["rate_matched_fraction"] = float(np.mean(matched)) if matched else None
        summary.append(row)
    return summary


# --- writers ------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """JSON has no inf/nan (PSNR of a lossless image is inf): write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(records: Sequence[Record], summary: Sequence[Mapping[str, Any]], path: Path) -> None:
    """``{"summary": [...], "records": [...]}``, infinite PSNR written as null."""
    payload = {
        "summary": [{k: _json_safe(v) for k, v in row.items()} for row in summary],
        "records": [{k: _json_safe(v) for k, v in dataclasses.asdict(r).items()} for r in records],
    }
    path.write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n")


def write_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One row per mapping, columns in the first row's order."""
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def method_order(methods: Iterable[str]) -> list[str]:
    """Baselines first in the paper's order, then the networks, each followed by its slack variants."""
    methods = set(methods)
    baselines = [m for m in BASELINE_METHODS if m in methods]
    networks = sorted(m for m in methods if m not in BASELINE_METHODS)
    return baselines + sorted(networks, key=lambda m: (m.split("@")[0], "@" in m, m))


def markdown_tables(summary: Sequence[Mapping[str, Any]]) -> str:
    """One table per set laid out like the paper's Table 2: rows tau x (PSNR, SSIM, l-inf bound),
    one column per method. The l-inf row shows the mean over images of each image's max error, as
    the paper does, with the worst image in parentheses."""
    by_key = {(row["set"], row["method"], row["tau"]): row for row in summary}
    sections = []
    for set_name in sorted({row["set"] for row in summary}):
        rows = [row for row in summary if row["set"] == set_name]
        methods = method_order(row["method"] for row in rows)
        lines = [
            f"### {set_name} ({rows[0]['images']} images)",
            "",
            "| τ | Measure | " + " | ".join(methods) + " |",
            "|---|---|" + "---:|" * len(methods),
        ]
        for tau in sorted({row["tau"] for row in rows}):
            cells = {m: by_key.get((set_name, m, tau)) for m in methods}
            lines.append(f"| τ={tau} | PSNR | " + " | ".join(_cell(c, "psnr") for c in cells.values()) + " |")
            lines.append("|  | SSIM | " + " | ".join(_cell(c, "ssim") for c in cells.values()) + " |")
            lines.append("|  | ℓ∞ bound | " + " | ".join(_cell(c, "linf") for c in cells.values()) + " |")
        if any(_rate_missed(row) for row in rows):
            lines += [
                "",
                "\\* rate not matched within 2 % for some images (the closest achievable rate used).",
            ]
        sections.append("\n".join(lines))
    return "\n\n".join(sections) + "\n"


def _rate_missed(row: Mapping[str, Any]) -> bool:
    """Whether a rate-matched baseline missed the 2 % window on some image (None: not rate-matched)."""
    fraction = row["rate_matched_fraction"]
    return fraction is not None and fraction < 1.0


def _cell(row: Mapping[str, Any] | None, measure: str) -> str:
    if row is None:
        return "–"
    mark = "*" if _rate_missed(row) and measure == "psnr" else ""
    if measure == "psnr":
        return f"{row['psnr']:.2f}{mark}"
    if measure == "ssim":
        return f"{row['ssim']:.4f}"
    return f"{row['linf']:.2f} ({row['linf_worst']:g})"


# --- plots --------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display
    import matplotlib.pyplot as plt

    return plt


def write_plots(summary: Sequence[Mapping[str, Any]], directory: Path) -> list[Path]:
    """Per set: PSNR vs tau, l-inf vs tau, PSNR vs bits per sample and the slack trade-off."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for set_name in sorted({row["set"] for row in summary}):
        rows = [row for row in summary if row["set"] == set_name]
        written.append(
            _line_plot(rows, "tau", "psnr", "τ", "PSNR (dB)", directory / f"{set_name}_psnr_vs_tau.png")
        )
        written.append(
            _line_plot(rows, "tau", "linf", "τ", "mean ℓ∞ error", directory / f"{set_name}_linf_vs_tau.png")
        )
        written.append(
            _line_plot(
                rows, "bpp", "psnr", "bits per sample", "PSNR (dB)", directory / f"{set_name}_psnr_vs_bpp.png"
            )
        )
        written.append(_tradeoff_plot(rows, directory / f"{set_name}_tradeoff.png"))
    return written


# Reference codecs keep one look in every plot (grey/black, dashed) so the networks' colours stand out.
REFERENCE_STYLES = {
    "codec": {"color": "black", "linestyle": "-", "marker": "s"},
    "jpegls": {"color": "0.35", "linestyle": "--", "marker": "x"},
    "jpeg2000": {"color": "0.55", "linestyle": "--", "marker": "^"},
    "webp": {"color": "0.75", "linestyle": "--", "marker": "v"},
}


def _network_colors(methods: Iterable[str]) -> dict[str, Any]:
    """One tab10 colour per network (slack variants share their network's colour)."""
    plt = _pyplot()
    networks = sorted({m.split("@")[0] for m in methods if m not in BASELINE_METHODS})
    palette = plt.get_cmap("tab10").colors
    return {name: palette[i % len(palette)] for i, name in enumerate(networks)}


def line_plot_methods(methods: Iterable[str]) -> list[str]:
    """The methods drawn in the per-tau and rate plots: the references and each network at its
    default slack, in table order."""
    return [m for m in method_order(methods) if "@" not in m]


def _line_plot(
    rows: Sequence[Mapping[str, Any]], x: str, y: str, x_label: str, y_label: str, path: Path
) -> Path:
    """The references and each network at its default slack; the other slacks are in the
    trade-off plot (one line per slack here made the plots unreadable)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    methods = line_plot_methods(row["method"] for row in rows)
    colors = _network_colors(methods)
    for method in methods:
        points = sorted((row[x], row[y]) for row in rows if row["method"] == method and math.isfinite(row[y]))
        style = REFERENCE_STYLES.get(method, {"color": colors.get(method), "marker": "o"})
        if points:
            axes.plot(*zip(*points, strict=True), label=method, **style)
    axes.set(xlabel=x_label, ylabel=y_label, title=f"{rows[0]['set']}: {y_label} vs {x_label}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _tradeoff_plot(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """PSNR against the *guaranteed* l-inf error (1 + kappa) tau: per network and tau one curve
    through its slacks, starting at the codec (kappa = 0, bound tau); a colour per network, a
    label per tau at the codec's point; JPEG-LS as the reference."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    codec_rows = {row["tau"]: row for row in rows if row["method"] == "codec"}
    colors = _network_colors(row["method"] for row in rows)
    for network, color in colors.items():
        for tau in sorted(codec_rows):
            variants = [row for row in rows if row["tau"] == tau and row["method"].split("@")[0] == network]
            points = sorted(
                [(codec_rows[tau]["bound"], codec_rows[tau]["psnr"])]
                + [(row["bound"], row["psnr"]) for row in variants]
            )
            label = network if tau == min(codec_rows) else None
            axes.plot(*zip(*points, strict=True), color=color, marker="o", markersize=3, label=label)
    for tau, row in sorted(codec_rows.items()):
        axes.annotate(
            f"τ={tau}",
            (row["bound"], row["psnr"]),
            textcoords="offset points",
            xytext=(-4, -11),
            fontsize="x-small",
            ha="right",
        )
    jls = sorted((row["bound"], row["psnr"]) for row in rows if row["method"] == "jpegls")
    if jls:
        axes.plot(*zip(*jls, strict=True), label="jpegls", **REFERENCE_STYLES["jpegls"])
    axes.set(
        xlabel="guaranteed ℓ∞ error (1+κ)τ", ylabel="PSNR (dB)", title=f"{rows[0]['set']}: PSNR vs guarantee"
    )
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def crop_window(image: np.ndarray, size: int = 96) -> tuple[slice, slice]:
    """A ``size`` x ``size`` window (smaller images: all of it) on the most detailed region, where
    compression artifacts show: the block with the largest gradient energy on a coarse grid."""
    gray = _as_hwc(image).astype(np.float64).mean(axis=-1)
    height, width = gray.shape
    size_y, size_x = min(size, height), min(size, width)
    energy = np.abs(np.diff(gray, axis=0))[:, :-1] + np.abs(np.diff(gray, axis=1))[:-1, :]
    best, best_at = -1.0, (0, 0)
    for top in range(0, height - size_y + 1, max(size_y // 2, 1)):
        for left in range(0, width - size_x + 1, max(size_x // 2, 1)):
            score = float(energy[top : top + size_y, left : left + size_x].sum())
            if score > best:
                best, best_at = score, (top, left)
    top, left = best_at
    return slice(top, top + size_y), slice(left, left + size_x)


def write_crops_figure(
    original: np.ndarray, outputs: Mapping[str, MethodOutput], bit_depth: int, title: str, path: Path
) -> Path:
    """Top row: the original crop and each method's crop ("codec" is the decoded image); bottom row:
    each method's |error| map on one shared colour scale, so errors compare across methods."""
    plt = _pyplot()
    window = crop_window(original)
    methods = method_order(outputs)
    errors = {
        m: np.abs(_as_hwc(outputs[m].image).astype(np.float64) - _as_hwc(original)).max(axis=-1)[window]
        for m in methods
    }
    error_max = max(float(e.max()) for e in errors.values()) or 1.0
    columns = len(methods) + 1
    figure, axes = plt.subplots(2, columns, figsize=(2.0 * columns, 4.6), squeeze=False, layout="constrained")
    _show(axes[0][0], original[window], bit_depth, "original")
    axes[1][0].axis("off")  # under the original: holds the shared colour bar instead of a map
    for column, method in enumerate(methods, start=1):
        _show(axes[0][column], outputs[method].image[window], bit_depth, method)
        shown = axes[1][column].imshow(errors[method], cmap="magma", vmin=0, vmax=error_max)
        axes[1][column].set_title(f"|error| max {errors[method].max():g}", fontsize=8)
        axes[1][column].axis("off")
    figure.colorbar(shown, ax=axes[1][0], location="left", shrink=0.9, label="|error|")
    figure.suptitle(title)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _show(axes: Any, image: np.ndarray, bit_depth: int, title: str) -> None:
    scaled = image.astype(np.float64) / max_value_for(bit_depth)
    if scaled.ndim == 3 and scaled.shape[-1] == 1:
        scaled = scaled[..., 0]
    if scaled.ndim == 3 and scaled.shape[-1] not in (3, 4):
        scaled = scaled[..., 0]  # multi-plane stacks: show the first plane
    axes.imshow(scaled, cmap="gray" if scaled.ndim == 2 else None, vmin=0, vmax=1)
    axes.set_title(title, fontsize=8)
    axes.axis("off")


def write_report(
    records: Sequence[Record],
    datasets: Mapping[str, Sequence[str | Path]],
    taus: Sequence[int],
    models: Mapping[str, Restorer],
    slacks: Sequence[float],
    output_dir: Path,
    *,
    default_slack: float = 0.5,
    tile: int = 256,
    overlap: int = 16,
    references: Sequence[str] = REFERENCE_CODECS,
) -> dict[str, Path]:
    """Write results.json/.csv, summary.csv, results.md, the plots and one crops figure per set
    (the set's first image at the largest tau, recomputed: keeping every output in memory would not
    scale). Returns the written paths by kind."""
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = aggregate(records)
    paths = {
        "json": output_dir / "results.json",
        "csv": output_dir / "results.csv",
        "summary_csv": output_dir / "summary.csv",
        "markdown": output_dir / "results.md",
    }
    write_json(records, summary, paths["json"])
    write_csv([dataclasses.asdict(r) for r in records], paths["csv"])
    write_csv(summary, paths["summary_csv"])
    paths["markdown"].write_text(markdown_tables(summary))
    plot_dir = output_dir / "plots"
    for index, plot in enumerate(write_plots(summary, plot_dir)):
        paths[f"plot{index}"] = plot
    for set_name, image_paths in datasets.items():
        data = imageio.read_image(image_paths[0])
        tau = max(t for t in taus if t <= max_value_for(data.bit_depth) // 2)
        outputs = method_outputs(
            data.pixels, data.bit_depth, tau, models, slacks, default_slack, tile, overlap, references
        )
        title = f"{set_name}/{Path(image_paths[0]).name}, τ={tau}"
        paths[f"crops_{set_name}"] = write_crops_figure(
            data.pixels, outputs, data.bit_depth, title, plot_dir / f"{set_name}_crops.png"
        )
    return paths
