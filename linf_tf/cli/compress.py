"""``linf compress``: images to ``.nlc`` streams, plus a sidecar for what a stream cannot hold; with
``--restore-slack``, format-5 streams that carry an encoder-verified restoration."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import numpy as np

from linf_tf import codec
from linf_tf.cli.batch import execute, plan, thread_count
from linf_tf.cli.common import (
    STREAM_SUFFIX,
    CliError,
    FileResult,
    file_result,
    make_parent,
    print_facts,
    print_verified_facts,
    refuse_overwrite,
)
from linf_tf.image_samples import ImageData
from linf_tf.imageio import READ_SUFFIXES, is_supported_image, read_image
from linf_tf.runtime import verified
from linf_tf.sidecar import Sidecar, from_image, sidecar_path, write_sidecar


def run_compress(args: argparse.Namespace) -> int:
    """The ``compress`` command: one image or a batch."""
    check_verified_options(args)
    jobs = plan(args.inputs, args.output, is_supported_image, STREAM_SUFFIX, args.recursive)
    return execute(
        "compress", jobs, lambda src, dst, verbose, threads: compress_file(src, dst, args, verbose, threads),
        thread_count(args),
    )


def compress_file(
    source: Path, target: Path, args: argparse.Namespace, verbose: bool = False, threads: int | None = None
) -> FileResult:
    """Compress one image file to ``target`` (plus its sidecar when needed); print facts when ``verbose``.

    ``threads`` code the image's stripes (default: the codec's); the stream does not depend on it."""
    if target.suffix.lower() in READ_SUFFIXES:
        raise CliError(f"refusing to write a .nlc stream to {target}: the name says it is an image")
    refuse_overwrite(target, args.force)
    refuse_overwrite(sidecar_path(target), args.force)
    image = read_for_codec(source, args.signed_offset)
    bit_depth = args.bit_depth if args.bit_depth is not None else image.bit_depth
    restore_slack = getattr(args, "restore_slack", None)
    fast = getattr(args, "fast", False)
    if restore_slack is None:
        stream = codec.encode(image.pixels, args.tau, bit_depth=bit_depth, threads=threads, fast=fast)
        header, restoration = codec.info(stream), None
    else:
        if image.signed:
            raise CliError(
                f"{source} holds signed samples; --restore-slack (encoder-verified restoration) takes "
                "unsigned images only: compress it without --restore-slack"
            )
        block = "auto" if args.slack_block is None else args.slack_block
        stream = verified.encode(image.pixels, args.tau, restore_slack, block=block, bit_depth=bit_depth,
                                 threads=threads, fast=fast)
        restoration, _, plain = verified.split(stream)
        header = codec.info(plain)
    make_parent(target)
    target.write_bytes(stream)
    extra = from_image(image)
    _store_sidecar(target, extra, source)
    note = _compress_note(image, extra, target)
    if verbose:
        if restoration is None:
            print_facts(f"{source} -> {target}", header, note=note)
        else:
            print_verified_facts(f"{source} -> {target}", header, restoration, len(stream), note=note)
    return file_result(header, note, stream_bytes=len(stream))


def check_verified_options(args: argparse.Namespace) -> None:
    """--restore-slack and --slack-block checked before any file is read."""
    slack = getattr(args, "restore_slack", None)
    if slack is None:
        if getattr(args, "slack_block", None) is not None:
            raise CliError("--slack-block only applies with --restore-slack")
        return
    if not 0.0 <= slack <= 1.0:  # NaN too
        raise CliError(f"--restore-slack must be between 0 and 1, got {slack:g}")
    thousandths = slack * 1000
    if abs(thousandths - round(thousandths)) > 1e-6:
        # The stream stores thousandths; rounding could loosen the bound beyond the one asked for.
        raise CliError(f"--restore-slack is stored in thousandths: give at most 3 decimals, got {slack!r}")
    if args.tau == 0:
        raise CliError("--restore-slack needs tau >= 1: at tau 0 the stream is already lossless")


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
