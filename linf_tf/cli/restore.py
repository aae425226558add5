"""``linf restore``: already-decoded images through the l-inf CNN, and the network set-up that
``linf decompress --restore`` shares."""

from __future__ import annotations

import argparse
from pathlib import Path

from linf_tf.cli.batch import execute, plan
from linf_tf.cli.common import (
    CliError,
    FileResult,
    as_tiff,
    check_image_target,
    make_parent,
    needs_tiff,
    print_rows,
    refuse_overwrite,
    to_signed,
    warn,
)
from linf_tf.image_samples import ImageData
from linf_tf.imageio import TIFF_SUFFIXES, is_supported_image, read_image, write_image
from linf_tf.runtime import NetworkRestorer, check_slack, guaranteed_bound
from linf_tf.sidecar import Sidecar

MIN_TILE = 16
# `linf restore` warns when undeclared 16-bit data fits in this many bits (likely 10/12/14-bit).
NARROW_DATA_BITS = 14


def make_network(args: argparse.Namespace) -> NetworkRestorer | None:
    """One restorer per run (a folder of images loads the model once), or None without --restore."""
    if not getattr(args, "restore", True):
        return None
    check_slack(args.slack)
    return NetworkRestorer(args.model, tile=args.tile)


def check_network_options(args: argparse.Namespace) -> None:
    """--slack and --tile checked before any file is read."""
    check_slack(args.slack)
    if args.tile < MIN_TILE:
        raise CliError(f"--tile must be at least {MIN_TILE} pixels, got {args.tile}")


def run_restore(args: argparse.Namespace) -> int:
    """The ``restore`` command: one image or a batch, the model loaded once."""
    check_network_options(args)
    jobs = plan(args.inputs, args.output, is_supported_image, "." + args.format, args.recursive)
    restorer = make_network(args)
    return execute(
        "restore", jobs,
        lambda src, dst, verbose, threads: restore_file(src, dst, args, verbose, not verbose, restorer),
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
    if fit_format and needs_tiff(image.channels, image.layout, image.signed):
        target = as_tiff(target)
    check_image_target(target)
    if image.signed and target.suffix.lower() not in TIFF_SUFFIXES:
        raise CliError(f"{source} holds signed samples; write the restored image as .tif")
    refuse_overwrite(target, args.force)
    network = network or make_network(args)
    restored = network.restore(image.pixels, args.tau, args.slack, bit_depth)
    if image.signed:
        restored = to_signed(restored, Sidecar(signed=True, offset=image.offset, signed_bits=bit_depth))
    make_parent(target)
    write_image(target, restored, bit_depth=bit_depth, layout=image.layout)
    if verbose:
        print_rows([
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
            warn(
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
