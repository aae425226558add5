"""The runtime layer: restorers (LiteRT, Keras, SavedModel), tiling, the integer box and the model
registry (shipped models picked by channel count from nothing but their files). Tiny randomised
generators and crops of skimage.data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _tiny_models import TINY, TINY_RADIUS, gray_crop, rgb_crop, save_tiny_keras, tiny_generator

from linf_tf import codec
from linf_tf.runtime import guaranteed_bound, load_restorer, to_integer_box
from linf_tf.runtime.litert import TFLiteRestorer
from linf_tf.runtime.registry import load_shipped, pick_shipped_model, shipped_models
from linf_tf.runtime.tf_loaders import KerasRestorer, SavedModelRestorer, receptive_radius
from linf_tf.runtime.tiling import MIN_SPLIT_TILE, _window, restore_tiled, tile_shape


@pytest.fixture(scope="module")
def gray_model():
    return tiny_generator(1)


@pytest.fixture(scope="module")
def rgb_model():
    return tiny_generator(3, seed=1)


# --- restorers and tiling -----------------------------------------------------------------------


def test_receptive_radius_from_the_architecture(rgb_model) -> None:
    from linf_tf.learn.models import build_arcnn, build_generator, build_inference_model

    assert receptive_radius(rgb_model) == TINY_RADIUS
    assert receptive_radius(build_inference_model(rgb_model)) == TINY_RADIUS
    assert receptive_radius(build_generator(1, filters=4, num_res_units=3)) == 9
    assert receptive_radius(build_arcnn(1, filters=(4, 4, 4))) == 4 + 3 + 0 + 2


def test_tiled_restoration_equals_whole_image(rgb_model) -> None:
    restorer = KerasRestorer(rgb_model)
    image = rgb_crop()
    whole = restorer.restore(image, 40, 1.0, 8)
    tiled = restore_tiled(restorer, image, 40, 1.0, tile=24, overlap=restorer.receptive_radius)
    assert tiled.shape == image.shape
    assert np.abs(whole - image).max() > 1.0  # the network really changes the image
    np.testing.assert_allclose(tiled, whole, atol=1e-3)


def test_too_small_overlap_shows_seams(rgb_model) -> None:
    # The check above can fail: without enough context the tile borders differ.
    restorer = KerasRestorer(rgb_model)
    image = rgb_crop()
    whole = restorer.restore(image, 40, 1.0, 8)
    tiled = restore_tiled(restorer, image, 40, 1.0, tile=24, overlap=1)
    assert np.abs(tiled - whole).max() > 0.1


def test_one_channel_model_restores_each_channel_of_a_colour_image(gray_model) -> None:
    restorer = KerasRestorer(gray_model)
    image = rgb_crop()
    tiled = restore_tiled(restorer, image, 10, 0.5, tile=32, overlap=8)
    green = restorer.restore(image[..., 1:2], 10, 0.5, 8)
    np.testing.assert_allclose(tiled[..., 1:2], green, atol=1e-3)


def test_saved_model_restorer_matches_keras(tmp_path: Path, gray_model) -> None:
    # The exporter's SavedModel returns integer pixels, rounded into the integer box.
    from linf_tf.learn import serving

    module = serving.make_serving_module(gray_model, channels=1, input_dtype="uint8")
    path = serving.export_saved_model(module, tmp_path, "tiny", 1)
    restorer = load_restorer(path)
    assert isinstance(restorer, SavedModelRestorer) and restorer.channels == 1
    image = gray_crop()[..., None]
    got = restorer.restore(image, 12, 0.5, 8)
    expected = KerasRestorer(gray_model).restore(image, 12, 0.5, 8)
    assert np.abs(got - expected).max() > 0.0  # integer vs float outputs: not trivially the same array
    same = got == to_integer_box(expected, image, 12, 0.5, 255)
    assert same.mean() > 0.99 and np.abs(got - expected).max() <= 1.0  # only float ties may round apart


def test_tflite_restorer_matches_keras(tmp_path: Path, gray_model) -> None:
    from linf_tf.learn import tflite

    model = tflite.convert_tflite(gray_model, variant="float32", channels=1)
    (tmp_path / "tiny.tflite").write_bytes(model)
    restorer = load_restorer(tmp_path / "tiny.tflite")
    assert isinstance(restorer, TFLiteRestorer)
    keras_restorer = KerasRestorer(gray_model)
    image = gray_crop()[..., None]
    for tile in (image, image[:40, :24], image):  # a new tile size reallocates the interpreter
        np.testing.assert_allclose(
            restorer.restore(tile, 12, 0.5, 8), keras_restorer.restore(tile, 12, 0.5, 8), atol=1e-3
        )


def test_keras_weights_load_by_path(tmp_path: Path, gray_model) -> None:
    restorer = load_restorer(save_tiny_keras(gray_model, tmp_path))
    image = gray_crop()[..., None]
    np.testing.assert_allclose(
        restorer.restore(image, 9, 1.0, 8), KerasRestorer(gray_model).restore(image, 9, 1.0, 8)
    )


def test_model_paths_are_checked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_restorer(tmp_path / "missing.tflite")
    (tmp_path / "lonely.weights.h5").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="lonely.json"):
        load_restorer(tmp_path / "lonely.weights.h5")
    with pytest.raises(FileNotFoundError, match="no model is shipped"):
        load_shipped(3, tmp_path / "no_weights")


def skimage_camera() -> np.ndarray:
    import skimage.data

    return skimage.data.camera()


def test_tiling_windows_have_one_size_and_enough_context() -> None:
    for size, tile, overlap in ((1500, 512, 11), (2000, 512, 11), (40, 24, 5), (20, 24, 5), (537, 512, 11)):
        windows = [(_window(start, size, tile, overlap), start) for start in range(0, size, tile)]
        assert len({end - begin for (begin, end), _ in windows}) == 1
        for (begin, end), start in windows:
            stop = min(start + tile, size)
            assert begin == 0 or begin <= start - overlap
            assert end == size or end >= stop + overlap


def test_tiles_are_equal_parts_and_split_for_parallel_restorers() -> None:
    assert tile_shape(1500, 2000, 512) == (500, 500)  # 3 x 4 equal tiles, no thin remainder
    assert tile_shape(537, 512, 512) == (269, 512)
    assert tile_shape(512, 512, 512) == (512, 512)
    assert tile_shape(512, 512, 512, workers=2) == (256, 512)  # split along the longer side
    assert tile_shape(300, 600, 512, workers=4) == (150, 300)
    small = 2 * MIN_SPLIT_TILE - 1
    assert tile_shape(small, small, 512, workers=2) == (small, small)  # overlap would dominate


def test_parallel_litert_windows_equal_one_interpreter(tmp_path: Path, gray_model) -> None:
    from linf_tf.learn import tflite

    path = tmp_path / "tiny.tflite"
    path.write_bytes(tflite.convert_tflite(gray_model, variant="float32", channels=1))
    image = np.ascontiguousarray(skimage_camera()[100:400, 50:350])  # 300 x 300: two windows
    parallel = TFLiteRestorer(path, receptive_radius=TINY_RADIUS, workers=2)
    assert parallel.parallel_windows == 2
    tiled = restore_tiled(parallel, image, 10, 0.5, tile=512, overlap=TINY_RADIUS)
    assert parallel._created == 2  # both interpreters ran
    whole = TFLiteRestorer(path, num_threads=1).restore(image, 10, 0.5, 8)
    assert np.abs(whole - image).max() > 1.0
    np.testing.assert_allclose(tiled, whole, atol=1e-3)


def test_integer_box_holds_for_any_network_output() -> None:
    rng = np.random.default_rng(3)
    for dtype, max_value, tau in ((np.uint8, 255, 6), (np.uint16, 65535, 60)):
        decoded = rng.integers(0, max_value + 1, (32, 32), dtype=dtype)
        restored = decoded + rng.normal(0, 4 * tau, decoded.shape)
        restored.flat[:6] = [np.nan, np.inf, -np.inf, 1e30, -1e30, -5]
        result = to_integer_box(restored, decoded, tau, 0.5, max_value)
        assert result.dtype == decoded.dtype
        moved = np.abs(result.astype(np.int64) - decoded.astype(np.int64))
        assert moved.max() == tau // 2  # the box is full width, never wider
        inside = np.abs(restored - decoded) < tau // 2 - 0.5
        np.testing.assert_array_equal(result[inside], np.rint(restored[inside]))


def test_parse_model_specs() -> None:
    from linf_tf.evaluation import evaluate as evaluate_lib

    with pytest.raises(ValueError, match="NAME=PATH"):
        evaluate_lib.parse_model_specs("justapath")
    assert evaluate_lib.parse_model_specs("a=x.tflite, b=default") == {"a": "x.tflite", "b": "default"}


@pytest.fixture(scope="module")
def model_zoo(tmp_path_factory, gray_model) -> Path:
    """A weights folder like linf_tf/weights/: the shipped rgb model plus a gray one given only as
    files (no manifest): a LiteRT file and generator.json."""
    from linf_tf.learn import tflite
    from linf_tf.runtime import WEIGHTS_DIR

    zoo = tmp_path_factory.mktemp("weights")
    shutil.copytree(WEIGHTS_DIR / "rgb", zoo / "rgb")
    (zoo / "gray").mkdir()
    (zoo / "gray" / "linf_float32.tflite").write_bytes(
        tflite.convert_tflite(gray_model, variant="float32", channels=1)
    )
    (zoo / "gray" / "generator.json").write_text(json.dumps({"model": "linf_cnn", "channels": 1, **TINY}))
    return zoo


def test_registry_picks_the_model_by_channel_count(model_zoo: Path) -> None:
    models = shipped_models(model_zoo)
    assert sorted(models) == ["gray", "rgb"]
    assert models["gray"].channels == 1 and models["gray"].receptive_radius is None  # no manifest
    assert pick_shipped_model(3, model_zoo).name == "rgb"
    assert pick_shipped_model(1, model_zoo).name == "gray"
    assert pick_shipped_model(2, model_zoo).name == "gray"  # N channels: the gray model per channel
    assert pick_shipped_model(4, model_zoo).name == "gray"
    assert load_shipped(1, model_zoo).channels == 1
    only_rgb = model_zoo.parent / "only_rgb"
    shutil.copytree(model_zoo / "rgb", only_rgb / "rgb")
    assert pick_shipped_model(2, only_rgb).name == "rgb"  # no gray model: the available one


def test_gray_model_restores_a_two_channel_image_plane_by_plane(model_zoo: Path, gray_model) -> None:
    image = np.ascontiguousarray(np.stack([gray_crop(), gray_crop()[::-1]], axis=-1))
    decoded = codec.decode(codec.encode(image, 8))
    restorer = load_shipped(2, model_zoo)
    tiled = restore_tiled(restorer, decoded, 8, 0.5, tile=32, overlap=TINY_RADIUS)
    first = KerasRestorer(gray_model).restore(decoded[..., :1], 8, 0.5, 8)
    np.testing.assert_allclose(tiled[..., :1], first, atol=1e-3)
    result = to_integer_box(tiled, decoded, 8, 0.5, 255)
    assert np.abs(result.astype(int) - image.astype(int)).max() <= guaranteed_bound(8, 0.5)
