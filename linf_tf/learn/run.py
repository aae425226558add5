"""A whole training run as ``train.py`` drives it: image sources, the dataset function, the Trainer,
final validation and the export of G (:func:`export_generator_weights`, through
:mod:`linf_tf.learn.model_io`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from linf_tf.learn.config import SKIMAGE_VALIDATION_NAMES, DatasetFn, TrainConfig
from linf_tf.learn.model_io import save_generator
from linf_tf.learn.trainer import Trainer


def image_source(spec: str, split: str = "train") -> Any:
    """Images for ``data.make_*_dataset``: ``skimage``, ``DIR_OR_GLOB[,DIR_OR_GLOB...]`` or
    ``div2k:MANUAL_DIR``.

    ``skimage`` trains on the scikit-image samples except :data:`SKIMAGE_VALIDATION_NAMES`, which
    it validates on (split ``validation``), so validation images are never trained on.
    """
    from linf_tf.learn import sources  # lazy: pulls in the codec and scikit-image

    if spec == "skimage":
        if split == "validation":
            return sources.skimage_sample_images(SKIMAGE_VALIDATION_NAMES)
        names = [name for name in sources.SKIMAGE_SAMPLE_NAMES if name not in SKIMAGE_VALIDATION_NAMES]
        return sources.skimage_sample_images(names)
    if spec.startswith("div2k:"):
        return sources.div2k_source(spec.removeprefix("div2k:"), split=split)
    return [path for part in spec.split(",") if part for path in sources.list_image_files(part)]


def export_generator_weights(generator: keras.Model, config: TrainConfig, directory: str | Path) -> Path:
    """Write G with :func:`linf_tf.learn.model_io.save_generator`: the architecture options plus the
    taus and eval slack it was trained/validated with; :func:`load_saved_generator` rebuilds it."""
    architecture = {
        **config.generator_spec,
        "taus": list(config.taus),
        "pixel_max": config.pixel_max,
        "eval_slack": config.eval_slack,
        "mode": config.mode,
    }
    return save_generator(generator, architecture, directory)


def make_dataset_fn(config: TrainConfig, images: Any, cache: str | None = "") -> DatasetFn:
    """``InputContext -> dataset`` of (x, y, tau) training batches from ``data.make_training_dataset``."""
    from linf_tf.learn import data  # lazy: pulls in the codec and scikit-image

    def dataset_fn(input_context: tf.distribute.InputContext | None) -> tf.data.Dataset:
        return data.make_training_dataset(
            images,
            taus=config.taus,
            patch_size=config.patch_size,
            stride=config.stride,
            batch_size=config.batch_size,
            seed=config.seed,
            cache=cache,
            input_context=input_context,
            channels=config.channels,
        )

    return dataset_fn


def run_training(
    config: TrainConfig,
    *,
    strategy: tf.distribute.Strategy | None = None,
    data: str = "skimage",
    val_data: str | None = "skimage",
    val_crop_size: int | None = 256,
    cache: str | None = "",
    export_dir: str | None = None,
) -> tuple[Trainer, dict[str, dict[str, float]]]:
    """Build the datasets and the Trainer, train (resuming if possible), validate, export G.

    ``data``/``val_data`` use :func:`image_source`'s syntax. Returns the trainer and the final
    validation results (empty without validation data). The export goes to ``export_dir``
    (default ``<logdir>/export``), written by the chief only.
    """
    from linf_tf.learn import data as data_lib  # lazy: pulls in the codec and scikit-image

    train_fn = make_dataset_fn(config, image_source(data, "train"), cache)
    val_dataset = None
    if val_data:
        val_dataset = data_lib.make_validation_dataset(
            image_source(val_data, "validation"),
            taus=config.taus,
            crop_size=val_crop_size,
            channels=config.channels,
            cache="",  # validation images are compressed once, then reused at every evaluation
        )
    trainer = Trainer(config, train_fn, val_dataset, strategy=strategy)
    if trainer.chief:
        where = f"resuming from {trainer.resumed_from}" if trainer.resumed_from else "starting from scratch"
        tqdm.write(
            f"{config.mode}: {trainer.total_steps} steps ({config.epochs} epochs x "
            f"{trainer.steps_per_epoch}), {where} at step {int(trainer.step.numpy())}"
        )
    trainer.train()
    trainer.release_input()
    results: dict[str, dict[str, float]] = {}
    if val_dataset is not None and trainer.chief:
        already = trainer.last_evaluation
        fresh = already is not None and already[0] == int(trainer.step.numpy())
        results = already[1] if fresh else trainer.evaluate(log=True)
    if trainer.chief:
        exported = export_generator_weights(
            trainer.generator, config, export_dir or os.path.join(config.logdir, "export")
        )
        tqdm.write(f"generator weights exported to {exported}")
        note = short_run_note(trainer.total_steps)
        if note:
            tqdm.write(note)
    return trainer, results


SHORT_RUN_STEPS = 1000


def short_run_note(total_steps: int) -> str | None:
    """What a run of a few hundred steps proves (the quick start's 360): that the pipeline works.

    Its validation gains are noise around zero and can be negative at some tau; saying so beats a
    README that promises a gain such a run does not reliably give (issue 15, item 10).
    """
    if total_steps >= SHORT_RUN_STEPS:
        return None
    return (
        f"note: {total_steps} steps is a smoke test of the training pipeline (codec in the input, "
        "G/D steps, checkpoints, validation, export), not a trained model: its gains are noise and "
        "may be negative. A useful model takes thousands of steps: configs/cpu_small.flags "
        "(6,400 steps, the shipped model) or configs/cpu_v2_*.flags."
    )
