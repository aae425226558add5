"""The reference codecs beside ours: JPEG 2000 and WebP matched to the codec's rate (bisection), and
JPEG-LS near-lossless at the same tau."""

from __future__ import annotations

import math
from collections.abc import Callable

import imagecodecs
import numpy as np

from linf_tf.evaluation.records import (  # noqa: F401
    JPEGLS_MAX_NEAR,
    MAX_BISECTION_STEPS,
    RATE_TOLERANCE,
    WEBP_METHODS,
    RateMatch,
)
from linf_tf.runtime.box import max_value_for
from linf_tf.runtime.tiling import as_hwc

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
    if image.dtype != np.uint8 or as_hwc(image).shape[-1] not in (1, 3):
        return None
    gray = image.ndim == 2 or image.shape[-1] == 1
    rgb = np.repeat(as_hwc(image), 3, axis=-1) if gray else image
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
