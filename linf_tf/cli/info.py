"""``linf info``: the header fields of ``.nlc`` streams (and their sidecars), without decoding."""

from __future__ import annotations

import argparse
from pathlib import Path

from linf_tf import codec
from linf_tf.cli.batch import folder_files
from linf_tf.cli.common import (
    STREAM_SUFFIX,
    CliError,
    is_stream_file,
    print_rows,
    read_stream,
    report_failure,
)
from linf_tf.sidecar import read_sidecar, sidecar_path


def run_info(args: argparse.Namespace) -> int:
    """Print each stream's header; every bad file is named, and the exit status is then 2."""
    paths, failures = [], 0
    for item in args.inputs:
        if not item.is_dir():
            paths.append(item)
            continue
        streams = [path for path in folder_files(item, args.recursive) if is_stream_file(path)]
        if not streams:
            report_failure(item, CliError(f"no {STREAM_SUFFIX} files in folder {item}"))
            failures += 1
        paths.extend(streams)
    shown = 0
    for path in paths:
        try:
            rows = _info_rows(path)
        except (OSError, ValueError) as exc:
            report_failure(path, exc)
            failures += 1
            continue
        if shown:
            print()
        print_rows(rows)
        shown += 1
    if shown + failures > 1:
        print(f"\ninfo: {shown} file(s) read, {failures} failed")
    return 2 if failures else 0


def _info_rows(path: Path) -> list[tuple[str, str]]:
    header = codec.info(read_stream(path))
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
