"""Training step cost of generator families and precisions on this machine (issue 13).

Each case builds G (and the paper's D when --with-d) under a Keras dtype policy and times full
training steps on random 64 x 64 patches: G forward + backward + Adam update (+ one D step and the
adversarial term). All cases run in one process, one after another, so their ratios to the first
case are comparable even on a shared machine; the 1-minute load average is printed per case.

    python benchmarks/train_step_bench.py                       # the default table (~3 min)
    python benchmarks/train_step_bench.py --threads 1 --with-d  # one core, GAN steps
    python benchmarks/train_step_bench.py --cases float32:full:24:4 mixed_bfloat16:unshuffle:64:6:2

A case is POLICY:ARCHITECTURE:FILTERS:UNITS[:FACTOR]. Writes train_step_bench.csv/json to --output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import time
from pathlib import Path

DEFAULT_CASES = (
    "float32:full:24:4",  # the shipped v1 model
    "float32:full:48:8",
    "mixed_bfloat16:full:48:8",
    "float32:unshuffle:48:8:2",
    "mixed_bfloat16:unshuffle:48:8:2",
    "float32:unshuffle:64:6:2",
    "mixed_bfloat16:unshuffle:64:6:2",  # the v2 models
    "mixed_bfloat16:unshuffle:64:6:4",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cases", nargs="+", default=list(DEFAULT_CASES), help="POLICY:ARCH:FILTERS:UNITS[:F]"
    )
    parser.add_argument("--batch", type=int, default=16, help="patches per step (default 16)")
    parser.add_argument("--steps", type=int, default=15, help="timed steps per case, after 3 warm-up steps")
    parser.add_argument("--threads", type=int, default=0, help="TF intra-op threads (0 = all cores)")
    parser.add_argument("--with-d", action="store_true", help="GAN steps: also D (32 base maps, 6 units)")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the step functions")
    parser.add_argument("--output", type=Path, default=Path("out/train_step_bench"))
    return parser.parse_args()


def time_case(case: str, args: argparse.Namespace) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from linf_tf.learn.models import build_discriminator, build_from_spec

    policy, architecture, filters, units, *factor = case.split(":")
    keras.mixed_precision.set_global_policy(policy)
    spec = {"channels": 3, "architecture": architecture, "filters": int(filters), "num_res_units": int(units)}
    spec["unshuffle_factor"] = int(factor[0]) if factor else 2
    generator = build_from_spec(spec)
    discriminator = build_discriminator(3, base_filters=32, dense_units=256) if args.with_d else None
    keras.mixed_precision.set_global_policy("float32")
    g_optimizer = keras.optimizers.Adam(1e-4)
    g_optimizer.build(generator.trainable_variables)
    d_optimizer = None
    if discriminator is not None:
        d_optimizer = keras.optimizers.Adam(1e-4)
        d_optimizer.build(discriminator.trainable_variables)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 1, (args.batch, 64, 64, 3)), tf.float32)
    tau = tf.fill((args.batch, 1), 6 / 255)

    @tf.function(jit_compile=args.jit)
    def step() -> None:
        with tf.GradientTape() as tape:
            restored = generator([x, tau], training=True)
            loss = tf.reduce_mean(tf.square(restored - x))
            if discriminator is not None:
                loss += 1e-4 * tf.reduce_mean(tf.cast(discriminator(restored, training=True), tf.float32))
        variables = generator.trainable_variables
        g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        if discriminator is not None:
            with tf.GradientTape() as tape:
                logits = tf.cast(discriminator(tf.concat([x, restored], 0), training=True), tf.float32)
                d_loss = tf.reduce_mean(tf.square(logits))
            variables = discriminator.trainable_variables
            d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables, strict=True))

    for _ in range(3):
        step()
    start = time.perf_counter()
    cpu_start = time.process_time()
    for _ in range(args.steps):
        step()
    seconds = (time.perf_counter() - start) / args.steps
    cpu_seconds = (time.process_time() - cpu_start) / args.steps
    return {
        "case": case, "parameters": generator.count_params(), "ms_per_step": 1000 * seconds,
        "cpu_ms_per_step": 1000 * cpu_seconds, "patches_per_s": args.batch / seconds,
        "load_1min": os.getloadavg()[0],
    }


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.threads:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
    rows = []
    print(f"{platform.processor() or platform.machine()}, batch {args.batch} x 64^2, D: {args.with_d}, "
          f"threads: {args.threads or 'all'}, XLA: {args.jit}")
    header = ("case", "params", "ms/step", "cpu ms", "patch/s", "x first", "load")
    print(f"{header[0]:<34}" + "".join(f"{name:>9}" for name in header[1:]))
    for case in args.cases:
        row = time_case(case, args)
        first = rows[0]["ms_per_step"] if rows else row["ms_per_step"]
        row["speedup_vs_first"] = first / row["ms_per_step"]
        rows.append(row)
        print(
            f"{case:<34} {row['parameters']:>9,} {row['ms_per_step']:>8.0f} {row['cpu_ms_per_step']:>8.0f} "
            f"{row['patches_per_s']:>8.1f} {row['speedup_vs_first']:>8.2f} {row['load_1min']:>8.1f}",
            flush=True,
        )
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "train_step_bench.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    settings = {**vars(args), "output": str(args.output)}
    summary = json.dumps({"args": settings, "rows": rows}, indent=2)
    (args.output / "train_step_bench.json").write_text(summary + "\n")


if __name__ == "__main__":
    main()
