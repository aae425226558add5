"""Validation of a training run: PSNR, SSIM and l-inf of decoded and restored images per tau, the
TensorBoard scalars and sample strips, one printed line per tau and the durable CSV log."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from linf_tf.learn.summaries import write_image, write_scalar

VALIDATION_LOG = "validation_log.csv"
Results = dict[str, dict[str, float]]  # {tau label: {metric: value}}
Samples = list[tuple[str, tf.Tensor]]  # (tau label, original | decoded | restored strip)


def make_restore_function(
    restoration_model: keras.Model, channels: int, eval_slack: float
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """G plus the box projection at kappa = ``eval_slack``, for one image of any size: what
    :func:`validate` runs (traced once, whatever the image sizes)."""
    signature = [
        tf.TensorSpec([None, None, None, channels], tf.float32),
        tf.TensorSpec([None], tf.float32),
    ]

    @tf.function(input_signature=signature)
    def restore(decoded: tf.Tensor, tau: tf.Tensor) -> tf.Tensor:
        slack = tf.fill(tf.shape(tau), tf.constant(eval_slack, tf.float32))
        return tf.cast(restoration_model([decoded, tau, slack], training=False), tf.float32)

    return restore


def validate(
    restore: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    dataset: tf.data.Dataset,
    pixel_max: float,
    num_sample_images: int = 0,
) -> tuple[Results, Samples]:
    """Run ``restore(decoded, tau)`` (G + box projection) on every ``(x, y, tau)`` batch of one image.

    Returns mean PSNR/SSIM over the images, max l-inf (pixel units) over the images and the gains
    restored - decoded, per tau label (``tau6``), plus the first ``num_sample_images`` strips.
    """
    per_tau: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    samples: Samples = []
    for x, y, tau in dataset:
        restored = restore(y, tf.reshape(tau, [-1]))
        label = f"tau{round(float(tau[0]) * pixel_max):g}"
        for name, value in image_metrics(x, y, restored, pixel_max).items():
            per_tau[label][name].append(value)
        if len(samples) < num_sample_images:
            samples.append((label, tf.concat([x, y, restored], axis=2)))
    return {label: summarise(metrics) for label, metrics in per_tau.items()}, samples


def image_metrics(x: tf.Tensor, y: tf.Tensor, restored: tf.Tensor, pixel_max: float) -> dict[str, float]:
    """PSNR, SSIM and l-inf (pixel units) of the decoded ``y`` and the ``restored`` image vs ``x``."""
    metrics = {}
    for name, image in (("decoded", y), ("restored", restored)):
        metrics[f"psnr_{name}"] = float(tf.image.psnr(image, x, max_val=1.0)[0])
        metrics[f"ssim_{name}"] = float(tf.image.ssim(image, x, max_val=1.0)[0])
        metrics[f"linf_{name}"] = float(tf.reduce_max(tf.abs(image - x))) * pixel_max
    return metrics


def summarise(metrics: Mapping[str, list[float]]) -> dict[str, float]:
    summary = {
        name: (max(values) if name.startswith("linf") else float(np.mean(values)))
        for name, values in metrics.items()
    }
    summary["psnr_gain"] = summary["psnr_restored"] - summary["psnr_decoded"]
    summary["ssim_gain"] = summary["ssim_restored"] - summary["ssim_decoded"]
    summary["linf_gain"] = summary["linf_decoded"] - summary["linf_restored"]
    return summary


def _by_tau(results: Mapping[str, Mapping[str, float]]) -> list[tuple[str, Mapping[str, float]]]:
    return sorted(results.items(), key=lambda item: float(item[0][3:]))


def log_validation(
    writer: tf.summary.SummaryWriter,
    step: int,
    epoch: float,
    results: Results,
    samples: Samples,
    logdir: str | Path,
) -> None:
    """TensorBoard scalars and sample strips, the CSV log and one printed line per tau."""
    with writer.as_default():
        for label, metrics in results.items():
            for name, value in metrics.items():
                write_scalar(f"validation/{label}/{name}", value, step)
        for index, (label, strip) in enumerate(samples):
            write_image(f"samples/{index}_{label}_original_decoded_restored", strip, step)
    append_validation_log(Path(logdir) / VALIDATION_LOG, step, epoch, results)
    for label, metrics in _by_tau(results):
        tqdm.write(
            f"step {step} validation {label}: PSNR {metrics['psnr_decoded']:.2f} -> "
            f"{metrics['psnr_restored']:.2f} dB (gain {metrics['psnr_gain']:+.3f} dB), "
            f"SSIM {metrics['ssim_decoded']:.4f} -> {metrics['ssim_restored']:.4f}, "
            f"l-inf {metrics['linf_decoded']:.0f} -> {metrics['linf_restored']:.1f}"
        )


def append_validation_log(path: Path, step: int, epoch: float, results: Results) -> None:
    """One CSV row per tau: the run's durable log of steps, wall time and validation gain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted({name for metrics in results.values() for name in metrics})
    new_file = not path.is_file()
    with path.open("a", encoding="utf-8") as log_file:
        if new_file:
            log_file.write(",".join(["step", "epoch", "wall_time", "tau", *names]) + "\n")
        for label, metrics in _by_tau(results):
            values = [f"{metrics.get(name, math.nan):.6g}" for name in names]
            fields = [str(step), f"{epoch:.3f}", f"{time.time():.1f}", label[3:], *values]
            log_file.write(",".join(fields))
            log_file.write("\n")
