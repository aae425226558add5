"""Training image sources (linf_tf.learn.sources): file lists, the bundled and DIV2K sets, the sample
dtype probe, and the channel conversion applied while loading."""

from __future__ import annotations

import zipfile

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from linf_tf.image_samples import ImageData
from linf_tf.imageio import read_image, write_image
from linf_tf.learn import sources
from linf_tf.pixels import convert_channels


def rgb_crop(height: int = 128, width: int = 160) -> np.ndarray:
    return np.ascontiguousarray(skimage.data.astronaut()[100 : 100 + height, 150 : 150 + width])


def gray_crop(height: int = 96, width: int = 128) -> np.ndarray:
    return np.ascontiguousarray(skimage.data.camera()[200 : 200 + height, 200 : 200 + width])


def test_list_image_files_filters_and_sorts(tmp_path):
    for name in ("b.png", "a.tif", "c.BMP", "d.tiff", "notes.txt", "e.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    names = [path.name for path in sources.list_image_files(tmp_path)]
    assert names == ["a.tif", "b.png", "c.BMP", "d.tiff"]
    assert [p.name for p in sources.list_image_files(str(tmp_path / "*.png"))] == ["b.png"]


def test_list_image_files_empty_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no images")
    with pytest.raises(FileNotFoundError, match="no training images"):
        sources.list_image_files(tmp_path)
    with pytest.raises(FileNotFoundError, match="no training images"):
        sources.list_image_files(str(tmp_path / "missing" / "*.png"))


def test_skimage_sample_images_mix_gray_and_rgb():
    images = sources.skimage_sample_images()
    assert len(images) >= 5
    assert all(image.pixels.dtype == np.uint8 and image.bit_depth == 8 for image in images)
    assert {image.channels for image in images} == {1, 3}


def test_div2k_source_missing_manual_dir_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sources.div2k_source(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="DIV2K_train_HR.zip"):
        sources.div2k_source(tmp_path)


def test_convert_channels():
    rgb = rgb_crop(8, 8)
    gray = gray_crop(8, 8)
    np.testing.assert_array_equal(convert_channels(gray, 3), np.repeat(gray[:, :, None], 3, axis=2))
    luma = np.rint(rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.uint8)
    np.testing.assert_array_equal(convert_channels(rgb, 1)[:, :, 0], luma)
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(convert_channels(rgba, 3), rgb)
    assert convert_channels(rgb.astype(np.uint16) * 16, 1).dtype == np.uint16
    with pytest.raises(ValueError, match="5 channels"):
        convert_channels(np.zeros((4, 4, 5), np.uint8), 3)
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        convert_channels(rgb, 2)


def test_sample_dtype_is_uint8_only_when_every_image_is_known_8_bit(tmp_path):
    rgb, twelve_bit = rgb_crop(8, 8), ImageData(pixels=gray_crop(8, 8).astype(np.uint16) * 16, bit_depth=12)
    assert sources.sample_dtype([rgb, ImageData(pixels=rgb, bit_depth=8)]) == tf.uint8
    assert sources.sample_dtype([rgb, twelve_bit]) == tf.uint16
    assert sources.sample_dtype([rgb.astype(np.uint16)]) == tf.uint16
    assert sources.sample_dtype(tf.data.Dataset.from_tensors(rgb)) == tf.uint8
    assert sources.sample_dtype(tf.data.Dataset.from_tensors(rgb.astype(np.uint16))) == tf.uint16
    files = {  # name: (pixels, dtype the probe must find)
        "8.png": (rgb, tf.uint8),
        "16.png": (rgb.astype(np.uint16) * 257, tf.uint16),
        "8.tif": (rgb, tf.uint8),
        "16.tif": (rgb.astype(np.uint16), tf.uint16),
        "8.bmp": (rgb, tf.uint8),
    }
    for name, (pixels, dtype) in files.items():
        if name.endswith(".bmp"):
            cv2.imwrite(str(tmp_path / name), pixels)
        else:
            write_image(tmp_path / name, pixels)
        assert sources.sample_dtype([tmp_path / name]) == dtype, name
        assert (read_image(tmp_path / name).bit_depth <= 8) == (dtype == tf.uint8)  # the probe agrees
    (tmp_path / "odd.png").write_bytes(b"not a png")
    assert sources.sample_dtype([tmp_path / "odd.png", tmp_path / "8.png"]) == tf.uint16  # unknown: safe


# --- slow ----------------------------------------------------------------------------------------


def write_fake_div2k_zips(directory) -> None:
    """The four zips the div2k builder reads, with the real layout but two tiny images."""
    layout = {
        "DIV2K_train_HR.zip": ("DIV2K_train_HR", {"0001.png": (96, 128)}),
        "DIV2K_valid_HR.zip": ("DIV2K_valid_HR", {"0801.png": (80, 100)}),
        "DIV2K_train_LR_bicubic_X2.zip": ("DIV2K_train_LR_bicubic/X2", {"0001x2.png": (48, 64)}),
        "DIV2K_valid_LR_bicubic_X2.zip": ("DIV2K_valid_LR_bicubic/X2", {"0801x2.png": (40, 50)}),
    }
    for zip_name, (folder, images) in layout.items():
        with zipfile.ZipFile(directory / zip_name, "w") as archive:
            for name, (height, width) in images.items():
                encoded = cv2.imencode(".png", rgb_crop(height, width))[1].tobytes()
                archive.writestr(f"{folder}/{name}", encoded)


@pytest.mark.slow
def test_div2k_source_reads_manual_zips_offline(tmp_path):
    """tfds finds the zips in manual_dir without any network access and checks them; fake zips
    (right names and layout, wrong content) must be rejected by that checksum check."""
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    write_fake_div2k_zips(manual_dir)
    try:
        sources.div2k_source(manual_dir, split="train", data_dir=tmp_path / "tfds")
    except ModuleNotFoundError as exc:
        pytest.skip(f"tensorflow-datasets is incomplete in this environment: {exc}")
    except Exception as exc:  # tfds's NonMatchingChecksumError; its module path is not public API
        assert "wrong checksum" in str(exc) and str(manual_dir) in str(exc)
    else:
        pytest.fail("fake DIV2K zips were accepted")
