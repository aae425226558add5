"""The linf codec as a numcodecs codec (id ``"linf"``), for Zarr, Dask, HDF5 and other array stores.

    import numcodecs
    codec = numcodecs.get_codec({"id": "linf", "tau": 2})   # after `pip install linf-tf[zarr]`
    stream = codec.encode(chunk)                            # chunk: uint8 or uint16 ndarray
    restored = codec.decode(stream).reshape(chunk.shape)    # |restored - chunk| <= 2 everywhere

How a chunk becomes an image (``layout``). The last axis of a chunk is X and the one before it Y
(the OME-Zarr order ``(T, C, Z, Y, X)``); a 1-D chunk is one row.

* ``"slices"`` (default): every leading axis is folded into the rows, so a ``(Z, Y, X)`` chunk is
  coded as one gray image of ``Z * Y`` rows by ``X`` columns. No copy, no limit on the number of
  slices beyond the codec's 2**20 rows, and the context model keeps learning from slice to slice.
  On the 16-bit microscopy of ``highbit/neubias`` this is 0.6-4 % smaller than the channel
  layout at every tau (``benchmarks/array_bench.py``, BUILD_NOTES.md).
* ``"channels"``: the leading axes are folded into the codec's channel axis, interleaved
  (``Y x X x prod(leading)``, at most 256 channels), so every channel is predicted from the
  previous one as well. On the 8-bit colour eval sets stored ``(3, Y, X)`` this is 22-26 % smaller
  than ``"slices"``.

``decode`` returns a C-ordered array with the chunk's samples in the chunk's order, shaped
``(rows, X)`` for ``"slices"`` and ``(channels, Y, X)`` for ``"channels"``; reshape it to the chunk
shape (numcodecs' convention: Zarr does so). The stream itself holds no chunk shape. The codec
codes an array in its memory order (numcodecs' convention), so Fortran-ordered chunks round-trip.

``threads`` is handed to ``linf_tf.codec.encode`` / ``decode`` only where they accept a
``threads`` keyword (checked once, with ``inspect.signature``); until the striped, multi-threaded
codec lands it is accepted and ignored, and it never changes the bytes. ``bit_depth`` (default 8
for uint8, 16 for uint16) is what the stream stores; every sample must fit in it.

Only uint8 and uint16 are accepted; everything else raises ``TypeError`` (untyped ``bytes`` too:
coding bytes of 16-bit data one byte at a time would break the bound on the samples).

This module imports only numpy, numcodecs and ``linf_tf.codec`` (no TensorFlow, no Zarr).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy
from numcodecs.registry import register_codec

from linf_tf import codec

CODEC_ID = "linf"
LAYOUTS = ("slices", "channels")
SUPPORTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
# The C core's LINF_MAX_ROW_SAMPLES (width * channels), not exported by the binding.
MAX_ROW_SAMPLES: int = getattr(codec, "MAX_ROW_SAMPLES", 1 << 22)


def _accepts_threads(function: Callable[..., Any]) -> bool:
    return "threads" in inspect.signature(function).parameters


_ENCODE_TAKES_THREADS = _accepts_threads(codec.encode)
_DECODE_TAKES_THREADS = _accepts_threads(codec.decode)


def check_dtype(dtype: np.dtype) -> np.dtype:
    """The native-byte-order sample dtype for ``dtype``; ``TypeError`` unless uint8 or uint16."""
    dtype = np.dtype(dtype)
    native = dtype.newbyteorder("=")
    if native not in SUPPORTED_DTYPES:
        raise TypeError(
            f"the linf codec codes uint8 and uint16 samples only, got dtype {dtype}; "
            "store other types with another codec or convert them after checking the value range"
        )
    return native


def dtype_bit_depth(dtype: np.dtype) -> int:
    return 8 * check_dtype(dtype).itemsize


def image_shape(chunk_shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The codec image (H, W) or (H, W, C) that a chunk of ``chunk_shape`` is coded as.

    Raises ``ValueError`` for chunks the codec cannot hold (empty, 0-d, over its size limits).
    """
    if len(chunk_shape) == 0:
        raise ValueError("the linf codec needs chunks with at least one axis, got a 0-d chunk")
    if 0 in chunk_shape:
        raise ValueError(f"the linf codec cannot code an empty chunk, got shape {chunk_shape}")
    width = chunk_shape[-1]
    leading = math.prod(chunk_shape[:-2])
    height = chunk_shape[-2] if len(chunk_shape) >= 2 else 1
    if layout == "channels" and leading > 1:
        shape: tuple[int, ...] = (height, width, leading)
        if leading > codec.MAX_CHANNELS:
            raise ValueError(
                f"layout 'channels' folds the leading axes of chunk shape {chunk_shape} into {leading} "
                f"channels, more than the codec's {codec.MAX_CHANNELS}; use layout 'slices' or smaller chunks"
            )
    else:
        shape = (leading * height, width)
    _check_limits(shape, chunk_shape)
    return shape


def _check_limits(shape: tuple[int, ...], chunk_shape: tuple[int, ...]) -> None:
    height, width = shape[:2]
    channels = shape[2] if len(shape) == 3 else 1
    if max(height, width) > codec.MAX_DIMENSION:
        raise ValueError(
            f"chunk shape {chunk_shape} becomes a {height} x {width} image, over the codec's "
            f"{codec.MAX_DIMENSION} rows or columns; use smaller chunks"
        )
    if width * channels > MAX_ROW_SAMPLES or height * width * channels > codec.MAX_SAMPLES:
        raise ValueError(
            f"chunk shape {chunk_shape} is too large for the linf codec (at most {MAX_ROW_SAMPLES} samples "
            f"per row and {codec.MAX_SAMPLES} per chunk); use smaller chunks"
        )


def check_settings(tau: int, bit_depth: int | None, threads: int, layout: str) -> None:
    """``ValueError`` for settings no chunk could be coded with (``tau`` vs the dtype is checked later)."""
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 0:
        raise ValueError(f"linf codec: tau must be a non-negative int, got {tau!r}")
    if bit_depth is not None:
        if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)):
            raise ValueError(f"linf codec: bit_depth must be None or an int from 1 to 16, got {bit_depth!r}")
        if not 1 <= bit_depth <= 16:
            raise ValueError(f"linf codec: bit_depth must be 1 to 16, got {bit_depth}")
        check_tau_fits(tau, int(bit_depth))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"linf codec: threads must be a positive int, got {threads!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"linf codec: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")


def check_tau_fits(tau: int, bit_depth: int) -> None:
    max_tau = ((1 << bit_depth) - 1) // 2
    if tau > max_tau:
        raise ValueError(f"linf codec: tau must be at most {max_tau} for bit depth {bit_depth}, got {tau}")


def check_array(dtype: np.dtype, tau: int, bit_depth: int | None) -> int:
    """Check that arrays of ``dtype`` can be coded with these settings; return the bit depth used."""
    depth = dtype_bit_depth(dtype)
    if bit_depth is not None and bit_depth > depth:
        raise ValueError(
            f"linf codec: bit_depth {bit_depth} does not fit dtype {np.dtype(dtype)} (max {depth})"
        )
    depth = depth if bit_depth is None else int(bit_depth)
    check_tau_fits(tau, depth)
    return depth


class LinfCodec(Codec):
    """Near-lossless linf codec: every decoded sample is within ``tau`` of the original.

    ``tau = 0`` is lossless. See the module docstring for ``layout``, ``bit_depth`` and ``threads``.
    """

    codec_id = CODEC_ID

    def __init__(
        self, tau: int, bit_depth: int | None = None, threads: int = 1, layout: str = "slices"
    ) -> None:
        check_settings(tau, bit_depth, threads, layout)
        self.tau = int(tau)
        self.bit_depth = None if bit_depth is None else int(bit_depth)
        self.threads = int(threads)
        self.layout = layout

    def encode(self, buf: Any) -> bytes:
        if not hasattr(buf, "dtype"):
            raise TypeError(
                f"the linf codec codes typed uint8/uint16 arrays, got {type(buf).__name__}; "
                "pass the numpy array, not its bytes"
            )
        chunk = np.asarray(buf)
        dtype = check_dtype(chunk.dtype)
        check_array(dtype, self.tau, self.bit_depth)
        image = self.to_image(chunk.astype(dtype, copy=False))
        extra = {"threads": self.threads} if _ENCODE_TAKES_THREADS else {}
        return codec.encode(image, self.tau, bit_depth=self.bit_depth, **extra)

    def to_image(self, chunk: np.ndarray) -> np.ndarray:
        """The codec image of ``chunk`` in its memory order (a view where the layout allows)."""
        if chunk.flags.f_contiguous and not chunk.flags.c_contiguous:
            chunk = chunk.T  # code the memory order, as numcodecs codecs do
        shape = image_shape(chunk.shape, self.layout)
        chunk = np.ascontiguousarray(chunk)
        if len(shape) == 3:
            return np.ascontiguousarray(np.moveaxis(chunk.reshape(shape[2], *shape[:2]), 0, -1))
        return chunk.reshape(shape)

    def decode(self, buf: Any, out: Any = None) -> np.ndarray:
        data = ensure_contiguous_ndarray(buf).view(np.uint8)
        extra = {"threads": self.threads} if _DECODE_TAKES_THREADS else {}
        image = codec.decode(data, **extra)
        if image.ndim == 3:  # "channels" layout: back from interleaved to the chunk's order
            image = np.ascontiguousarray(np.moveaxis(image, -1, 0))
        if out is None:
            return image
        if ensure_contiguous_ndarray(out).nbytes != image.nbytes:
            raise ValueError(
                f"linf codec: the stream holds {image.size} {image.dtype} samples ({image.nbytes} bytes), "
                f"the output buffer has {ensure_contiguous_ndarray(out).nbytes} bytes"
            )
        return ndarray_copy(image, out)

    def get_config(self) -> dict[str, Any]:
        return {
            "id": self.codec_id,
            "tau": self.tau,
            "bit_depth": self.bit_depth,
            "threads": self.threads,
            "layout": self.layout,
        }

    def __repr__(self) -> str:
        return (
            f"LinfCodec(tau={self.tau}, bit_depth={self.bit_depth}, threads={self.threads}, "
            f"layout={self.layout!r})"
        )


register_codec(LinfCodec)
