"""Training system of the l-inf CNN: a small GAN trainer for G (restoration) and D (paper §3.3-4.3).

One :class:`~linf_tf.learn.config.TrainConfig` (frozen, every option documented) drives one
:class:`Trainer`, which owns G, D, their Adam optimizers, the checkpoint and the training loop.
Building G, D and the optimizers (:mod:`linf_tf.learn.networks`), the checkpoint and resuming
(:mod:`linf_tf.learn.checkpoints`), validation (:mod:`linf_tf.learn.validation`), TensorBoard
summaries (:mod:`linf_tf.learn.summaries`), strategies (:mod:`linf_tf.learn.distribute`), model files
(:mod:`linf_tf.learn.model_io`) and the whole run as ``train.py`` drives it (:mod:`linf_tf.learn.run`)
live in their own modules; this one is the training loop::

    strategy = make_strategy("default")
    trainer = Trainer(config, train_dataset_fn, val_dataset, strategy=strategy)
    trainer.train()                       # resumes from config.checkpoint_dir if a checkpoint exists
    export_generator_weights(trainer.generator, config, "out/model")

"Restore" means image restoration only; loading the latest checkpoint is *resuming*.

Schedule (paper §4.2, by epochs): Adam (beta1 = 0.9) at ``learning_rate`` (1e-4), then
``final_learning_rate`` (1e-5) for the last ``decay_fraction`` (1/3) of the epochs; the first
``warmup_fraction`` (1/3) of the epochs train G without the adversarial term and without D updates.
Each later step is one G step followed by one D step (§3.3.4).

Loss reduction under ``tf.distribute``: every loss is computed per example (the ``*_per_example``
functions of :mod:`linf_tf.learn.losses`) and reduced once, with
``tf.nn.compute_average_loss(per_example, global_batch_size=config.batch_size)``. Each replica thus
contributes sum(its examples) / global batch, and the optimizer's all-reduce *sums* the replicas'
gradients, which gives exactly the gradient of the global mean. Keras 3 loss objects are not used
for the reduction: they average over the per-replica batch, and scaling them again by the number of
replicas would be a second, easy-to-get-wrong correction.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from linf_tf.learn import losses
from linf_tf.learn.checkpoints import RunCheckpoint
from linf_tf.learn.config import Batch, DatasetFn, NonFiniteLossError, TrainConfig
from linf_tf.learn.distribute import count_batches, is_chief
from linf_tf.learn.networks import build_networks, scale_loss
from linf_tf.learn.summaries import make_summary_writer, write_losses
from linf_tf.learn.validation import log_validation, make_restore_function, validate

# --- the trainer --------------------------------------------------------------------------------


class Trainer:
    """Owns G, D, both optimizers, the checkpoint and the summaries of one run; see the module doc.

    Args:
        config: the run's options.
        train_dataset_fn: ``InputContext | None -> tf.data.Dataset`` of per-replica batches
            ``(x, y, tau)`` (``data.make_training_dataset`` with ``input_context``). It is given to
            ``strategy.distribute_datasets_from_function`` and repeated, so an epoch is exactly
            ``steps_per_epoch`` steps whatever the shards hold.
        val_dataset: ``(x, y, tau)`` batches of one image (``data.make_validation_dataset``), or None.
        strategy: from :func:`make_strategy`; None = the default strategy.

    The constructor resumes from the latest checkpoint of ``config.checkpoint_dir``, so re-running the
    same command after the process was killed continues from the last saved step.
    """

    def __init__(
        self,
        config: TrainConfig,
        train_dataset_fn: DatasetFn,
        val_dataset: tf.data.Dataset | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        self.config = config
        self.strategy = strategy or tf.distribute.get_strategy()
        self.chief = is_chief(self.strategy)
        self._train_dataset_fn = train_dataset_fn
        self._val_dataset = val_dataset
        self._iterator: Iterable | None = None
        self.steps_per_epoch = config.steps_per_epoch or count_batches(train_dataset_fn(None))
        if self.steps_per_epoch < 1:
            raise ValueError("the training data yields no batch: lower batch_size/patch_size or add images")
        self.total_steps = config.epochs * self.steps_per_epoch
        keras.utils.set_random_seed(config.seed)
        networks = build_networks(config, self.strategy)
        self.generator, self.discriminator = networks.generator, networks.discriminator
        self.g_optimizer, self.d_optimizer = networks.g_optimizer, networks.d_optimizer
        self.restoration_model = networks.restoration_model
        # The optimizers' current rate, tracked in Python; None forces the first step to assign it,
        # which also overrides a rate loaded from a checkpoint written with other flags.
        self.learning_rate: float | None = None
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        tracked = {
            "step": self.step,
            "epoch": self.epoch,
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
        }
        self.checkpoints = RunCheckpoint(tracked, config, self.strategy, self.chief)
        self.resumed_from = self.checkpoints.resume()
        self._writer = make_summary_writer(self.chief, config.logdir)
        self._g_step = tf.function(self._distributed_generator_step)
        self._d_step = tf.function(self._distributed_discriminator_step)
        self._g_gradients = tf.function(self._generator_gradients, jit_compile=config.jit_compile)
        self._d_gradients = tf.function(self._discriminator_gradients, jit_compile=config.jit_compile)
        self._restore_images = make_restore_function(
            self.restoration_model, config.channels, config.eval_slack
        )
        self.last_evaluation: tuple[int, dict[str, dict[str, float]]] | None = None  # (step, results)

    # --- one step -------------------------------------------------------------------------------

    def _average(self, per_example: tf.Tensor) -> tf.Tensor:
        """The one place where losses are reduced (see the module doc)."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.config.batch_size)

    def _generator_gradients(
        self, x: tf.Tensor, y: tf.Tensor, tau: tf.Tensor, adversarial: bool
    ) -> tuple[list[tf.Tensor], dict[str, tf.Tensor], tf.Tensor]:
        """Forward and backward pass of G on one replica's batch (XLA-compiled with jit_compile)."""
        with tf.GradientTape() as tape:
            restored = self.generator([y, tau], training=True)
            # D sees batch statistics here as in its own step; only G's variables get gradients.
            fake_logits = self.discriminator(restored, training=True) if adversarial else None
            parts = losses.generator_loss_per_example(
                restored,
                x,
                y,
                tau,
                fake_logits,
                gt_margin=self.config.gt_margin,
                epsilon=self.config.linf_epsilon,
                **self.config.loss_weights,
            )
            averaged = {name: self._average(value) for name, value in parts.items()}
            scaled = scale_loss(self.g_optimizer, averaged["total"])
        gradients = tape.gradient(scaled, self.generator.trainable_variables)
        return gradients, averaged, tf.stop_gradient(tf.cast(restored, tf.float32))

    def _generator_replica_step(
        self, x: tf.Tensor, y: tf.Tensor, tau: tf.Tensor, adversarial: bool
    ) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
        gradients, averaged, restored = self._g_gradients(x, y, tau, adversarial)
        self.g_optimizer.apply_gradients(zip(gradients, self.generator.trainable_variables, strict=True))
        return averaged, restored

    def _distributed_generator_step(
        self, batch: Batch, adversarial: bool
    ) -> tuple[dict[str, tf.Tensor], Any]:
        """One G step on every replica; returns the global-mean losses and the restored batch."""
        x, y, tau = batch
        averaged, restored = self.strategy.run(self._generator_replica_step, args=(x, y, tau, adversarial))
        summed = {
            name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in averaged.items()
        }
        return summed, restored

    def _discriminator_gradients(
        self, x: tf.Tensor, restored: tf.Tensor
    ) -> tuple[list[tf.Tensor], tf.Tensor]:
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(x, training=True)
            fake_logits = self.discriminator(restored, training=True)
            per_example = losses.discriminator_loss_per_example(
                real_logits, fake_logits, real_label=self.config.real_label
            )
            loss = self._average(per_example)
            scaled = scale_loss(self.d_optimizer, loss)
        return tape.gradient(scaled, self.discriminator.trainable_variables), loss

    def _discriminator_replica_step(self, x: tf.Tensor, restored: tf.Tensor) -> tf.Tensor:
        gradients, loss = self._d_gradients(x, restored)
        self.d_optimizer.apply_gradients(zip(gradients, self.discriminator.trainable_variables, strict=True))
        return loss

    def _distributed_discriminator_step(self, batch: Batch, restored: Any) -> tf.Tensor:
        """One D step on real x vs the images G restored in the preceding G step (G one update
        behind; reusing them saves a forward pass of G)."""
        loss = self.strategy.run(self._discriminator_replica_step, args=(batch[0], restored))
        return self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One G step, then one D step once the warm-up is over, on a *distributed* batch.

        Raises NonFiniteLossError (before the step counter moves or anything is saved) when a
        loss is NaN or inf.
        """
        epoch = int(self.step.numpy()) // self.steps_per_epoch
        self._set_learning_rate(self.config.learning_rate_for(epoch))
        adversarial = self.config.is_adversarial(epoch)
        g_losses, restored = self._g_step(batch, adversarial)
        values = {f"g_{name}": float(value) for name, value in g_losses.items()}
        if adversarial:
            values["d_loss"] = float(self._d_step(batch, restored))
        _check_finite(values, int(self.step.numpy()) + 1, self.checkpoints.latest)
        self.step.assign_add(1)
        self.epoch.assign(int(self.step.numpy() - 1) // self.steps_per_epoch)
        return values

    def _set_learning_rate(self, rate: float) -> None:
        # The rate is tracked in Python: float() of the optimizer's variable fails when it is a
        # MirroredVariable (Keras 3's Variable.__float__ does not unwrap distributed values).
        if self.learning_rate == rate:
            return
        for optimizer in (self.g_optimizer, self.d_optimizer):
            if optimizer is not None:
                optimizer.learning_rate = rate  # assigns the existing variable: no retracing
        self.learning_rate = rate

    # --- the loop -------------------------------------------------------------------------------

    def _batches(self) -> Iterable:
        if self._iterator is None:
            distributed = self.strategy.distribute_datasets_from_function(
                lambda context: self._train_dataset_fn(context).repeat()
            )
            self._iterator = iter(distributed)
        return self._iterator

    def release_input(self) -> None:
        """Drop the training iterator: its prefetch threads (codec calls through tf.numpy_function)
        otherwise keep working during the final validation and can keep the process from exiting."""
        self._iterator = None

    def train(self, until_step: int | None = None) -> dict[str, float]:
        """Train up to global step ``until_step`` (default: all epochs); return the last losses.

        Checkpoints every ``checkpoint_every_steps`` steps and at the end of each epoch, validates
        every ``eval_every_steps`` steps or at the end of each epoch.
        """
        target = self.total_steps if until_step is None else min(until_step, self.total_steps)
        start = int(self.step.numpy())
        budget = self.config.max_train_minutes
        deadline = time.monotonic() + 60.0 * budget if budget > 0 else math.inf
        values: dict[str, float] = {}
        progress = tqdm(
            total=target,
            initial=start,
            desc=f"{self.config.mode} training",
            unit="step",
            disable=not (self.chief and self.config.show_progress),
            dynamic_ncols=True,
        )
        with self._writer.as_default(), progress:
            iterator = self._batches()
            for _ in range(start, target):
                values = self.train_step(next(iterator))
                step = int(self.step.numpy())
                write_losses(values, self.learning_rate, step)
                progress.update(1)
                progress.set_postfix({name: f"{value:.4g}" for name, value in values.items()}, refresh=False)
                self._after_step(step)
                if time.monotonic() > deadline and step < target:
                    self.save()
                    tqdm.write(
                        f"time budget of {budget:g} min spent at step {step} of {target}: checkpointed; "
                        "rerun the same command to resume"
                    )
                    break
        self._writer.flush()
        return values

    def _after_step(self, step: int) -> None:
        end_of_epoch = step % self.steps_per_epoch == 0
        every = self.config.checkpoint_every_steps
        if end_of_epoch or step == self.total_steps or (every and step % every == 0):
            self.save()
        eval_every = self.config.eval_every_steps
        due = end_of_epoch if not eval_every else step % eval_every == 0
        # Only the chief validates: evaluation runs no collective ops, so the others need not wait.
        if self.chief and self._val_dataset is not None and due:
            self.evaluate(log=True)

    def save(self) -> str:
        """Checkpoint now, numbered by the step (:meth:`RunCheckpoint.save`)."""
        return self.checkpoints.save(self.step)

    # --- validation -----------------------------------------------------------------------------

    def evaluate(
        self, dataset: tf.data.Dataset | None = None, log: bool = False
    ) -> dict[str, dict[str, float]]:
        """PSNR, SSIM and l-inf of decoded and restored images vs the original, per tau
        (:func:`linf_tf.learn.validation.validate`; restored = G projected into the box of half-width
        ``eval_slack * tau``). With ``log``, writes them (and sample images) to TensorBoard and the
        CSV log and prints one line per tau."""
        dataset = self._val_dataset if dataset is None else dataset
        if dataset is None:
            raise ValueError("no validation dataset")
        results, samples = validate(
            self._restore_images, dataset, self.config.pixel_max, self.config.num_sample_images
        )
        step = int(self.step.numpy())
        if dataset is self._val_dataset:
            self.last_evaluation = (step, results)
        if log and self.chief:
            epoch = step / self.steps_per_epoch
            log_validation(self._writer, step, epoch, results, samples, self.config.logdir)
        return results


def _check_finite(values: Mapping[str, float], step: int, latest_checkpoint: str | None) -> None:
    """Stop on a NaN/inf loss of ``step``, before the step counter moves or anything is saved."""
    bad = {name: value for name, value in values.items() if not math.isfinite(value)}
    if bad:
        described = ", ".join(f"{name}={value}" for name, value in bad.items())
        raise NonFiniteLossError(
            f"non-finite loss at step {step}: {described}. Training stopped; the latest checkpoint "
            f"({latest_checkpoint}) predates this step. Check the data for NaN/inf and "
            "lower the learning rate or the loss weights."
        )
