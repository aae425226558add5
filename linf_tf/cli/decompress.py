"""``linf decompress``: ``.nlc`` streams to PNG or TIFF, optionally restored by the l-inf CNN, with
what the sidecar recorded (stack axes, signed values) given back. Format-5 streams carry their own
encoder-verified restoration, applied unless ``--no-restore``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from linf_tf import codec
from linf_tf.cli.batch import execute, plan, thread_count
from linf_tf.cli.common import (
    CliError,
    FileResult,
    as_tiff,
    check_image_target,
    file_result,
    is_stream_file,
    make_parent,
    needs_tiff,
    print_facts,
    print_verified_facts,
    read_stream,
    refuse_overwrite,
    to_signed,
)
from linf_tf.cli.restore import check_network_options, make_network
from linf_tf.image_samples import StackLayout
from linf_tf.imageio import TIFF_SUFFIXES, write_image
from linf_tf.runtime import DEFAULT_SLACK, NetworkRestorer, verified
from linf_tf.sidecar import Sidecar, read_sidecar, sidecar_path


def run_decompress(args: argparse.Namespace) -> int:
    """The ``decompress`` command: one stream or a batch."""
    if args.restore:
        check_network_options(args)
    jobs = plan(args.inputs, args.output, is_stream_file, "." + args.format, args.recursive)
    if args.restore and not jobs.batch:  # refused before the network is loaded
        (source, _), = jobs.jobs
        _refuse_network_on_verified(read_stream(source), source)
    network = make_network(args)
    # The network (--restore) is shared and uses every core itself: files go one at a time, and
    # each file's stripes still decode on every thread (one thread cost 0.3 s of a 5 s restore).
    cores = thread_count(args)
    return execute(
        "decompress", jobs,
        lambda src, dst, verbose, threads: decompress_file(
            src, dst, args, verbose, not verbose, cores if args.restore else threads, network
        ),
        1 if args.restore else cores,
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
    data = read_stream(source)
    if verified.is_verified_stream(data):
        return _decompress_verified(data, source, target, args, verbose, fit_format, threads)
    header = codec.info(data)
    extra = read_sidecar(source) or Sidecar()
    if fit_format and needs_tiff(header.channels, extra.layout, extra.signed or header.dtype.kind == "i"):
        target = as_tiff(target)
    check_image_target(target)
    refuse_overwrite(target, args.force)
    if args.restore and network is None:
        network = make_network(args)
    pixels = decoded_pixels(data, network, args.slack if args.restore else None, threads)
    pixels, layout, note = _undo_sidecar(pixels, extra, target, source)
    make_parent(target)
    write_image(target, pixels, bit_depth=header.bit_depth, layout=layout)
    if verbose:
        slack = args.slack if args.restore else None
        print_facts(f"{source} -> {target}", header, restored_slack=slack, note=note)
    return file_result(header, note)


def _decompress_verified(
    data: bytes,
    source: Path,
    target: Path,
    args: argparse.Namespace,
    verbose: bool,
    fit_format: bool,
    threads: int | None,
) -> FileResult:
    """A format-5 stream: its plain stream decoded and, unless --no-restore, restored as the encoder
    verified (a missing model or a restoration that differs from the encoder's is a CodecError)."""
    _refuse_network_on_verified(data, source, args.restore)
    restoration, _, plain = verified.split(data)
    header = codec.info(plain)
    extra = read_sidecar(source) or Sidecar()
    if fit_format and needs_tiff(header.channels, extra.layout, extra.signed or header.dtype.kind == "i"):
        target = as_tiff(target)
    check_image_target(target)
    refuse_overwrite(target, args.force)
    restore = not getattr(args, "no_restore", False)
    pixels = verified.decode(data, restore=restore, threads=threads)
    pixels, layout, note = _undo_sidecar(pixels, extra, target, source)
    make_parent(target)
    write_image(target, pixels, bit_depth=header.bit_depth, layout=layout)
    if verbose:
        print_verified_facts(
            f"{source} -> {target}", header, restoration, len(data), restored=restore, note=note
        )
    return file_result(header, note, stream_bytes=len(data))


def _refuse_network_on_verified(data: bytes, source: Path, restore: bool = True) -> None:
    if restore and verified.is_verified_stream(data):
        raise CliError(
            f"{source} is a format-5 stream: it carries its own encoder-verified restoration, which "
            "decompress applies by default; drop --restore (the l-inf CNN is for plain streams)"
        )


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
            pixels = to_signed(pixels, extra)
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
