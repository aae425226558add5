"""The model shipped in the package (linf_tf/weights/): small, loads offline as ``default``, improves
decoded images at the taus it was trained for, keeps the guarantee, and its TFLite twin agrees."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import skimage.data

from linf_tf import codec, evaluate_lib
from linf_tf.restoration import NetworkRestorer, guaranteed_bound

WEIGHTS_DIR = evaluate_lib.DEFAULT_WEIGHTS_DIR
MAX_SHIPPED_BYTES = 4 * 1024 * 1024  # "a few MB at most" for everything in linf_tf/weights/


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """A held-out photo (never in the training folders): the astronaut's central 192x192."""
    return np.ascontiguousarray(skimage.data.astronaut()[160:352, 160:352])


def test_shipped_files_are_small_and_described() -> None:
    files = sorted(WEIGHTS_DIR.iterdir())
    names = {path.name for path in files}
    assert {"generator.weights.h5", "generator.json"} <= names
    assert sum(path.stat().st_size for path in files) < MAX_SHIPPED_BYTES
    config = json.loads((WEIGHTS_DIR / "generator.json").read_text())
    assert config["channels"] == 3 and config["tau_conditioning"] is True
    assert config["taus"] == [1, 2, 3, 4, 5, 6, 8, 10, 12, 14]


@pytest.mark.parametrize("tau", [3, 6, 10, 14])  # trained on taus 1..14
def test_default_model_improves_decoded_images_within_the_bound(crop: np.ndarray, tau: int) -> None:
    decoded = codec.decode(codec.encode(crop, tau))
    restored = NetworkRestorer("default").restore(decoded, tau, 0.5, 8)  # the CLI's integer path
    assert restored.dtype == np.uint8
    assert np.abs(restored.astype(int) - crop.astype(int)).max() <= guaranteed_bound(tau, 0.5)
    assert np.abs(restored.astype(int) - decoded.astype(int)).max() <= tau // 2
    assert psnr(restored, crop) > psnr(decoded, crop) + 0.3


def test_shipped_tflite_float16_agrees_with_keras(crop: np.ndarray) -> None:
    keras_restorer = evaluate_lib.load_restorer(WEIGHTS_DIR / "generator.weights.h5")
    lite_restorer = evaluate_lib.load_restorer(WEIGHTS_DIR / "linf_float16.tflite")
    decoded = codec.decode(codec.encode(crop, 10))
    a = keras_restorer.restore(decoded, 10, 1.0, 8).astype(int)
    b = lite_restorer.restore(decoded, 10, 1.0, 8).astype(int)
    assert np.abs(a - b).max() <= 2 and (np.abs(a - b) <= 1).mean() > 0.999
