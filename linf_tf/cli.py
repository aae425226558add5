"""The ``linf`` command: compress images to ``.nlc`` streams, decompress them, inspect headers.

Every decoded sample is within ``tau`` of the original (``tau = 0``: bit-exact). Several inputs, or
a folder, are processed file by file into an output folder, with a progress bar and a summary: a
file that fails is reported by name and the rest still run; the exit status is then 2.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
from tqdm import tqdm

from linf_tf import codec
from linf_tf.imageio import (
    READ_SUFFIXES,
    TIFF_SUFFIXES,
    WRITE_SUFFIXES,
    ImageData,
    StackLayout,
    is_supported_image,
    read_image,
    write_image,
)
from linf_tf.progress import progress_bar
from linf_tf.runtime import (
    DEFAULT_SLACK,
    DEFAULT_TILE,
    NetworkRestorer,
    check_slack,
    guaranteed_bound,
)
from linf_tf.sidecar import SIDECAR_SUFFIX, Sidecar, from_image, read_sidecar, sidecar_path, write_sidecar

STREAM_SUFFIX = ".nlc"
# Channel counts a batch writes as PNG; others (2 = two planes, not gray+alpha as far as we know) as TIFF.
PNG_CHANNELS = (1, 3, 4)
MIN_TILE = 16
# `linf restore` warns when undeclared 16-bit data fits in this many bits (likely 10/12/14-bit).
NARROW_DATA_BITS = 14


class CliError(Exception):
    """A user-facing failure: printed as ``linf: error: <message>``, exit status 2."""


@dataclass
class FileResult:
    """Sizes of one processed file, for the batch summary."""

    raw_bytes: int  # samples * bytes per sample, what the image occupies uncompressed
    stream_bytes: int
    samples: int
    note: str = ""  # what was written beyond plain samples (signed offset, stack order), for the summary


@dataclass
class Plan:
    """The (source, target) pairs of one command; ``batch``: several files, summary at the end."""

    jobs: list[tuple[Path, Path]]
    batch: bool
    skipped: int = 0  # files in input folders that are not of the kind the command reads


# --- argument parsing --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Usage errors read ``linf: error: ...`` for subcommands too (argparse says ``linf compress:``)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"linf: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="linf",
        description="Near-lossless image codec: every decoded sample differs from the original "
        "by at most TAU (TAU=0 is bit-exact lossless).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_compress(commands)
    _add_decompress(commands)
    _add_restore(commands)
    _add_info(commands)
    return parser


OUTPUT_HELP = (
    "output file; a folder (created if missing) when it ends with '/', already is a folder, "
    "or IN is several files or a folder"
)


def _add_compress(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "compress",
        help="compress images (or every image in folders) to .nlc",
        description="Compress images, or every supported image in folders, to .nlc streams. "
        f"Readable formats: {', '.join(sorted(READ_SUFFIXES))} (DICOM also without a suffix). "
        f"Stacks and signed data also get a NAME.nlc{SIDECAR_SUFFIX} sidecar that decompress uses "
        "to give back the axis order and the signed values.",
    )
    sub.add_argument("inputs", type=Path, nargs="+", metavar="IN", help="image file(s) or folder(s)")
    sub.add_argument(
        "-t", "--tau", type=_non_negative_int, required=True,
        help="guaranteed maximum absolute error per sample (0 = lossless); at most (2**bit_depth - 1) // 2",
    )
    sub.add_argument("-o", "--output", required=True, metavar="OUT", help=OUTPUT_HELP + " (.nlc)")
    sub.add_argument(
        "--bit-depth", type=_bit_depth, default=None, metavar="N",
        help="bit depth to store (1-16), e.g. 12 for 12-bit data in 16-bit files; default: from the file "
        "(8 for 8-bit images, TIFF BitsPerSample/MaxSampleValue, PNG sBIT, PGM maxval, DICOM BitsStored, "
        "else 16)",
    )
    sub.add_argument(
        "--signed-offset", action="store_true",
        help="kept for old scripts; no effect with this codec: signed data (DICOM PixelRepresentation 1, "
        "TIFF SampleFormat INT, e.g. CT) is stored signed in the stream (format 3) and decompress to .tif "
        "gives the signed values back. (A codec without signed streams stored it shifted by 2**(bits-1), "
        "with the offset in a sidecar; such sidecars are still read.)",
    )
    _add_common_output_options(sub)
    _add_threads_option(sub)
    sub.set_defaults(handler=run_compress)


def _add_decompress(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "decompress",
        help="decompress .nlc stream(s) to PNG or TIFF",
        description="Decompress .nlc streams, or every .nlc file in folders, to PNG or TIFF. A sidecar "
        f"NAME.nlc{SIDECAR_SUFFIX} (written by compress for stacks and signed data) restores the "
        "original axis order and signed values in a TIFF.",
    )
    sub.add_argument("inputs", type=Path, nargs="+", metavar="IN", help=".nlc file(s) or folder(s)")
    sub.add_argument("-o", "--output", required=True, metavar="OUT", help=OUTPUT_HELP + " (.png/.tif)")
    _add_format_option(sub)
    sub.add_argument(
        "--restore", action="store_true",
        help="after decoding, remove the codec's artifacts with the l-inf CNN; every sample stays "
        "within tau + floor(slack*tau) of the original (printed)",
    )
    _add_network_options(sub)
    _add_common_output_options(sub)
    _add_threads_option(sub)
    sub.set_defaults(handler=run_decompress)


def _add_format_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--format", choices=("png", "tif"), default="png",
        help="image format for folder output (default: png; images PNG cannot hold, i.e. 2 or more than "
        "4 channels, stacks and signed samples, are written as tif)",
    )


def _add_network_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--model", default="default", metavar="PATH",
        help="restoration network: 'default' (shipped in the package), a SavedModel directory, a "
        ".tflite file, or a .weights.h5 with its .json config (default: default)",
    )
    sub.add_argument(
        "--slack", type=float, default=DEFAULT_SLACK, metavar="K",
        help="how far (as a fraction of tau, 0..1) the network may move a sample away from the decoded "
        f"value; 0 returns the decoded image (default: {DEFAULT_SLACK})",
    )
    sub.add_argument(
        "--tile", type=int, default=DEFAULT_TILE, metavar="N",
        help=f"restore in N x N tiles (with overlap) so memory stays bounded (default: {DEFAULT_TILE})",
    )


def _add_restore(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "restore",
        help="restore already-decoded images with the l-inf CNN",
        description="Restore images that the codec decoded at TAU (e.g. written by "
        "'linf decompress') with the l-inf CNN, keeping every sample within TAU + floor(slack*TAU) "
        "of the original. To restore straight from a .nlc stream use 'linf decompress --restore' "
        "(tau and bit depth from the stream header).",
    )
    sub.add_argument(
        "inputs", type=Path, nargs="+", metavar="IN",
        help="decoded image(s) (PNG/TIFF/BMP/PGM/DICOM) or folder(s) of them",
    )
    sub.add_argument(
        "-t", "--tau", type=_non_negative_int, required=True,
        help="the error bound the images were compressed with; at most (2**bit_depth - 1) // 2",
    )
    sub.add_argument("-o", "--output", required=True, metavar="OUT", help=OUTPUT_HELP + " (.png/.tif)")
    sub.add_argument(
        "--bit-depth", type=_bit_depth, default=None, metavar="N",
        help="bit depth of the samples (default: from the file: PNG sBIT, TIFF BitsPerSample/"
        "MaxSampleValue, PGM maxval, DICOM BitsStored, else 8/16); never less than the data needs",
    )
    _add_format_option(sub)
    _add_network_options(sub)
    _add_common_output_options(sub)
    sub.set_defaults(handler=run_restore)


def _add_info(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "info", help="print the header of .nlc stream(s)",
        description="Print the header fields of .nlc streams, or of every .nlc file in folders "
        "(the payload is not decoded). Each bad file is reported by name; exit status 2 if any.",
    )
    sub.add_argument("inputs", type=Path, nargs="+", metavar="IN", help=".nlc file(s) or folder(s)")
    sub.add_argument("-r", "--recursive", action="store_true", help="also look in sub-folders")
    sub.set_defaults(handler=run_info)


def _add_common_output_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--force", action="store_true", help="overwrite existing output files")
    sub.add_argument(
        "-r", "--recursive", action="store_true",
        help="with a folder as IN, also process sub-folders (mirrored in the output folder)",
    )


def _add_threads_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "-j", "--threads", type=_positive_int, default=None, metavar="N",
        help="threads (default: the number of cores). One image: its stripes are coded in parallel "
        "(images of 2 MP and more are striped); a folder: files are processed in parallel. The output "
        "bytes are the same for every N",
    )


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _threads(args: argparse.Namespace) -> int:
    """The -j value: given, or every core."""
    threads = getattr(args, "threads", None)
    return threads if threads is not None else max(1, os.cpu_count() or 1)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {value}")
    return value


def _bit_depth(text: str) -> int:
    value = _non_negative_int(text)
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"must be 1 to 16, got {value}")
    return value


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("linf-tf")
    except PackageNotFoundError:
        return "(not installed)"


# --- compress ----------------------------------------------------------------------------------


def run_compress(args: argparse.Namespace) -> int:
    plan = _plan(args.inputs, args.output, is_supported_image, STREAM_SUFFIX, args.recursive)
    return _execute(
        "compress", plan, lambda src, dst, verbose, threads: compress_file(src, dst, args, verbose, threads),
        _threads(args),
    )


def compress_file(
    source: Path, target: Path, args: argparse.Namespace, verbose: bool = False, threads: int | None = None
) -> FileResult:
    """Compress one image file to ``target`` (plus its sidecar when needed); print facts when ``verbose``.

    ``threads`` code the image's stripes (default: the codec's); the stream does not depend on it."""
    if target.suffix.lower() in READ_SUFFIXES:
        raise CliError(f"refusing to write a .nlc stream to {target}: the name says it is an image")
    _refuse_overwrite(target, args.force)
    _refuse_overwrite(sidecar_path(target), args.force)
    image = read_for_codec(source, args.signed_offset)
    bit_depth = args.bit_depth if args.bit_depth is not None else image.bit_depth
    stream = codec.encode(image.pixels, args.tau, bit_depth=bit_depth, threads=threads)
    header = codec.info(stream)
    _make_parent(target)
    target.write_bytes(stream)
    extra = from_image(image)
    _store_sidecar(target, extra, source)
    note = _compress_note(image, extra, target)
    if verbose:
        _print_facts(f"{source} -> {target}", header, note=note)
    return _file_result(header, note)


def read_for_codec(source: Path, signed_offset: bool) -> ImageData:
    """Read ``source`` the way the codec can store it: signed samples natively when the codec takes
    int16, else shifted (``signed_offset``) -- decided by the file's declared signedness only."""
    if codec_stores_signed():
        return read_image(source, keep_signed=True)
    image = read_image(source, allow_signed=signed_offset)
    if image.signed and not signed_offset:  # refused even when no sample happens to be negative
        raise CliError(
            f"{source} declares signed samples ({image.bit_depth}-bit); the codec is unsigned-only: pass "
            f"--signed-offset to store them shifted by +{1 << (image.bit_depth - 1)} (recorded in a sidecar)"
        )
    return image


@functools.cache
def codec_stores_signed() -> bool:
    """Whether this build's codec encodes int16 samples and decodes them back as int16."""
    try:
        return codec.decode(codec.encode(np.zeros((1, 1), np.int16), 0)).dtype == np.int16
    except (ValueError, TypeError):
        return False


def _store_sidecar(target: Path, extra: Sidecar, source: Path) -> None:
    stale = sidecar_path(target)
    if extra.needed:
        write_sidecar(target, extra, source)
    elif stale.exists():  # --force over an earlier stream that had one
        stale.unlink()


def _compress_note(image: ImageData, extra: Sidecar, target: Path) -> str:
    parts = []
    if image.layout is not None:
        parts.append(f"{image.layout.axes} stack {image.layout.shape} stored as {image.pixels.shape}")
    if image.signed and image.pixels.dtype.kind == "i":
        parts.append("signed samples stored natively")
    elif extra.signed:
        parts.append(f"signed samples stored with offset +{extra.offset} (subtract it; decompressing "
                     "to .tif does)")
    if extra.needed:
        parts.append(f"sidecar {sidecar_path(target).name}")
    return "; ".join(parts)


# --- decompress --------------------------------------------------------------------------------


def run_decompress(args: argparse.Namespace) -> int:
    if args.restore:
        _check_network_options(args)
    plan = _plan(args.inputs, args.output, _is_stream_file, "." + args.format, args.recursive)
    network = _network(args)
    # The network (--restore) is shared and uses every core itself: files go one at a time.
    return _execute(
        "decompress", plan,
        lambda src, dst, verbose, threads: decompress_file(
            src, dst, args, verbose, not verbose, threads, network
        ),
        1 if args.restore else _threads(args),
    )


def decompress_file(
    source: Path,
    target: Path,
    args: argparse.Namespace,
    verbose: bool = False,
    fit_format: bool = False,
    threads: int | None = None,
    network: NetworkRestorer | None = None,
) -> FileResult:
    """Decode one stream and write it as an image; print the header's facts when ``verbose``.

    ``fit_format`` (batch mode) switches a .png target to .tif when PNG cannot hold the image.
    """
    data = _read_stream(source)
    header = codec.info(data)
    extra = read_sidecar(source) or Sidecar()
    if fit_format and _needs_tiff(header.channels, extra.layout, extra.signed or header.dtype.kind == "i"):
        target = _as_tiff(target)
    _check_image_target(target)
    _refuse_overwrite(target, args.force)
    if args.restore and network is None:
        network = _network(args)
    pixels = decoded_pixels(data, network, args.slack if args.restore else None, threads)
    pixels, layout, note = _undo_sidecar(pixels, extra, target, source)
    _make_parent(target)
    write_image(target, pixels, bit_depth=header.bit_depth, layout=layout)
    if verbose:
        slack = args.slack if args.restore else None
        _print_facts(f"{source} -> {target}", header, restored_slack=slack, note=note)
    return _file_result(header, note)


def decoded_pixels(
    data: bytes,
    network: NetworkRestorer | None = None,
    slack: float | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """The pixels to write: the decoded stream, restored by ``network`` at ``slack`` when given."""
    pixels = codec.decode(data, threads=threads)
    if network is None:
        return pixels
    header = codec.info(data)
    return network.restore(pixels, header.tau, DEFAULT_SLACK if slack is None else slack, header.bit_depth)


def _undo_sidecar(
    pixels: np.ndarray, extra: Sidecar, target: Path, source: Path
) -> tuple[np.ndarray, StackLayout | None, str]:
    """Give back what compress folded or shifted, as far as ``target``'s format can hold it."""
    is_tiff = target.suffix.lower() in TIFF_SUFFIXES
    notes = []
    if extra.layout is not None:
        if not is_tiff:
            raise CliError(
                f"{source} holds a {extra.layout.axes} stack of shape {extra.layout.shape} (sidecar "
                f"{sidecar_path(source).name}); decompress it to a .tif to keep its axes"
            )
        _check_layout(pixels, extra.layout, source)
        notes.append(f"{extra.layout.axes} stack written back as {extra.layout.shape}")
    if extra.signed:
        if is_tiff:
            pixels = _to_signed(pixels, extra)
            notes.append(f"signed {pixels.dtype} samples written (offset +{extra.offset} removed)")
        else:
            notes.append(f"PNG cannot hold signed samples: written with offset +{extra.offset}; subtract "
                         "it (or decompress to .tif)")
    return pixels, extra.layout, "; ".join(notes)


def _check_layout(pixels: np.ndarray, layout: StackLayout, source: Path) -> None:
    planes = int(np.prod([n for axis, n in zip(layout.axes, layout.shape, strict=True) if axis not in "YX"]))
    height, width = layout.shape[layout.axes.index("Y")], layout.shape[layout.axes.index("X")]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if (height, width, planes) != (pixels.shape[0], pixels.shape[1], channels):
        raise CliError(
            f"sidecar {sidecar_path(source)} describes a {layout.axes} stack of shape {layout.shape}, "
            f"but the stream holds {pixels.shape}; it belongs to another stream"
        )


def _to_signed(pixels: np.ndarray, extra: Sidecar) -> np.ndarray:
    signed = np.int8 if extra.signed_bits <= 8 else np.int16
    low, high = -(1 << (extra.signed_bits - 1)), (1 << (extra.signed_bits - 1)) - 1
    # Clipping to the range the original had can only bring a sample closer to it: still within tau.
    return np.clip(pixels.astype(np.int32) - extra.offset, low, high).astype(signed)


# --- restore -----------------------------------------------------------------------------------


def _network(args: argparse.Namespace) -> NetworkRestorer | None:
    """One restorer per run (a folder of images loads the model once), or None without --restore."""
    if not getattr(args, "restore", True):
        return None
    check_slack(args.slack)
    return NetworkRestorer(args.model, tile=args.tile)


def _check_network_options(args: argparse.Namespace) -> None:
    check_slack(args.slack)
    if args.tile < MIN_TILE:
        raise CliError(f"--tile must be at least {MIN_TILE} pixels, got {args.tile}")


def run_restore(args: argparse.Namespace) -> int:
    _check_network_options(args)
    plan = _plan(args.inputs, args.output, is_supported_image, "." + args.format, args.recursive)
    network = _network(args)
    return _execute(
        "restore", plan,
        lambda src, dst, verbose, threads: restore_file(src, dst, args, verbose, not verbose, network),
    )


def restore_file(
    source: Path,
    target: Path,
    args: argparse.Namespace,
    verbose: bool = False,
    fit_format: bool = False,
    network: NetworkRestorer | None = None,
) -> FileResult:
    """Restore one decoded image file; τ and bit depth are checked before the network runs."""
    image = read_image(source, allow_signed=True)
    bit_depth = restore_bit_depth(image, args.bit_depth, source)
    check_tau(args.tau, bit_depth)
    if fit_format and _needs_tiff(image.channels, image.layout, image.signed):
        target = _as_tiff(target)
    _check_image_target(target)
    if image.signed and target.suffix.lower() not in TIFF_SUFFIXES:
        raise CliError(f"{source} holds signed samples; write the restored image as .tif")
    _refuse_overwrite(target, args.force)
    network = network or _network(args)
    restored = network.restore(image.pixels, args.tau, args.slack, bit_depth)
    if image.signed:
        restored = _to_signed(restored, Sidecar(signed=True, offset=image.offset, signed_bits=bit_depth))
    _make_parent(target)
    write_image(target, restored, bit_depth=bit_depth, layout=image.layout)
    if verbose:
        _print_rows([
            ("input", f"{source} (decoded at tau {args.tau}, {bit_depth}-bit, "
                      f"bit depth from {_depth_origin(image, args.bit_depth)})"),
            ("output", str(target)),
            ("model", str(args.model)),
            ("guaranteed max error", f"{guaranteed_bound(args.tau, args.slack)} "
                                     f"(tau {args.tau}, slack {args.slack})"),
        ])
    samples = int(image.pixels.size)
    return FileResult(raw_bytes=samples * image.pixels.dtype.itemsize, stream_bytes=0, samples=samples)


def restore_bit_depth(image: ImageData, requested: int | None, source: Path) -> int:
    """The bit depth to restore ``image`` at: ``requested`` if the samples allow it, else the file's."""
    storage_bits = 8 * image.pixels.dtype.itemsize
    data_bits = int(image.pixels.max()).bit_length()
    if requested is None:
        if image.bit_depth_source == "dtype" and storage_bits == 16 and data_bits <= NARROW_DATA_BITS:
            _warn(
                f"{source}: no bit depth recorded in the file and every sample is below 2**{data_bits}; "
                f"restoring as 16-bit. If the data is {data_bits}-bit, pass --bit-depth {data_bits} "
                "(the network then sees its real range and restores it better)"
            )
        return image.bit_depth
    if requested > storage_bits:
        raise CliError(
            f"--bit-depth {requested} does not fit {source}: its samples are {storage_bits}-bit "
            f"({image.pixels.dtype}); use at most {storage_bits}"
        )
    if data_bits > requested:
        raise CliError(
            f"--bit-depth {requested} is smaller than the data of {source}: it has samples up to "
            f"{int(image.pixels.max())} (max at {requested} bits: {(1 << requested) - 1}); "
            f"use at least {data_bits}"
        )
    return requested


def check_tau(tau: int, bit_depth: int) -> None:
    """The codec's own limit: tau at most (2**bit_depth - 1) // 2."""
    max_tau = ((1 << bit_depth) - 1) // 2
    if tau > max_tau:
        raise CliError(f"tau must be 0 to {max_tau} for bit depth {bit_depth}, got {tau}")


def _depth_origin(image: ImageData, requested: int | None) -> str:
    if requested is not None:
        return "--bit-depth"
    return "the sample type" if image.bit_depth_source == "dtype" else image.bit_depth_source


# --- info --------------------------------------------------------------------------------------


def run_info(args: argparse.Namespace) -> int:
    paths, failures = [], 0
    for item in args.inputs:
        if not item.is_dir():
            paths.append(item)
            continue
        streams = [path for path in _folder_files(item, args.recursive) if _is_stream_file(path)]
        if not streams:
            _report_failure(item, CliError(f"no {STREAM_SUFFIX} files in folder {item}"))
            failures += 1
        paths.extend(streams)
    shown = 0
    for path in paths:
        try:
            rows = _info_rows(path)
        except (OSError, ValueError) as exc:
            _report_failure(path, exc)
            failures += 1
            continue
        if shown:
            print()
        _print_rows(rows)
        shown += 1
    if shown + failures > 1:
        print(f"\ninfo: {shown} file(s) read, {failures} failed")
    return 2 if failures else 0


def _info_rows(path: Path) -> list[tuple[str, str]]:
    header = codec.info(_read_stream(path))
    rows = [
        ("file", str(path)),
        ("format version", str(header.format_version)),
        ("width", str(header.width)),
        ("height", str(header.height)),
        ("channels", str(header.channels)),
        ("bit depth", str(header.bit_depth)),
        ("samples", f"signed ({header.dtype}; coded with offset +{1 << (header.bit_depth - 1)})"
                    if header.is_signed else "unsigned"),
        ("tau (max error)", str(header.tau)),
        ("coding mode", "per stripe (predictive, raw or palette)" if header.striped else header.coding_mode),
        ("stripes", f"{header.stripe_count} of {header.stripe_height} rows (independent, each with a CRC)"
                    if header.striped else "1 (not striped)"),
        ("header bytes", f"{header.header_bytes:,}"),
        ("payload bytes", f"{header.payload_bytes:,}"),
        ("total bytes", f"{header.total_bytes:,}"),
        ("decoded array", f"{header.shape} {header.dtype}"),
        ("bits per sample", f"{header.bits_per_sample:.4f}"),
    ]
    extra = read_sidecar(path)
    if extra is not None:
        rows.append(("sidecar", f"{sidecar_path(path).name}: {extra.describe()}"))
    return rows


# --- shared helpers ----------------------------------------------------------------------------


def _print_facts(
    title: str, header: codec.StreamInfo, restored_slack: float | None = None, note: str = ""
) -> None:
    raw = _raw_bytes(header)
    rows = [
        ("file", title),
        ("shape", f"{header.shape} ({header.channels} channel{'s' if header.channels > 1 else ''}, "
                  f"{header.dtype}, {header.bit_depth}-bit)"),
        ("original size", f"{raw:,} bytes (raw samples)"),
        ("compressed size", f"{header.total_bytes:,} bytes ({header.coding_mode})"),
        ("bits per sample", f"{header.bits_per_sample:.4f}"),
        ("compression ratio", f"{raw / header.total_bytes:.3f}:1"),
        ("guaranteed max error", str(header.tau)),
    ]
    if restored_slack is not None:
        bound = guaranteed_bound(header.tau, restored_slack)
        detail = f"{bound} after restoration (tau {header.tau}, slack {restored_slack})"
        rows[-1] = ("guaranteed max error", detail)
    if note:
        rows.append(("note", note))
    _print_rows(rows)


def _print_rows(rows: Iterable[tuple[str, str]]) -> None:
    rows = list(rows)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")


def _raw_bytes(header: codec.StreamInfo) -> int:
    return header.num_samples * header.dtype.itemsize


def _file_result(header: codec.StreamInfo, note: str = "") -> FileResult:
    return FileResult(
        raw_bytes=_raw_bytes(header), stream_bytes=header.total_bytes, samples=header.num_samples, note=note
    )


def _read_stream(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path.read_bytes()


def _is_stream_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == STREAM_SUFFIX


def _is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(STREAM_SUFFIX + SIDECAR_SUFFIX)


def _needs_tiff(channels: int, layout: StackLayout | None, signed: bool) -> bool:
    return channels not in PNG_CHANNELS or layout is not None or signed


def _as_tiff(target: Path) -> Path:
    return target.with_suffix(".tif") if target.suffix.lower() == ".png" else target


def _check_image_target(target: Path) -> None:
    if target.suffix.lower() not in WRITE_SUFFIXES:
        raise CliError(f"cannot write {target}: use one of {', '.join(sorted(WRITE_SUFFIXES))}")


def _refuse_overwrite(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise CliError(f"{target} exists; pass --force to overwrite it")
    if target.is_dir():
        raise CliError(f"{target} is a folder; cannot write a file there")


def _make_parent(target: Path) -> None:
    """Create the output's folder only once there is something to write (a failure leaves none)."""
    target.parent.mkdir(parents=True, exist_ok=True)


def _warn(message: str) -> None:
    tqdm.write(f"linf: warning: {message}", file=sys.stderr)


# --- planning and batch mode -------------------------------------------------------------------


def _plan(
    inputs: list[Path], output: str, wanted: Callable[[Path], bool], output_suffix: str, recursive: bool
) -> Plan:
    """One file in, a file (or folder) out; otherwise every file into the output folder.

    The output is a folder when it ends with a path separator, already is one, or there is more
    than one input file; a missing folder is created. Files named on the command line are all
    processed (a wrong one fails with its reason); in folders, only ``wanted`` files are.
    """
    out = Path(output)
    wants_folder = output.endswith(("/", os.sep)) or out.is_dir()
    if len(inputs) == 1 and not inputs[0].is_dir():
        source = inputs[0]
        target = out / source.with_suffix(output_suffix).name if wants_folder else out
        return Plan(jobs=[(source, target)], batch=False)
    if out.exists() and not out.is_dir():
        raise CliError(f"with several inputs or a folder, the output must be a folder; {out} is a file")
    jobs, skipped = [], 0
    for item in inputs:
        if not item.is_dir():
            jobs.append((item, out / item.with_suffix(output_suffix).name))
            continue
        for path in _folder_files(item, recursive):
            if wanted(path):
                jobs.append((path, out / path.relative_to(item).with_suffix(output_suffix)))
            elif not _is_sidecar(path):
                skipped += 1
    if not jobs:
        raise CliError(f"no files to process in {', '.join(str(item) for item in inputs)}")
    _refuse_duplicate_targets(jobs)
    return Plan(jobs=jobs, batch=True, skipped=skipped)


def _folder_files(folder: Path, recursive: bool) -> list[Path]:
    return sorted(path for path in (folder.rglob("*") if recursive else folder.iterdir()) if path.is_file())


def _refuse_duplicate_targets(jobs: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for source, target in jobs:
        if target in seen:
            raise CliError(f"{seen[target]} and {source} would both be written to {target}")
        seen[target] = source


def _execute(
    verb: str, plan: Plan, process: Callable[[Path, Path, bool, int], FileResult], threads: int = 1
) -> int:
    """One file (facts printed) on ``threads`` threads, or a batch (summary) ``threads`` files at a time."""
    if not plan.batch:
        (source, target), = plan.jobs
        process(source, target, True, threads)
        return 0
    # Files in parallel; each file's own threads share out the rest (the bytes never depend on them).
    workers = max(1, min(threads, len(plan.jobs)))
    per_file = max(1, threads // workers)
    return _run_batch(verb, plan, lambda source, target: process(source, target, False, per_file), workers)


def _run_batch(verb: str, plan: Plan, process: Callable[[Path, Path], FileResult], workers: int = 1) -> int:
    """Process every job, report failures by name without stopping, print a summary; 2 if any failed.

    With ``workers`` > 1 the files are processed by a thread pool (the codec releases the GIL);
    results and failures are still reported in the plan's order, so the output is that of one
    worker."""
    results: list[tuple[Path, FileResult]] = []
    failures = 0

    def attempt(source: Path, target: Path) -> tuple[FileResult | None, BaseException | None]:
        try:
            return process(source, target), None
        except Exception as exc:  # noqa: BLE001 - one bad file must not end the batch
            return None, exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = [(source, pool.submit(attempt, source, target)) for source, target in plan.jobs]
        for source, future in progress_bar(pending, desc=verb, unit="file"):
            result, exc = future.result()
            if exc is not None:
                failures += 1
                _report_failure(source, exc)
            else:
                assert result is not None
                results.append((source, result))
    _print_summary(verb, [result for _, result in results], failures, plan.skipped)
    notes = [(source, result.note) for source, result in results if result.note]
    for source, note in notes:
        print(f"  {source}: {note}")
    return 2 if failures else 0


def _report_failure(path: Path, exc: BaseException) -> None:
    message = _describe(exc)
    if not message.startswith(str(path)):
        message = f"{path}: {message}"
    tqdm.write(f"linf: error: {message}", file=sys.stderr)


def _print_summary(verb: str, results: list[FileResult], failures: int, skipped: int) -> None:
    done = f"{verb}d" if verb.endswith("e") else f"{verb}ed"
    counts = f"{done} {len(results)} file(s), {failures} failed"
    if skipped:
        counts += f", {skipped} skipped (not the files {verb} reads)"
    stream = sum(result.stream_bytes for result in results)
    if not stream:
        print(counts)
        return
    raw = sum(result.raw_bytes for result in results)
    samples = sum(result.samples for result in results)
    print(
        f"{counts}: raw {raw:,} bytes, streams {stream:,} bytes, ratio {raw / stream:.3f}:1, "
        f"mean bits per sample {8 * stream / samples:.4f} (over all samples)"
    )


# --- entry point -------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    # FileNotFoundError from open() reads "[Errno 2] No such file or directory: 'x'": keep it whole.
    if isinstance(exc, (OSError, ValueError, CliError)):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def _quiet_libraries() -> None:
    """Damaged files make OpenCV and tifffile log their own half-lines; linf reports each failure itself."""
    from cv2.utils import logging as opencv_logging

    opencv_logging.setLogLevel(opencv_logging.LOG_LEVEL_ERROR)
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    """Run ``linf`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    _quiet_libraries()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help, --version, usage errors (already printed)
        return exit_request.code if isinstance(exit_request.code, int) else 2
    try:
        return args.handler(args)
    except (OSError, ValueError, CliError) as exc:  # CodecError is a ValueError
        print(f"linf: error: {_describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
