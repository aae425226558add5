"""Image reading and writing: lossless round trips, channel order, bit depths, stacks, DICOM, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import tifffile
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, generate_uid

from linf_tf.imageio import ImageData, is_supported_image, read_image, write_image


def _random_image(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


ROUND_TRIP_CASES = [
    ((17, 23), np.uint8),
    ((17, 23), np.uint16),
    ((17, 23, 3), np.uint8),
    ((17, 23, 3), np.uint16),
    ((17, 23, 4), np.uint8),
]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize(("shape", "dtype"), ROUND_TRIP_CASES)
def test_round_trip_is_bit_exact(tmp_path: Path, suffix: str, shape: tuple[int, ...], dtype: type) -> None:
    pixels = _random_image(shape, dtype)
    path = tmp_path / f"image{suffix}"
    write_image(path, pixels)
    image = read_image(path)
    assert image.pixels.dtype == dtype
    assert image.pixels.shape == shape
    np.testing.assert_array_equal(image.pixels, pixels)
    assert image.bit_depth == (8 if dtype == np.uint8 else 16)
    assert image.offset == 0


def test_png_is_written_in_bgr_order_on_disk(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30  # R, G, B
    path = tmp_path / "rgb.png"
    write_image(path, rgb)
    on_disk = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # OpenCV's own reader returns BGR
    assert on_disk[0, 0].tolist() == [30, 20, 10]


def test_png_written_by_opencv_is_read_as_rgba(tmp_path: Path) -> None:
    bgra = np.zeros((3, 3, 4), np.uint16)
    bgra[..., 0], bgra[..., 1], bgra[..., 2], bgra[..., 3] = 1000, 2000, 3000, 4000
    path = tmp_path / "bgra.png"
    assert cv2.imwrite(str(path), bgra)
    assert read_image(path).pixels[1, 1].tolist() == [3000, 2000, 1000, 4000]


def test_tiff_rgb_is_not_reordered(tmp_path: Path) -> None:
    rgb = _random_image((6, 7, 3), np.uint8, seed=3)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, photometric="rgb")
    np.testing.assert_array_equal(read_image(path).pixels, rgb)


def test_tiff_bits_per_sample_sets_bit_depth(tmp_path: Path) -> None:
    pixels = _random_image((9, 11), np.uint16) % 4096
    path = tmp_path / "twelve.tif"
    tifffile.imwrite(path, pixels, bitspersample=12)
    image = read_image(path)
    assert image.bit_depth == 12
    np.testing.assert_array_equal(image.pixels, pixels)


def test_bilevel_tiff_reads_as_one_bit(tmp_path: Path) -> None:
    mask = _random_image((8, 8), np.uint8) > 127
    path = tmp_path / "mask.tif"
    tifffile.imwrite(path, mask)
    image = read_image(path)
    assert (image.bit_depth, image.pixels.dtype) == (1, np.uint8)
    np.testing.assert_array_equal(image.pixels, mask.astype(np.uint8))


def test_pgm_maxval_sets_bit_depth(tmp_path: Path) -> None:
    pixels = _random_image((5, 6), np.uint16) % 4096
    path = tmp_path / "twelve.pgm"
    path.write_bytes(b"P5\n# a comment\n6 5\n4095\n" + pixels.astype(">u2").tobytes())
    image = read_image(path)
    assert image.bit_depth == 12
    np.testing.assert_array_equal(image.pixels, pixels)


def test_zcyx_stack_is_folded_into_channels(tmp_path: Path) -> None:
    depth, channels, height, width = 3, 2, 5, 4
    stack = _random_image((depth, channels, height, width), np.uint16, seed=7)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZCYX"})
    image = read_image(path)
    assert image.pixels.shape == (height, width, depth * channels)
    for z in range(depth):
        for c in range(channels):
            np.testing.assert_array_equal(image.pixels[:, :, z * channels + c], stack[z, c])


def test_two_channel_tiff_round_trip(tmp_path: Path) -> None:
    pixels = _random_image((6, 5, 2), np.uint16, seed=2)
    path = tmp_path / "two.tif"
    write_image(path, pixels)
    np.testing.assert_array_equal(read_image(path).pixels, pixels)


def test_png_cannot_hold_two_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tif"):
        write_image(tmp_path / "two.png", _random_image((4, 4, 2), np.uint8))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_image(missing)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int16])
def test_write_rejects_other_dtypes(tmp_path: Path, dtype: type) -> None:
    with pytest.raises(ValueError, match="uint8 or uint16"):
        write_image(tmp_path / "bad.png", np.zeros((4, 4), dtype))


def test_read_rejects_float_tiff(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="float32.*uint8 or uint16"):
        read_image(path)


def test_signed_tiff_needs_allow_signed_and_gets_an_offset(tmp_path: Path) -> None:
    signed = np.array([[-1000, 0], [5, 32767]], np.int16)
    path = tmp_path / "signed.tif"
    tifffile.imwrite(path, signed)
    with pytest.raises(ValueError, match="negative"):
        read_image(path)
    image = read_image(path, allow_signed=True)
    assert (image.offset, image.pixels.dtype) == (32768, np.uint16)
    np.testing.assert_array_equal(image.pixels.astype(np.int32) - image.offset, signed)


def test_signed_tiff_without_negatives_is_read_as_is(tmp_path: Path) -> None:
    path = tmp_path / "positive.tif"
    tifffile.imwrite(path, np.array([[0, 7], [300, 4]], np.int16))
    image = read_image(path)
    assert (image.offset, image.pixels.dtype, image.pixels.max()) == (0, np.uint16, 300)


def test_unsupported_suffixes(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    assert not is_supported_image(text)
    with pytest.raises(ValueError, match="unsupported image format '.txt'"):
        read_image(text)
    with pytest.raises(ValueError, match="cannot write '.jpg'"):
        write_image(tmp_path / "lossy.jpg", np.zeros((4, 4), np.uint8))


def test_corrupt_files_are_value_errors(tmp_path: Path) -> None:
    png = tmp_path / "broken.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(ValueError, match="cannot decode"):
        read_image(png)
    tiff = tmp_path / "broken.tif"
    tiff.write_bytes(b"this is not a TIFF file")
    with pytest.raises(ValueError, match="cannot read TIFF"):
        read_image(tiff)


# --- DICOM ---------------------------------------------------------------------------------------


def _write_dicom(
    path: Path,
    pixels: np.ndarray,
    bits_stored: int,
    syntax: str = ExplicitVRLittleEndian,
    pixel_data: bytes | None = None,
) -> None:
    """A minimal single-sample DICOM file; pixels is HxW, or FxHxW for a multi-frame file."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # secondary capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    dataset = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = meta.MediaStorageSOPClassUID
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Rows, dataset.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        dataset.NumberOfFrames = pixels.shape[0]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    dataset.PixelData = pixel_data if pixel_data is not None else pixels.tobytes()
    if pixel_data is not None:
        dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)


def test_dicom_uses_bits_stored(tmp_path: Path) -> None:
    pixels = _random_image((6, 7), np.uint16) % 4096
    path = tmp_path / "mr.dcm"
    _write_dicom(path, pixels, bits_stored=12)
    image = read_image(path)
    assert image.bit_depth == 12
    np.testing.assert_array_equal(image.pixels, pixels)


def test_multi_frame_dicom_frames_become_channels(tmp_path: Path) -> None:
    frames = _random_image((3, 5, 6), np.uint16, seed=4) % 1024
    path = tmp_path / "cine.dcm"
    _write_dicom(path, frames, bits_stored=10)
    image = read_image(path)
    assert image.pixels.shape == (5, 6, 3) and image.bit_depth == 10
    for frame in range(3):
        np.testing.assert_array_equal(image.pixels[:, :, frame], frames[frame])


def test_dicom_without_suffix_is_recognised(tmp_path: Path) -> None:
    pixels = _random_image((4, 4), np.uint16) % 1024
    path = tmp_path / "IM0001"
    _write_dicom(path, pixels, bits_stored=10)
    assert is_supported_image(path)
    assert read_image(path).bit_depth == 10


def test_signed_dicom_with_negatives(tmp_path: Path) -> None:
    hounsfield = np.array([[-2048, -1], [0, 2047]], np.int16)  # the signed 12-bit range
    path = tmp_path / "ct.dcm"
    _write_dicom(path, hounsfield, bits_stored=12)
    with pytest.raises(ValueError, match="negative samples.*--signed-offset"):
        read_image(path)
    image = read_image(path, allow_signed=True)
    assert isinstance(image, ImageData)
    assert (image.offset, image.bit_depth) == (2048, 12)
    assert int(image.pixels.max()) < 1 << 12
    np.testing.assert_array_equal(image.pixels.astype(np.int32) - 2048, hounsfield)


def test_undecodable_dicom_names_what_to_install(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate
    from pydicom.pixels import get_decoder

    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS plugin for pydicom is installed, so the file would decode")
    import imagecodecs

    pixels = _random_image((8, 8), np.uint16) % 4096
    path = tmp_path / "jpegls.dcm"
    frame = imagecodecs.jpegls_encode(pixels)
    _write_dicom(path, pixels, bits_stored=12, syntax=JPEGLSLossless, pixel_data=encapsulate([frame]))
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == JPEGLSLossless
    with pytest.raises(ValueError, match="JPEG-LS.*install one of.*pylibjpeg"):
        read_image(path)
