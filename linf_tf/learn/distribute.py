"""tf.distribute helpers of the trainer: the strategy, which process is the chief, batch counting."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from linf_tf.learn.config import STRATEGIES


def make_strategy(name: str, devices: list[str] | None = None) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local GPUs, else all logical CPUs) or ``multi_worker``.

    Create it first thing in the program: MultiWorkerMirroredStrategy reads TF_CONFIG and must
    exist before any other TF op runs. ``mirrored`` without GPUs uses every *logical* CPU device,
    so tests can split one CPU with ``tf.config.set_logical_device_configuration``.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if devices is None and not tf.config.list_logical_devices("GPU"):
            devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the real checkpoints, summaries and exports (worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_type is None:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0)


def count_batches(dataset: tf.data.Dataset) -> int:
    """Batches in one pass over ``dataset`` (iterates it once; an in-memory cache is filled on the way)."""
    count = int(dataset.cardinality())
    if count >= 0:
        return count
    return int(dataset.reduce(np.int64(0), lambda total, _: total + 1))
