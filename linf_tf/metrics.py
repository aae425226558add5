"""Image-quality measures of the paper's tables (§5): PSNR, SSIM, the l-inf error and the bit rate.

All functions take the original ``x`` and a reconstruction ``x_hat`` as arrays of the same shape,
HxW (gray) or HxWxC (colour), integer or float, in pixel units (0..max_value, e.g. 255 for 8-bit
and 4095 for 12-bit data). Nothing is rescaled: ``max_value`` is the peak of the pixel range.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity


def _as_float_pair(original: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays in float64, after checking their shapes agree.

    float64 because uint8/uint16 differences would wrap around, and float32 loses precision in the
    sums of squared errors of large 16-bit images.
    """
    original = np.asarray(original)
    restored = np.asarray(restored)
    if original.shape != restored.shape:
        raise ValueError(f"shapes differ: original {original.shape}, restored {restored.shape}")
    if original.ndim not in (2, 3):
        raise ValueError(f"images must be HxW or HxWxC, got shape {original.shape}")
    return original.astype(np.float64), restored.astype(np.float64)


def psnr(original: np.ndarray, restored: np.ndarray, max_value: float) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels; ``inf`` for identical images."""
    x, x_hat = _as_float_pair(original, restored)
    mse = float(np.mean((x - x_hat) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(float(max_value) ** 2 / mse)


def ssim(original: np.ndarray, restored: np.ndarray, max_value: float) -> float:
    """Mean structural similarity (skimage, Wang et al. 2004 defaults: 7x7 uniform window).

    Colour images are compared channel by channel and averaged (``channel_axis=-1``), as skimage
    does; ``data_range`` is the pixel range so 8- and 16-bit images get the right constants.
    """
    x, x_hat = _as_float_pair(original, restored)
    channel_axis = -1 if x.ndim == 3 else None
    return float(structural_similarity(x, x_hat, data_range=float(max_value), channel_axis=channel_axis))


def linf_error(original: np.ndarray, restored: np.ndarray) -> float:
    """max |x_hat - x| over every pixel and channel: what the codec's ``tau`` bounds."""
    x, x_hat = _as_float_pair(original, restored)
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
