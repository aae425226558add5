"""Read and write the images the codec works on: uint8/uint16 arrays of shape HxW or HxWxC.

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
``ImageData.layout`` records the file's axes and shape; ``unfold_channels`` (and ``write_image``
to a TIFF with ``layout=``) puts the samples back in that order.

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
import re
import struct
import zlib
from collections.abc import Callable
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
PNG_CHANNELS = (1, 2, 3, 4)  # gray, gray+alpha, RGB, RGBA

ACCEPTED_DTYPES = "uint8 or uint16 (int8/int16 as signed data: CLI --signed-offset, API allow_signed=True)"
UNSIGNED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
SIGNED_DTYPES = (np.dtype(np.int8), np.dtype(np.int16))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GRAY_ALPHA = 4  # IHDR colour type
TIFF_MAX_SAMPLE_VALUE = 281  # baseline tag: the largest valid sample value (default 2**bits - 1)


@dataclass(frozen=True)
class StackLayout:
    """The array a file held before its extra axes were folded into channels."""

    axes: str  # tifffile axis letters in file order, e.g. "ZYX" ("Q" = unlabelled)
    shape: tuple[int, ...]  # the file's array shape, in the same order


@dataclass(frozen=True)
class ImageData:
    """Pixels as the codec takes them, plus what is needed to interpret them."""

    pixels: np.ndarray  # uint8 or uint16 (int8/int16 with keep_signed), HxW or HxWxC
    bit_depth: int  # every sample is below 2**bit_depth (signed: within +-2**(bit_depth-1))
    offset: int = 0  # added to signed input to make it unsigned; subtract it after decoding
    signed: bool = False  # the file declares signed samples
    bit_depth_source: str = "dtype"  # e.g. "PNG sBIT", "TIFF BitsPerSample", "DICOM BitsStored"
    layout: StackLayout | None = None  # set when the file's axes were reordered/folded

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else self.pixels.shape[2]


def is_supported_image(path: str | Path) -> bool:
    """Whether ``read_image`` handles this file (by suffix, or by DICOM preamble)."""
    path = Path(path)
    return path.is_file() and (path.suffix.lower() in READ_SUFFIXES or _is_dicom(path))


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
    if suffix in DICOM_SUFFIXES or _is_dicom(path):
        return _read_dicom(path, signed_mode)
    if suffix in TIFF_SUFFIXES:
        return _read_tiff(path, signed_mode)
    if suffix in OPENCV_SUFFIXES:
        return _read_with_opencv(path)
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
        _write_png(path, pixels, declared)
    else:
        _write_tiff(path, pixels, declared, layout)


def unfold_channels(pixels: np.ndarray, layout: StackLayout) -> np.ndarray:
    """Undo the folding of ``read_image``: HxWxC back to ``layout.shape`` in file axis order."""
    axes = layout.axes
    y_axis, x_axis = axes.index("Y"), axes.index("X")
    rest = [i for i in range(len(axes)) if i not in (y_axis, x_axis)]
    folded_shape = (layout.shape[y_axis], layout.shape[x_axis], *(layout.shape[i] for i in rest))
    if int(np.prod(folded_shape)) != pixels.size or pixels.shape[:2] != folded_shape[:2]:
        raise ValueError(
            f"pixels of shape {pixels.shape} do not match the {axes} layout of shape {layout.shape}"
        )
    order = (y_axis, x_axis, *rest)
    return np.ascontiguousarray(np.transpose(pixels.reshape(folded_shape), np.argsort(order)))


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
    content = path.read_bytes()
    try:
        pixels = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None:
        raise ValueError(f"{path}: cannot decode: not a valid {path.suffix.lower()} image")
    pixels = _check_unsigned(_native_order(pixels), path)
    is_png = content.startswith(PNG_SIGNATURE)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and is_png and _png_colour_type(content) == PNG_GRAY_ALPHA:
        pixels = pixels[:, :, [0, 3]]  # OpenCV expanded gray+alpha to BGRA with B = G = R
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    pixels = np.ascontiguousarray(pixels)
    bit_depth, source = _dtype_bits(pixels), "dtype"
    if path.suffix.lower() in {".pgm", ".ppm", ".pnm"}:
        bit_depth, source = _fitting_depth(pixels, _pnm_maxval_bits(content), "PNM maxval")
    elif is_png:
        bit_depth, source = _fitting_depth(pixels, _png_significant_bits(content), "PNG sBIT")
    return ImageData(pixels=pixels, bit_depth=bit_depth, bit_depth_source=source)


def _fitting_depth(pixels: np.ndarray, declared: int | None, source: str) -> tuple[int, str]:
    """The declared depth when it is below the dtype's and every sample fits in it."""
    default = _dtype_bits(pixels)
    if declared is not None and 1 <= declared < default and int(pixels.max()) < (1 << declared):
        return declared, source
    return default, "dtype"


def _pnm_maxval_bits(content: bytes) -> int | None:
    """Depth from a binary PNM header's maxval (P5/P6), e.g. maxval 4095 -> 12 bits."""
    without_comments = re.sub(rb"#[^\n]*\n", b" ", content[:512])
    tokens = without_comments.split()
    if len(tokens) < 4 or tokens[0] not in (b"P5", b"P6") or not tokens[3].isdigit():
        return None
    return int(tokens[3]).bit_length()


def _png_chunks(content: bytes) -> dict[bytes, bytes]:
    """The chunks before the image data (IHDR, sBIT, ...), by type."""
    chunks, position = {}, len(PNG_SIGNATURE)
    while position + 8 <= len(content):
        length, kind = struct.unpack(">I4s", content[position : position + 8])
        if kind == b"IDAT":
            break
        chunks[kind] = content[position + 8 : position + 8 + length]
        position += 12 + length
    return chunks


def _png_colour_type(content: bytes) -> int | None:
    header = _png_chunks(content).get(b"IHDR", b"")
    return header[9] if len(header) == 13 else None


def _png_significant_bits(content: bytes) -> int | None:
    significant = _png_chunks(content).get(b"sBIT")
    return max(significant) if significant else None


def _read_tiff(path: Path, signed_mode: str) -> ImageData:
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            pixels = series.asarray()
            axes = series.axes
            page = tif.pages[0]
            tag_bits = page.bitspersample
            max_sample = page.tags.valueof(TIFF_MAX_SAMPLE_VALUE)
    except Exception as exc:  # noqa: BLE001 - damaged files raise struct.error, KeyError, ... too
        raise ValueError(f"{path}: cannot read TIFF: {_first_line(exc)}") from None
    pixels = _native_order(pixels)
    if pixels.dtype == np.bool_:
        folded, layout = _fold_to_channels(pixels.astype(np.uint8), axes)
        return ImageData(pixels=folded, bit_depth=1, bit_depth_source="TIFF bilevel", layout=layout)
    signed = pixels.dtype in SIGNED_DTYPES
    pixels, offset = _to_codec_samples(pixels, pixels.dtype.itemsize * 8, signed_mode, path)
    pixels, layout = _fold_to_channels(pixels, axes)
    bit_depth, source = _dtype_bits(pixels), "dtype"
    if not signed:
        declared = _tiff_declared_bits(tag_bits, max_sample)
        bit_depth, source = _fitting_depth(pixels, declared, "TIFF BitsPerSample/MaxSampleValue")
    return ImageData(pixels=pixels, bit_depth=bit_depth, offset=offset, signed=signed,
                     bit_depth_source=source, layout=layout)


def _tiff_declared_bits(tag_bits: object, max_sample: object) -> int | None:
    candidates = []
    if isinstance(tag_bits, int):
        candidates.append(tag_bits)
    if isinstance(max_sample, (tuple, list)):
        max_sample = max(max_sample) if max_sample else None
    if isinstance(max_sample, int) and max_sample > 0:
        candidates.append(max_sample.bit_length())
    return min(candidates) if candidates else None


def _fold_to_channels(pixels: np.ndarray, axes: str) -> tuple[np.ndarray, StackLayout | None]:
    """Reorder to Y, X, then every other axis in file order, folded into one channel axis.

    Returns the folded pixels and the layout needed to undo it (None when nothing moved).
    """
    if len(axes) != pixels.ndim or "Y" not in axes or "X" not in axes:
        # Unlabelled data: trailing S (samples) if present, else the last two axes are Y, X.
        axes = _guess_axes(pixels)
    y_axis, x_axis = axes.index("Y"), axes.index("X")
    rest = [i for i in range(pixels.ndim) if i not in (y_axis, x_axis)]
    order = (y_axis, x_axis, *rest)
    layout = None
    if order != tuple(range(pixels.ndim)) or pixels.ndim > 3:
        layout = StackLayout(axes=axes, shape=tuple(int(n) for n in pixels.shape))
    pixels = np.transpose(pixels, order)
    height, width = pixels.shape[:2]
    channels = int(np.prod(pixels.shape[2:], dtype=np.int64))
    folded = pixels.reshape(height, width, channels)
    return np.ascontiguousarray(folded[:, :, 0] if channels == 1 else folded), layout


def _guess_axes(pixels: np.ndarray) -> str:
    if pixels.ndim >= 3 and pixels.shape[-1] in (3, 4):
        return "Q" * (pixels.ndim - 3) + "YXS"
    return "Q" * (pixels.ndim - 2) + "YX"


def _read_dicom(path: Path, signed_mode: str) -> ImageData:
    import pydicom  # imported lazily: slow to import and only needed for DICOM input

    try:
        dataset = pydicom.dcmread(path)
        has_pixels = "PixelData" in dataset
    except Exception as exc:  # noqa: BLE001 - truncated files raise EOFError, struct.error, ...
        raise ValueError(f"{path}: cannot read DICOM: {_first_line(exc)}") from None
    if not has_pixels:
        raise ValueError(f"{path}: DICOM file without pixel data (PixelData element missing)")
    pixels = _native_order(_dicom_pixels(dataset, path))
    bits_stored = int(dataset.get("BitsStored", pixels.dtype.itemsize * 8))
    signed = pixels.dtype in SIGNED_DTYPES  # pydicom decodes PixelRepresentation 1 as intN
    pixels, offset = _to_codec_samples(pixels, bits_stored, signed_mode, path)
    pixels, layout = _fold_to_channels(pixels, _dicom_axes(dataset, pixels))
    bit_depth = bits_stored  # signed samples were checked against the signed BitsStored range
    if pixels.dtype in UNSIGNED_DTYPES:
        # pydicom masks unused high bits, so samples fit in BitsStored; guard against odd headers anyway.
        bit_depth = max(bits_stored, int(pixels.max()).bit_length())
    return ImageData(pixels=pixels, bit_depth=bit_depth, offset=offset, signed=signed,
                     bit_depth_source="DICOM BitsStored", layout=layout)


def _dicom_pixels(dataset: object, path: Path) -> np.ndarray:
    from pydicom.pixels import get_decoder, pixel_array

    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        # raw=True: the stored samples exactly, without YCbCr->RGB conversion (which rounds).
        return pixel_array(dataset, raw=True)
    except Exception as exc:  # noqa: BLE001 - decoders raise anything on damaged pixel data
        try:
            missing = get_decoder(syntax).missing_dependencies
        except (NotImplementedError, ValueError):
            missing = []
        hint = ""
        if missing:
            example = "`pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg`"
            hint = f"; install one of: {'; '.join(missing)} (e.g. {example})"
        raise ValueError(
            f"{path}: cannot decode the DICOM pixel data (transfer syntax {syntax.name}): "
            f"{_first_line(exc)}{hint}"
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- dtype handling ----------------------------------------------------------------------------


def _dtype_bits(pixels: np.ndarray) -> int:
    return 8 if pixels.dtype.itemsize == 1 else 16


def _native_order(pixels: np.ndarray) -> np.ndarray:
    """Big-endian samples (">u2") as the same values in native byte order."""
    return pixels if pixels.dtype.isnative else pixels.astype(pixels.dtype.newbyteorder("="))


def _check_unsigned(pixels: np.ndarray, path: Path) -> np.ndarray:
    if pixels.dtype not in UNSIGNED_DTYPES:
        raise ValueError(f"{path} has {pixels.dtype} samples; the codec accepts {ACCEPTED_DTYPES}")
    return pixels


def _to_codec_samples(pixels: np.ndarray, bits: int, signed_mode: str, path: Path) -> tuple[np.ndarray, int]:
    """Pixels for the codec and the offset added (see the module docstring's "Signed data")."""
    if pixels.dtype in UNSIGNED_DTYPES:
        return pixels, 0
    if pixels.dtype not in SIGNED_DTYPES:
        raise ValueError(f"{path} has {pixels.dtype} samples; the codec accepts {ACCEPTED_DTYPES}")
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if int(pixels.min()) < low or int(pixels.max()) > high:
        raise ValueError(f"{path}: samples exceed the signed {bits}-bit range its header declares")
    if signed_mode == "keep":
        return pixels, 0
    unsigned = np.uint8 if pixels.dtype == np.int8 else np.uint16
    if signed_mode == "offset":
        offset = 1 << (bits - 1)
        return (pixels.astype(np.int32) + offset).astype(unsigned), offset
    if int(pixels.min()) < 0:
        raise ValueError(
            f"{path} has negative samples (signed {bits}-bit data, min {int(pixels.min())}); the codec is "
            "unsigned-only. Allow an offset of 2**(bits-1) (CLI: --signed-offset) to store it shifted"
        )
    return pixels.astype(unsigned), 0


# --- writing -----------------------------------------------------------------------------------


def _check_writable(pixels: np.ndarray) -> np.ndarray:
    if not isinstance(pixels, np.ndarray):
        raise TypeError(f"pixels must be a numpy.ndarray, got {type(pixels).__name__}")
    pixels = _native_order(pixels)
    if pixels.dtype not in UNSIGNED_DTYPES + SIGNED_DTYPES:
        accepted = "uint8 or uint16 (int8/int16 as TIFF)"
        raise ValueError(f"cannot write {pixels.dtype} pixels; accepted: {accepted}")
    if pixels.ndim not in (2, 3) or 0 in pixels.shape:
        raise ValueError(f"pixels must be a non-empty HxW or HxWxC array, got shape {pixels.shape}")
    return pixels


def _declared_depth(pixels: np.ndarray, bit_depth: int | None) -> int | None:
    """The depth worth recording: below the dtype's bits, and holding every sample."""
    if bit_depth is None or pixels.dtype in SIGNED_DTYPES or not 1 <= bit_depth < _dtype_bits(pixels):
        return None
    peak = int(pixels.max())
    if peak >= 1 << bit_depth:
        raise ValueError(f"sample value {peak} does not fit in bit_depth {bit_depth}")
    return bit_depth


def _write_png(path: Path, pixels: np.ndarray, bit_depth: int | None) -> None:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in PNG_CHANNELS:
        raise ValueError(f"PNG holds 1 to 4 channels, got {channels}; write a .tif instead")
    if channels == 2:  # gray+alpha: OpenCV cannot write it, libpng through imagecodecs can
        import imagecodecs

        encoded = bytes(imagecodecs.png_encode(np.ascontiguousarray(pixels)))
    else:
        if channels == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
        elif channels == 4:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
        ok, buffer = cv2.imencode(".png", np.ascontiguousarray(pixels))
        if not ok:
            raise ValueError(f"OpenCV could not encode {path} as PNG")
        encoded = buffer.tobytes()
    if bit_depth is not None:
        encoded = _with_png_chunk(encoded, b"sBIT", bytes([bit_depth] * channels))
    path.write_bytes(encoded)


def _with_png_chunk(encoded: bytes, kind: bytes, payload: bytes) -> bytes:
    """Insert a chunk right after IHDR (where sBIT must go: before PLTE and IDAT)."""
    after_header = len(PNG_SIGNATURE) + 8 + 13 + 4
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)
    return encoded[:after_header] + chunk + encoded[after_header:]


def _write_tiff(path: Path, pixels: np.ndarray, bit_depth: int | None, layout: StackLayout | None) -> None:
    extratags = []
    if bit_depth is not None:
        extratags.append((TIFF_MAX_SAMPLE_VALUE, "H", 1, (1 << bit_depth) - 1, True))
    if layout is not None:
        samples = unfold_channels(pixels, layout)
        tifffile.imwrite(path, samples, compression="zlib", metadata={"axes": layout.axes},
                         extratags=extratags, **_stack_colour(layout))
        return
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    photometric = "rgb" if channels in (3, 4) else "minisblack"
    # contig: keep HxWxC as one interleaved page rather than C separate pages.
    planar = "contig" if channels > 1 else None
    extra = {"extrasamples": ["unassalpha"]} if channels == 4 else {}
    tifffile.imwrite(
        path, pixels, photometric=photometric, planarconfig=planar, compression="zlib",
        extratags=extratags, **extra,
    )


def _stack_colour(layout: StackLayout) -> dict:
    """RGB(A) samples (an S axis of 3 or 4) stay RGB, planar or interleaved as read; else gray planes."""
    if "S" not in layout.axes or layout.shape[layout.axes.index("S")] not in (3, 4):
        return {"photometric": "minisblack"}
    interleaved = layout.axes.index("S") > layout.axes.index("X")
    colour = {"photometric": "rgb", "planarconfig": "contig" if interleaved else "separate"}
    if layout.shape[layout.axes.index("S")] == 4:
        colour["extrasamples"] = ["unassalpha"]
    return colour
