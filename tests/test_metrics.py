"""PSNR/SSIM against skimage.metrics directly; l-inf error and bit rate by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from linf_tf.evaluation import metrics


def _noisy(image: np.ndarray, amplitude: int, max_value: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-amplitude, amplitude + 1, size=image.shape)
    return np.clip(image.astype(np.int64) + noise, 0, max_value).astype(image.dtype)


IMAGES = {
    "gray8": (data.camera()[100:164, 200:264], 255),
    "rgb8": (data.astronaut()[:64, 100:180], 255),
    "gray16": (data.camera()[100:164, 200:264].astype(np.uint16) * 257, 65535),
    "rgb12": (data.astronaut()[:64, 100:180].astype(np.uint16) * 16, 4095),
}


@pytest.mark.parametrize("name", IMAGES)
def test_psnr_matches_skimage(name: str) -> None:
    image, max_value = IMAGES[name]
    restored = _noisy(image, 9, max_value)
    expected = peak_signal_noise_ratio(image, restored, data_range=max_value)
    assert metrics.psnr(image, restored, max_value) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", IMAGES)
def test_ssim_matches_skimage(name: str) -> None:
    image, max_value = IMAGES[name]
    restored = _noisy(image, 9 * max_value // 255, max_value)
    channel_axis = -1 if image.ndim == 3 else None
    expected = structural_similarity(
        image.astype(np.float64), restored.astype(np.float64), data_range=max_value, channel_axis=channel_axis
    )
    got = metrics.ssim(image, restored, max_value)
    assert got == pytest.approx(expected, rel=1e-12)
    assert 0.0 < got < 1.0


def test_ssim_of_identical_images_is_one_and_psnr_is_inf() -> None:
    image, max_value = IMAGES["rgb8"]
    assert metrics.ssim(image, image, max_value) == pytest.approx(1.0)
    assert metrics.psnr(image, image, max_value) == math.inf


def test_ssim_depends_on_data_range() -> None:
    # The same 8-bit-sized error must look much smaller against a 16-bit range.
    image, _ = IMAGES["gray16"]
    restored = _noisy(image, 2000, 65535)
    assert metrics.ssim(image, restored, 65535) > metrics.ssim(image, restored, 4095)


def test_linf_error_is_max_over_pixels_and_channels_without_wraparound() -> None:
    image = np.zeros((8, 9, 3), np.uint8)
    restored = image.copy()
    restored[3, 4, 2] = 7
    restored[5, 1, 0] = 3
    assert metrics.linf_error(image, restored) == 7.0
    assert metrics.linf_error(restored, image) == 7.0  # uint8 0 - 7 must not wrap to 249


def test_linf_error_of_float_restoration() -> None:
    image = np.full((4, 4), 100, np.uint16)
    restored = image.astype(np.float64)
    restored[2, 2] = 97.5
    assert metrics.linf_error(image, restored) == 2.5


def test_bits_per_sample_counts_channels() -> None:
    assert metrics.bits_per_sample(300, np.zeros((10, 20), np.uint8)) == pytest.approx(12.0)
    assert metrics.bits_per_sample(300, np.zeros((10, 20, 3), np.uint8)) == pytest.approx(4.0)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((4, 4)), np.zeros((4, 5)), 255)


def test_patch_linf_errors_are_block_maxima() -> None:
    from linf_tf.evaluation.metrics import patch_linf_errors

    original = np.zeros((70, 130), np.uint8)  # 1 x 2 whole 64-blocks; the remainders are dropped
    restored = original.copy()
    restored[5, 5], restored[10, 100], restored[68, 128] = 3, 7, 200
    np.testing.assert_array_equal(patch_linf_errors(original, restored, 64), [3, 7])
    colour = np.repeat(restored[..., None], 3, axis=-1)
    colour[0, 70, 2] = 9  # the worst channel counts
    np.testing.assert_array_equal(patch_linf_errors(np.zeros_like(colour), colour, 64), [3, 9])
    with pytest.raises(ValueError, match="smaller than one"):
        patch_linf_errors(original, restored, 128)
