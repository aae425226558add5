"""linf against the error-bounded compressors of the array world (SZ3, ZFP, JPEG-LS) and lossless Zstd.

    python benchmarks/array_bench.py [--data ../shared/data] [--sets neubias,set14,bsd100,mcmaster]
                                     [--taus16 0,1,2,4,8,16,64] [--taus8 0,1,2,4,8]
                                     [--limit N] [--repeats N] [--quick] [--output out/array_bench]

Every array is given to every codec the way a Zarr chunk would be: 16-bit microscopy from
``highbit/neubias`` (TIFF, read with tifffile; channel axes first, then Z/T, then Y, X) and the 8-bit
eval sets (``eval/*``, colour as ``(3, Y, X)``, the OME-Zarr order). A set that is absent is skipped.

Codecs, all single-threaded, each checked on every result (max |decoded - original| <= tau, shape
and dtype unchanged; a violation is printed loudly and makes the exit status 1):

* ``linf`` / ``linf-ch``: ``linf_tf.numcodecs_codec.LinfCodec`` with layout ``slices`` (leading
  axes folded into rows: the default) / ``channels`` (leading axes as interleaved channels).
* ``sz3``: SZ3 (pysz), ABS mode. The integers go in as float32 with bound tau + 0.499 and come back
  rounded (and clipped to the dtype): |round(y) - x| <= tau because |y - x| < tau + 0.5.
* ``zfp``: ZFP (zfpy) in fixed-accuracy mode with tolerance tau + 0.499 on float32, rounded back
  (ZFP keeps |y - x| <= tolerance, so the same argument holds); tau 0 uses ZFP's reversible mode.
* ``zfp-tuned``: ZFP with, per array and tau, the smallest stream among reversible mode and the
  tolerances 2**k (ZFP rounds any tolerance down to a power of two) up to 16 * (tau + 0.5) whose
  rounded result stays within tau on that array. An oracle a user would need to verify per chunk;
  the search is not timed, only the chosen setting.
* ``jpegls``: JPEG-LS (CharLS through imagecodecs), NEAR = tau, on the same 2-D image linf's
  ``slices`` layout codes (leading axes folded into rows).
* ``blosc-zstd`` and ``zstd`` (numcodecs; lossless, measured once per array, listed at tau 0):
  Blosc with Zstd level 5 and byte shuffle (OME-Zarr's usual compressor), and plain Zstd at its
  default level (Zarr v3's default compressor).

Speeds are MB/s of raw input bytes (uint16 = 2 bytes per sample) over the whole set, best of up to
``--repeats`` runs per measurement (repeated only while the runs add up to under a second). SZ3 and
ZFP times include the integer <-> float32 conversion and the rounding that integer data needs.
Bits per sample are whole streams (headers included) over all samples of the set. Results go to
``per_array.csv`` and ``summary.json`` in ``--output``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from importlib.metadata import version
from pathlib import Path

import imagecodecs
import numcodecs
import numcodecs.blosc
import numpy as np
import tifffile
import zfpy
from pysz import sz, szConfig, szErrorBoundMode

from linf_tf.imageio import is_supported_image, read_image
from linf_tf.numcodecs_codec import LinfCodec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SETS = {
    "neubias": "highbit/neubias",
    "set14": "eval/set14",
    "bsd100": "eval/bsd100",
    "mcmaster": "eval/mcmaster",
}
TAUS_16 = (0, 1, 2, 4, 8, 16, 64)
TAUS_8 = (0, 1, 2, 4, 8)
QUICK_TAUS = {16: (0, 4), 8: (0, 2)}
LOSSY = ("linf", "linf-ch", "sz3", "zfp", "zfp-tuned", "jpegls")
LOSSLESS = ("blosc-zstd", "zstd")
TIMING_BUDGET_S = 1.0
ZFP_TUNED_STEPS = 5  # tolerances 2**k from below tau + 0.5 up to 16 times that


@dataclass
class Result:
    """One codec at one tau on one array."""

    dataset: str
    file: str
    shape: str
    dtype: str
    tau: int
    codec: str
    setting: str
    stream_bytes: int
    samples: int
    raw_bytes: int
    bits_per_sample: float
    encode_s: float
    decode_s: float
    max_error: int


# --- codecs: encode(array, tau) -> (stream, setting); decode(stream, like) -> array ----------------


def linf_coder(layout: str) -> tuple[Callable, Callable]:
    def encode(array: np.ndarray, tau: int, _setting: object = None) -> tuple[bytes, str]:
        return LinfCodec(tau=tau, layout=layout).encode(array), f"layout={layout}"

    def decode(stream: bytes, like: np.ndarray) -> np.ndarray:
        return LinfCodec(tau=0).decode(stream).reshape(like.shape)

    return encode, decode


def to_integers(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    limits = np.iinfo(like.dtype)
    return np.clip(np.rint(values), limits.min, limits.max).astype(like.dtype).reshape(like.shape)


def sz3_encode(array: np.ndarray, tau: int, _setting: object = None) -> tuple[bytes, str]:
    config = szConfig(array.shape)
    config.errorBoundMode = szErrorBoundMode.ABS
    config.absErrorBound = tau + 0.499
    compressed, _ = sz.compress(array.astype(np.float32), config)
    return compressed.tobytes(), f"abs={tau + 0.499}"


def sz3_decode(stream: bytes, like: np.ndarray) -> np.ndarray:
    values, _ = sz.decompress(np.frombuffer(stream, np.uint8), np.float32, like.shape)
    return to_integers(values, like)


def zfp_encode(array: np.ndarray, tau: int, tolerance: float | None = None) -> tuple[bytes, str]:
    """ZFP at ``tolerance`` (default tau + 0.499; tau 0: reversible, also chosen by tolerance -1)."""
    if tolerance is None:
        tolerance = -1.0 if tau == 0 else tau + 0.499
    stream = zfpy.compress_numpy(array.astype(np.float32), tolerance=tolerance)
    return stream, "reversible" if tolerance < 0 else f"tolerance={tolerance:g}"


def zfp_decode(stream: bytes, like: np.ndarray) -> np.ndarray:
    return to_integers(zfpy.decompress_numpy(stream), like)


def zfp_best_tolerance(array: np.ndarray, tau: int) -> float:
    """The tolerance (-1 = reversible) with the smallest stream that keeps this array within tau."""
    first = math.floor(math.log2(tau + 0.499))
    candidates = [-1.0] + [2.0**k for k in range(first, first + ZFP_TUNED_STEPS)]
    best, best_size = -1.0, math.inf
    for tolerance in candidates:
        stream, _ = zfp_encode(array, tau, tolerance)
        if len(stream) < best_size and max_abs_error(array, zfp_decode(stream, array)) <= tau:
            best, best_size = tolerance, len(stream)
    return best


def jpegls_encode(array: np.ndarray, tau: int, _setting: object = None) -> tuple[bytes, str]:
    image = array.reshape(-1, array.shape[-1])
    return bytes(
        imagecodecs.jpegls_encode(image, level=tau)
    ), f"near={tau}, {image.shape[0]}x{image.shape[1]}"


def jpegls_decode(stream: bytes, like: np.ndarray) -> np.ndarray:
    return imagecodecs.jpegls_decode(stream).reshape(like.shape)


def numcodecs_coder(codec: numcodecs.abc.Codec) -> tuple[Callable, Callable]:
    def encode(array: np.ndarray, _tau: int, _setting: object = None) -> tuple[bytes, str]:
        return bytes(codec.encode(array)), repr(codec)

    def decode(stream: bytes, like: np.ndarray) -> np.ndarray:
        return np.frombuffer(codec.decode(stream), like.dtype).reshape(like.shape)

    return encode, decode


CODERS: dict[str, tuple[Callable, Callable]] = {
    "linf": linf_coder("slices"),
    "linf-ch": linf_coder("channels"),
    "sz3": (sz3_encode, sz3_decode),
    "zfp": (zfp_encode, zfp_decode),
    "zfp-tuned": (zfp_encode, zfp_decode),
    "jpegls": (jpegls_encode, jpegls_decode),
    "blosc-zstd": numcodecs_coder(numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)),
    "zstd": numcodecs_coder(numcodecs.Zstd(level=0)),
}


# --- measuring ---------------------------------------------------------------------------------


def best_time(run: Callable[[], object], max_repeats: int) -> tuple[float, object]:
    """Fastest of up to ``max_repeats`` runs (fewer once they add up to the budget), and a result."""
    best, spent, result = math.inf, 0.0, None
    for _ in range(max(1, max_repeats)):
        start = time.perf_counter()
        result = run()
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
        if spent >= TIMING_BUDGET_S:
            break
    return best, result


def max_abs_error(original: np.ndarray, decoded: np.ndarray) -> int:
    if decoded.shape != original.shape or decoded.dtype != original.dtype:
        return sys.maxsize  # a codec that changed shape or dtype has failed outright
    return int(np.max(np.abs(original.astype(np.int64) - decoded.astype(np.int64))))


def measure(dataset: str, label: str, array: np.ndarray, taus: tuple[int, ...], repeats: int) -> list[Result]:
    results = []
    for name in (*LOSSY, *LOSSLESS):
        for tau in taus if name in LOSSY else (0,):
            encode, decode = CODERS[name]
            setting = zfp_best_tolerance(array, tau) if name == "zfp-tuned" else None
            encode_s, (stream, description) = best_time(partial(encode, array, tau, setting), repeats)
            decode_s, decoded = best_time(partial(decode, stream, array), repeats)
            results.append(
                Result(
                    dataset=dataset,
                    file=label,
                    shape="x".join(map(str, array.shape)),
                    dtype=str(array.dtype),
                    tau=tau,
                    codec=name,
                    setting=description,
                    stream_bytes=len(stream),
                    samples=array.size,
                    raw_bytes=array.nbytes,
                    bits_per_sample=8.0 * len(stream) / array.size,
                    encode_s=encode_s,
                    decode_s=decode_s,
                    max_error=max_abs_error(array, decoded),
                )
            )
    return results


# --- data --------------------------------------------------------------------------------------


def read_array(path: Path) -> np.ndarray:
    """The file as a chunk would hold it: (leading..., Y, X), channel axes first."""
    if path.suffix.lower() in (".tif", ".tiff"):
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            pixels, axes = series.asarray(), series.axes
        if len(axes) == pixels.ndim and "Y" in axes and "X" in axes:
            leading = sorted(
                (i for i, axis in enumerate(axes) if axis not in "YX"), key=lambda i: axes[i] not in "CS"
            )
            pixels = np.transpose(pixels, (*leading, axes.index("Y"), axes.index("X")))
            return np.ascontiguousarray(pixels.reshape(-1, *pixels.shape[-2:]) if pixels.ndim > 3 else pixels)
    pixels = read_image(path).pixels
    return pixels if pixels.ndim == 2 else np.ascontiguousarray(np.moveaxis(pixels, -1, 0))


def arrays(folder: Path, limit: int | None) -> Iterator[tuple[str, np.ndarray]]:
    files = [path for path in sorted(folder.rglob("*")) if is_supported_image(path)]
    for path in files[:limit] if limit else files:
        array = read_array(path)
        if array.dtype in (np.uint8, np.uint16):
            yield path.name, array
        else:
            print(f"skipped {path}: dtype {array.dtype}", file=sys.stderr)


# --- aggregation and reporting -----------------------------------------------------------------


def summarise(results: list[Result]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """summary[dataset][tau][codec], with "8-bit (all)" adding up the 8-bit sets."""
    groups: dict[tuple[str, int, str], list[Result]] = defaultdict(list)
    for row in results:
        groups[(row.dataset, row.tau, row.codec)].append(row)
        if row.dtype == "uint8":
            groups[("8-bit (all)", row.tau, row.codec)].append(row)
    summary: dict = defaultdict(lambda: defaultdict(dict))
    for (dataset, tau, name), rows in groups.items():
        raw, samples = sum(r.raw_bytes for r in rows), sum(r.samples for r in rows)
        summary[dataset][str(tau)][name] = {
            "arrays": len(rows),
            "samples": samples,
            "bits_per_sample": 8.0 * sum(r.stream_bytes for r in rows) / samples,
            "mean_bits_per_sample": float(np.mean([r.bits_per_sample for r in rows])),
            "encode_mbps": raw / 1e6 / sum(r.encode_s for r in rows),
            "decode_mbps": raw / 1e6 / sum(r.decode_s for r in rows),
            "max_error": max(r.max_error for r in rows),
            "violations": sum(r.max_error > r.tau for r in rows),
        }
    return summary


def print_tables(summary: dict) -> None:
    print(
        "\nbits per sample = all streams / all samples of the set (headers included); speeds in MB/s of raw"
    )
    print("bytes, 1 thread, best of repeats; maxerr = worst |error| of any lossy codec, every result checked")
    header = f"{'tau':>4}" + "".join(f"{name:>12}" for name in LOSSY)
    for dataset in sorted(summary, key=lambda name: list(SETS).index(name) if name in SETS else len(SETS)):
        by_tau = summary[dataset]
        taus = sorted(by_tau, key=int)
        first = by_tau["0"]["linf"]
        print(f"\n== {dataset}: {first['arrays']} arrays, {first['samples'] / 1e6:.1f} M samples ==")
        lossless = [
            f"{name} {cell['bits_per_sample']:.3f} ({cell['encode_mbps']:.0f}/{cell['decode_mbps']:.0f} MB/s)"
            for name, cell in by_tau["0"].items()
            if name in LOSSLESS
        ]
        print("lossless: " + ", ".join(lossless))
        print(f"bits per sample\n{header}  maxerr")
        for tau in taus:
            cells = by_tau[tau]
            flag = "  <-- VIOLATION" if any(cells[name]["violations"] for name in LOSSY) else ""
            row = "".join(f"{cells[name]['bits_per_sample']:>12.3f}" for name in LOSSY)
            print(f"{tau:>4}{row}  {max(cells[name]['max_error'] for name in LOSSY):>6}{flag}")
        print(f"encode / decode MB/s\n{header}")
        for tau in taus:
            cells = by_tau[tau]
            speeds = (f"{cells[name]['encode_mbps']:.0f}/{cells[name]['decode_mbps']:.0f}" for name in LOSSY)
            print(f"{tau:>4}" + "".join(f"{speed:>12}" for speed in speeds))


def markdown_table(summary: dict, dataset: str) -> str:
    """The bits-per-sample table of one set as Markdown (for BUILD_NOTES.md / README.md)."""
    by_tau = summary[dataset]
    lines = ["| τ | " + " | ".join(LOSSY) + " |", "|---" * (len(LOSSY) + 1) + "|"]
    for tau in sorted(by_tau, key=int):
        lines.append(
            f"| {tau} | " + " | ".join(f"{by_tau[tau][n]['bits_per_sample']:.3f}" for n in LOSSY) + " |"
        )
    return "\n".join(lines)


def write_outputs(results: list[Result], summary: dict, output: Path, settings: dict) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with (output / "per_array.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(results[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in results)
    tables = {dataset: markdown_table(summary, dataset) for dataset in summary}
    document = {"settings": settings, "summary": summary, "markdown": tables}
    (output / "summary.json").write_text(json.dumps(document, indent=2) + "\n")


# --- driver ------------------------------------------------------------------------------------


def parse_taus(text: str) -> tuple[int, ...]:
    return tuple(sorted({int(part) for part in text.split(",")}))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"shared data folder (default {DEFAULT_DATA})"
    )
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated sets from {', '.join(SETS)}")
    parser.add_argument("--taus16", type=parse_taus, default=TAUS_16, help="bounds for 16-bit data")
    parser.add_argument("--taus8", type=parse_taus, default=TAUS_8, help="bounds for 8-bit data")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="first N arrays of every set")
    parser.add_argument(
        "--repeats", type=int, default=3, metavar="N", help="timing runs, best kept (default 3)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 2 arrays per set, tau 0,4 (16-bit) and 0,2 (8-bit), 1 timing run",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "out" / "array_bench", help="CSV/JSON folder")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sets.split(",")) - set(SETS))
    if unknown:
        parser.error(f"unknown sets {unknown}; known: {', '.join(SETS)}")
    if args.quick:
        args.limit, args.repeats = args.limit or 2, 1
        args.taus16, args.taus8 = QUICK_TAUS[16], QUICK_TAUS[8]
    return args


def versions() -> dict[str, str]:
    packages = ("numpy", "numcodecs", "pysz", "zfpy", "imagecodecs")
    return {
        **{name: version(name) for name in packages},
        "charls": imagecodecs.jpegls_version(),
        "blosc": numcodecs.blosc.VERSION_STRING,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    numcodecs.blosc.set_nthreads(1)
    results: list[Result] = []
    for dataset in args.sets.split(","):
        folder = args.data / SETS[dataset]
        if not folder.is_dir():
            print(f"skipped {dataset}: {folder} is absent")
            continue
        for label, array in arrays(folder, args.limit):
            taus = args.taus8 if array.dtype == np.uint8 else args.taus16
            print(f"{dataset}/{label} {array.shape} {array.dtype}", flush=True)
            results.extend(measure(dataset, label, array, taus, args.repeats))
    if not results:
        print("array_bench: error: no data found (is --data right?)", file=sys.stderr)
        return 2
    summary = summarise(results)
    print_tables(summary)
    settings = {
        "argv": sys.argv[1:] if argv is None else argv,
        "data": str(args.data),
        "limit": args.limit,
        "repeats": args.repeats,
        "taus16": args.taus16,
        "taus8": args.taus8,
        "versions": versions(),
    }
    write_outputs(results, summary, args.output, settings)
    print(f"\nwrote {args.output / 'per_array.csv'} and {args.output / 'summary.json'}")
    return report_violations(results)


def report_violations(results: list[Result]) -> int:
    violations = [row for row in results if row.max_error > row.tau]
    if not violations:
        print("every result within tau")
        return 0
    print(f"\n!!! {len(violations)} ERROR-BOUND VIOLATION(S) !!!", file=sys.stderr)
    for row in violations:
        print(
            f"!!! {row.codec} tau={row.tau} max error {row.max_error}: {row.dataset}/{row.file}",
            file=sys.stderr,
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
