"""The per-format readers and writers behind :func:`linf_tf.imageio.read_image` and ``write_image``.

PNG/BMP/PNM through OpenCV (plus the PNG chunks OpenCV does not report: colour type, sBIT), TIFF
through tifffile, DICOM through pydicom. Each turns a damaged file into a ``ValueError`` naming it.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import tifffile

from linf_tf.image_samples import (
    SIGNED_DTYPES,
    UNSIGNED_DTYPES,
    ImageData,
    StackLayout,
    check_unsigned,
    dtype_bits,
    fitting_depth,
    fold_to_channels,
    guess_axes,
    native_order,
    to_codec_samples,
    unfold_channels,
)

PNG_CHANNELS = (1, 2, 3, 4)  # gray, gray+alpha, RGB, RGBA
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_GRAY_ALPHA = 4  # IHDR colour type
TIFF_MAX_SAMPLE_VALUE = 281  # baseline tag: the largest valid sample value (default 2**bits - 1)


# --- reading -----------------------------------------------------------------------------------


def is_dicom(path: Path) -> bool:
    """Whether the file starts like Part-10 DICOM, whatever its name (many have no suffix)."""
    # Part-10 DICOM files carry a 128-byte preamble followed by "DICM"; many have no suffix.
    try:
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_with_opencv(path: Path) -> ImageData:
    """PNG, BMP or PNM as RGB(A)/gray(+alpha), with the depth its header declares (sBIT, maxval)."""
    # imdecode on bytes instead of imread: imread fails silently on some non-ASCII paths.
    content = path.read_bytes()
    try:
        pixels = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None:
        raise ValueError(f"{path}: cannot decode: not a valid {path.suffix.lower()} image")
    pixels = check_unsigned(native_order(pixels), path)
    is_png = content.startswith(PNG_SIGNATURE)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and is_png and _png_colour_type(content) == PNG_GRAY_ALPHA:
        pixels = pixels[:, :, [0, 3]]  # OpenCV expanded gray+alpha to BGRA with B = G = R
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    pixels = np.ascontiguousarray(pixels)
    bit_depth, source = dtype_bits(pixels), "dtype"
    if path.suffix.lower() in {".pgm", ".ppm", ".pnm"}:
        bit_depth, source = fitting_depth(pixels, _pnm_maxval_bits(content), "PNM maxval")
    elif is_png:
        bit_depth, source = fitting_depth(pixels, _png_significant_bits(content), "PNG sBIT")
    return ImageData(pixels=pixels, bit_depth=bit_depth, bit_depth_source=source)


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


def read_tiff(path: Path, signed_mode: str) -> ImageData:
    """The first series of a TIFF, stacks folded into channels, depth from BitsPerSample/MaxSampleValue."""
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
    pixels = native_order(pixels)
    if pixels.dtype == np.bool_:
        folded, layout = fold_to_channels(pixels.astype(np.uint8), axes)
        return ImageData(pixels=folded, bit_depth=1, bit_depth_source="TIFF bilevel", layout=layout)
    signed = pixels.dtype in SIGNED_DTYPES
    pixels, offset = to_codec_samples(pixels, pixels.dtype.itemsize * 8, signed_mode, path)
    pixels, layout = fold_to_channels(pixels, axes)
    bit_depth, source = dtype_bits(pixels), "dtype"
    if not signed:
        declared = _tiff_declared_bits(tag_bits, max_sample)
        bit_depth, source = fitting_depth(pixels, declared, "TIFF BitsPerSample/MaxSampleValue")
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


def read_dicom(path: Path, signed_mode: str) -> ImageData:
    """The stored samples of a DICOM file (frames folded into channels), depth from BitsStored."""
    import pydicom  # imported lazily: slow to import and only needed for DICOM input

    try:
        dataset = pydicom.dcmread(path)
        has_pixels = "PixelData" in dataset
    except Exception as exc:  # noqa: BLE001 - truncated files raise EOFError, struct.error, ...
        raise ValueError(f"{path}: cannot read DICOM: {_first_line(exc)}") from None
    if not has_pixels:
        raise ValueError(f"{path}: DICOM file without pixel data (PixelData element missing)")
    pixels = native_order(_dicom_pixels(dataset, path))
    bits_stored = int(dataset.get("BitsStored", pixels.dtype.itemsize * 8))
    signed = pixels.dtype in SIGNED_DTYPES  # pydicom decodes PixelRepresentation 1 as intN
    pixels, offset = to_codec_samples(pixels, bits_stored, signed_mode, path)
    pixels, layout = fold_to_channels(pixels, _dicom_axes(dataset, pixels))
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
    return axes if len(axes) == pixels.ndim else guess_axes(pixels)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- writing -----------------------------------------------------------------------------------


def write_png(path: Path, pixels: np.ndarray, bit_depth: int | None) -> None:
    """1 to 4 channels as PNG; ``bit_depth`` (below the dtype's) recorded as sBIT."""
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


def write_tiff(path: Path, pixels: np.ndarray, bit_depth: int | None, layout: StackLayout | None) -> None:
    """A zlib TIFF, in the file's axis order when ``layout`` is given; ``bit_depth`` as MaxSampleValue."""
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
