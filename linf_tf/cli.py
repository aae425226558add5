"""The ``linf`` command: compress images to ``.nlc`` streams, decompress them, inspect headers.

Every decoded sample is within ``tau`` of the original (``tau = 0``: bit-exact). A folder given
as input is processed file by file into an output folder, with a progress bar and a summary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
from tqdm import tqdm

from linf_tf import codec
from linf_tf.imageio import (
    READ_SUFFIXES,
    WRITE_SUFFIXES,
    ImageData,
    is_supported_image,
    read_image,
    write_image,
)
from linf_tf.restoration import (
    DEFAULT_SLACK,
    DEFAULT_TILE,
    NetworkRestorer,
    check_slack,
    guaranteed_bound,
)

STREAM_SUFFIX = ".nlc"
PNG_CHANNELS = (1, 3, 4)  # what a PNG can hold; other channel counts are written as TIFF


class CliError(Exception):
    """A user-facing failure: printed as ``linf: error: <message>``, exit status 2."""


@dataclass
class FileResult:
    """Sizes of one processed file, for the batch summary."""

    raw_bytes: int  # samples * bytes per sample, what the image occupies uncompressed
    stream_bytes: int
    samples: int


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


def _add_compress(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "compress",
        help="compress an image (or every image in a folder) to .nlc",
        description="Compress an image, or every supported image in a folder, to .nlc streams. "
        f"Readable formats: {', '.join(sorted(READ_SUFFIXES))} (DICOM also without a suffix).",
    )
    sub.add_argument("input", type=Path, metavar="IN", help="image file, or a folder of images")
    sub.add_argument(
        "-t", "--tau", type=_non_negative_int, required=True,
        help="guaranteed maximum absolute error per sample (0 = lossless); at most (2**bit_depth - 1) // 2",
    )
    sub.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT",
        help="output .nlc file (or an existing folder to put it in); a folder when IN is a folder",
    )
    sub.add_argument(
        "--bit-depth", type=_bit_depth, default=None, metavar="N",
        help="bit depth to store (1-16), e.g. 12 for 12-bit data in 16-bit files; default: from the file "
        "(8 for 8-bit images, TIFF BitsPerSample, PGM maxval, DICOM BitsStored, else 16)",
    )
    sub.add_argument(
        "--signed-offset", action="store_true",
        help="accept signed data with negative samples (e.g. CT) by adding 2**(bits-1); "
        "subtract that offset from the decompressed samples",
    )
    _add_common_output_options(sub)
    sub.set_defaults(handler=run_compress)


def _add_decompress(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "decompress",
        help="decompress .nlc stream(s) to PNG or TIFF",
        description="Decompress a .nlc stream, or every .nlc file in a folder, to PNG or TIFF.",
    )
    sub.add_argument("input", type=Path, metavar="IN", help=".nlc file, or a folder of .nlc files")
    sub.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT",
        help="output .png/.tif/.tiff file (or an existing folder); a folder when IN is a folder",
    )
    sub.add_argument(
        "--format", choices=("png", "tif"), default="png",
        help="image format for folder output and for an output folder (default: png; images whose "
        "channel count PNG cannot hold are written as tif)",
    )
    sub.add_argument(
        "--restore", action="store_true",
        help="after decoding, remove the codec's artifacts with the l-inf CNN; every sample stays "
        "within tau + floor(slack*tau) of the original (printed)",
    )
    _add_network_options(sub)
    _add_common_output_options(sub)
    sub.set_defaults(handler=run_decompress)


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
        help="restore an already-decoded image with the l-inf CNN",
        description="Restore an image that the codec decoded at TAU (e.g. written by "
        "'linf decompress') with the l-inf CNN, keeping every sample within TAU + floor(slack*TAU) "
        "of the original.",
    )
    sub.add_argument("input", type=Path, metavar="IN", help="decoded image (PNG/TIFF/BMP/PGM)")
    sub.add_argument(
        "-t", "--tau", type=_non_negative_int, required=True,
        help="the error bound the image was compressed with",
    )
    sub.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="output .png/.tif file")
    sub.add_argument(
        "--bit-depth", type=_bit_depth, default=None, metavar="N",
        help="bit depth of the samples (default: from the file)",
    )
    _add_network_options(sub)
    _add_common_output_options(sub)
    sub.set_defaults(handler=run_restore)


def _add_info(commands: argparse._SubParsersAction) -> None:
    sub = commands.add_parser(
        "info", help="print the header of .nlc stream(s)",
        description="Print the header fields of one or more .nlc streams (the payload is not decoded).",
    )
    sub.add_argument("inputs", type=Path, nargs="+", metavar="IN", help=".nlc file(s)")
    sub.set_defaults(handler=run_info)


def _add_common_output_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("-f", "--force", action="store_true", help="overwrite existing output files")
    sub.add_argument(
        "-r", "--recursive", action="store_true",
        help="with a folder as IN, also process sub-folders (mirrored in the output folder)",
    )


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
    if args.input.is_dir():
        jobs = _batch_jobs(args.input, args.output, is_supported_image, STREAM_SUFFIX, args.recursive)
        return _run_batch("compress", jobs, lambda src, dst: compress_file(src, dst, args))
    output = _single_output(args.output, args.input.with_suffix(STREAM_SUFFIX).name)
    compress_file(args.input, output, args, verbose=True)
    return 0


def compress_file(source: Path, target: Path, args: argparse.Namespace, verbose: bool = False) -> FileResult:
    """Compress one image file to ``target``; print its facts when ``verbose``."""
    if target.suffix.lower() in READ_SUFFIXES:
        raise CliError(f"refusing to write a .nlc stream to {target}: the name says it is an image")
    _refuse_overwrite(target, args.force)
    image = read_image(source, allow_signed=args.signed_offset)
    bit_depth = args.bit_depth if args.bit_depth is not None else image.bit_depth
    stream = codec.encode(image.pixels, args.tau, bit_depth=bit_depth)
    target.write_bytes(stream)
    header = codec.info(stream)
    if verbose:
        _print_facts(f"{source} -> {target}", header, image)
    return _file_result(header)


# --- decompress --------------------------------------------------------------------------------


def run_decompress(args: argparse.Namespace) -> int:
    suffix = "." + args.format
    if args.input.is_dir():
        jobs = _batch_jobs(args.input, args.output, _is_stream_file, suffix, args.recursive)
        return _run_batch(
            "decompress", jobs, lambda src, dst: decompress_file(src, dst, args, fit_format=True)
        )
    output = _single_output(args.output, args.input.with_suffix(suffix).name)
    decompress_file(args.input, output, args, verbose=True)
    return 0


def decompress_file(
    source: Path, target: Path, args: argparse.Namespace, verbose: bool = False, fit_format: bool = False
) -> FileResult:
    """Decode one stream and write it as an image; print the header's facts when ``verbose``.

    ``fit_format`` (batch mode) switches a .png target to .tif when PNG cannot hold the channels.
    """
    data = _read_stream(source)
    header = codec.info(data)
    if fit_format and header.channels not in PNG_CHANNELS and target.suffix.lower() == ".png":
        target = target.with_suffix(".tif")
    if target.suffix.lower() not in WRITE_SUFFIXES:
        raise CliError(f"cannot write {target}: use one of {', '.join(sorted(WRITE_SUFFIXES))}")
    _refuse_overwrite(target, args.force)
    pixels = decoded_pixels(data, args)
    write_image(target, pixels)
    if verbose:
        _print_facts(f"{source} -> {target}", header, restored_slack=args.slack if args.restore else None)
    return _file_result(header)


def decoded_pixels(data: bytes, args: argparse.Namespace) -> np.ndarray:
    """The pixels to write: the decoded stream, restored by the network with ``--restore``."""
    pixels = codec.decode(data)
    if not args.restore:
        return pixels
    header = codec.info(data)
    return _network(args).restore(pixels, header.tau, args.slack, header.bit_depth)


def _network(args: argparse.Namespace) -> NetworkRestorer:
    """One restorer per run: a folder of streams loads the model once."""
    if getattr(args, "network", None) is None:
        check_slack(args.slack)
        args.network = NetworkRestorer(args.model, tile=args.tile)
    return args.network


def run_restore(args: argparse.Namespace) -> int:
    _refuse_overwrite(args.output, args.force)
    if args.output.suffix.lower() not in WRITE_SUFFIXES:
        raise CliError(f"cannot write {args.output}: use one of {', '.join(sorted(WRITE_SUFFIXES))}")
    image = read_image(args.input)
    bit_depth = args.bit_depth or image.bit_depth
    restored = _network(args).restore(image.pixels, args.tau, args.slack, bit_depth)
    write_image(args.output, restored)
    _print_rows([
        ("input", f"{args.input} (decoded at tau {args.tau}, {bit_depth}-bit)"),
        ("output", str(args.output)),
        ("model", str(args.model)),
        ("guaranteed max error", f"{guaranteed_bound(args.tau, args.slack)} "
                                 f"(tau {args.tau}, slack {args.slack})"),
    ])
    return 0


# --- info --------------------------------------------------------------------------------------


def run_info(args: argparse.Namespace) -> int:
    for index, path in enumerate(args.inputs):
        header = codec.info(_read_stream(path))
        if index:
            print()
        _print_rows(
            [
                ("file", str(path)),
                ("format version", str(header.format_version)),
                ("width", str(header.width)),
                ("height", str(header.height)),
                ("channels", str(header.channels)),
                ("bit depth", str(header.bit_depth)),
                ("tau (max error)", str(header.tau)),
                ("coding mode", header.coding_mode),
                ("header bytes", f"{header.header_bytes:,}"),
                ("payload bytes", f"{header.payload_bytes:,}"),
                ("total bytes", f"{header.total_bytes:,}"),
                ("decoded array", f"{header.shape} {header.dtype}"),
                ("bits per sample", f"{header.bits_per_sample:.4f}"),
            ]
        )
    return 0


# --- shared helpers ----------------------------------------------------------------------------


def _print_facts(
    title: str, header: codec.StreamInfo, image: ImageData | None = None, restored_slack: float | None = None
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
    if image is not None and image.offset:
        rows.append(("signed offset", f"+{image.offset} (subtract it from the decompressed samples)"))
    _print_rows(rows)


def _print_rows(rows: Iterable[tuple[str, str]]) -> None:
    rows = list(rows)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")


def _raw_bytes(header: codec.StreamInfo) -> int:
    return header.num_samples * header.dtype.itemsize


def _file_result(header: codec.StreamInfo) -> FileResult:
    return FileResult(
        raw_bytes=_raw_bytes(header), stream_bytes=header.total_bytes, samples=header.num_samples
    )


def _read_stream(path: Path) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path.read_bytes()


def _is_stream_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == STREAM_SUFFIX


def _single_output(output: Path, default_name: str) -> Path:
    """An existing folder as output receives the file under its default name."""
    return output / default_name if output.is_dir() else output


def _refuse_overwrite(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise CliError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)


# --- batch mode --------------------------------------------------------------------------------


def _batch_jobs(
    folder: Path,
    out_folder: Path,
    wanted: Callable[[Path], bool],
    output_suffix: str,
    recursive: bool,
) -> list[tuple[Path, Path]]:
    if out_folder.exists() and not out_folder.is_dir():
        raise CliError(f"with a folder as input, the output must be a folder; {out_folder} is a file")
    candidates = sorted(folder.rglob("*") if recursive else folder.iterdir())
    sources = [path for path in candidates if wanted(path)]
    if not sources:
        raise CliError(f"no files to process in {folder}")
    jobs = [(src, out_folder / src.relative_to(folder).with_suffix(output_suffix)) for src in sources]
    _refuse_duplicate_targets(jobs)
    return jobs


def _refuse_duplicate_targets(jobs: list[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for source, target in jobs:
        if target in seen:
            raise CliError(f"{seen[target]} and {source} would both be written to {target}")
        seen[target] = source


def _run_batch(verb: str, jobs: list[tuple[Path, Path]], process: Callable[[Path, Path], FileResult]) -> int:
    """Process every job, report failures without stopping, print a summary; 2 if any failed."""
    results: list[FileResult] = []
    failures = 0
    for source, target in tqdm(jobs, desc=verb, unit="file", disable=None):
        try:
            results.append(process(source, target))
        except (OSError, ValueError, CliError) as exc:
            failures += 1
            tqdm.write(f"linf: error: {source}: {_describe(exc)}", file=sys.stderr)
    _print_summary(verb, results, failures)
    return 2 if failures else 0


def _print_summary(verb: str, results: list[FileResult], failures: int) -> None:
    raw = sum(result.raw_bytes for result in results)
    stream = sum(result.stream_bytes for result in results)
    samples = sum(result.samples for result in results)
    bits = f"{8 * stream / samples:.4f}" if samples else "n/a"
    ratio = f"{raw / stream:.3f}:1" if stream else "n/a"
    print(
        f"{verb}ed {len(results)} file(s), {failures} failed: raw {raw:,} bytes, streams {stream:,} bytes, "
        f"ratio {ratio}, mean bits per sample {bits} (over all samples)"
    )


# --- entry point -------------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    # FileNotFoundError from open() reads "[Errno 2] No such file or directory: 'x'": keep it whole.
    return str(exc) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Run ``linf`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
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
