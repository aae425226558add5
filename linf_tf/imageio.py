"""Read and write the images the codec works on: uint8/uint16 arrays of shape HxW or HxWxC.

This module is the API (suffixes, ``read_image``, ``write_image``, ``list_images``); the per-format
code is in :mod:`linf_tf.image_formats`, the sample types and stack folding in
:mod:`linf_tf.image_samples`.

Readers
    * PNG, BMP, PGM/PPM/PNM: OpenCV (``IMREAD_UNCHANGED``), colour converted from BGR(A) to RGB(A).
      A gray+alpha PNG keeps its 2 channels (OpenCV expands it to BGRA; the gray is taken back).
    * TIFF: tifffile, first series only.
    * DICOM: pydicom (recognised by its ``DICM`` preamble, whatever the file name).
    Empty, truncated or otherwise undecodable files raise ``ValueError`` naming the file, whatever
    the library underneath raised. Big-endian samples are byteswapped to native order.

Bit depth (the ``bit_depth`` stored in the ``.nlc`` header, which bounds the sample values);
``ImageData.bit_depth_source`` says where it came from
    * uint8 data: 8; 1-bit TIFF (bool): 1, stored as 0/1 in uint8.
    * TIFF: the ``BitsPerSample`` tag (e.g. 12 for a packed 12-bit TIFF), or ``MaxSampleValue``
      (4095 -> 12 bits), else the dtype's 8/16.
    * PGM/PPM: the header's maxval (maxval 4095 -> 12 bits).
    * PNG: the sBIT chunk when every sample fits in that many bits, else 16 for uint16. (sBIT
      strictly declares the significant bits of samples scaled up to the full range; such scaled
      data exceeds sBIT bits and is read as 16-bit.) ``write_image(..., bit_depth=12)`` writes
      sBIT for unscaled 12-bit samples, so a decoded 12-bit image keeps its depth.
    * DICOM: ``BitsStored``.
    A declared depth is used only when every sample fits in it; otherwise the dtype's depth.

Stacks: every axis other than Y and X (TIFF z-stacks, time series, channels; DICOM frames) is
folded into the channel axis, in file order, so a ZCYX TIFF of Z=45, C=2 becomes HxWx90 with
channel index ``z * 2 + c``, and a ZYX stack of shape (17, 88, 89) becomes (88, 89, 17). The codec
bounds every sample independently, so the error guarantee holds for each plane.
``ImageData.layout`` records the file's axes and shape; ``unfold_channels`` (in
:mod:`linf_tf.image_samples`; ``write_image`` to a TIFF with ``layout=`` uses it) puts the samples
back in that order.

Signed data (CT in Hounsfield-like stored values, signed TIFFs): the file declares it (DICOM
PixelRepresentation 1, TIFF SampleFormat INT), and ``ImageData.signed`` says so. The decision of
what to do depends on that declaration only, never on whether a negative sample occurs:
    * ``allow_signed=True``: every declared-signed file is shifted by ``offset = 2**(bits - 1)``
      (offset binary: an exact, order-preserving shift, so the error bound is unchanged); subtract
      ``ImageData.offset`` from decoded samples to get the stored signed values back.
    * ``keep_signed=True``: the signed samples are returned as they are (int8/int16), for a codec
      that stores signed data natively.
    * default: a declared-signed file whose samples are all >= 0 is read value for value as
      unsigned (nothing is shifted); one with negative samples is refused with a ``ValueError``.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path

import numpy as np

from linf_tf.image_formats import is_dicom, read_dicom, read_tiff, read_with_opencv, write_png, write_tiff
from linf_tf.image_samples import (
    SIGNED_DTYPES,
    UNSIGNED_DTYPES,
    ImageData,
    StackLayout,
    dtype_bits,
    native_order,
)

OPENCV_SUFFIXES = frozenset({".png", ".bmp", ".pgm", ".ppm", ".pnm"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
READ_SUFFIXES = OPENCV_SUFFIXES | TIFF_SUFFIXES | DICOM_SUFFIXES
WRITE_SUFFIXES = frozenset({".png"}) | TIFF_SUFFIXES


def is_supported_image(path: str | Path) -> bool:
    """Whether ``read_image`` handles this file (by suffix, or by DICOM preamble)."""
    path = Path(path)
    return path.is_file() and (path.suffix.lower() in READ_SUFFIXES or is_dicom(path))


def list_images(
    location: str | Path, accept: Callable[[Path], bool] = is_supported_image, limit: int | None = None
) -> list[Path]:
    """Sorted files of a directory (not recursive) or matching a glob pattern that ``accept`` takes
    (default: the images ``read_image`` handles); at most ``limit``. Empty when nothing matches."""
    location = Path(location)
    candidates = location.iterdir() if location.is_dir() else map(Path, glob.glob(str(location)))
    paths = sorted(p for p in candidates if p.is_file() and accept(p))
    return paths[:limit] if limit else paths


def read_image(path: str | Path, *, allow_signed: bool = False, keep_signed: bool = False) -> ImageData:
    """Read one image file as unsigned HxW or HxWxC pixels and its bit depth.

    ``allow_signed`` / ``keep_signed``: what to do with declared-signed data (module docstring).
    Raises FileNotFoundError when ``path`` does not exist and ValueError for unsupported
    formats, dtypes or undecodable content.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes)")
    signed_mode = "keep" if keep_signed else "offset" if allow_signed else "unsigned"
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES or is_dicom(path):
        return read_dicom(path, signed_mode)
    if suffix in TIFF_SUFFIXES:
        return read_tiff(path, signed_mode)
    if suffix in OPENCV_SUFFIXES:
        return read_with_opencv(path)
    raise ValueError(
        f"{path}: unsupported image format {suffix or '(no suffix)'!r}; "
        f"supported: {', '.join(sorted(READ_SUFFIXES))}"
    )


def write_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    bit_depth: int | None = None,
    layout: StackLayout | None = None,
) -> None:
    """Write HxW or HxWxC ``pixels`` losslessly as PNG or TIFF (chosen by suffix).

    uint8/uint16 go to either format; int8/int16 (signed) only to TIFF. ``bit_depth`` below the
    dtype's 8/16 bits is recorded (PNG sBIT, TIFF MaxSampleValue) so ``read_image`` gets it back.
    ``layout`` (TIFF only) writes the samples in the file order they were read in.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        accepted = ", ".join(sorted(WRITE_SUFFIXES))
        raise ValueError(f"cannot write {suffix or '(no suffix)'!r} ({path}); use one of: {accepted}")
    pixels = _check_writable(pixels)
    declared = _declared_depth(pixels, bit_depth)
    if suffix == ".png":
        if layout is not None:
            raise ValueError(
                f"cannot write {path}: the image is a {layout.axes} stack of shape {layout.shape}; "
                "PNG cannot keep its axes, write a .tif instead"
            )
        if pixels.dtype in SIGNED_DTYPES:
            raise ValueError(f"cannot write {path}: PNG cannot hold signed ({pixels.dtype}) samples; "
                             "write a .tif instead")
        write_png(path, pixels, declared)
    else:
        write_tiff(path, pixels, declared, layout)


def _check_writable(pixels: np.ndarray) -> np.ndarray:
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy.ndarray, got {type(pixels).__name__}")
    pixels = native_order(pixels)
    if pixels.dtype not in UNSIGNED_DTYPES + SIGNED_DTYPES:
        accepted = "uint8 or uint16 (int8/int16 as TIFF)"
        raise ValueError(f"cannot write {pixels.dtype} pixels; accepted: {accepted}")
    if pixels.ndim not in (2, 3) or 0 in pixels.shape:
        raise ValueError(f"pixels must be a non-empty HxW or HxWxC array, got shape {pixels.shape}")
    return pixels


def _declared_depth(pixels: np.ndarray, bit_depth: int | None) -> int | None:
    """The depth worth recording: below the dtype's bits, and holding every sample."""
    if bit_depth is None or pixels.dtype in SIGNED_DTYPES or not 1 <= bit_depth < dtype_bits(pixels):
        return None
    peak = int(pixels.max())
    if peak >= 1 << bit_depth:
        raise ValueError(f"sample value {peak} does not fit in bit_depth {bit_depth}")
    return bit_depth
