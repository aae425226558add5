"""Real codec output for the export: int8 calibration patches and the images the exported models are
checked on, all from images bundled with scikit-image (no download).

Calibration and the parity report use 8-bit skimage images. For 12/16-bit deployments pass
``representative_patches`` from that data (float in [0, 1], tau / max_value) to
:func:`linf_tf.learn.tflite.convert_tflite`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import skimage.data

from linf_tf import codec
from linf_tf.pixels import LUMA_WEIGHTS

# Calibration and parity images: bundled with scikit-image (no download). Calibration uses images the
# trainer trains on; the parity report uses its held-out validation images (chelsea, camera).
CALIBRATION_IMAGES: tuple[str, ...] = ("astronaut", "coffee", "rocket", "immunohistochemistry", "moon")
PARITY_IMAGES: tuple[str, ...] = ("chelsea", "camera")
CALIBRATION_TAUS: tuple[int, ...] = (1, 2, 4, 8)


def sample_image(name: str, channels: int) -> np.ndarray:
    """A uint8 H x W x ``channels`` image from ``skimage.data`` (RGB <-> gray converted as needed)."""
    pixels = getattr(skimage.data, name)()
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    if pixels.ndim == 3 and channels == 1:
        pixels = np.clip(np.rint(pixels @ LUMA_WEIGHTS), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], channels, axis=2)
    return np.ascontiguousarray(pixels)


def codec_round_trip(image: np.ndarray, tau: int) -> np.ndarray:
    """Encode and decode with the real codec; the result is H x W x C like ``image``."""
    decoded = codec.decode(codec.encode(image if image.shape[2] > 1 else image[..., 0], int(tau)))
    return decoded.reshape(image.shape)


def calibration_patches(
    channels: int,
    *,
    patch_size: int = 64,
    patches_per_image: int = 8,
    taus: Sequence[int] = CALIBRATION_TAUS,
    names: Sequence[str] = CALIBRATION_IMAGES,
    seed: int = 0,
) -> list[tuple[np.ndarray, float]]:
    """Real decoded patches for int8 calibration: (float32 patch in [0, 1], tau / 255) pairs.

    Each image goes through the codec at every tau, so the activation ranges seen during
    calibration are those of genuine codec artifacts at all the rates the model serves.
    """
    rng = np.random.default_rng(seed)
    patches = []
    for name in names:
        image = sample_image(name, channels)
        for tau in taus:
            for _ in range(patches_per_image):
                # Encode the patch itself, not the whole image: same kind of artifacts, ~10x faster.
                top = rng.integers(0, image.shape[0] - patch_size + 1)
                left = rng.integers(0, image.shape[1] - patch_size + 1)
                crop = np.ascontiguousarray(image[top : top + patch_size, left : left + patch_size])
                patches.append((codec_round_trip(crop, tau).astype(np.float32) / 255.0, tau / 255.0))
    return patches
