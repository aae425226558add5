"""Turn a trained Keras generator into the exact integer network of :mod:`linf_tf.runtime.intnet`.

Steps: read the convs by layer name and fold each BatchNorm into its conv (inference statistics);
run the folded float network (float64 NumPy, the same op graph the integer one runs) on calibration
images to find each tensor's largest magnitude; quantise (per-output-channel weight scales, one
scale per tensor, tensors joined by a residual add share a scale so that the add stays an integer
add). The float graph is checked against Keras before quantising, so a layout the exporter does not
understand fails loudly instead of exporting a wrong network.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from linf_tf.learn.calibration import CALIBRATION_IMAGES, codec_round_trip, sample_image
from linf_tf.runtime.intnet import (
    ACC_LIMIT,
    ACT_MAX,
    FINAL_BITS,
    MAX_MULTIPLIER,
    MAX_SHIFT,
    IntConv,
    IntNet,
    conv3x3_as,
    shuffle,
    unshuffle,
)
from linf_tf.runtime.verified import INTEGER_MODEL_FILE

CALIBRATION_MARGIN = 1.1  # headroom over the largest calibration magnitude (larger ones saturate)


@dataclass(frozen=True)
class FloatConv:
    source: int
    target: int
    skip: int | None
    relu: bool
    final: bool
    kernel: np.ndarray  # float64 [3, 3, cin, cout], BatchNorm folded in
    bias: np.ndarray  # float64 [cout]


def folded_graph(generator: keras.Model, spec: Mapping[str, Any]) -> tuple[FloatConv, ...]:
    """The generator as a list of 3x3 convs (head, residual units, body_out, correction)."""
    if spec.get("model", "linf_cnn") != "linf_cnn" or not spec.get("tau_conditioning", True):
        raise ValueError("integer export supports the tau-conditioned linf_cnn generators only")
    layers = [_conv(generator, "head_conv", None, 0, 1, None, relu=True)]
    chain = 1  # the residual chain's current tensor
    for unit in range(int(spec.get("num_res_units", 16))):
        inner = len(layers) + 1
        layers.append(_conv(generator, f"res{unit}_a_conv", f"res{unit}_a_bn", chain, inner, None, relu=True))
        layers.append(_conv(generator, f"res{unit}_b_conv", f"res{unit}_b_bn", inner, inner + 1, chain))
        chain = inner + 1
    layers.append(_conv(generator, "body_out_conv", "body_out_bn", chain, len(layers) + 1, 1))
    final = _conv(generator, "correction", None, len(layers), len(layers) + 1, None)
    layers.append(replace(final, final=True))
    for layer in generator.layers:
        if "relu" in layer.name and not isinstance(layer, keras.layers.ReLU):
            raise ValueError(f"integer export needs ReLU activations, {layer.name} is {type(layer).__name__}")
    return tuple(layers)


def _conv(model: keras.Model, conv: str, bn: str | None, source: int, target: int, skip: int | None,
          relu: bool = False) -> FloatConv:
    layer = model.get_layer(conv)
    if tuple(layer.kernel_size) != (3, 3) or tuple(layer.strides) != (1, 1):
        raise ValueError(f"{conv}: integer export needs 3x3 stride-1 convs")
    kernel = np.asarray(layer.kernel, np.float64)
    bias = np.asarray(layer.bias, np.float64) if layer.use_bias else np.zeros(kernel.shape[-1])
    if bn is not None:
        norm = model.get_layer(bn)
        scale = np.asarray(norm.gamma, np.float64) / np.sqrt(np.asarray(norm.moving_variance, np.float64)
                                                               + norm.epsilon)
        kernel = kernel * scale
        bias = (bias - np.asarray(norm.moving_mean, np.float64)) * scale + np.asarray(norm.beta, np.float64)
    return FloatConv(source, target, skip, relu, False, kernel, bias)


def float_forward(graph: tuple[FloatConv, ...], channels: int, factor: int, decoded: np.ndarray,
                  tau: float, max_value: float) -> list[np.ndarray]:
    """Every tensor of the folded float network; the last is the correction in samples (H, W, C)."""
    decoded = decoded.reshape(decoded.shape[:2] + (channels,))
    tau_plane = np.full(decoded.shape[:2] + (1,), tau / max_value)
    planes = np.concatenate([decoded / max_value, tau_plane], axis=-1)
    tensors = [unshuffle(planes.astype(np.float64), factor)]
    for layer in graph:
        value = conv3x3_as(tensors[layer.source], layer.kernel, np.float64) + layer.bias
        if layer.skip is not None:
            value = value + tensors[layer.skip]
        tensors.append(np.maximum(value, 0.0) if layer.relu else value)
    height, width = decoded.shape[:2]
    tensors[-1] = shuffle(tensors[-1], factor)[:height, :width] * max_value
    return tensors


def tensor_groups(graph: tuple[FloatConv, ...]) -> list[int]:
    """Group id per tensor: tensors joined by a residual add share a scale (union-find)."""
    parent = list(range(len(graph) + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for layer in graph:
        if layer.skip is not None:
            parent[root(layer.target)] = root(layer.skip)
    return [root(i) for i in range(len(parent))]


def calibrate(graph: tuple[FloatConv, ...], channels: int, factor: int,
              samples: Iterable[tuple[np.ndarray, int, int]]) -> list[float]:
    """Float value of one integer step per tensor, from (decoded, tau, max_value) samples."""
    peaks = np.zeros(len(graph) + 1)
    for decoded, tau, max_value in samples:
        tensors = float_forward(graph, channels, factor, decoded.astype(np.float64), tau, max_value)
        peaks = np.maximum(peaks, [np.abs(t).max() for t in tensors])
    groups = tensor_groups(graph)
    scales = [1.0 / ACT_MAX]  # tensor 0: inputs in [0, 1] quantised by ACT_MAX
    for index in range(1, len(graph) + 1):
        peak = max(peaks[j] for j in range(1, len(peaks)) if groups[j] == groups[index])
        scales.append(max(peak, 1e-6) * CALIBRATION_MARGIN / ACT_MAX)
    return scales


def _multiplier(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """m / 2**s ≈ ratio with m <= 2**15 and 1 <= s <= 62, per channel."""
    shift = np.clip(np.floor(np.log2((MAX_MULTIPLIER - 1) / ratio)), 1, MAX_SHIFT).astype(np.int64)
    multiplier = np.clip(np.rint(ratio * np.exp2(shift)), 0, MAX_MULTIPLIER).astype(np.int64)
    return multiplier, shift


def quantize(graph: tuple[FloatConv, ...], channels: int, factor: int, scales: list[float]) -> IntNet:
    """The integer network for the folded float graph and the per-tensor scales."""
    layers = []
    for layer in graph:
        cin = layer.kernel.shape[2]
        bias_limit = ACC_LIMIT // 2 - 1
        weight_limit = min(32767, (ACC_LIMIT // 2) // (9 * cin * ACT_MAX))  # int16 weights
        peak = np.abs(layer.kernel).reshape(-1, layer.kernel.shape[-1]).max(axis=0)
        weight_scale = np.where(peak > 0, peak / weight_limit, 1.0)
        weights = np.rint(layer.kernel / weight_scale).astype(np.int16)
        acc_scale = scales[layer.source] * weight_scale
        bias = np.clip(np.rint(layer.bias / acc_scale), -bias_limit, bias_limit).astype(np.int64)
        ratio = acc_scale * 2.0**FINAL_BITS if layer.final else acc_scale / scales[layer.target]
        multiplier, shift = _multiplier(ratio)
        layers.append(IntConv(layer.source, layer.target, layer.skip, layer.relu, layer.final,
                              weights, bias, multiplier, shift))
    return IntNet(channels, factor, tuple(layers))


def export_integer_network(generator: keras.Model, spec: Mapping[str, Any],
                           samples: list[tuple[np.ndarray, int, int]]) -> IntNet:
    """Fold, check against Keras on the first sample, calibrate on all, quantise."""
    channels = int(spec["channels"])
    factor = int(spec.get("unshuffle_factor", 2)) if spec.get("architecture") == "unshuffle" else 1
    graph = folded_graph(generator, spec)
    decoded, tau, max_value = samples[0]
    decoded = decoded.reshape(decoded.shape[:2] + (channels,))
    expected = np.asarray(generator([decoded[None].astype(np.float32) / max_value,
                                     np.array([[tau / max_value]], np.float32)]))[0] * max_value
    ours = float_forward(graph, channels, factor, decoded.astype(np.float64), tau, max_value)[-1]
    gap = float(np.abs(expected - decoded - ours).max())
    if not math.isfinite(gap) or gap > 1e-2 * max(1.0, tau):
        raise ValueError(f"the folded graph differs from the Keras generator by {gap:.4g} samples")
    return quantize(graph, channels, factor, calibrate(graph, channels, factor, samples))


INTEGER_CALIBRATION_TAUS = (1, 2, 4, 6, 8, 10, 14)


def integer_calibration_samples(channels: int, crop: int = 128) -> list[tuple[np.ndarray, int, int]]:
    """Decoded central crops of the calibration images at every tau: (decoded, tau, 255) triples."""
    samples = []
    for name in CALIBRATION_IMAGES:
        image = sample_image(name, channels)
        top, left = max(0, (image.shape[0] - crop) // 2), max(0, (image.shape[1] - crop) // 2)
        image = np.ascontiguousarray(image[top : top + crop, left : left + crop])
        samples.extend((codec_round_trip(image, tau), tau, 255) for tau in INTEGER_CALIBRATION_TAUS)
    return samples


def write_integer_model(generator: keras.Model, spec: Mapping[str, Any], folder: str | Path) -> Path:
    """Export the exact integer network to ``folder/intnet.bin`` (what verified restoration runs)."""
    net = export_integer_network(generator, spec, integer_calibration_samples(int(spec["channels"])))
    path = Path(folder) / INTEGER_MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(net.to_bytes())
    return path
