"""Image-quality measures of the paper's tables (§5): PSNR, SSIM, the l-inf error and the bit rate.

All functions take the original ``x`` and a reconstruction ``x_hat`` as arrays of the same shape,
HxW (gray) or HxWxC (colour), integer or float, in pixel units (0..max_value, e.g. 255 for 8-bit
and 4095 for 12-bit data). Nothing is rescaled: ``max_value`` is the peak of the pixel range.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from linf_tf.pixels import as_float_pair, psnr  # noqa: F401  (psnr: re-exported)


def ssim(original: np.ndarray, restored: np.ndarray, max_value: float) -> float:
    """Mean structural similarity (skimage, Wang et al. 2004 defaults: 7x7 uniform window).

    Colour images are compared channel by channel and averaged (``channel_axis=-1``), as skimage
    does; ``data_range`` is the pixel range so 8- and 16-bit images get the right constants.
    """
    x, x_hat = as_float_pair(original, restored)
    channel_axis = -1 if x.ndim == 3 else None
    return float(structural_similarity(x, x_hat, data_range=float(max_value), channel_axis=channel_axis))


def linf_error(original: np.ndarray, restored: np.ndarray) -> float:
    """max |x_hat - x| over every pixel and channel: what the codec's ``tau`` bounds."""
    x, x_hat = as_float_pair(original, restored)
    return float(np.max(np.abs(x_hat - x)))


def bits_per_sample(num_bytes: int, image: np.ndarray) -> float:
    """Compressed size in bits per sample (per pixel and channel) of ``image``.

    Per *sample* rather than per pixel so that gray and colour images are on the same scale
    (8 bits per sample = uncompressed 8-bit data, whatever the channel count).
    """
    samples = int(np.asarray(image).size)
    if samples == 0:
        raise ValueError("image has no samples")
    return 8.0 * num_bytes / samples


def patch_linf_errors(original: np.ndarray, restored: np.ndarray, patch: int = 64) -> np.ndarray:
    """max |x_hat - x| of every whole ``patch`` x ``patch`` block (row-major grid from the top-left,
    border remainders dropped): the l-inf error as a patch-based evaluation would see it."""
    if patch < 1:
        raise ValueError(f"patch must be >= 1, got {patch}")
    x, x_hat = as_float_pair(original, restored)
    error = np.abs(x_hat - x)
    error = error.max(axis=-1) if error.ndim == 3 else error
    rows, columns = error.shape[0] // patch, error.shape[1] // patch
    if rows == 0 or columns == 0:
        raise ValueError(f"image {error.shape[:2]} is smaller than one {patch}x{patch} patch")
    blocks = error[: rows * patch, : columns * patch].reshape(rows, patch, columns, patch)
    return blocks.max(axis=(1, 3)).ravel()
