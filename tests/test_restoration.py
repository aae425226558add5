"""The network restoration path: the (1 + kappa) * tau guarantee through `linf decompress --restore`
and `linf restore`, tiling, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from linf_tf import codec
from linf_tf.cli import main
from linf_tf.imageio import read_image, write_image
from linf_tf.runtime import NetworkRestorer, guaranteed_bound

TAU = 6


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained generator whose last conv is randomised, so it really moves pixels."""
    from linf_tf.learn.models import build_generator

    model = build_generator(3, filters=4, num_res_units=1)
    last = [layer for layer in model.layers if layer.weights][-1]
    rng = np.random.default_rng(0)
    last.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in last.get_weights()])
    folder = tmp_path_factory.mktemp("model")
    model.save_weights(folder / "net.weights.h5")
    config = {"channels": 3, "filters": 4, "num_res_units": 1, "tau_conditioning": True}
    (folder / "net.json").write_text(json.dumps(config))
    return folder / "net.weights.h5"


@pytest.fixture(scope="module")
def original() -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[100:164, 180:260])


def max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


@pytest.mark.parametrize("slack", [0.25, 0.5, 1.0])
def test_restoration_stays_in_the_box_and_changes_pixels(model_path, original, slack) -> None:
    decoded = codec.decode(codec.encode(original, TAU))
    restored = NetworkRestorer(model_path, tile=32).restore(decoded, TAU, slack, 8)
    assert restored.dtype == decoded.dtype and restored.shape == decoded.shape
    assert max_error(restored, decoded) <= int(slack * TAU)
    assert max_error(restored, original) <= guaranteed_bound(TAU, slack)
    assert (restored != decoded).mean() > 0.05  # the network did something


def test_tiling_matches_whole_image(model_path, original) -> None:
    decoded = codec.decode(codec.encode(original, TAU))
    whole = NetworkRestorer(model_path, tile=512).restore(decoded, TAU, 1.0, 8)
    tiled = NetworkRestorer(model_path, tile=16).restore(decoded, TAU, 1.0, 8)
    assert max_error(whole, tiled) <= 1  # float rounding can flip a .5 at most


@pytest.mark.parametrize(("tau", "slack"), [(0, 0.5), (TAU, 0.0), (1, 0.5)])
def test_no_room_in_the_box_returns_the_decoded_image(model_path, original, tau, slack) -> None:
    decoded = codec.decode(codec.encode(original, tau))
    np.testing.assert_array_equal(NetworkRestorer(model_path).restore(decoded, tau, slack, 8), decoded)


def test_bad_arguments(model_path, original) -> None:
    restorer = NetworkRestorer(model_path)
    with pytest.raises(ValueError, match="slack must be between 0 and 1"):
        restorer.restore(original, TAU, 1.5, 8)
    with pytest.raises(ValueError, match="tau must be >= 0"):
        restorer.restore(original, -1, 0.5, 8)
    with pytest.raises(ValueError, match="tile"):
        NetworkRestorer(model_path, tile=4)


def test_cli_decompress_restore_prints_and_keeps_the_bound(model_path, original, tmp_path, capsys) -> None:
    write_image(tmp_path / "in.png", original)
    assert main(["compress", str(tmp_path / "in.png"), "-t", str(TAU), "-o", str(tmp_path / "s.nlc")]) == 0
    command = ["decompress", str(tmp_path / "s.nlc"), "-o", str(tmp_path / "r.png"), "--restore",
               "--model", str(model_path), "--slack", "0.5"]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "guaranteed max error: 9 after restoration" in out
    restored = read_image(tmp_path / "r.png").pixels
    assert max_error(restored, original) <= 9
    plain = codec.decode((tmp_path / "s.nlc").read_bytes())
    assert not np.array_equal(restored, plain)

    # `linf restore` on the plainly decoded image gives the same result
    write_image(tmp_path / "d.png", plain)
    assert main(["restore", str(tmp_path / "d.png"), "-t", str(TAU), "-o", str(tmp_path / "r2.png"),
                 "--model", str(model_path)]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "r2.png").pixels, restored)


def test_cli_restore_errors(model_path, original, tmp_path, capsys) -> None:
    write_image(tmp_path / "d.png", original)
    base = ["restore", str(tmp_path / "d.png"), "-t", "4", "-o", str(tmp_path / "r.png")]
    assert main([*base, "--model", str(model_path), "--slack", "2"]) == 2
    assert "slack must be between 0 and 1" in capsys.readouterr().err
    assert main([*base, "--model", str(tmp_path / "missing.tflite")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--model", "default", "--force"]) == 0  # the model shipped in the package
    assert max_error(read_image(tmp_path / "r.png").pixels, original) <= guaranteed_bound(4, 0.5)



def test_colour_model_restores_other_channel_counts_plane_by_plane(model_path, original) -> None:
    """No shipped model for 2 channels: each plane goes through the 3-channel model as gray RGB."""
    two_channel = np.ascontiguousarray(original[..., :2])
    decoded = codec.decode(codec.encode(two_channel, TAU))
    restored = NetworkRestorer(model_path).restore(decoded, TAU, 0.5, 8)
    assert restored.shape == two_channel.shape
    assert max_error(restored, two_channel) <= guaranteed_bound(TAU, 0.5) and (restored != decoded).any()


def test_colour_model_restores_a_gray_image_within_the_bound(model_path, original, tmp_path) -> None:
    gray = np.ascontiguousarray(original[..., 0])
    decoded = codec.decode(codec.encode(gray, TAU))
    restored = NetworkRestorer(model_path).restore(decoded, TAU, 0.5, 8)
    assert restored.shape == gray.shape
    assert max_error(restored, decoded) <= 3 and max_error(restored, gray) <= guaranteed_bound(TAU, 0.5)
    assert (restored != decoded).any()
