"""The checkpoint of a training run: what it holds, where each worker writes it, and resuming from it.

"Restore" means image restoration in this package; loading the latest checkpoint is *resuming*
(``tf.train.Checkpoint.restore`` is TensorFlow's name for it and appears only in :meth:`resume`).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from linf_tf.learn.config import TrainConfig


class RunCheckpoint:
    """The objects of one run (step, models, optimizers) behind one ``tf.train.CheckpointManager``.

    Every worker saves (under MultiWorkerMirroredStrategy saving is a collective operation), but only
    the chief writes to ``config.resolved_checkpoint_dir``; the others write to a scratch folder that
    is deleted after each save. Everyone resumes from the chief's folder.
    """

    def __init__(
        self,
        tracked: Mapping[str, Any],
        config: TrainConfig,
        strategy: tf.distribute.Strategy,
        chief: bool,
    ) -> None:
        # tf.train.Checkpoint rejects None: modes without D simply have no D entries.
        objects = {name: obj for name, obj in tracked.items() if obj is not None}
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.chief = chief
        self._directory = config.resolved_checkpoint_dir
        self._write_dir = self._directory if chief else _scratch_dir(strategy)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._write_dir, max_to_keep=config.max_checkpoints
        )

    @property
    def latest(self) -> str | None:
        """The newest checkpoint this process wrote (or that was there when the run began)."""
        return self.manager.latest_checkpoint

    def resume(self) -> str | None:
        """Load the latest checkpoint of the (chief's) checkpoint dir, if any; return its path."""
        latest = tf.train.latest_checkpoint(self._directory)
        if latest is not None:
            # expect_partial: a checkpoint from a mode without D loads into a Trainer with D.
            self.checkpoint.restore(latest).expect_partial()
        return latest

    def save(self, step: tf.Variable) -> str:
        """Checkpoint now (numbered by the step); non-chief workers' copies are deleted again."""
        path = self.manager.save(checkpoint_number=step)
        if not self.chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)
        return path


def _scratch_dir(strategy: tf.distribute.Strategy) -> str:
    return tempfile.mkdtemp(prefix=f"linf_ckpt_worker{strategy.cluster_resolver.task_id}_")
