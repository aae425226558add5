"""``linf info``: the header fields of ``.nlc`` streams (and their sidecars), without decoding; for a
format-5 stream also what its encoder-verified restoration header says."""

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
    side_information_text,
    verified_bound_text,
)
from linf_tf.runtime import verified
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
    data = read_stream(path)
    if verified.is_verified_stream(data):
        return _verified_rows(path, data)
    return _plain_rows(path, codec.info(data))


def _plain_rows(path: Path, header: codec.StreamInfo) -> list[tuple[str, str]]:
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


def _verified_rows(path: Path, data: bytes) -> list[tuple[str, str]]:
    """A format-5 stream: its plain stream's rows, relabelled where they differ, plus the restoration's."""
    restoration, _, plain = verified.split(data)
    header = codec.info(plain)
    total = len(data)
    rows = dict(_plain_rows(path, header))
    rows["format version"] = (f"{verified.FORMAT_VERSION} (plain stream + encoder-verified restoration; "
                              f"plain stream format {header.format_version})")
    rows["tau (max error)"] = f"{header.tau} (plain output, decompress --no-restore)"
    rows["header bytes"] += " (plain stream)"
    rows["payload bytes"] += " (plain stream)"
    rows["total bytes"] = f"{total:,} (whole file: plain stream {header.total_bytes:,} + side information)"
    rows["bits per sample"] = f"{8.0 * total / header.num_samples:.4f}"
    blocks_h, blocks_w = -(-header.height // restoration.block), -(-header.width // restoration.block)
    model = verified.shipped_integer_models().get(restoration.model_hash)
    added = {
        "guaranteed max error after restoration": verified_bound_text(restoration, header.tau),
        "restore slack": f"{restoration.slack:g} (bound = tau + floor(slack * tau))",
        "restoration block": f"{restoration.block} x {restoration.block} pixels "
                             f"({blocks_h} x {blocks_w} blocks)",
        "restoration levels": ", ".join(f"{q / 4:g}d|{w}" for q, w in restoration.levels)
        + " (move = correction d scaled, clipped to ±half-width)",
        "restoration model": f"{restoration.model_hash.hex()} "
                             + (f"(shipped: {model.parent.name})" if model is not None
                                else "(not in this installation: decompress needs --no-restore)"),
        "side information": side_information_text(restoration, total),
    }
    ordered = []
    for label, value in rows.items():
        ordered.append((label, value))
        if label == "tau (max error)":
            ordered.extend(added.items())
    return ordered
