"""Read and write the images the codec works on: uint8/uint16 arrays of shape HxW or HxWxC.

Readers
    * PNG, BMP, PGM/PPM/PNM: OpenCV (``IMREAD_UNCHANGED``), colour converted from BGR(A) to RGB(A).
    * TIFF: tifffile, first series only.
    * DICOM: pydicom (recognised by its ``DICM`` preamble, whatever the file name).

Bit depth (the ``bit_depth`` stored in the ``.nlc`` header, which bounds the sample values)
    * uint8 data: 8; 1-bit TIFF (bool): 1, stored as 0/1 in uint8.
    * TIFF: the ``BitsPerSample`` tag (e.g. 12 for a packed 12-bit TIFF), else the dtype's 8/16.
    * PGM/PPM: the header's maxval (maxval 4095 -> 12 bits).
    * PNG: 16 for uint16. PNG's sBIT chunk is deliberately ignored: it declares *significant*
      bits of samples that are scaled up to the full 16-bit range, so the values do not fit in
      sBIT bits. Pass an explicit bit depth to the codec (``linf compress --bit-depth 12``) when
      the data is known to be 12-bit.
    * DICOM: ``BitsStored``.

Stacks: every axis other than Y and X (TIFF z-stacks, time series, channels; DICOM frames) is
folded into the channel axis, in file order, so a ZCYX TIFF of Z=45, C=2 becomes HxWx90 with
channel index ``z * 2 + c``. The codec bounds every sample independently, so the error guarantee
holds for each plane. A written TIFF keeps the samples but not the original axis labels.

Signed data (CT in Hounsfield-like stored values, signed TIFFs): the codec is unsigned-only.
Signed data without negative values is read as is. Negative data is rejected unless
``allow_signed=True``, which adds ``offset = 2**(bits - 1)`` (offset binary: an exact,
order-preserving shift, so the error bound is unchanged); subtract ``ImageData.offset`` from
decoded samples to get the stored signed values back. The ``.nlc`` header does not record it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

OPENCV_SUFFIXES = frozenset({".png", ".bmp", ".pgm", ".ppm", ".pnm"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
READ_SUFFIXES = OPENCV_SUFFIXES | TIFF_SUFFIXES | DICOM_SUFFIXES
WRITE_SUFFIXES = frozenset({".png"}) | TIFF_SUFFIXES

ACCEPTED_DTYPES = "uint8 or uint16 (signed integers only via allow_signed=True for reading)"


@dataclass(frozen=True)
class ImageData:
    """Pixels as the codec takes them, plus what is needed to interpret them."""

    pixels: np.ndarray  # uint8 or uint16, HxW or HxWxC
    bit_depth: int  # every sample is below 2**bit_depth
    offset: int = 0  # added to signed input to make it unsigned; subtract it after decoding

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else self.pixels.shape[2]


def is_supported_image(path: str | Path) -> bool:
    """Whether ``read_image`` handles this file (by suffix, or by DICOM preamble)."""
    path = Path(path)
    return path.is_file() and (path.suffix.lower() in READ_SUFFIXES or _is_dicom(path))


def read_image(path: str | Path, *, allow_signed: bool = False) -> ImageData:
    """Read one image file as unsigned HxW or HxWxC pixels and its bit depth.

    Raises FileNotFoundError when ``path`` does not exist and ValueError for unsupported
    formats, dtypes or undecodable content.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES or _is_dicom(path):
        return _read_dicom(path, allow_signed)
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path, allow_signed)
    if suffix in OPENCV_SUFFIXES:
        return _read_with_opencv(path)
    raise ValueError(
        f"unsupported image format {suffix or '(no suffix)'!r} for {path}; "
        f"supported: {', '.join(sorted(READ_SUFFIXES))}"
    )


def write_image(path: str | Path, pixels: np.ndarray) -> None:
    """Write uint8/uint16 HxW or HxWxC ``pixels`` losslessly as PNG or TIFF (chosen by suffix)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        accepted = ", ".join(sorted(WRITE_SUFFIXES))
        raise ValueError(f"cannot write {suffix or '(no suffix)'!r} ({path}); use one of: {accepted}")
    _check_writable(pixels)
    if suffix == ".png":
        _write_png(path, pixels)
    else:
        _write_tiff(path, pixels)


# --- reading -----------------------------------------------------------------------------------


def _is_dicom(path: Path) -> bool:
    # Part-10 DICOM files carry a 128-byte preamble followed by "DICM"; many have no suffix.
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _read_with_opencv(path: Path) -> ImageData:
    # imdecode on bytes instead of imread: imread fails silently on some non-ASCII paths.
    encoded = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    pixels = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError(f"cannot decode {path}: not a valid {path.suffix.lower()} image")
    pixels = _check_unsigned(pixels, path)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    bit_depth = _dtype_bits(pixels)
    if path.suffix.lower() in {".pgm", ".ppm", ".pnm"}:
        bit_depth = _pnm_bit_depth(path, pixels, bit_depth)
    return ImageData(pixels=np.ascontiguousarray(pixels), bit_depth=bit_depth)


def _pnm_bit_depth(path: Path, pixels: np.ndarray, default: int) -> int:
    """Depth from a binary PNM header's maxval (P5/P6), e.g. maxval 4095 -> 12 bits."""
    header = path.read_bytes()[:512]
    without_comments = re.sub(rb"#[^\n]*\n", b" ", header)
    tokens = without_comments.split()
    if len(tokens) < 4 or tokens[0] not in (b"P5", b"P6") or not tokens[3].isdigit():
        return default
    depth = int(tokens[3]).bit_length()
    return depth if 1 <= depth <= default and int(pixels.max()) < (1 << depth) else default


def _read_tiff(path: Path, allow_signed: bool) -> ImageData:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            pixels = series.asarray()
            axes = series.axes
            tag_bits = tif.pages[0].bitspersample
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise ValueError(f"cannot read TIFF {path}: {exc}") from None
    if pixels.dtype == np.bool_:
        return ImageData(pixels=_fold_to_channels(pixels.astype(np.uint8), axes), bit_depth=1)
    pixels, offset = _to_unsigned(pixels, pixels.dtype.itemsize * 8, allow_signed, path)
    pixels = _fold_to_channels(pixels, axes)
    bit_depth = _dtype_bits(pixels)
    if offset == 0 and isinstance(tag_bits, int) and 1 <= tag_bits < bit_depth:
        if int(pixels.max()) < (1 << tag_bits):
            bit_depth = tag_bits
    return ImageData(pixels=pixels, bit_depth=bit_depth, offset=offset)


def _fold_to_channels(pixels: np.ndarray, axes: str) -> np.ndarray:
    """Reorder to Y, X, then every other axis in file order, folded into one channel axis."""
    if len(axes) != pixels.ndim or "Y" not in axes or "X" not in axes:
        # Unlabelled data: trailing S (samples) if present, else the last two axes are Y, X.
        axes = _guess_axes(pixels)
    y_axis, x_axis = axes.index("Y"), axes.index("X")
    rest = [i for i in range(pixels.ndim) if i not in (y_axis, x_axis)]
    pixels = np.transpose(pixels, (y_axis, x_axis, *rest))
    height, width = pixels.shape[:2]
    channels = int(np.prod(pixels.shape[2:], dtype=np.int64))
    folded = pixels.reshape(height, width, channels)
    return np.ascontiguousarray(folded[:, :, 0] if channels == 1 else folded)


def _guess_axes(pixels: np.ndarray) -> str:
    if pixels.ndim >= 3 and pixels.shape[-1] in (3, 4):
        return "Q" * (pixels.ndim - 3) + "YXS"
    return "Q" * (pixels.ndim - 2) + "YX"


def _read_dicom(path: Path, allow_signed: bool) -> ImageData:
    import pydicom  # imported lazily: slow to import and only needed for DICOM input
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError) as exc:
        raise ValueError(f"cannot read DICOM {path}: {exc}") from None
    if "PixelData" not in dataset:
        raise ValueError(f"DICOM file {path} has no pixel data (PixelData element missing)")
    pixels = _dicom_pixels(dataset, path)
    bits_stored = int(dataset.get("BitsStored", pixels.dtype.itemsize * 8))
    pixels, offset = _to_unsigned(pixels, bits_stored, allow_signed, path)
    pixels = _fold_to_channels(pixels, _dicom_axes(dataset, pixels))
    # pydicom masks unused high bits, so samples fit in BitsStored; guard against odd headers anyway.
    bit_depth = max(bits_stored, int(pixels.max()).bit_length())
    return ImageData(pixels=pixels, bit_depth=bit_depth, offset=offset)


def _dicom_pixels(dataset: object, path: Path) -> np.ndarray:
    from pydicom.pixels import get_decoder, pixel_array

    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        # raw=True: the stored samples exactly, without YCbCr->RGB conversion (which rounds).
        return pixel_array(dataset, raw=True)
    except (RuntimeError, NotImplementedError, ValueError) as exc:
        try:
            missing = get_decoder(syntax).missing_dependencies
        except (NotImplementedError, ValueError):
            missing = []
        hint = ""
        if missing:
            example = "`pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg`"
            hint = f"; install one of: {'; '.join(missing)} (e.g. {example})"
        reason = str(exc).splitlines()[0]
        raise ValueError(
            f"cannot decode the pixel data of {path} (transfer syntax {syntax.name}): {reason}{hint}"
        ) from None


def _dicom_axes(dataset: object, pixels: np.ndarray) -> str:
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    axes = "YX"
    if frames > 1:
        axes = "Z" + axes
    if samples > 1:
        axes = axes + "S"
    return axes if len(axes) == pixels.ndim else _guess_axes(pixels)


# --- dtype handling ----------------------------------------------------------------------------


def _dtype_bits(pixels: np.ndarray) -> int:
    return 8 if pixels.dtype == np.uint8 else 16


def _check_unsigned(pixels: np.ndarray, path: Path) -> np.ndarray:
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path} has {pixels.dtype} samples; the codec accepts {ACCEPTED_DTYPES}")
    return pixels


def _to_unsigned(pixels: np.ndarray, bits: int, allow_signed: bool, path: Path) -> tuple[np.ndarray, int]:
    """Return unsigned pixels and the offset added (0 unless signed data had negative values)."""
    if pixels.dtype in (np.uint8, np.uint16):
        return pixels, 0
    if pixels.dtype not in (np.int8, np.int16):
        raise ValueError(f"{path} has {pixels.dtype} samples; the codec accepts {ACCEPTED_DTYPES}")
    unsigned = np.uint8 if pixels.dtype == np.int8 else np.uint16
    if int(pixels.min()) >= 0:
        return pixels.astype(unsigned), 0
    if not allow_signed:
        raise ValueError(
            f"{path} has negative samples (signed {bits}-bit data, min {int(pixels.min())}); the codec is "
            "unsigned-only. Allow an offset of 2**(bits-1) (CLI: --signed-offset) to store it shifted"
        )
    offset = 1 << (bits - 1)
    shifted = pixels.astype(np.int32) + offset
    if int(shifted.min()) < 0 or int(shifted.max()) >= (1 << bits):
        raise ValueError(f"{path}: samples exceed the signed {bits}-bit range its header declares")
    return shifted.astype(unsigned), offset


# --- writing -----------------------------------------------------------------------------------


def _check_writable(pixels: np.ndarray) -> None:
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy.ndarray, got {type(pixels).__name__}")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"cannot write {pixels.dtype} pixels; accepted: uint8 or uint16")
    if pixels.ndim not in (2, 3) or 0 in pixels.shape:
        raise ValueError(f"pixels must be a non-empty HxW or HxWxC array, got shape {pixels.shape}")


def _write_png(path: Path, pixels: np.ndarray) -> None:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in (1, 3, 4):
        raise ValueError(f"PNG holds 1, 3 or 4 channels, got {channels}; write a .tif instead")
    if channels == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif channels == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise ValueError(f"OpenCV could not encode {path} as PNG")
    path.write_bytes(encoded.tobytes())


def _write_tiff(path: Path, pixels: np.ndarray) -> None:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    photometric = "rgb" if channels in (3, 4) else "minisblack"
    # contig: keep HxWxC as one interleaved page rather than C separate pages.
    planar = "contig" if channels > 1 else None
    extra = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
    tifffile.imwrite(
        path, pixels, photometric=photometric, planarconfig=planar, compression="zlib", **extra
    )
