"""``linf compress``: images to ``.nlc`` streams, plus a sidecar for what a stream cannot hold."""

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
    refuse_overwrite,
)
from linf_tf.image_samples import ImageData
from linf_tf.imageio import READ_SUFFIXES, is_supported_image, read_image
from linf_tf.sidecar import Sidecar, from_image, sidecar_path, write_sidecar


def run_compress(args: argparse.Namespace) -> int:
    """The ``compress`` command: one image or a batch."""
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
    stream = codec.encode(image.pixels, args.tau, bit_depth=bit_depth, threads=threads)
    header = codec.info(stream)
    make_parent(target)
    target.write_bytes(stream)
    extra = from_image(image)
    _store_sidecar(target, extra, source)
    note = _compress_note(image, extra, target)
    if verbose:
        print_facts(f"{source} -> {target}", header, note=note)
    return file_result(header, note)


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
