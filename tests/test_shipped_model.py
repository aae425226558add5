"""The model shipped in the package (linf_tf/weights/rgb/): small, loads offline as ``default``, improves
decoded images at the taus it was trained for, keeps the guarantee, and its LiteRT twins agree and
carry the documented ``restore`` signature."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import skimage.data

from linf_tf import codec
from linf_tf.runtime import WEIGHTS_DIR as ALL_WEIGHTS
from linf_tf.runtime import NetworkRestorer, guaranteed_bound, load_restorer
from linf_tf.runtime.litert import TFLiteRestorer, make_interpreter

WEIGHTS_DIR = ALL_WEIGHTS / "rgb"
MAX_SHIPPED_BYTES = 6 * 1024 * 1024  # "a few MB at most" for everything in linf_tf/weights/ (gray + RGB)
GRAY_DIR = ALL_WEIGHTS / "gray"
SHIPPED_FILES = {
    "generator.weights.h5", "generator.json", "linf_float32.tflite", "linf_float16.tflite", "manifest.json"
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """A held-out photo (never in the training folders): the astronaut's central 192x192."""
    return np.ascontiguousarray(skimage.data.astronaut()[160:352, 160:352])


def test_shipped_files_are_small_and_described() -> None:
    names = {path.name for path in WEIGHTS_DIR.iterdir()}
    assert SHIPPED_FILES <= names
    assert sum(path.stat().st_size for path in ALL_WEIGHTS.rglob("*") if path.is_file()) < MAX_SHIPPED_BYTES
    manifest = json.loads((WEIGHTS_DIR / "manifest.json").read_text())
    assert manifest["channels"] == 3 and manifest["signature"]["key"] == "restore"
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


def test_default_is_the_litert_model() -> None:
    restorer = NetworkRestorer("default").restorer_for(3)
    assert isinstance(restorer, TFLiteRestorer) and restorer.receptive_radius == 11


@pytest.mark.parametrize("name", ["linf_float16.tflite", "linf_float32.tflite"])
def test_shipped_tflite_has_the_documented_signature(name: str, crop: np.ndarray) -> None:
    interpreter = make_interpreter(WEIGHTS_DIR / name)
    assert interpreter.get_signature_list() == {
        "restore": {"inputs": ["decoded", "slack", "tau"], "outputs": ["restored"]}
    }
    runner = interpreter.get_signature_runner()  # the only signature is the default
    decoded = codec.decode(codec.encode(crop[:32, :40], 6)).astype(np.float32)[None] / 255
    out = runner(
        decoded=decoded, tau=np.array([6 / 255], np.float32), slack=np.array([0.5], np.float32)
    )["restored"]
    assert out.shape == decoded.shape and np.abs(out - decoded).max() <= 3 / 255 + 1e-6


@pytest.mark.parametrize("name", ["linf_float16.tflite", "linf_float32.tflite"])
def test_shipped_tflite_agrees_with_keras(crop: np.ndarray, name: str) -> None:
    keras_restorer = load_restorer(WEIGHTS_DIR / "generator.weights.h5")
    lite_restorer = load_restorer(WEIGHTS_DIR / name)
    decoded = codec.decode(codec.encode(crop, 10))
    a = keras_restorer.restore(decoded, 10, 1.0, 8).astype(int)
    b = lite_restorer.restore(decoded, 10, 1.0, 8).astype(int)
    assert np.abs(a - b).max() <= 2 and (np.abs(a - b) <= 1).mean() > 0.999


# --- the gray model (issue 13: the paper's protocol, most professional data is gray) -------------


@pytest.fixture(scope="module")
def gray_crop() -> np.ndarray:
    """A held-out gray photo (never in the training folders): camera's central 192x192."""
    return np.ascontiguousarray(skimage.data.camera()[160:352, 160:352])


def test_gray_model_is_shipped_and_described() -> None:
    assert SHIPPED_FILES <= {path.name for path in GRAY_DIR.iterdir()}
    manifest = json.loads((GRAY_DIR / "manifest.json").read_text())
    assert manifest["channels"] == 1 and manifest["signature"]["key"] == "restore"
    config = json.loads((GRAY_DIR / "generator.json").read_text())
    assert config["channels"] == 1 and config["architecture"] == "unshuffle"
    assert config["taus"] == [1, 2, 3, 4, 5, 6, 8, 10, 12, 14]


@pytest.mark.parametrize("tau", [6, 10, 14])
def test_default_picks_the_gray_model_for_gray_images(gray_crop: np.ndarray, tau: int) -> None:
    network = NetworkRestorer("default")
    assert network.restorer_for(1).receptive_radius == 15  # the gray model, not the RGB one (11)
    decoded = codec.decode(codec.encode(gray_crop, tau))
    restored = network.restore(decoded, tau, 0.5, 8)
    assert restored.shape == gray_crop.shape and restored.dtype == np.uint8
    assert np.abs(restored.astype(int) - gray_crop.astype(int)).max() <= guaranteed_bound(tau, 0.5)
    assert psnr(restored, gray_crop) > psnr(decoded, gray_crop) + 0.3


def test_gray_tflite_agrees_with_keras(gray_crop: np.ndarray) -> None:
    keras_restorer = load_restorer(GRAY_DIR / "generator.weights.h5")
    lite_restorer = load_restorer(GRAY_DIR / "linf_float16.tflite")
    decoded = codec.decode(codec.encode(gray_crop, 10))
    a = keras_restorer.restore(decoded, 10, 1.0, 8).astype(int)
    b = lite_restorer.restore(decoded, 10, 1.0, 8).astype(int)
    assert np.abs(a - b).max() <= 2 and (np.abs(a - b) <= 1).mean() > 0.999
