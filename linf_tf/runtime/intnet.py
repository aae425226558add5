"""An integer restoration network whose output is the same on every machine (issue 18).

Encoder-verified restoration needs the decoder to reproduce the encoder's restored samples bit for
bit. Floating-point inference does not promise that (summation order, FMA, kernels, threads), so
the verified path runs an integer version of the shipped network:

* activations are 16-bit integers in [-ACT_MAX, ACT_MAX], weights int16 per output channel,
  biases and accumulators integers; each conv is requantised by an integer multiplier (<= 2**15)
  and a rounding right shift (round half up), a residual add is an integer add, ReLU a max, and
  every activation saturates at ±ACT_MAX (12-bit activations cost 0.2-0.3 dB, 16-bit ~0.01 dB);
* :func:`IntNet.from_bytes` refuses any model for which ``fan_in * ACT_MAX * max|w| + max|bias|``
  could reach 2**46, so no accumulator can exceed 46 bits nor a requantisation product 61 bits.

**Why float64 BLAS is exact here.** Every product is an integer below 2**30 and every partial sum
an integer below 2**46 < 2**53, so a float64 matrix product of these integers is exact whatever
the summation order, blocking, FMA use, thread count or BLAS library: all of them compute the same
integer. The fast backend (``"blas"``) therefore equals the pure int64 backend (``"int64"``, numpy
integer loops, no BLAS) on every input; ``tests/test_verified.py`` checks that on random models and
across BLAS thread counts. Requantisation is int64.

Model layout (:meth:`IntNet.to_bytes`, little-endian): magic ``LNFQ``, version, channels C, unshuffle
factor f, layer count, then per layer ``in, out, skip (255 = none), flags (1 relu, 2 final), cin,
cout``, weights int16 [3, 3, cin, cout], bias int64 [cout], multiplier int32 [cout], shift u8
[cout]; a CRC-32 of everything before it ends the blob. Tensor 0 is the input: the image and a
constant tau plane (C + 1 channels, each sample ``round(v * ACT_MAX / max_value)``), mirror-padded
at the bottom/right to a multiple of f and pixel-unshuffled (f*f*(C+1) channels, depth order
``(dy*f + dx)*(C+1) + c`` as ``tf.nn.space_to_depth``). Layer i writes tensor i + 1. The final
layer's output t = ``round(acc * multiplier / 2**shift)`` is the correction in units of
2**-16 of full scale (saturated at ±2**20); in samples it is ``round(t * max_value / 2**16)``,
pixel-shuffled back and cropped. NumPy only: no TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

MAGIC = b"LNFQ"
VERSION = 1
ACT_MAX = 32767  # activations are 16-bit signed integers
ACC_LIMIT = 1 << 46  # no accumulator may reach this
FINAL_BITS = 16  # the final layer counts the correction in 2**-16 of full scale
FINAL_LIMIT = 1 << 20
MAX_MULTIPLIER = 1 << 15
MAX_SHIFT = 62
MAX_CHANNELS = 1024
NO_SKIP = 255
FLAG_RELU = 1
FLAG_FINAL = 2
BACKENDS = ("blas", "int64")
_LAYER_HEAD = struct.Struct("<BBBBHH")
_SLAB_POSITIONS = 1 << 17  # body positions per slab of rows (bounds the memory of big images)
_CHUNK_POSITIONS = 1 << 12  # positions per chunk of a layer: its working set stays in cache


class IntNetError(ValueError):
    """A model blob that is corrupt, or whose integers could overflow."""


@dataclass(frozen=True)
class IntConv:
    """One 3x3 'same' conv of the integer network (zero padding)."""

    source: int
    target: int
    skip: int | None
    relu: bool
    final: bool
    weights: np.ndarray  # int16 [3, 3, cin, cout]
    bias: np.ndarray  # int64 [cout]
    multiplier: np.ndarray  # int64 [cout]
    shift: np.ndarray  # int64 [cout]

    @property
    def cin(self) -> int:
        return int(self.weights.shape[2])

    @property
    def cout(self) -> int:
        return int(self.weights.shape[3])


@dataclass(frozen=True)
class IntNet:
    """The integer network: ``correction(y, tau)`` in samples, added to the decoded image y."""

    channels: int
    factor: int
    layers: tuple[IntConv, ...]

    @property
    def input_channels(self) -> int:
        return self.factor * self.factor * (self.channels + 1)

    def to_bytes(self) -> bytes:
        parts = [MAGIC, struct.pack("<BBBB", VERSION, self.channels, self.factor, len(self.layers))]
        for layer in self.layers:
            flags = (FLAG_RELU if layer.relu else 0) | (FLAG_FINAL if layer.final else 0)
            skip = NO_SKIP if layer.skip is None else layer.skip
            parts.append(_LAYER_HEAD.pack(layer.source, layer.target, skip, flags, layer.cin, layer.cout))
            parts.append(layer.weights.astype("<i2").tobytes())
            parts.append(layer.bias.astype("<i8").tobytes())
            parts.append(layer.multiplier.astype("<i4").tobytes())
            parts.append(layer.shift.astype("u1").tobytes())
        body = b"".join(parts)
        return body + struct.pack("<I", zlib.crc32(body))

    @property
    def content_hash(self) -> bytes:
        """16 bytes identifying the model (what a verified stream names)."""
        return model_hash(self.to_bytes())

    @classmethod
    def from_bytes(cls, blob: bytes) -> IntNet:
        return _parse(bytes(blob))

    @classmethod
    def load(cls, path: str | Path) -> IntNet:
        return cls.from_bytes(Path(path).read_bytes())

    def correction(
        self,
        decoded: np.ndarray,
        tau: int,
        max_value: int,
        *,
        backend: str = "blas",
        threads: int | None = None,
    ) -> np.ndarray:
        """int32 correction (H, W, C) in samples for a decoded image (H, W, C) or (H, W)."""
        return correction(self, decoded, tau, max_value, backend=backend, threads=threads)


def model_hash(blob: bytes) -> bytes:
    return hashlib.sha256(blob).digest()[:16]


def _parse(blob: bytes) -> IntNet:
    if len(blob) < 12 or blob[:4] != MAGIC:
        raise IntNetError("not an integer restoration model (bad magic or too short)")
    body, (crc,) = blob[:-4], struct.unpack("<I", blob[-4:])
    if zlib.crc32(body) != crc:
        raise IntNetError("integer model CRC mismatch: the file is corrupt")
    version, channels, factor, count = struct.unpack_from("<BBBB", body, 4)
    if version != VERSION:
        raise IntNetError(f"integer model version {version} is not supported (this build reads {VERSION})")
    if not 1 <= channels <= 255 or factor not in (1, 2, 4) or count == 0:
        raise IntNetError(
            f"integer model header is invalid: channels {channels}, factor {factor}, layers {count}"
        )
    widths = [factor * factor * (channels + 1)]
    layers = []
    offset = 8
    for index in range(count):
        layer, offset = _parse_layer(body, offset, index, widths)
        widths.append(layer.cout)
        layers.append(layer)
    if offset != len(body):
        raise IntNetError(f"integer model has {len(body) - offset} stray bytes after its last layer")
    if not layers[-1].final or layers[-1].cout != factor * factor * channels:
        raise IntNetError("the integer model's last layer must be the final one, with f*f*C outputs")
    if any(layer.final for layer in layers[:-1]):
        raise IntNetError("only the integer model's last layer may be final")
    read = {layer.source for layer in layers} | {layer.skip for layer in layers if layer.skip is not None}
    if read != set(range(len(layers))):
        raise IntNetError("every tensor but the output must be read by a later layer of the integer model")
    return IntNet(channels, factor, tuple(layers))


def _take(body: bytes, offset: int, dtype: str, count: int) -> tuple[np.ndarray, int]:
    size = np.dtype(dtype).itemsize * count
    if offset + size > len(body):
        raise IntNetError("integer model is truncated")
    return np.frombuffer(body, dtype, count, offset).astype(np.int64), offset + size


def _parse_layer(body: bytes, offset: int, index: int, widths: list[int]) -> tuple[IntConv, int]:
    if offset + _LAYER_HEAD.size > len(body):
        raise IntNetError("integer model is truncated")
    source, target, skip, flags, cin, cout = _LAYER_HEAD.unpack_from(body, offset)
    offset += _LAYER_HEAD.size
    final = bool(flags & FLAG_FINAL)
    problems = []
    if target != index + 1 or source >= target or source >= len(widths):
        problems.append(f"tensor ids in={source} out={target}")
    elif widths[source] != cin:
        problems.append(f"cin {cin} != {widths[source]} channels of tensor {source}")
    if skip != NO_SKIP and (skip >= target or widths[skip] != cout or final):
        problems.append(f"skip tensor {skip}")
    if flags & ~(FLAG_RELU | FLAG_FINAL) or (final and flags & FLAG_RELU) or not 1 <= cout <= MAX_CHANNELS:
        problems.append(f"flags {flags} / cout {cout}")
    if problems:
        raise IntNetError(f"integer model layer {index}: invalid {', '.join(problems)}")
    weights, offset = _take(body, offset, "<i2", 9 * cin * cout)
    bias, offset = _take(body, offset, "<i8", cout)
    multiplier, offset = _take(body, offset, "<i4", cout)
    shift, offset = _take(body, offset, "u1", cout)
    weights = weights.reshape(3, 3, cin, cout)
    # Python integers: np.abs(-2**63) is still negative in int64 and would slip past the check.
    largest_bias = max((abs(int(b)) for b in bias), default=0)
    worst = 9 * cin * ACT_MAX * int(np.abs(weights).max(initial=0)) + largest_bias
    if worst >= ACC_LIMIT:
        raise IntNetError(f"integer model layer {index}: accumulators could reach {worst} >= 2**46")
    in_range = 0 <= multiplier.min() and multiplier.max() <= MAX_MULTIPLIER
    if not (in_range and 1 <= shift.min() <= shift.max() <= MAX_SHIFT):
        raise IntNetError(f"integer model layer {index}: requantisation multiplier/shift out of range")
    layer = IntConv(source, target, None if skip == NO_SKIP else skip, bool(flags & FLAG_RELU), final,
                    weights.astype(np.int16), bias, multiplier, shift)
    return layer, offset


def quantize_plane(values: np.ndarray | int, max_value: int) -> np.ndarray:
    """round(v * ACT_MAX / max_value), half up, in integers: the network's input samples."""
    v = np.asarray(values, dtype=np.int64)
    return (2 * v * ACT_MAX + max_value) // (2 * max_value)


def input_tensor(net: IntNet, decoded: np.ndarray, tau: int, max_value: int) -> np.ndarray:
    """Tensor 0: quantised image + tau plane, mirror-padded to a multiple of f, unshuffled."""
    height, width, _ = decoded.shape
    planes = np.empty((height, width, net.channels + 1), np.int64)
    planes[..., :-1] = quantize_plane(decoded, max_value)
    planes[..., -1] = quantize_plane(min(int(tau), max_value), max_value)
    return unshuffle(planes, net.factor)


def unshuffle(planes: np.ndarray, factor: int) -> np.ndarray:
    """Mirror-pad (H, W, K) at the bottom/right to a multiple of f, then space-to-depth."""
    height, width, depth = planes.shape
    pad_h, pad_w = -height % factor, -width % factor
    if pad_h or pad_w:
        planes = np.pad(planes, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
    h, w = planes.shape[0] // factor, planes.shape[1] // factor
    blocks = planes.reshape(h, factor, w, factor, depth).transpose(0, 2, 1, 3, 4)
    return blocks.reshape(h, w, factor * factor * depth)


def round_shift(values: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """floor((v + 2**(s-1)) / 2**s): round half up, the same for negative v on every platform."""
    return (values + (np.int64(1) << (shift - 1))) >> shift


def conv3x3(x: np.ndarray, weights: np.ndarray, backend: str) -> np.ndarray:
    """Exact integer 3x3 'same' conv (zero padding) of x (h, w, cin) int64 -> (h, w, cout) int64."""
    dtype = np.float64 if backend == "blas" else np.int64
    return conv3x3_as(x, weights, dtype).astype(np.int64)


def conv3x3_as(x: np.ndarray, weights: np.ndarray, dtype: type) -> np.ndarray:
    """3x3 'same' conv (zero padding) computed in ``dtype``: nine matrix products on shifted slices.

    The zero-padded input is flattened with its padded row width, so every tap is a contiguous
    slice (no im2col copy); the two padding columns of each output row are dropped at the end.
    """
    h, w, _ = x.shape
    return _nine_taps(_padded(x, dtype), weights.astype(dtype), 0, h, w)


def _nine_taps(flat: np.ndarray, kernel: np.ndarray, top: int, bottom: int, width: int) -> np.ndarray:
    """Output rows [top, bottom) of the conv of a padded, flattened tensor (see :func:`_padded`)."""
    row = width + 2
    count = (bottom - top) * row
    acc = np.zeros((count, kernel.shape[3]), flat.dtype)
    product = np.empty_like(acc)
    for ky in range(3):
        for kx in range(3):
            start = (top + ky) * row + kx
            np.matmul(flat[start : start + count], kernel[ky, kx], out=product)
            acc += product
    return acc.reshape(bottom - top, row, -1)[:, :width]


def correction(
    net: IntNet,
    decoded: np.ndarray,
    tau: int,
    max_value: int,
    *,
    backend: str = "blas",
    threads: int | None = None,
) -> np.ndarray:
    """The network's correction in samples, int32 (H, W, C), exact and machine-independent.

    Big images run in slabs of rows. A slab carries ``len(layers)`` extra rows on each side: each
    3x3 conv spoils one row at a cut, so the rows kept equal the whole-image result exactly.
    ``threads`` (default: every core) only changes the speed, never a sample.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    image = decoded[..., None] if decoded.ndim == 2 else decoded
    if image.ndim != 3 or image.shape[2] != net.channels:
        raise ValueError(f"the integer model takes {net.channels} channel(s), got shape {decoded.shape}")
    if not 1 <= int(max_value) < 1 << 16:
        raise ValueError(f"max_value must be in [1, 65535], got {max_value}")
    workers = max(1, int(threads) if threads else os.cpu_count() or 1)
    factor = net.factor
    # Quantised and unshuffled slab by slab (padded once, in the image's own dtype), so that memory
    # grows with the image only by the decoded image itself and the int32 output.
    padded = _pad_to_multiple(image, factor)
    height, width = padded.shape[0] // factor, padded.shape[1] // factor
    halo = len(net.layers)
    rows = max(8, _SLAB_POSITIONS // width)
    out = np.empty((height, width, factor * factor * net.channels), np.int32)
    with ThreadPoolExecutor(workers) as pool, _ONE_BLAS_THREAD:
        for top in range(0, height, rows):
            bottom = min(height, top + rows)
            low, high = max(0, top - halo), min(height, bottom + halo)
            source = input_tensor(net, padded[low * factor : high * factor], tau, int(max_value))
            slab = run_layers(net, source, int(max_value), backend, pool)
            out[top:bottom] = slab[top - low : bottom - low]
    return np.ascontiguousarray(_shuffle_crop(net, out, image.shape[:2]))


def _pad_to_multiple(image: np.ndarray, factor: int) -> np.ndarray:
    """Mirror-pad (H, W, C) at the bottom/right to a multiple of f, as :func:`unshuffle` does."""
    pad_h, pad_w = -image.shape[0] % factor, -image.shape[1] % factor
    if not (pad_h or pad_w):
        return image
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")


class _OneBlasThread:
    """While any correction runs, BLAS keeps one thread per caller: each worker runs its own matrix
    products, so ``threads`` is the number of cores used. The limit is process-wide (threadpoolctl),
    hence counted: concurrent corrections (a batch's files side by side) set it once and the last
    one to finish restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limiter: threadpool_limits | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._users == 0:
                self._limiter = threadpool_limits(1, "blas")
            self._users += 1

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limiter is not None:
                self._limiter.restore_original_limits()
                self._limiter = None


_ONE_BLAS_THREAD = _OneBlasThread()


def run_layers(
    net: IntNet, source: np.ndarray, max_value: int, backend: str, pool: Executor | None = None
) -> np.ndarray:
    """All layers on tensor 0 (or a slab of it): the final layer's output in samples.

    Tensors live zero-padded and flattened (see :func:`conv3x3_as`), so a layer is computed in
    chunks of rows straight from its input buffer: each chunk's nine products, requantisation and
    skip add stay in cache, and the chunks run in parallel on ``pool``.
    """
    dtype = np.float64 if backend == "blas" else np.int64
    height, width = source.shape[:2]
    buffers = {0: _padded(source, dtype)}
    last_use = _last_uses(net)
    chunk = max(1, _CHUNK_POSITIONS // (width + 2))
    for index, layer in enumerate(net.layers):
        if layer.final:
            target = np.empty((height, width, layer.cout), np.int64)
        else:
            buffers[layer.target] = np.zeros(((height + 3) * (width + 2), layer.cout), dtype)
            target = _interior(buffers[layer.target], height, width)
        skip = None if layer.skip is None else _interior(buffers[layer.skip], height, width)
        kernel = layer.weights.astype(dtype)
        task = partial(_layer_rows, layer, kernel, buffers[layer.source], skip, target, chunk, max_value)
        starts = range(0, height, chunk)
        list(pool.map(task, starts) if pool else map(task, starts))
        if layer.final:
            return target
        for tensor in [t for t in buffers if last_use[t] == index]:
            del buffers[tensor]
    raise IntNetError("the integer model has no final layer")


def _layer_rows(
    layer: IntConv,
    kernel: np.ndarray,
    source: np.ndarray,
    skip: np.ndarray | None,
    target: np.ndarray,
    chunk: int,
    max_value: int,
    top: int,
) -> None:
    """One layer on output rows [top, top + chunk): conv, requantise, skip, ReLU, saturate."""
    bottom = min(target.shape[0], top + chunk)
    value = _nine_taps(source, kernel, top, bottom, target.shape[1]).astype(np.int64)
    value += layer.bias
    value *= layer.multiplier
    value = round_shift(value, layer.shift)
    if layer.final:
        np.clip(value, -FINAL_LIMIT, FINAL_LIMIT, out=value)
        target[top:bottom] = round_shift(value * max_value, np.int64(FINAL_BITS))
        return
    if skip is not None:
        value += skip[top:bottom].astype(np.int64)
    if layer.relu:
        np.maximum(value, 0, out=value)
    target[top:bottom] = np.clip(value, -ACT_MAX, ACT_MAX, out=value)


def _padded(tensor: np.ndarray, dtype: type) -> np.ndarray:
    """(h, w, c) -> zero-padded, flattened ((h + 3) * (w + 2), c), the layout the convs read."""
    height, width, depth = tensor.shape
    flat = np.zeros(((height + 3) * (width + 2), depth), dtype)
    _interior(flat, height, width)[:] = tensor
    return flat


def _interior(flat: np.ndarray, height: int, width: int) -> np.ndarray:
    return flat.reshape(height + 3, width + 2, -1)[1 : height + 1, 1 : width + 1]


def _last_uses(net: IntNet) -> dict[int, int]:
    """For each tensor, the index of the last layer that reads it (its buffer is freed after)."""
    last = {}
    for index, layer in enumerate(net.layers):
        last[layer.source] = index
        if layer.skip is not None:
            last[layer.skip] = index
    return last


def _shuffle_crop(net: IntNet, out: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return shuffle(out, net.factor)[: shape[0], : shape[1]]


def shuffle(out: np.ndarray, factor: int) -> np.ndarray:
    """Depth-to-space: (h, w, f*f*C) -> (h*f, w*f, C), the inverse of :func:`unshuffle`'s reshape."""
    h, w, depth = out.shape
    c = depth // (factor * factor)
    return out.reshape(h, w, factor, factor, c).transpose(0, 2, 1, 3, 4).reshape(h * factor, w * factor, c)
