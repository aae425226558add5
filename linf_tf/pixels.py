"""Pixel arithmetic every layer shares (NumPy only): the peak value of a bit depth, BT.601 luma
weights and PSNR. One implementation each; the codec, runtime, learn and evaluation layers import
them from here."""

from __future__ import annotations

import math

import numpy as np

# ITU-R BT.601 luma weights, the convention of OpenCV's and PIL's RGB -> gray conversion.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


def max_value_for(bit_depth: int) -> int:
    """Largest sample value at ``bit_depth`` bits: the peak for PSNR and the network's 1.0."""
    return (1 << int(bit_depth)) - 1


def as_float_pair(original: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    x, x_hat = as_float_pair(original, restored)
    mse = float(np.mean((x - x_hat) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(float(max_value) ** 2 / mse)


def convert_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Return ``pixels`` as HxWx``channels`` (1 or 3), same dtype.

    * gray -> RGB: the gray plane repeated three times;
    * RGB -> gray: BT.601 luma (0.299 R + 0.587 G + 0.114 B), rounded to the nearest integer;
    * an alpha plane (gray+alpha, RGBA) is dropped first.
    Other channel counts (stacks, multispectral data) raise ValueError.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    planes = pixels[:, :, np.newaxis] if pixels.ndim == 2 else pixels
    if planes.shape[2] in (2, 4):  # drop alpha: it is not part of the picture to restore
        planes = planes[:, :, : planes.shape[2] - 1]
    if planes.shape[2] not in (1, 3):
        raise ValueError(f"cannot convert {planes.shape[2]} channels to {channels}; expected gray or RGB")
    if planes.shape[2] == channels:
        return np.ascontiguousarray(planes)
    if channels == 3:
        return np.repeat(planes, 3, axis=2)
    luma = np.rint(planes.astype(np.float64) @ LUMA_WEIGHTS)
    return luma.astype(pixels.dtype)[:, :, np.newaxis]
