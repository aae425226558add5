"""Throughput of the training input pipeline alone (no model): patches per second.

Measurements on one dataset object with an in-memory cache:
    first epoch   - images loaded, compressed and decoded by the codec for every tau, then cut
                    (always a full pass: an in-memory cache is only kept after one);
    cached epochs - decoded images replayed from the cache (no codec), cut, shuffled, augmented
                    (``--cached-epochs N`` passes, the median is reported; ``--batches N`` stops
                    each after N batches).

Before timing, a tiny pipeline (one 128x128 crop) is run once so that TensorFlow's one-time
start-up (thread pools, kernel and function set-up) is not charged to the first epoch, as in
training where the model is built first (``--no-warmup`` to include it).

Wall-clock rates depend on whatever else runs on the machine, so the table also gives this
process's CPU seconds and patches per CPU second, plus the 1-minute load average, and the time
to the first batch (codec, cache and shuffle-buffer fill before anything flows).

    python benchmarks/pipeline_bench.py --skimage
    python benchmarks/pipeline_bench.py --images /work/shared/data/train/wikipedia --limit 10

Prints a table and writes pipeline_bench.json / pipeline_bench.csv to --output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from linf_tf.learn import data, sources

FIRST_EPOCH_TARGET = 2_000  # patches/s on the 2-core dev machine: reported, not asserted
CACHED_EPOCH_TARGET = 10_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--images", help="directory or glob of PNG/TIFF/BMP training images")
    source.add_argument("--skimage", action="store_true", help="embedded skimage.data images (default)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--taus", type=int, nargs="+", default=list(data.DEFAULT_TAUS))
    parser.add_argument("--batches", type=int, default=None, help="cap on batches of each cached epoch")
    parser.add_argument("--cached-epochs", type=int, default=3, help="cached epochs timed (median reported)")
    parser.add_argument(
        "--interleave-images",
        type=int,
        default=None,
        help="images mixed per batch (make_training_dataset's interleave_images; default: its default)",
    )
    parser.add_argument(
        "--no-warmup", dest="warmup", action="store_false", help="do not run a tiny pipeline before timing"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=data.DEFAULT_PATCH_SIZE)
    parser.add_argument("--stride", type=int, default=data.DEFAULT_STRIDE)
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("out/pipeline_bench"))
    return parser.parse_args()


def select_images(args: argparse.Namespace) -> tuple[list, str]:
    if args.images:
        images, name = sources.list_image_files(args.images), str(args.images)
    else:
        images, name = sources.skimage_sample_images(), "skimage"
    return images[: args.limit], name


def time_epoch(dataset: tf.data.Dataset, max_batches: int | None) -> dict:
    """Batches, patches, wall and CPU seconds (of this process) of one pass, and the wall seconds
    until its first batch.

    CPU seconds are reported too because wall time on a shared machine depends on other load.
    """
    batches = patches = 0
    first_batch = None
    start, cpu_start = time.perf_counter(), time.process_time()
    for x, _, _ in dataset:
        if first_batch is None:
            first_batch = time.perf_counter() - start
        batches += 1
        patches += int(x.shape[0])
        if max_batches is not None and batches >= max_batches:
            break
    return {
        "batches": batches,
        "patches": patches,
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,
        "first_batch_seconds": first_batch or 0.0,
    }


def warm_up(args: argparse.Namespace) -> None:
    """One pass of a tiny pipeline (one 128x128 crop): TensorFlow's one-time start-up."""
    crop = np.zeros((128, 128, args.channels), np.uint8)
    crop[::2] = 255
    for _ in make_dataset(args, [crop]):
        pass


def make_dataset(args: argparse.Namespace, images: list) -> tf.data.Dataset:
    extra = {} if args.interleave_images is None else {"interleave_images": args.interleave_images}
    return data.make_training_dataset(
        images,
        taus=args.taus,
        patch_size=args.patch_size,
        stride=args.stride,
        batch_size=args.batch_size,
        seed=args.seed,
        cache="",
        channels=args.channels,
        **extra,
    )


def run(args: argparse.Namespace) -> list[dict]:
    images, source = select_images(args)
    if args.warmup:
        warm_up(args)
    dataset = make_dataset(args, images)
    # The first epoch must be read to the end: an in-memory cache is kept only after a full pass.
    first = time_epoch(dataset, None)
    cached = [time_epoch(dataset, args.batches) for _ in range(max(1, args.cached_epochs))]
    median = sorted(cached, key=lambda epoch: epoch["seconds"])[len(cached) // 2]
    measured = (
        ("first (codec)", first, [first], FIRST_EPOCH_TARGET),
        (f"cached (median of {len(cached)})", median, cached, CACHED_EPOCH_TARGET),
    )
    rows = []
    for epoch, result, epochs, target in measured:
        seconds, cpu_seconds, patches = result["seconds"], result["cpu_seconds"], result["patches"]
        rows.append(
            {
                "source": source,
                "images": len(images),
                "taus": " ".join(map(str, args.taus)),
                "epoch": epoch,
                "batches": result["batches"],
                "patches": patches,
                "seconds": round(seconds, 3),
                "first_batch_s": round(result["first_batch_seconds"], 3),
                "patches_per_s": round(patches / seconds, 1),
                "cpu_seconds": round(cpu_seconds, 3),
                "patches_per_cpu_s": round(patches / cpu_seconds, 1),
                "load_avg_1min": round(os.getloadavg()[0], 2),
                "target_patches_per_s": target,
                "meets_target": patches / seconds >= target,
                "warmup": args.warmup,
                "each_epoch_seconds": " ".join(f"{each['seconds']:.3f}" for each in epochs),
            }
        )
    return rows


def print_table(rows: list[dict]) -> None:
    columns = [
        "epoch",
        "images",
        "batches",
        "patches",
        "seconds",
        "first_batch_s",
        "patches_per_s",
        "target_patches_per_s",
        "cpu_seconds",
        "patches_per_cpu_s",
        "load_avg_1min",
    ]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in rows:
        print("  ".join(str(row[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))


def write_results(rows: list[dict], output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__}
    (output / "pipeline_bench.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    with (output / "pipeline_bench.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    args = parse_args()
    rows = run(args)
    print(
        f"source: {rows[0]['source']}  taus {rows[0]['taus']}  batch size {args.batch_size}  "
        f"patch {args.patch_size} stride {args.stride}  cpus {os.cpu_count()}"
    )
    print_table(rows)
    write_results(rows, args.output)
    print(f"wrote {args.output / 'pipeline_bench.json'} and {args.output / 'pipeline_bench.csv'}")


if __name__ == "__main__":
    main()
