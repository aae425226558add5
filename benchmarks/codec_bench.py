"""Compare the linf codec with JPEG-LS (CharLS via imagecodecs) at every tau, and with JPEG-XL
lossless (libjxl via imagecodecs, effort 7) at tau = 0, in one run.

    python benchmarks/codec_bench.py DIR... [--taus 0,1,2,4,6,8,10,12,14] [--output results_dir]
                                            [--limit N] [--repeats N]
    python benchmarks/codec_bench.py DIR... --threads 1,2 [--stripe-height N] [--taus 0,2]

With ``--threads`` the run is a threading study of linf alone (format 3 stripes) instead: for each
image and tau, bits per sample of one stripe and of the striped stream (default stripe height,
or ``--stripe-height``) with their ratio, and encode/decode MB/s (wall clock, best of repeats) and
CPU seconds per thread count, with the speed-up over one thread; one stripe on one thread is the
format-2 baseline. Written to ``threads.csv`` and ``threads.json``. Wall-clock speed-ups need idle
cores; the CPU seconds show how much work the threads added.

For each image (found recursively, read with ``linf_tf.imageio``) and each tau, both codecs are
measured on the same samples:

* bits per sample of the whole stream, headers included (linf: 36-byte header; JPEG-LS: the
  SPIFF header and markers imagecodecs writes);
* encode and decode speed in MB/s, single-threaded, MB = raw input bytes / 1e6, best of up to
  ``--repeats`` runs (repeated only while the runs add up to under a second, so small images
  are timed several times and large ones once);
* max |error| and PSNR (peak 2**bit_depth - 1); any max error above tau is a violation, printed
  loudly and turned into exit status 1.

Results are grouped by image class (gray 8-bit, colour 8-bit, multichannel 8-bit, high-bit) and
written to ``per_image.csv`` (one row per image, tau and codec) and ``summary.json`` (per class
and tau: mean bits per sample over images, sample-weighted bits per sample, aggregate MB/s).

Notes on the comparison
* JPEG-LS NEAR = tau (imagecodecs' ``level``), which gives the same L-infinity guarantee.
* JPEG-XL is a reference at tau = 0 only (``jpegxl_encode(pixels, lossless=True, effort=7)``,
  one thread): its lossy modes give no L-infinity bound. It takes 1, 3 or 4 channels; other
  counts get no JPEG-XL row. ``--no-jpegxl`` skips it (effort 7 is slow).
* imagecodecs encodes every uint16 image with JPEG-LS precision P=16 and has no option for the
  true depth; linf uses the depth the file declares (DICOM BitsStored, TIFF BitsPerSample, 8/16
  otherwise) unless ``--dtype-depth`` is given, which puts both codecs on P=8/16.
* imagecodecs' JPEG-LS takes 1, 3 (sample-interleaved) or 4 (line-interleaved) components only.
  Other channel counts (2-channel microscopy, z-stacks folded into channels by
  ``linf_tf.imageio``) are coded by JPEG-LS as separate planes, sizes summed. linf always gets
  the whole HxWxC image.
* Signed data (CT) is read with ``allow_signed=True``: shifted by 2**(bits-1), the same input for
  both codecs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import cv2
import imagecodecs
import numpy as np
from tqdm import tqdm

from linf_tf import codec, pixels
from linf_tf.image_samples import ImageData
from linf_tf.imageio import is_supported_image, read_image

DEFAULT_TAUS = (0, 1, 2, 4, 6, 8, 10, 12, 14)
CODECS = ("linf", "jpegls", "jpegxl")
JPEGXL_EFFORT = 7
JPEGXL_COMPONENTS = (1, 3, 4)
CLASS_ORDER = ("gray 8-bit", "gray 8-bit (luma of colour)", "colour 8-bit", "multichannel 8-bit", "high-bit")
LUMA_CLASS = "gray 8-bit (luma of colour)"
TIMING_BUDGET_S = 1.0  # stop repeating once the runs of one measurement add up to this
JPEGLS_COMPONENTS = (1, 3, 4)


@dataclass
class Measurement:
    """One codec at one tau on one image."""

    file: str
    image_class: str
    shape: str
    dtype: str
    bit_depth: int
    tau: int
    codec: str
    stream_bytes: int
    bits_per_sample: float
    encode_mbps: float
    decode_mbps: float
    encode_s: float
    decode_s: float
    raw_bytes: int
    samples: int
    max_error: int
    psnr: float


# --- codecs ------------------------------------------------------------------------------------


class LinfCodec:
    name = "linf"

    def __init__(self, bit_depth: int) -> None:
        self.bit_depth = bit_depth

    def encode(self, pixels: np.ndarray, tau: int) -> list[bytes]:
        # One stripe on one thread: the single-threaded comparison this table has always made.
        return [codec.encode(pixels, tau, bit_depth=self.bit_depth, stripe_height=0, threads=1)]

    def decode(self, streams: list[bytes], like: np.ndarray) -> np.ndarray:
        return codec.decode(streams[0], threads=1)


class JpegLsCodec:
    """CharLS through imagecodecs; channel counts it cannot interleave are coded plane by plane."""

    name = "jpegls"

    def __init__(self, pixels: np.ndarray) -> None:
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        self.per_plane = channels not in JPEGLS_COMPONENTS
        # Split once, outside the timed region: the copy is not part of the codec's work.
        self.planes = []
        if self.per_plane:
            self.planes = [np.ascontiguousarray(pixels[:, :, c]) for c in range(channels)]

    def encode(self, pixels: np.ndarray, tau: int) -> list[bytes]:
        if self.per_plane:
            return [bytes(imagecodecs.jpegls_encode(plane, level=tau)) for plane in self.planes]
        return [bytes(imagecodecs.jpegls_encode(pixels, level=tau))]

    def decode(self, streams: list[bytes], like: np.ndarray) -> np.ndarray:
        if self.per_plane:
            out = np.empty_like(like)
            for channel, stream in enumerate(streams):
                out[:, :, channel] = imagecodecs.jpegls_decode(stream)
            return out
        return imagecodecs.jpegls_decode(streams[0]).reshape(like.shape)


class JpegXlCodec:
    """libjxl through imagecodecs, lossless, effort 7, one thread: the tau = 0 reference."""

    name = "jpegxl"

    def encode(self, pixels: np.ndarray, tau: int) -> list[bytes]:
        assert tau == 0
        return [bytes(imagecodecs.jpegxl_encode(pixels, lossless=True, effort=JPEGXL_EFFORT, numthreads=1))]

    def decode(self, streams: list[bytes], like: np.ndarray) -> np.ndarray:
        return imagecodecs.jpegxl_decode(streams[0], numthreads=1).reshape(like.shape)


# --- measuring ---------------------------------------------------------------------------------


def best_time(run: Callable[[], object], max_repeats: int) -> tuple[float, object]:
    """Fastest of up to ``max_repeats`` runs (fewer once they exceed the time budget); last result."""
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
    return int(np.max(np.abs(original.astype(np.int32) - decoded.astype(np.int32))))


def psnr(original: np.ndarray, decoded: np.ndarray, bit_depth: int) -> float:
    """The library's PSNR (stacks are flattened to one plane of samples first)."""
    flat = (lambda a: a.reshape(a.shape[0], -1)) if original.ndim > 3 else (lambda a: a)
    return pixels.psnr(flat(original), flat(decoded), pixels.max_value_for(bit_depth))


def luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an 8-bit RGB(A) image, rounded to uint8."""
    return cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)


def image_class(image: ImageData) -> str:
    if image.pixels.dtype != np.uint8 or image.bit_depth > 8:
        return "high-bit"
    if image.channels == 1:
        return "gray 8-bit"
    return "colour 8-bit" if image.channels in (3, 4) else "multichannel 8-bit"


def run_codec(
    implementation: LinfCodec | JpegLsCodec | JpegXlCodec, pixels: np.ndarray, tau: int, repeats: int
) -> tuple[float, float, list[bytes], np.ndarray]:
    """Best encode and decode times, the streams and the decoded image of one codec at one tau."""
    encode_s, streams = best_time(partial(implementation.encode, pixels, tau), repeats)
    decode_s, decoded = best_time(partial(implementation.decode, streams, pixels), repeats)
    return encode_s, decode_s, streams, decoded


def measure(
    label: str, image: ImageData, bit_depth: int, taus: Iterable[int], repeats: int,
    class_name: str | None = None, jpegxl: bool = True,
) -> list[Measurement]:
    """linf and JPEG-LS at every tau that the bit depth allows; JPEG-XL lossless at tau = 0."""
    pixels = image.pixels
    class_name = class_name or image_class(image)
    max_tau = ((1 << bit_depth) - 1) // 2
    results = []
    for tau in (t for t in taus if t <= max_tau):
        implementations: list = [LinfCodec(bit_depth), JpegLsCodec(pixels)]
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        if jpegxl and tau == 0 and pixels.ndim <= 3 and channels in JPEGXL_COMPONENTS:
            implementations.append(JpegXlCodec())
        for implementation in implementations:
            encode_s, decode_s, streams, decoded = run_codec(implementation, pixels, tau, repeats)
            stream_bytes = sum(len(stream) for stream in streams)
            results.append(
                Measurement(
                    file=label,
                    image_class=class_name,
                    shape="x".join(str(size) for size in pixels.shape),
                    dtype=str(pixels.dtype),
                    bit_depth=bit_depth,
                    tau=tau,
                    codec=implementation.name,
                    stream_bytes=stream_bytes,
                    bits_per_sample=8.0 * stream_bytes / pixels.size,
                    encode_mbps=pixels.nbytes / 1e6 / encode_s,
                    decode_mbps=pixels.nbytes / 1e6 / decode_s,
                    encode_s=encode_s,
                    decode_s=decode_s,
                    raw_bytes=pixels.nbytes,
                    samples=pixels.size,
                    max_error=max_abs_error(pixels, decoded),
                    psnr=psnr(pixels, decoded, bit_depth),
                )
            )
    return results


# --- aggregation and reporting -----------------------------------------------------------------


def aggregate(rows: list[Measurement]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """summary[class][tau][codec] = statistics over the images of that class."""
    groups: dict[tuple[str, int, str], list[Measurement]] = defaultdict(list)
    for row in rows:
        groups[(row.image_class, row.tau, row.codec)].append(row)
    summary: dict = defaultdict(lambda: defaultdict(dict))
    for (klass, tau, name), group in sorted(groups.items()):
        finite_psnr = [row.psnr for row in group if math.isfinite(row.psnr)]
        raw_bytes, samples = sum(r.raw_bytes for r in group), sum(r.samples for r in group)
        summary[klass][str(tau)][name] = {
            "images": len(group),
            "mean_bits_per_sample": float(np.mean([row.bits_per_sample for row in group])),
            "weighted_bits_per_sample": 8.0 * sum(r.stream_bytes for r in group) / samples,
            "encode_mbps": raw_bytes / 1e6 / sum(r.encode_s for r in group),
            "decode_mbps": raw_bytes / 1e6 / sum(r.decode_s for r in group),
            "max_error": max(row.max_error for row in group),
            "mean_psnr_finite": float(np.mean(finite_psnr)) if finite_psnr else math.inf,
            "violations": sum(row.max_error > row.tau for row in group),
        }
    # JPEG-XL's ratio must compare the same images: linf's mean over the images JPEG-XL coded.
    linf_bits = {
        (row.image_class, row.tau, row.file): row.bits_per_sample for row in rows if row.codec == "linf"
    }
    for (klass, tau, name), group in groups.items():
        if name == "jpegxl":
            same = [linf_bits[(klass, tau, row.file)] for row in group]
            summary[klass][str(tau)][name]["linf_mean_bits_per_sample"] = float(np.mean(same))
    return summary


TABLE_HEADER = (
    f"{'tau':>4} {'linf bps':>9} {'jls bps':>9} {'linf/jls':>8} {'jxl bps':>8} {'linf/jxl':>8} "
    f"{'linf enc':>9} {'linf dec':>9} "
    f"{'jls enc':>8} {'jls dec':>8} {'enc x':>6} {'dec x':>6} {'maxerr L':>8} {'maxerr J':>8}"
)


def print_tables(summary: dict) -> None:
    print("\nbps = mean bits per sample over images (whole stream, headers included);")
    print("speeds in MB/s of raw input bytes, single thread, best of repeats;")
    print("enc x / dec x = linf speed / JPEG-LS speed; maxerr L / J = worst |error| of linf / JPEG-LS;")
    print(f"jxl = JPEG-XL lossless effort {JPEGXL_EFFORT} (tau = 0 only, over the images it could code)")
    for klass in sorted(summary, key=lambda k: CLASS_ORDER.index(k) if k in CLASS_ORDER else 99):
        by_tau = summary[klass]
        count = next(iter(by_tau.values()))["linf"]["images"]
        print(f"\n== {klass} ({count} image(s)) ==")
        print(TABLE_HEADER)
        for tau in sorted(by_tau, key=int):
            print(_table_row(int(tau), by_tau[tau]["linf"], by_tau[tau]["jpegls"], by_tau[tau].get("jpegxl")))


def _table_row(tau: int, linf: dict, jls: dict, jxl: dict | None = None) -> str:
    flag = "  <-- VIOLATION" if max(linf["max_error"], jls["max_error"]) > tau else ""
    if jxl is not None and jxl["max_error"] > 0:
        flag += "  <-- JPEG-XL NOT LOSSLESS"
    if jxl is None:
        jxl_columns = f"{'-':>8} {'-':>8}"
    else:
        # Ratio over the same images: JPEG-XL may have skipped some (channel counts).
        linf_same = jxl.get("linf_mean_bits_per_sample", linf["mean_bits_per_sample"])
        ratio = linf_same / jxl["mean_bits_per_sample"]
        jxl_columns = f"{jxl['mean_bits_per_sample']:>8.4f} {ratio:>8.3f}"
    return (
        f"{tau:>4} {linf['mean_bits_per_sample']:>9.4f} {jls['mean_bits_per_sample']:>9.4f} "
        f"{linf['mean_bits_per_sample'] / jls['mean_bits_per_sample']:>8.3f} {jxl_columns} "
        f"{linf['encode_mbps']:>9.1f} {linf['decode_mbps']:>9.1f} {jls['encode_mbps']:>8.1f} "
        f"{jls['decode_mbps']:>8.1f} {linf['encode_mbps'] / jls['encode_mbps']:>6.2f} "
        f"{linf['decode_mbps'] / jls['decode_mbps']:>6.2f} {linf['max_error']:>8} {jls['max_error']:>8}{flag}"
    )


def write_outputs(rows: list[Measurement], summary: dict, output: Path, settings: dict) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with (output / "per_image.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    document = {"settings": settings, "classes": summary}
    # JSON has no inf: PSNR of lossless results is written as null.
    text = json.dumps(_finite_or_none(document), indent=2)
    (output / "summary.json").write_text(text + "\n")


def _finite_or_none(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    return value


# --- threading study (--threads) ----------------------------------------------------------------


@dataclass
class ThreadRow:
    """linf on one image at one tau: one stripe vs striped, and the striped stream per thread count."""

    file: str
    shape: str
    bit_depth: int
    tau: int
    stripe_height: int
    stripes: int
    single_bps: float
    striped_bps: float
    bps_ratio: float
    single_encode_mbps: float
    single_decode_mbps: float
    threads: int
    encode_mbps: float
    decode_mbps: float
    encode_cpu_s: float
    decode_cpu_s: float
    encode_speedup: float
    decode_speedup: float
    max_error: int


def timed(run: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Best wall time and the CPU time (all threads of the process) of that run."""
    best, cpu, spent, result = math.inf, math.inf, 0.0, None
    for _ in range(max(1, repeats)):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = run()
        elapsed, used = time.perf_counter() - wall0, time.process_time() - cpu0
        if elapsed < best:
            best, cpu = elapsed, used
        spent += elapsed
        if spent >= TIMING_BUDGET_S:
            break
    return best, cpu, result


def _encode_call(pixels: np.ndarray, tau: int, bit_depth: int, stripe_height: int, threads: int) -> bytes:
    return codec.encode(pixels, tau, bit_depth, stripe_height=stripe_height, threads=threads)


def _decode_call(stream: bytes, threads: int) -> np.ndarray:
    return codec.decode(stream, threads=threads)


def thread_study(
    label: str, pixels: np.ndarray, bit_depth: int, taus: Iterable[int], thread_counts: list[int],
    repeats: int, stripe_height: int | None,
) -> list[ThreadRow]:
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if stripe_height is None:
        stripe_height = codec.default_stripe_height(height, width, channels)
    megabytes = pixels.nbytes / 1e6
    out = []
    for tau in (t for t in taus if t <= ((1 << bit_depth) - 1) // 2):
        enc1, _, single = timed(partial(_encode_call, pixels, tau, bit_depth, 0, 1), repeats)
        dec1, _, _ = timed(partial(_decode_call, single, 1), repeats)
        base_enc = base_dec = 0.0
        striped = b""
        for threads in thread_counts:
            enc, enc_cpu, stream = timed(
                partial(_encode_call, pixels, tau, bit_depth, stripe_height, threads), repeats
            )
            if not striped:
                striped = stream
            elif stream != striped:
                raise SystemExit(f"codec_bench: {label} tau {tau}: {threads} threads changed the stream")
            dec, dec_cpu, decoded = timed(partial(_decode_call, striped, threads), repeats)
            base_enc, base_dec = base_enc or enc, base_dec or dec
            header = codec.info(striped)
            out.append(ThreadRow(
                file=label, shape="x".join(str(n) for n in pixels.shape), bit_depth=bit_depth, tau=tau,
                stripe_height=header.stripe_height, stripes=header.stripe_count,
                single_bps=8.0 * len(single) / pixels.size, striped_bps=8.0 * len(striped) / pixels.size,
                bps_ratio=len(striped) / len(single),
                single_encode_mbps=megabytes / enc1, single_decode_mbps=megabytes / dec1,
                threads=threads, encode_mbps=megabytes / enc, decode_mbps=megabytes / dec,
                encode_cpu_s=enc_cpu, decode_cpu_s=dec_cpu,
                encode_speedup=base_enc / enc, decode_speedup=base_dec / dec,
                max_error=max_abs_error(pixels, decoded.reshape(pixels.shape)),
            ))
    return out


def print_thread_table(rows: list[ThreadRow]) -> None:
    print("\nbps: one stripe vs striped (ratio = striped / one stripe); MB/s wall clock (best of repeats),")
    print("enc/dec x = speed-up over the first thread count; cpu = process CPU seconds of that run;")
    print("1-str enc/dec = one stripe on one thread (the format-2 layout)")
    print(f"{'image':<28} {'tau':>3} {'str':>4} {'1-str bps':>9} {'str bps':>8} {'ratio':>7} {'thr':>3} "
          f"{'enc MB/s':>8} {'dec MB/s':>8} {'enc x':>5} {'dec x':>5} {'enc cpu':>7} {'dec cpu':>7} "
          f"{'1-str enc':>9} {'1-str dec':>9} {'maxerr':>6}")
    for r in rows:
        print(f"{Path(r.file).name[:28]:<28} {r.tau:>3} {r.stripes:>4} {r.single_bps:>9.4f} "
              f"{r.striped_bps:>8.4f} {r.bps_ratio:>7.4f} {r.threads:>3} {r.encode_mbps:>8.2f} "
              f"{r.decode_mbps:>8.2f} {r.encode_speedup:>5.2f} {r.decode_speedup:>5.2f} "
              f"{r.encode_cpu_s:>7.2f} {r.decode_cpu_s:>7.2f} {r.single_encode_mbps:>9.2f} "
              f"{r.single_decode_mbps:>9.2f} {r.max_error:>6}")
    by_threads: dict[int, list[ThreadRow]] = defaultdict(list)
    for r in rows:
        by_threads[r.threads].append(r)
    print("\ntotals over all images and taus (MB/s = all raw bytes / all seconds):")
    first = min(by_threads)
    for threads, group in sorted(by_threads.items()):
        t = _thread_summary(group, by_threads[first])
        print(f"  {threads} thread(s): encode {t['encode_mbps']:.2f} MB/s ({t['encode_speedup']:.2f}x, "
              f"cpu {t['encode_cpu_s']:.1f} s), decode {t['decode_mbps']:.2f} MB/s "
              f"({t['decode_speedup']:.2f}x, "
              f"cpu {t['decode_cpu_s']:.1f} s); striped / one-stripe bytes {t['bytes_ratio']:.5f} "
              f"(worst {t['worst_bps_ratio']:.5f})")


def _thread_summary(group: list[ThreadRow], first: list[ThreadRow]) -> dict[str, float]:
    megabytes = [
        math.prod(int(n) for n in r.shape.split("x")) * (1 if r.bit_depth <= 8 else 2) / 1e6 for r in group
    ]
    encode_s = sum(mb / r.encode_mbps for mb, r in zip(megabytes, group, strict=True))
    decode_s = sum(mb / r.decode_mbps for mb, r in zip(megabytes, group, strict=True))
    encode_first = sum(mb / r.encode_mbps for mb, r in zip(megabytes, first, strict=True))
    decode_first = sum(mb / r.decode_mbps for mb, r in zip(megabytes, first, strict=True))
    single_bits = sum(r.single_bps * mb for mb, r in zip(megabytes, group, strict=True))
    striped_bits = sum(r.striped_bps * mb for mb, r in zip(megabytes, group, strict=True))
    return {
        "encode_mbps": sum(megabytes) / encode_s,
        "decode_mbps": sum(megabytes) / decode_s,
        "encode_speedup": encode_first / encode_s, "decode_speedup": decode_first / decode_s,
        "encode_cpu_s": sum(r.encode_cpu_s for r in group),
        "decode_cpu_s": sum(r.decode_cpu_s for r in group),
        "bytes_ratio": striped_bits / single_bits, "worst_bps_ratio": max(r.bps_ratio for r in group),
    }


def readable_images(files: list[Path], dtype_depth: bool):
    """(path, image, bit depth) for every file that reads; the others are reported and skipped.
    ``dtype_depth`` codes at the container's depth (8/16) instead of the file's declared one."""
    for path in tqdm(files, desc="images", unit="img"):
        try:
            image = read_image(path, allow_signed=True)
        except (OSError, ValueError) as exc:
            tqdm.write(f"skipped {path}: {exc}")
            continue
        depth = (8 if image.pixels.dtype == np.uint8 else 16) if dtype_depth else image.bit_depth
        yield path, image, depth


def run_thread_study(args: argparse.Namespace, files: list[Path]) -> int:
    rows: list[ThreadRow] = []
    for path, image, depth in readable_images(files, args.dtype_depth):
        rows.extend(thread_study(str(path), image.pixels, depth, args.taus, args.threads, args.repeats,
                                 args.stripe_height))
    if not rows:
        print("codec_bench: error: no image could be measured", file=sys.stderr)
        return 2
    print_thread_table(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    with (args.output / "threads.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    by_threads: dict[int, list[ThreadRow]] = defaultdict(list)
    for r in rows:
        by_threads[r.threads].append(r)
    first = min(by_threads)
    document = {
        "settings": {"taus": args.taus, "threads": args.threads, "repeats": args.repeats,
                     "stripe_height": args.stripe_height, "folders": [str(f) for f in args.folders],
                     "cpu_count": os.cpu_count()},
        "totals": {
            str(t): _thread_summary(group, by_threads[first]) for t, group in sorted(by_threads.items())
        },
        "rows": [asdict(row) for row in rows],
    }
    (args.output / "threads.json").write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {args.output / 'threads.csv'} and {args.output / 'threads.json'}")
    bad = [r for r in rows if r.max_error > r.tau]
    for r in bad:
        print(f"!!! tau={r.tau} max error {r.max_error}: {r.file}", file=sys.stderr)
    return 1 if bad else 0


# --- driver ------------------------------------------------------------------------------------


def find_images(paths: list[Path], limit: int | None) -> list[Path]:
    """Supported images in the given folders (recursively) and the given image files, in order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(found for found in sorted(path.rglob("*")) if is_supported_image(found))
        elif is_supported_image(path):
            files.append(path)
        else:
            raise SystemExit(f"codec_bench: error: {path} is neither a folder nor a supported image")
    return files[:limit] if limit else files


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", type=Path, nargs="+", metavar="DIR",
                        help="folders searched recursively for images (image files are accepted too)")
    parser.add_argument(
        "--taus", type=lambda text: sorted({int(part) for part in text.split(",")}),
        default=list(DEFAULT_TAUS), help="comma-separated error bounds (default: 0,1,2,4,6,8,10,12,14)",
    )
    parser.add_argument("--output", type=Path, default=Path("out/codec_bench"),
                        help="folder for per_image.csv and summary.json (default: out/codec_bench)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N images")
    parser.add_argument("--repeats", type=int, default=5, metavar="N",
                        help="timing runs per measurement, best kept (default 5; fewer for large images)")
    parser.add_argument("--luma", action="store_true",
                        help="also measure the luma (gray) version of every 8-bit colour image, as its own "
                             "class: the eval sets hold almost no native gray images")
    parser.add_argument("--no-jpegxl", action="store_true",
                        help="skip the JPEG-XL lossless (effort 7) reference at tau = 0 (it is slow)")
    parser.add_argument("--dtype-depth", action="store_true",
                        help="give linf bit depth 8/16 from the dtype, as JPEG-LS gets, not the file's depth")
    parser.add_argument(
        "--threads", type=lambda text: [int(part) for part in text.split(",")], default=None, metavar="N,N",
        help="threading study of linf instead of the JPEG-LS comparison: MB/s per thread count "
        "(e.g. 1,2) and bits per sample one stripe vs striped; writes threads.csv and threads.json",
    )
    parser.add_argument("--stripe-height", type=int, default=None, metavar="ROWS",
                        help="with --threads: rows per stripe (default: the codec's default for each image)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = find_images(args.folders, args.limit)
    if not files:
        print("codec_bench: error: no supported images found", file=sys.stderr)
        return 2
    if args.threads:
        return run_thread_study(args, files)
    rows: list[Measurement] = []
    for path, image, depth in readable_images(files, args.dtype_depth):
        jpegxl = not args.no_jpegxl
        rows.extend(measure(str(path), image, depth, args.taus, args.repeats, jpegxl=jpegxl))
        if args.luma and image_class(image) == "colour 8-bit":
            gray = ImageData(pixels=luma(image.pixels), bit_depth=8)
            rows.extend(measure(f"{path}#luma", gray, 8, args.taus, args.repeats, LUMA_CLASS, jpegxl=jpegxl))
    if not rows:
        print("codec_bench: error: no image could be measured", file=sys.stderr)
        return 2
    summary = aggregate(rows)
    print_tables(summary)
    settings = {"taus": args.taus, "repeats": args.repeats, "dtype_depth": args.dtype_depth,
                "luma": args.luma,
                "imagecodecs": imagecodecs.__version__, "charls": imagecodecs.jpegls_version(),
                "jpegxl": None if args.no_jpegxl
                else f"libjxl {imagecodecs.jpegxl_version()} effort {JPEGXL_EFFORT}",
                "folders": [str(folder) for folder in args.folders]}
    write_outputs(rows, summary, args.output, settings)
    print(f"\nwrote {args.output / 'per_image.csv'} and {args.output / 'summary.json'}")
    return report_violations(rows)


def report_violations(rows: list[Measurement]) -> int:
    violations = [row for row in rows if row.max_error > row.tau]
    if not violations:
        print("all results within tau")
        return 0
    print(f"\n!!! {len(violations)} ERROR-BOUND VIOLATION(S) !!!", file=sys.stderr)
    for row in violations:
        print(f"!!! {row.codec} tau={row.tau} max error {row.max_error}: {row.file}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
