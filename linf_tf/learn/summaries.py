"""TensorBoard summaries written with TensorFlow's core writer (no ``tensorboard`` package needed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf


def make_summary_writer(chief: bool, logdir: str) -> tf.summary.SummaryWriter:
    """The run's event-file writer; a no-op writer on non-chief workers."""
    if not chief:
        return tf.summary.create_noop_writer()
    return tf.summary.create_file_writer(logdir)


def _plugin_metadata(plugin_name: str) -> Any:
    return tf.compat.v1.SummaryMetadata(
        plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name=plugin_name)
    )


def write_scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar via the core ``tf.summary.write``.

    ``tf.summary.scalar``/``image`` are implemented by the ``tensorboard`` package, which TF 2.21
    no longer installs (TBNotInstalledError); the core writer plus the plugin metadata those
    functions would attach produce the same events, readable by any TensorBoard.
    """
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_plugin_metadata("scalars"))


def write_image(tag: str, image: tf.Tensor, step: int) -> None:
    """One (1, H, W, C) float image in [0, 1] as a TensorBoard image (the images plugin's format:
    the strings [width, height, PNG])."""
    pixels = tf.cast(tf.round(tf.clip_by_value(image[0], 0.0, 1.0) * 255.0), tf.uint8)
    height, width = pixels.shape[0], pixels.shape[1]
    tensor = tf.stack([tf.as_string(width), tf.as_string(height), tf.image.encode_png(pixels)])
    tf.summary.write(tag, tensor, step=step, metadata=_plugin_metadata("images"))


def write_losses(values: Mapping[str, float], learning_rate: float, step: int) -> None:
    """One training step's losses (``loss/<name>``) and the learning rate it ran at."""
    for name, value in values.items():
        write_scalar(f"loss/{name}", value, step)
    write_scalar("learning_rate", float(learning_rate), step)
