"""What every ``linf`` command shares: the user-facing error, one file's result, path checks, printing.

Kept apart from the commands so that compress, decompress, restore and info word their output and
refuse bad targets the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from linf_tf import codec
from linf_tf.image_samples import StackLayout
from linf_tf.imageio import WRITE_SUFFIXES
from linf_tf.runtime import guaranteed_bound
from linf_tf.runtime.verified import VerifiedHeader
from linf_tf.sidecar import SIDECAR_SUFFIX, Sidecar

STREAM_SUFFIX = ".nlc"
# Channel counts a batch writes as PNG; others (2 = two planes, not gray+alpha as far as we know) as TIFF.
PNG_CHANNELS = (1, 3, 4)


class CliError(Exception):
    """A user-facing failure: printed as ``linf: error: <message>``, exit status 2."""


@dataclass
class FileResult:
    """Sizes of one processed file, for the batch summary."""

    raw_bytes: int  # samples * bytes per sample, what the image occupies uncompressed
    stream_bytes: int
    samples: int
    note: str = ""  # what was written beyond plain samples (signed offset, stack order), for the summary


def print_facts(
    title: str, header: codec.StreamInfo, restored_slack: float | None = None, note: str = ""
) -> None:
    """The facts of one stream (sizes, ratio, guaranteed error), printed when one file is processed."""
    rows = fact_rows(title, header, header.total_bytes, header.coding_mode)
    rows.append(("guaranteed max error", str(header.tau)))
    if restored_slack is not None:
        bound = guaranteed_bound(header.tau, restored_slack)
        detail = f"{bound} after restoration (tau {header.tau}, slack {restored_slack})"
        rows[-1] = ("guaranteed max error", detail)
    if note:
        rows.append(("note", note))
    print_rows(rows)


def print_verified_facts(
    title: str, header: codec.StreamInfo, restoration: VerifiedHeader, total_bytes: int,
    restored: bool = True, note: str = "",
) -> None:
    """The facts of one format-5 stream: ``header`` is its plain stream's, ``total_bytes`` the whole file.

    ``restored``: the verified restoration was (or will be, by decompress) applied, so the bound is
    ``restoration.bound``; else the plain output's tau."""
    rows = fact_rows(title, header, total_bytes, f"{header.coding_mode} + verified restoration")
    if restored:
        rows.append(("guaranteed max error", verified_bound_text(restoration, header.tau)))
    else:
        rows.append(("guaranteed max error", f"{header.tau} (plain output: verified restoration skipped "
                                             f"with --no-restore; {restoration.bound} with it)"))
    rows.append(("restoration block", f"{restoration.block} x {restoration.block} pixels"))
    rows.append(("side information", side_information_text(restoration, total_bytes)))
    if note:
        rows.append(("note", note))
    print_rows(rows)


def verified_bound_text(restoration: VerifiedHeader, tau: int) -> str:
    """``BOUND (verified restoration, tau T, slack K)``."""
    return f"{restoration.bound} (verified restoration, tau {tau}, slack {restoration.slack:g})"


def side_information_text(restoration: VerifiedHeader, total_bytes: int) -> str:
    """What the restoration adds to the plain stream, in bytes and as a share of the whole stream."""
    share = 100 * restoration.side_bytes / total_bytes
    return (f"{restoration.side_bytes:,} bytes ({restoration.header_bytes} header + "
            f"{restoration.map_bytes:,} level map; {share:.2f} % of the stream)")


def fact_rows(title: str, header: codec.StreamInfo, total_bytes: int, coding: str) -> list[tuple[str, str]]:
    """The rows every command's facts start with: file, shape, sizes, bits per sample, ratio."""
    raw = raw_bytes(header)
    return [
        ("file", title),
        ("shape", f"{header.shape} ({header.channels} channel{'s' if header.channels > 1 else ''}, "
                  f"{header.dtype}, {header.bit_depth}-bit)"),
        ("original size", f"{raw:,} bytes (raw samples)"),
        ("compressed size", f"{total_bytes:,} bytes ({coding})"),
        ("bits per sample", f"{8.0 * total_bytes / header.num_samples:.4f}"),
        ("compression ratio", f"{raw / total_bytes:.3f}:1"),
    ]


def print_rows(rows: Iterable[tuple[str, str]]) -> None:
    """``label: value`` lines with the values aligned."""
    rows = list(rows)
    width = max(len(label) for label, _ in rows) + 1
    for label, value in rows:
        print(f"{label + ':':<{width}} {value}")


def raw_bytes(header: codec.StreamInfo) -> int:
    """What the decoded image occupies uncompressed."""
    return header.num_samples * header.dtype.itemsize


def file_result(header: codec.StreamInfo, note: str = "", stream_bytes: int | None = None) -> FileResult:
    """The batch summary's entry for one stream (``stream_bytes``: the whole file when it is more than
    ``header``'s stream, i.e. format 5)."""
    total = header.total_bytes if stream_bytes is None else stream_bytes
    return FileResult(raw_bytes=raw_bytes(header), stream_bytes=total, samples=header.num_samples, note=note)


def read_stream(path: Path) -> bytes:
    """The bytes of a ``.nlc`` file, with a plain message when it is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    return path.read_bytes()


def is_stream_file(path: Path) -> bool:
    """Whether a folder entry is a ``.nlc`` stream (what decompress and info read)."""
    return path.is_file() and path.suffix.lower() == STREAM_SUFFIX


def is_sidecar(path: Path) -> bool:
    """Whether a folder entry is a stream's sidecar (neither processed nor counted as skipped)."""
    return path.name.lower().endswith(STREAM_SUFFIX + SIDECAR_SUFFIX)


def needs_tiff(channels: int, layout: StackLayout | None, signed: bool) -> bool:
    """Whether PNG cannot hold the image (batch mode then writes a TIFF)."""
    return channels not in PNG_CHANNELS or layout is not None or signed


def as_tiff(target: Path) -> Path:
    """``target`` with a .png suffix switched to .tif."""
    return target.with_suffix(".tif") if target.suffix.lower() == ".png" else target


def check_image_target(target: Path) -> None:
    """Refuse an output name whose suffix no image writer takes."""
    if target.suffix.lower() not in WRITE_SUFFIXES:
        raise CliError(f"cannot write {target}: use one of {', '.join(sorted(WRITE_SUFFIXES))}")


def refuse_overwrite(target: Path, force: bool) -> None:
    """Existing files are replaced only with --force; a folder never is."""
    if target.exists() and not force:
        raise CliError(f"{target} exists; pass --force to overwrite it")
    if target.is_dir():
        raise CliError(f"{target} is a folder; cannot write a file there")


def make_parent(target: Path) -> None:
    """Create the output's folder only once there is something to write (a failure leaves none)."""
    target.parent.mkdir(parents=True, exist_ok=True)


def to_signed(pixels: np.ndarray, extra: Sidecar) -> np.ndarray:
    """Samples stored with a signed offset, given back as the signed values the file held."""
    signed = np.int8 if extra.signed_bits <= 8 else np.int16
    low, high = -(1 << (extra.signed_bits - 1)), (1 << (extra.signed_bits - 1)) - 1
    # Clipping to the range the original had can only bring a sample closer to it: still within tau.
    return np.clip(pixels.astype(np.int32) - extra.offset, low, high).astype(signed)


def warn(message: str) -> None:
    """A warning on stderr that does not break a progress bar."""
    tqdm.write(f"linf: warning: {message}", file=sys.stderr)


def describe(exc: BaseException) -> str:
    """The message printed for a failure: the text alone for expected errors, else with its type."""
    # FileNotFoundError from open() reads "[Errno 2] No such file or directory: 'x'": keep it whole.
    if isinstance(exc, (OSError, ValueError, CliError)):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


def report_failure(path: Path, exc: BaseException) -> None:
    """``linf: error: PATH: message`` on stderr, so one bad file of a batch is named and the rest run."""
    message = describe(exc)
    if not message.startswith(str(path)):
        message = f"{path}: {message}"
    tqdm.write(f"linf: error: {message}", file=sys.stderr)
