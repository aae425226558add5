"""The samples the codec takes, and what it needs to know about them: ``ImageData`` and ``StackLayout``,
dtype and byte-order checks, the signed-data policy and the folding of stacks into channels.

Format-independent: the readers of :mod:`linf_tf.image_formats` hand their arrays to these functions,
so every format gets the same rules (see :mod:`linf_tf.imageio` for the rules themselves).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ACCEPTED_DTYPES = "uint8 or uint16 (int8/int16 as signed data: CLI --signed-offset, API allow_signed=True)"
UNSIGNED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
SIGNED_DTYPES = (np.dtype(np.int8), np.dtype(np.int16))


@dataclass(frozen=True)
class StackLayout:
    """The array a file held before its extra axes were folded into channels."""

    axes: str  # tifffile axis letters in file order, e.g. "ZYX" ("Q" = unlabelled)
    shape: tuple[int, ...]  # the file's array shape, in the same order


@dataclass(frozen=True)
class ImageData:
    """Pixels as the codec takes them, plus what is needed to interpret them."""

    pixels: np.ndarray  # uint8 or uint16 (int8/int16 with keep_signed), HxW or HxWxC
    bit_depth: int  # every sample is below 2**bit_depth (signed: within +-2**(bit_depth-1))
    offset: int = 0  # added to signed input to make it unsigned; subtract it after decoding
    signed: bool = False  # the file declares signed samples
    bit_depth_source: str = "dtype"  # e.g. "PNG sBIT", "TIFF BitsPerSample", "DICOM BitsStored"
    layout: StackLayout | None = None  # set when the file's axes were reordered/folded

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else self.pixels.shape[2]


def unfold_channels(pixels: np.ndarray, layout: StackLayout) -> np.ndarray:
    """Undo the folding of ``read_image``: HxWxC back to ``layout.shape`` in file axis order."""
    axes = layout.axes
    y_axis, x_axis = axes.index("Y"), axes.index("X")
    rest = [i for i in range(len(axes)) if i not in (y_axis, x_axis)]
    folded_shape = (layout.shape[y_axis], layout.shape[x_axis], *(layout.shape[i] for i in rest))
    if int(np.prod(folded_shape)) != pixels.size or pixels.shape[:2] != folded_shape[:2]:
        raise ValueError(
            f"pixels of shape {pixels.shape} do not match the {axes} layout of shape {layout.shape}"
        )
    order = (y_axis, x_axis, *rest)
    return np.ascontiguousarray(np.transpose(pixels.reshape(folded_shape), np.argsort(order)))


def fold_to_channels(pixels: np.ndarray, axes: str) -> tuple[np.ndarray, StackLayout | None]:
    """Reorder to Y, X, then every other axis in file order, folded into one channel axis.

    Returns the folded pixels and the layout needed to undo it (None when nothing moved).
    """
    if len(axes) != pixels.ndim or "Y" not in axes or "X" not in axes:
        # Unlabelled data: trailing S (samples) if present, else the last two axes are Y, X.
        axes = guess_axes(pixels)
    y_axis, x_axis = axes.index("Y"), axes.index("X")
    rest = [i for i in range(pixels.ndim) if i not in (y_axis, x_axis)]
    order = (y_axis, x_axis, *rest)
    layout = None
    if order != tuple(range(pixels.ndim)) or pixels.ndim > 3:
        layout = StackLayout(axes=axes, shape=tuple(int(n) for n in pixels.shape))
    pixels = np.transpose(pixels, order)
    height, width = pixels.shape[:2]
    channels = int(np.prod(pixels.shape[2:], dtype=np.int64))
    folded = pixels.reshape(height, width, channels)
    return np.ascontiguousarray(folded[:, :, 0] if channels == 1 else folded), layout


def guess_axes(pixels: np.ndarray) -> str:
    """Axis letters for unlabelled data: a trailing 3 or 4 is colour samples (S), then Y and X."""
    if pixels.ndim >= 3 and pixels.shape[-1] in (3, 4):
        return "Q" * (pixels.ndim - 3) + "YXS"
    return "Q" * (pixels.ndim - 2) + "YX"


def dtype_bits(pixels: np.ndarray) -> int:
    """The depth the sample type holds: 8 or 16 (what is stored when the file declares none)."""
    return 8 if pixels.dtype.itemsize == 1 else 16


def native_order(pixels: np.ndarray) -> np.ndarray:
    """Big-endian samples (">u2") as the same values in native byte order."""
    return pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))


def check_unsigned(pixels: np.ndarray, path: Path) -> np.ndarray:
    """Refuse sample types the codec cannot take, naming the file."""
    if pixels.dtype not in UNSIGNED_DTYPES:
        raise ValueError(f"{path} has {pixels.dtype} samples; the codec accepts {ACCEPTED_DTYPES}")
    return pixels


def to_codec_samples(pixels: np.ndarray, bits: int, signed_mode: str, path: Path) -> tuple[np.ndarray, int]:
    """Pixels for the codec and the offset added (see "Signed data" in :mod:`linf_tf.imageio`)."""
    if pixels.dtype in UNSIGNED_DTYPES:
        return pixels, 0
    if pixels.dtype not in SIGNED_DTYPES:
        raise ValueError(f"{path} has {pixels.dtype} samples; the codec accepts {ACCEPTED_DTYPES}")
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if int(pixels.min()) < low or int(pixels.max()) > high:
        raise ValueError(f"{path}: samples exceed the signed {bits}-bit range its header declares")
    if signed_mode == "keep":
        return pixels, 0
    unsigned = np.uint8 if pixels.dtype == np.int8 else np.uint16
    if signed_mode == "offset":
        offset = 1 << (bits - 1)
        return (pixels.astype(np.int32) + offset).astype(unsigned), offset
    if int(pixels.min()) < 0:
        raise ValueError(
            f"{path} has negative samples (signed {bits}-bit data, min {int(pixels.min())}); the codec is "
            "unsigned-only. Allow an offset of 2**(bits-1) (CLI: --signed-offset) to store it shifted"
        )
    return pixels.astype(unsigned), 0


def fitting_depth(pixels: np.ndarray, declared: int | None, source: str) -> tuple[int, str]:
    """The declared depth when it is below the dtype's and every sample fits in it."""
    default = dtype_bits(pixels)
    if declared is not None and 1 <= declared < default and int(pixels.max()) < (1 << declared):
        return declared, source
    return default, "dtype"
