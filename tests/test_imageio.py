"""Image reading and writing: lossless round trips, channel order, bit depths, stacks, DICOM, errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import tifffile
from _dicom import write_dicom
from pydicom.uid import JPEGLSLossless

from linf_tf.image_samples import ImageData, unfold_channels
from linf_tf.imageio import is_supported_image, read_image, write_image


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


def test_png_cannot_hold_five_channels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tif"):
        write_image(tmp_path / "five.png", _random_image((4, 4, 5), np.uint8))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.png"
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        read_image(missing)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint32])
def test_write_rejects_other_dtypes(tmp_path: Path, dtype: type) -> None:
    with pytest.raises(ValueError, match="uint8 or uint16"):
        write_image(tmp_path / "bad.png", np.zeros((4, 4), dtype))


def test_signed_samples_are_written_as_tiff_only(tmp_path: Path) -> None:
    signed = np.array([[-2048, -1], [0, 2047]], np.int16)
    with pytest.raises(ValueError, match="PNG cannot hold signed.*tif"):
        write_image(tmp_path / "ct.png", signed)
    write_image(tmp_path / "ct.tif", signed)
    image = read_image(tmp_path / "ct.tif", keep_signed=True)
    assert image.signed and image.pixels.dtype == np.int16
    np.testing.assert_array_equal(image.pixels, signed)


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
    assert (image.offset, image.pixels.dtype, image.pixels.max(), image.signed) == (0, np.uint16, 300, True)


def test_allow_signed_shifts_every_declared_signed_file(tmp_path: Path) -> None:
    """The offset depends on the declaration (SampleFormat, PixelRepresentation), not on the values."""
    positive = np.array([[0, 7], [300, 4]], np.int16)  # signed type, no negative sample (like CT_small)
    tiff, dicom = tmp_path / "positive.tif", tmp_path / "positive.dcm"
    tifffile.imwrite(tiff, positive)
    write_dicom(dicom, positive, bits_stored=12)
    for path, offset in ((tiff, 32768), (dicom, 2048)):
        image = read_image(path, allow_signed=True)
        assert (image.signed, image.offset, image.pixels.dtype) == (True, offset, np.uint16)
        np.testing.assert_array_equal(image.pixels.astype(np.int32) - offset, positive)
        kept = read_image(path, keep_signed=True)
        assert (kept.offset, kept.pixels.dtype) == (0, np.int16)
        np.testing.assert_array_equal(kept.pixels, positive)
    unsigned = tmp_path / "unsigned.tif"
    tifffile.imwrite(unsigned, positive.astype(np.uint16))
    assert read_image(unsigned, allow_signed=True).offset == 0  # unsigned files are never shifted


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


def test_dicom_uses_bits_stored(tmp_path: Path) -> None:
    pixels = _random_image((6, 7), np.uint16) % 4096
    path = tmp_path / "mr.dcm"
    write_dicom(path, pixels, bits_stored=12)
    image = read_image(path)
    assert image.bit_depth == 12
    np.testing.assert_array_equal(image.pixels, pixels)


def test_multi_frame_dicom_frames_become_channels(tmp_path: Path) -> None:
    frames = _random_image((3, 5, 6), np.uint16, seed=4) % 1024
    path = tmp_path / "cine.dcm"
    write_dicom(path, frames, bits_stored=10)
    image = read_image(path)
    assert image.pixels.shape == (5, 6, 3) and image.bit_depth == 10
    for frame in range(3):
        np.testing.assert_array_equal(image.pixels[:, :, frame], frames[frame])


def test_dicom_without_suffix_is_recognised(tmp_path: Path) -> None:
    pixels = _random_image((4, 4), np.uint16) % 1024
    path = tmp_path / "IM0001"
    write_dicom(path, pixels, bits_stored=10)
    assert is_supported_image(path)
    assert read_image(path).bit_depth == 10


def test_signed_dicom_with_negatives(tmp_path: Path) -> None:
    hounsfield = np.array([[-2048, -1], [0, 2047]], np.int16)  # the signed 12-bit range
    path = tmp_path / "ct.dcm"
    write_dicom(path, hounsfield, bits_stored=12)
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
    write_dicom(path, pixels, bits_stored=12, syntax=JPEGLSLossless, pixel_data=encapsulate([frame]))
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == JPEGLSLossless
    with pytest.raises(ValueError, match="JPEG-LS.*install one of.*pylibjpeg"):
        read_image(path)


# --- hardening (issue 15) ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif", ".dcm", ".pgm", ".bmp"])
def test_empty_file_is_a_clear_value_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.*is empty"):
        read_image(path)


def test_truncated_files_are_value_errors(tmp_path: Path) -> None:
    pixels = _random_image((64, 64), np.uint16)
    for suffix in (".png", ".tif"):
        whole = tmp_path / f"whole{suffix}"
        write_image(whole, pixels)
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
        with pytest.raises(ValueError, match="cut"):
            read_image(cut)
    dicom = tmp_path / "whole.dcm"
    write_dicom(dicom, pixels % 4096, bits_stored=12)
    (tmp_path / "cut.dcm").write_bytes(dicom.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.dcm"):
        read_image(tmp_path / "cut.dcm")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_alpha_png_keeps_two_channels(tmp_path: Path, dtype: type) -> None:
    gray_alpha = _random_image((9, 7, 2), dtype, seed=5)
    path = tmp_path / "la.png"
    write_image(path, gray_alpha)
    # A real gray+alpha PNG: OpenCV's own reader expands it to 4 channels.
    assert cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED).shape == (9, 7, 4)
    image = read_image(path)
    assert image.pixels.shape == (9, 7, 2) and image.pixels.dtype == dtype
    np.testing.assert_array_equal(image.pixels, gray_alpha)


def test_png_sbit_round_trips_the_bit_depth(tmp_path: Path) -> None:
    twelve = _random_image((6, 5, 3), np.uint16) % 4096
    path = tmp_path / "twelve.png"
    write_image(path, twelve, bit_depth=12)
    image = read_image(path)
    assert (image.bit_depth, image.bit_depth_source) == (12, "PNG sBIT")
    np.testing.assert_array_equal(image.pixels, twelve)
    # sBIT as the PNG spec means it (samples scaled to the full range) does not fit: 16 bits.
    scaled = tmp_path / "scaled.png"
    write_image(scaled, twelve * 16 + 15)
    scaled.write_bytes(_insert_sbit(scaled.read_bytes(), 12, 3))
    assert read_image(scaled).bit_depth == 16
    with pytest.raises(ValueError, match="does not fit in bit_depth 10"):
        write_image(tmp_path / "x.png", twelve, bit_depth=10)


def _insert_sbit(png: bytes, bits: int, channels: int) -> bytes:
    import struct
    import zlib

    payload = bytes([bits] * channels)
    chunk = struct.pack(">I", channels) + b"sBIT" + payload + struct.pack(">I", zlib.crc32(b"sBIT" + payload))
    return png[:33] + chunk + png[33:]


def test_tiff_max_sample_value_round_trips_the_bit_depth(tmp_path: Path) -> None:
    ten = _random_image((6, 5), np.uint16) % 1024
    path = tmp_path / "ten.tif"
    write_image(path, ten, bit_depth=10)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags.valueof(281) == 1023
    assert read_image(path).bit_depth == 10


@pytest.mark.parametrize(
    ("axes", "shape"),
    [("ZYX", (17, 88, 89)), ("ZCYX", (3, 2, 5, 4)), ("CYX", (2, 5, 6)), ("TZYXS", (2, 3, 4, 5, 3))],
)
def test_stack_layout_is_recorded_and_reversible(tmp_path: Path, axes: str, shape: tuple[int, ...]) -> None:
    stack = _random_image(shape, np.uint16, seed=9)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, metadata={"axes": axes}, photometric="minisblack")
    image = read_image(path)
    planes = int(np.prod(shape)) // (shape[axes.index("Y")] * shape[axes.index("X")])
    assert image.pixels.shape == (shape[axes.index("Y")], shape[axes.index("X")], planes)
    assert image.layout is not None and image.layout.shape == shape
    np.testing.assert_array_equal(unfold_channels(image.pixels, image.layout), stack)
    written = tmp_path / "back.tif"
    write_image(written, image.pixels, layout=image.layout)
    with tifffile.TiffFile(written) as tif:
        assert (tif.series[0].axes, tif.series[0].shape) == (axes, shape)
        np.testing.assert_array_equal(tif.asarray(), stack)
    with pytest.raises(ValueError, match="PNG cannot keep its axes"):
        write_image(tmp_path / "back.png", image.pixels, layout=image.layout)


@pytest.mark.parametrize(("planar", "samples"), [("separate", 3), ("separate", 4), ("contig", 3)])
def test_colour_stacks_stay_rgb(tmp_path: Path, planar: str, samples: int) -> None:
    shape = (2, samples, 6, 5) if planar == "separate" else (2, 6, 5, samples)
    stack = _random_image(shape, np.uint8, seed=1)
    extra = {"extrasamples": ["unassalpha"]} if samples == 4 else {}
    tifffile.imwrite(tmp_path / "rgb.tif", stack, photometric="rgb", planarconfig=planar, **extra)
    image = read_image(tmp_path / "rgb.tif")
    write_image(tmp_path / "back.tif", image.pixels, layout=image.layout)
    with tifffile.TiffFile(tmp_path / "back.tif") as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
        np.testing.assert_array_equal(tif.asarray(), stack)


def test_plain_images_have_no_layout(tmp_path: Path) -> None:
    for shape in ((5, 6), (5, 6, 3), (5, 6, 2)):
        write_image(tmp_path / "plain.tif", _random_image(shape, np.uint16))
        assert read_image(tmp_path / "plain.tif").layout is None


def test_big_endian_samples_are_byteswapped(tmp_path: Path) -> None:
    native = _random_image((7, 8), np.uint16, seed=11)
    big = native.astype(">u2")
    path = tmp_path / "be.tif"
    write_image(path, big)  # an array in big-endian order is written as the same values
    np.testing.assert_array_equal(read_image(path).pixels, native)
    tifffile.imwrite(tmp_path / "be_file.tif", native, byteorder=">")  # a big-endian TIFF file
    image = read_image(tmp_path / "be_file.tif")
    assert image.pixels.dtype == np.uint16 and image.pixels.dtype.isnative
    np.testing.assert_array_equal(image.pixels, native)
    write_image(tmp_path / "be.png", big)
    np.testing.assert_array_equal(read_image(tmp_path / "be.png").pixels, native)
