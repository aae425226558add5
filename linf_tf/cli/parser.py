"""The ``linf`` command line: subcommands, options, their help texts and value checks.

Each subcommand's parser names its handler (``args.handler``), which :func:`linf_tf.cli.main` calls.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from linf_tf.cli.compress import run_compress
from linf_tf.cli.decompress import run_decompress
from linf_tf.cli.info import run_info
from linf_tf.cli.restore import run_restore
from linf_tf.imageio import READ_SUFFIXES
from linf_tf.runtime import DEFAULT_SLACK, DEFAULT_TILE, verified
from linf_tf.sidecar import SIDECAR_SUFFIX


class _Parser(argparse.ArgumentParser):
    """Usage errors read ``linf: error: ...`` for subcommands too (argparse says ``linf compress:``)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"linf: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``linf`` parser with its four subcommands."""
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
        "to give back the axis order and the signed values. With --restore-slack K the stream (format 5) "
        "also carries an encoder-verified restoration: decompress then returns every sample within "
        "TAU + floor(K*TAU) of the original, with most of the network's gain.",
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
    sub.add_argument(
        "--restore-slack", type=float, default=None, metavar="K",
        help="write a format-5 stream with encoder-verified restoration: the encoder runs the shipped "
        "integer network and stores, per block, how far it may move the samples, so that decompress "
        "guarantees TAU + floor(K*TAU) (K from 0 to 1, in thousandths, e.g. 0.25; needs TAU >= 1 and "
        "unsigned samples). Default: a plain stream",
    )
    sub.add_argument(
        "--slack-block", type=_slack_block, default=None, metavar="{auto,8,16,32,...}",
        help="with --restore-slack: the block size (pixels, 2-1024) of the stored level map; 'auto' "
        f"picks the best of {', '.join(map(str, verified.BLOCK_SIZES))}, each held to side information "
        f"within {verified.DEFAULT_MAX_SIDE_FRACTION:.0%}% of the stream (a block size given explicitly "
        "gets its best map, whatever its size) (default: auto)",
    )
    sub.add_argument(
        "--fast", action="store_true",
        help="colour and multichannel images: write format 4, about 1.7x faster to code on one thread "
        "for more bits (RGB photos: 1.5%% more at TAU 0, 3-4%% at 2, 5-7%% at 8); gray images are the "
        "same either way",
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
        "original axis order and signed values in a TIFF. Format-5 streams (compress --restore-slack) are "
        "restored automatically, exactly as their encoder verified: every sample within the bound that "
        "compress printed.",
    )
    sub.add_argument("inputs", type=Path, nargs="+", metavar="IN", help=".nlc file(s) or folder(s)")
    sub.add_argument("-o", "--output", required=True, metavar="OUT", help=OUTPUT_HELP + " (.png/.tif)")
    _add_format_option(sub)
    restoration = sub.add_mutually_exclusive_group()
    restoration.add_argument(
        "--restore", action="store_true",
        help="plain streams: after decoding, remove the codec's artifacts with the l-inf CNN; every "
        "sample stays within tau + floor(slack*tau) of the original (printed). Refused for format-5 "
        "streams, which carry their own restoration",
    )
    restoration.add_argument(
        "--no-restore", action="store_true",
        help="format-5 streams: skip their encoder-verified restoration and write the plain decoded "
        "image (within tau); e.g. when this installation lacks the stream's model",
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
        "(the payload is not decoded). Each bad file is reported by name; exit status 2 if any. For a "
        "format-5 stream also its verified restoration: the guaranteed bound, slack, block size, levels, "
        "model hash and side information.",
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


def _slack_block(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a block size in pixels, got {text!r}") from None
    if not 2 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"must be 'auto' or 2 to 1024 pixels, got {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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
