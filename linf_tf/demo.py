"""Quick-start: compress and decompress sample images at several tau and check the guarantee.

    python -m linf_tf.demo [--output-dir out/demo] [--images camera,astronaut] [--taus 0,2,6,10]
                           [--restore-image astronaut,camera --restore-tau 10 --model default | --no-restore]

Uses images that ship inside the scikit-image wheel (no download). It prints one row per image
and tau, writes the ``.nlc`` streams and decoded PNGs, then compresses a colour and a gray image,
decompresses them with ``linf decompress --restore`` (the shipped l-inf CNNs: the RGB model for the
colour image, the gray model for the gray one) and prints decoded vs restored PSNR and max error;
with the default model it also writes an encoder-verified stream (format 5, bound tau + floor(tau/4))
and decompresses that. Exits with status 1 if any bound is violated.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage import data as skdata

from linf_tf import cli, codec, pixels
from linf_tf.imageio import read_image, write_image
from linf_tf.runtime import DEFAULT_SLACK, guaranteed_bound, verified

DEFAULT_TAUS = (0, 2, 6, 10)
DEFAULT_RESTORE_IMAGES = ("astronaut", "camera")  # one per shipped model: RGB and gray
DEFAULT_RESTORE_TAU = 10


@dataclass(frozen=True)
class Sample:
    pixels: np.ndarray
    bit_depth: int


def _synthetic_12bit() -> Sample:
    """camera() scaled to 12 bits with seeded sensor-like noise in the 4 new low bits.

    scikit-image ships no 16-bit image inside its wheel (brain, cells3d, ... are downloads),
    so this stands in for high-bit-depth data; it is labelled synthetic in the table.
    """
    rng = np.random.default_rng(12)
    base = skdata.camera().astype(np.uint16) * 16
    return Sample(base + rng.integers(0, 16, base.shape, dtype=np.uint16), bit_depth=12)


SAMPLES: dict[str, Callable[[], Sample]] = {
    "camera": lambda: Sample(skdata.camera(), 8),
    "astronaut": lambda: Sample(skdata.astronaut(), 8),
    "coffee": lambda: Sample(skdata.coffee(), 8),
    "immunohistochemistry": lambda: Sample(skdata.immunohistochemistry(), 8),
    "camera-12bit-synthetic": _synthetic_12bit,
}


@dataclass(frozen=True)
class Row:
    name: str
    shape: tuple[int, ...]
    dtype: str
    tau: int
    bits_per_sample: float
    max_error: int
    psnr: float
    encode_ms: float
    decode_ms: float


def psnr(original: np.ndarray, decoded: np.ndarray, bit_depth: int) -> float:
    """Peak signal-to-noise ratio in dB with peak 2**bit_depth - 1; inf when identical."""
    return pixels.psnr(original, decoded, pixels.max_value_for(bit_depth))


def max_abs_error(original: np.ndarray, decoded: np.ndarray) -> int:
    return int(np.max(np.abs(original.astype(np.int32) - decoded.astype(np.int32))))


def run_one(name: str, sample: Sample, tau: int, output_dir: Path) -> Row:
    """Encode and decode one image at one tau, save stream and decoded PNG, measure it."""
    start = time.perf_counter()
    stream = codec.encode(sample.pixels, tau, bit_depth=sample.bit_depth)
    encoded = time.perf_counter()
    decoded = codec.decode(stream)
    finished = time.perf_counter()
    stem = output_dir / f"{name}_tau{tau}"
    stem.with_suffix(".nlc").write_bytes(stream)
    write_image(stem.with_suffix(".png"), decoded)
    return Row(
        name=name,
        shape=sample.pixels.shape,
        dtype=f"{sample.pixels.dtype}/{sample.bit_depth}b",
        tau=tau,
        bits_per_sample=codec.info(stream).bits_per_sample,
        max_error=max_abs_error(sample.pixels, decoded),
        psnr=psnr(sample.pixels, decoded, sample.bit_depth),
        encode_ms=1e3 * (encoded - start),
        decode_ms=1e3 * (finished - encoded),
    )


HEADER = f"{'image':<24} {'shape':<15} {'dtype':<10} {'tau':>3} {'bps':>7} {'max|err|':>8} " \
         f"{'PSNR dB':>8} {'enc ms':>8} {'dec ms':>8}"


def format_row(row: Row) -> str:
    shape = "x".join(str(size) for size in row.shape)
    psnr_text = "inf" if math.isinf(row.psnr) else f"{row.psnr:.2f}"
    flag = "" if row.max_error <= row.tau else "  <-- VIOLATION: max error exceeds tau"
    return (
        f"{row.name:<24} {shape:<15} {row.dtype:<10} {row.tau:>3} {row.bits_per_sample:>7.3f} "
        f"{row.max_error:>8} {psnr_text:>8} {row.encode_ms:>8.1f} {row.decode_ms:>8.1f}{flag}"
    )


@dataclass(frozen=True)
class RestoreResult:
    tau: int
    bound: int
    decoded_psnr: float
    restored_psnr: float
    decoded_max_error: int
    restored_max_error: int
    verified: VerifiedResult | None = None


@dataclass(frozen=True)
class VerifiedResult:
    bound: int
    psnr: float
    max_error: int
    side_percent: float


def run_verified(name: str, tau: int, output_dir: Path) -> VerifiedResult:
    """Write a format-5 stream (Python API) and decompress it with ``linf decompress``."""
    sample = SAMPLES[name]()
    stream_path = output_dir / f"{name}_tau{tau}_verified.nlc"
    stream = verified.encode(sample.pixels, tau, verified.DEFAULT_RESTORE_SLACK, bit_depth=sample.bit_depth)
    stream_path.write_bytes(stream)
    restored_path = output_dir / f"{name}_tau{tau}_verified.png"
    print(f"$ linf decompress {stream_path} -o {restored_path} --force")
    if cli.main(["decompress", str(stream_path), "-o", str(restored_path), "--force"]) != 0:
        raise RuntimeError("linf decompress of the verified stream failed")
    restored = read_image(restored_path).pixels
    header = verified.read_header(stream)
    return VerifiedResult(
        bound=header.bound,
        psnr=psnr(sample.pixels, restored, sample.bit_depth),
        max_error=max_abs_error(sample.pixels, restored),
        side_percent=100 * header.side_bytes / len(stream),
    )


def run_restore(name: str, tau: int, model: str, output_dir: Path) -> RestoreResult:
    """Compress ``name`` at ``tau``, decompress it with ``linf decompress --restore``, measure both."""
    sample = SAMPLES[name]()
    stem = output_dir / f"{name}_tau{tau}"
    stream_path = stem.with_suffix(".nlc")
    stream, decoded = codec.encode_with_decoded(sample.pixels, tau, bit_depth=sample.bit_depth)
    stream_path.write_bytes(stream)
    restored_path = output_dir / f"{name}_tau{tau}_restored.png"
    print(f"\n$ linf decompress {stream_path} -o {restored_path} --restore --model {model} --force")
    status = cli.main(
        ["decompress", str(stream_path), "-o", str(restored_path), "--restore", "--model", model, "--force"]
    )
    if status != 0:
        raise RuntimeError(f"linf decompress --restore failed with status {status}")
    restored = read_image(restored_path).pixels
    # Verified restoration runs the shipped integer networks, and needs tau >= 1.
    checked = run_verified(name, tau, output_dir) if model == "default" and tau >= 1 else None
    return RestoreResult(
        verified=checked,
        tau=tau,
        bound=guaranteed_bound(tau, DEFAULT_SLACK),
        decoded_psnr=psnr(sample.pixels, decoded, sample.bit_depth),
        restored_psnr=psnr(sample.pixels, restored, sample.bit_depth),
        decoded_max_error=max_abs_error(sample.pixels, decoded),
        restored_max_error=max_abs_error(sample.pixels, restored),
    )


def format_restore(name: str, result: RestoreResult) -> str:
    gain = result.restored_psnr - result.decoded_psnr
    lines = [
        f"\n{name} at tau {result.tau}:{'':<6} {'PSNR dB':>8} {'max|err|':>8}",
        f"  {'decoded':<22} {result.decoded_psnr:>8.2f} {result.decoded_max_error:>8}   (bound {result.tau})",
        f"  {'restored (l-inf CNN)':<22} {result.restored_psnr:>8.2f} {result.restored_max_error:>8}   "
        f"(bound {result.bound} at slack {DEFAULT_SLACK}; gain {gain:+.2f} dB)",
    ]
    if result.verified:
        checked = result.verified
        lines.append(
            f"  {'verified (format 5)':<22} {checked.psnr:>8.2f} {checked.max_error:>8}   "
            f"(bound {checked.bound}, side information {checked.side_percent:.2f} % of the stream; "
            f"gain {checked.psnr - result.decoded_psnr:+.2f} dB)"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m linf_tf.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--output-dir", type=Path, default=Path("out/demo"),
        help="folder for the .nlc streams and decoded PNGs (default: out/demo)",
    )
    parser.add_argument(
        "--images", type=_image_names, default=list(SAMPLES),
        help=f"comma-separated sample images (default: all of {', '.join(SAMPLES)})",
    )
    parser.add_argument(
        "--taus", type=_taus, default=list(DEFAULT_TAUS),
        help="comma-separated error bounds (default: 0,2,6,10)",
    )
    parser.add_argument(
        "--restore-image", type=_image_names, default=list(DEFAULT_RESTORE_IMAGES),
        help=f"comma-separated images for the network step (default: {','.join(DEFAULT_RESTORE_IMAGES)})",
    )
    parser.add_argument(
        "--restore-tau", type=int, default=DEFAULT_RESTORE_TAU,
        help=f"tau for the network step (default: {DEFAULT_RESTORE_TAU}; the shipped model is trained "
        "for 6-14)",
    )
    parser.add_argument(
        "--model", default="default",
        help="restoration network for the network step (default: the model shipped in the package)",
    )
    parser.add_argument(
        "--no-restore", dest="restore", action="store_false",
        help="skip the network step (it imports TensorFlow, which takes a few seconds)",
    )
    return parser.parse_args(argv)


def _image_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SAMPLES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown image(s) {unknown}; choose from {', '.join(SAMPLES)}")
    return names


def _taus(text: str) -> list[int]:
    try:
        taus = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"taus must be comma-separated integers, got {text!r}") from None
    if any(tau < 0 for tau in taus):
        raise argparse.ArgumentTypeError(f"taus must be non-negative, got {text!r}")
    return taus


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return 0 if every image met its bound, 1 otherwise."""
    args = parse_args(argv)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print(HEADER)
    print("-" * len(HEADER))
    violations = 0
    for name in args.images:
        sample = SAMPLES[name]()
        for tau in args.taus:
            row = run_one(name, sample, tau, args.output_dir)
            violations += row.max_error > row.tau
            print(format_row(row), flush=True)
    print(f"\nstreams and decoded PNGs written to {args.output_dir}")
    if violations:
        print(f"FAILED: {violations} result(s) exceeded their tau", file=sys.stderr)
        return 1
    print("every decoded sample is within tau of the original")
    if not args.restore:
        return 0
    for name in args.restore_image:
        result = run_restore(name, args.restore_tau, args.model, args.output_dir)
        print(format_restore(name, result))
        worst = [(result.restored_max_error, result.bound)]
        if result.verified:
            worst.append((result.verified.max_error, result.verified.bound))
        for error, bound in worst:
            if error > bound:
                print(f"FAILED: {name}: restored max error {error} > bound {bound}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
