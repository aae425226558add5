"""Training system of the l-inf CNN: a small GAN trainer for G (restoration) and D (paper §3.3-4.3).

One :class:`TrainConfig` (frozen, every option documented) drives one :class:`Trainer`, which owns
G, D, their Adam optimizers, the checkpoint, the TensorBoard writer and the validation loop::

    strategy = make_strategy("default")
    trainer = Trainer(config, train_dataset_fn, val_dataset, strategy=strategy)
    trainer.train()                       # resumes from config.checkpoint_dir if a checkpoint exists
    export_generator_weights(trainer.generator, config, "out/model")

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
import os
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from linf_tf.learn import losses
from linf_tf.learn.model_io import (  # noqa: F401  (re-exported: the trainer's export API)
    EXPORT_CONFIG_NAME,
    EXPORT_WEIGHTS_NAME,
    load_saved_generator,
    save_generator,
)
from linf_tf.learn.models import ARCHITECTURES, build_discriminator, build_from_spec, build_inference_model

MODES = ("linf", "single_rate", "mse", "mse_gan", "arcnn")
# Keras dtype policy per --mixed_precision value: float16 needs loss scaling (GPUs with tensor
# cores); bfloat16 has float32's exponent range, needs none, and is what AMX/AVX512-BF16 CPUs run fast.
PRECISION_POLICIES = {"none": None, "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
MODES_WITH_DISCRIMINATOR = frozenset({"linf", "single_rate", "mse_gan"})
MODES_WITH_LINF_LOSS = frozenset({"linf", "single_rate"})
STRATEGIES = ("default", "mirrored", "multi_worker")
# scikit-image samples held out of training when --data=skimage and --val_data=skimage.
SKIMAGE_VALIDATION_NAMES = ("chelsea", "camera")

Batch = tuple[tf.Tensor, tf.Tensor, tf.Tensor]  # (x original, y decoded, tau), all float32 in [0, 1]
DatasetFn = Callable[[tf.distribute.InputContext | None], tf.data.Dataset]


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or inf; training stopped before the poisoned state was checkpointed."""


@dataclass(frozen=True)
class TrainConfig:
    """Every option of a training run. Defaults follow the paper (§3.2-4.3) where it gives a value.

    Model
        mode: ``linf`` (multi-rate l-inf CNN, the paper: MSE + lambda1 adv + lambda2 L-inf, with D),
            ``single_rate`` (the same loss, exactly one tau), ``mse`` (MSE only, no D), ``mse_gan``
            (MSE + adversarial, lambda2 = 0) or ``arcnn`` (the ARCNN baseline, MSE only, no D).
        channels: 1 (gray) or 3 (RGB); training images are converted to it.
        architecture: ``full`` (the paper's G, every conv at full resolution) or ``unshuffle`` (the
            body at 1/unshuffle_factor of the resolution, models.build_unshuffle_generator).
        filters, num_res_units: width and depth of G (paper: 64 maps, 16 residual units).
        unshuffle_factor: space-to-depth factor of the ``unshuffle`` architecture (2 or 4).
        tau_conditioning: feed G a plane of the normalised tau (an addition for multi-rate use).
        arcnn_filters: hidden widths of ARCNN (mode ``arcnn``; original 64, 32, 16).
        disc_base_filters, disc_dense_units: width of D's first unit and hidden dense layer.
        disc_filter_multipliers: width of each of D's strided units relative to disc_base_filters
            (paper: six units, 1, 1, 2, 2, 4, 4); fewer units make a smaller, faster D.
        batch_norm_momentum: momentum of the moving statistics of every BatchNormalization layer
            of G and D; None keeps the Keras default 0.99. Short runs need less (e.g. 0.9): after
            n steps the moving variance still holds 0.99**n of its initial value 1, far above the
            small variances of residual features, so inference-mode BN (validation, export) would
            not match training mode until a few thousand steps have passed.
    Data
        taus: codec error bounds in pixel units; one tau for ``single_rate``.
        patch_size, stride: training patches (paper: 64 with stride 32).
        batch_size: the *global* batch, split between replicas.
        pixel_max: max pixel value of the data (255 for 8 bits); only used to name taus and to
            report l-inf errors in pixel units (the data pipeline scales by each image's own max).
    Schedule
        epochs: total epochs (paper: 150).
        steps_per_epoch: G steps per epoch; None = one pass over the training data (counted once).
        learning_rate, final_learning_rate: Adam rate before / during the last ``decay_fraction``
            of the epochs (paper: 1e-4 for 100 epochs, then 1e-5 for 50).
        warmup_fraction: leading fraction of epochs without the adversarial term or D updates
            (paper: 50 of 150).
        adam_beta1: Adam's first-moment decay (paper: 0.9); beta2 and epsilon are Keras defaults.
    Loss (Eq. 14 plus an optional ground-truth term)
        adv_weight (lambda1), linf_weight (lambda2): the paper gives no values; lambda1 = 1e-3 is
            SRGAN's. lambda2 = 0.01: the barrier of Eq. 13 has slope 1 at the box edge, far above
            the MSE's gradient 2|x_hat - x| (~0.04 at tau = 10/255), and with lambda2 = 1 a short
            run (configs/quickstart.flags) lost ~0.5 dB at tau = 6 instead of breaking even.
            Modes without D ignore adv_weight; modes other than linf/single_rate ignore linf_weight.
        gt_weight (lambda3), gt_margin: weight and margin of the ground-truth l-inf term
            (losses.ground_truth_linf_loss); 0 = the paper's loss.
        real_label: D's target for real images (one-sided label smoothing, §4.2).
        linf_epsilon: knee of the safe log barrier of Eq. 13 (losses._barrier).
    Evaluation and output
        eval_slack: box half-width kappa (in units of tau) of the projection applied to G's output
            at evaluation: restored pixels are within (1 + kappa) * tau of the original.
        eval_every_steps: validate every N steps; 0 = at the end of each epoch only.
        num_sample_images: validation images written to TensorBoard (original | decoded | restored).
        logdir: TensorBoard event files.
        checkpoint_dir: checkpoints; None = ``<logdir>/checkpoints``.
        checkpoint_every_steps: also checkpoint every N steps (always at the end of each epoch).
        max_checkpoints: checkpoints kept by the CheckpointManager.
        max_train_minutes: wall-clock budget of one invocation (0 = none): when it is spent the
            trainer checkpoints and stops; rerunning the same command resumes. Every validation
            is also appended to ``<logdir>/validation_log.csv`` (step, epoch, wall time, metrics
            per tau), the run's log of steps, wall time and gain.
    Hardware
        mixed_precision: ``none``, ``float16`` (Keras ``mixed_float16`` + LossScaleOptimizer, GPUs
            with tensor cores) or ``bfloat16`` (``mixed_bfloat16``, no loss scaling; CPUs with
            AMX/AVX512-BF16 and TPUs). True / False are read as float16 / none.
        jit_compile: XLA-compile the forward and backward passes.
        seed: initial weights (keras.utils.set_random_seed) and data order.
        show_progress: tqdm progress bar (chief only).
    """

    mode: str = "linf"
    channels: int = 3
    architecture: str = "full"
    filters: int = 64
    num_res_units: int = 16
    unshuffle_factor: int = 2
    tau_conditioning: bool = True
    arcnn_filters: tuple[int, ...] = (64, 32, 16)
    disc_base_filters: int = 64
    disc_dense_units: int = 1024
    disc_filter_multipliers: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    batch_norm_momentum: float | None = None
    taus: tuple[int, ...] = (6, 8, 10, 12, 14)
    patch_size: int = 64
    stride: int = 32
    batch_size: int = 16
    pixel_max: float = 255.0
    epochs: int = 150
    steps_per_epoch: int | None = None
    learning_rate: float = 1e-4
    final_learning_rate: float = 1e-5
    decay_fraction: float = 1 / 3
    warmup_fraction: float = 1 / 3
    adam_beta1: float = 0.9
    adv_weight: float = 1e-3
    linf_weight: float = 0.01
    gt_weight: float = 0.0
    gt_margin: float = 1.0
    real_label: float = 0.9
    linf_epsilon: float = losses.DEFAULT_LOG_EPSILON
    eval_slack: float = 0.5
    eval_every_steps: int = 0
    num_sample_images: int = 3
    logdir: str = "runs/linf"
    checkpoint_dir: str | None = None
    checkpoint_every_steps: int = 500
    max_checkpoints: int = 3
    mixed_precision: str = "none"
    jit_compile: bool = False
    seed: int = 0
    show_progress: bool = True
    max_train_minutes: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.mixed_precision, bool):  # the flag was a bool before bfloat16 existed
            object.__setattr__(self, "mixed_precision", "float16" if self.mixed_precision else "none")
        if self.mixed_precision not in PRECISION_POLICIES:
            raise ValueError(
                f"mixed_precision must be one of {tuple(PRECISION_POLICIES)}, got {self.mixed_precision!r}"
            )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.unshuffle_factor not in (2, 4):
            raise ValueError(f"unshuffle_factor must be 2 or 4, got {self.unshuffle_factor}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "single_rate" and len(self.taus) != 1:
            raise ValueError(f"mode single_rate trains for exactly one tau, got taus={self.taus}")
        if not self.taus or min(self.taus) < 0:
            raise ValueError(f"taus must be non-negative, got {self.taus}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be >= 1 (or None for one pass over the data)")
        if not (0.0 <= self.warmup_fraction <= 1.0 and 0.0 <= self.decay_fraction <= 1.0):
            raise ValueError("warmup_fraction and decay_fraction must lie in [0, 1]")
        if not 0.0 <= self.eval_slack <= 1.0:
            raise ValueError(f"eval_slack (kappa) must lie in [0, 1], got {self.eval_slack}")

    @property
    def generator_spec(self) -> dict[str, Any]:
        """The network's spec (models.build_from_spec), as written to ``generator.json``."""
        return {
            "model": "arcnn" if self.mode == "arcnn" else "linf_cnn",
            "channels": self.channels,
            "architecture": self.architecture,
            "tau_conditioning": self.tau_conditioning,
            "filters": self.filters,
            "num_res_units": self.num_res_units,
            "unshuffle_factor": self.unshuffle_factor,
            "arcnn_filters": list(self.arcnn_filters),
        }

    @property
    def has_discriminator(self) -> bool:
        return self.mode in MODES_WITH_DISCRIMINATOR

    @property
    def warmup_epochs(self) -> int:
        """Epochs [0, warmup_epochs) train G alone (paper: 50 of 150)."""
        return round(self.epochs * self.warmup_fraction)

    @property
    def decay_start_epoch(self) -> int:
        """First epoch at ``final_learning_rate`` (paper: epoch 100 of 150)."""
        return self.epochs - round(self.epochs * self.decay_fraction)

    @property
    def loss_weights(self) -> dict[str, float]:
        """(lambda1, lambda2, lambda3) as the mode uses them."""
        return {
            "adv_weight": self.adv_weight if self.has_discriminator else 0.0,
            "linf_weight": self.linf_weight if self.mode in MODES_WITH_LINF_LOSS else 0.0,
            "gt_weight": self.gt_weight,
        }

    @property
    def resolved_checkpoint_dir(self) -> str:
        return self.checkpoint_dir or os.path.join(self.logdir, "checkpoints")

    def learning_rate_for(self, epoch: int) -> float:
        return self.final_learning_rate if epoch >= self.decay_start_epoch else self.learning_rate

    def is_adversarial(self, epoch: int) -> bool:
        return self.has_discriminator and epoch >= self.warmup_epochs


# --- strategies and data ------------------------------------------------------------------------


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


def image_source(spec: str, split: str = "train") -> Any:
    """Images for ``data.make_*_dataset``: ``skimage``, ``DIR_OR_GLOB[,DIR_OR_GLOB...]`` or
    ``div2k:MANUAL_DIR``.

    ``skimage`` trains on the scikit-image samples except :data:`SKIMAGE_VALIDATION_NAMES`, which
    it validates on (split ``validation``), so validation images are never trained on.
    """
    from linf_tf.learn import data  # lazy: pulls in the codec and scikit-image

    if spec == "skimage":
        if split == "validation":
            return data.skimage_sample_images(SKIMAGE_VALIDATION_NAMES)
        names = [name for name in data.SKIMAGE_SAMPLE_NAMES if name not in SKIMAGE_VALIDATION_NAMES]
        return data.skimage_sample_images(names)
    if spec.startswith("div2k:"):
        return data.div2k_source(spec.removeprefix("div2k:"), split=split)
    return [path for part in spec.split(",") if part for path in data.list_image_files(part)]


def count_batches(dataset: tf.data.Dataset) -> int:
    """Batches in one pass over ``dataset`` (iterates it once; an in-memory cache is filled on the way)."""
    count = int(dataset.cardinality())
    if count >= 0:
        return count
    return int(dataset.reduce(np.int64(0), lambda total, _: total + 1))


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

    The constructor restores the latest checkpoint of ``config.checkpoint_dir``, so re-running the
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
        self._build_models_and_optimizers()
        # The optimizers' current rate, tracked in Python; None forces the first step to assign it,
        # which also overrides a rate restored from a checkpoint written with other flags.
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
        # tf.train.Checkpoint rejects None: modes without D simply have no D entries.
        self.checkpoint = tf.train.Checkpoint(
            **{name: obj for name, obj in tracked.items() if obj is not None}
        )
        self._checkpoint_write_dir = self._make_checkpoint_write_dir()
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self._checkpoint_write_dir, max_to_keep=config.max_checkpoints
        )
        self.restored_from = self._restore()
        self._writer = self._make_summary_writer()
        self._g_step = tf.function(self._distributed_generator_step)
        self._d_step = tf.function(self._distributed_discriminator_step)
        self._g_gradients = tf.function(self._generator_gradients, jit_compile=config.jit_compile)
        self._d_gradients = tf.function(self._discriminator_gradients, jit_compile=config.jit_compile)
        self._restore_fn = self._make_restore_function()
        self.last_evaluation: tuple[int, dict[str, dict[str, float]]] | None = None  # (step, results)

    # --- construction ---------------------------------------------------------------------------

    def _build_models_and_optimizers(self) -> None:
        """Models and optimizers inside the strategy scope, so their variables are mirrored."""
        config = self.config
        previous_policy = keras.mixed_precision.dtype_policy()
        policy = PRECISION_POLICIES[config.mixed_precision]
        if policy is not None:
            # Layers read the global policy when they are created; it is restored right after so
            # that building a Trainer does not change the dtype of models built later elsewhere.
            keras.mixed_precision.set_global_policy(policy)
        try:
            with self.strategy.scope():
                self.generator = self._build_generator()
                self.discriminator = (
                    build_discriminator(
                        config.channels,
                        base_filters=config.disc_base_filters,
                        dense_units=config.disc_dense_units,
                        filter_multipliers=config.disc_filter_multipliers,
                    )
                    if config.has_discriminator
                    else None
                )
                for model in (self.generator, self.discriminator):
                    _set_batch_norm_momentum(model, config.batch_norm_momentum)
                self.g_optimizer = self._make_optimizer(self.generator)
                self.d_optimizer = (
                    None if self.discriminator is None else self._make_optimizer(self.discriminator)
                )
                # The inference wrapper adds only the (weightless) box projection; G's weights are shared.
                self.restoration_model = build_inference_model(self.generator, max_value=1.0)
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)

    def _build_generator(self) -> keras.Model:
        return build_from_spec(self.config.generator_spec)

    def _make_optimizer(self, model: keras.Model) -> keras.optimizers.Optimizer:
        """Adam (beta1 from the config), wrapped for loss scaling under mixed precision, and *built*.

        Created inside the strategy scope and built on the model's variables before the first
        step: creating Adam's slot variables lazily inside the first distributed step fails in a
        custom loop under a tf.distribute strategy (keras-team/keras#23085). Building first also
        lets the checkpoint restore the slots directly instead of deferring the restoration.
        """
        optimizer = keras.optimizers.Adam(
            learning_rate=self.config.learning_rate, beta_1=self.config.adam_beta1
        )
        if self.config.mixed_precision == "float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        return optimizer

    def _make_checkpoint_write_dir(self) -> str:
        """The chief writes to the checkpoint dir; other workers to a scratch dir (they must still
        save: under MultiWorkerMirroredStrategy, saving is a collective operation)."""
        directory = self.config.resolved_checkpoint_dir
        if self.chief:
            return directory
        return tempfile.mkdtemp(prefix=f"linf_ckpt_worker{self.strategy.cluster_resolver.task_id}_")

    def _restore(self) -> str | None:
        """Restore the latest checkpoint of the (chief's) checkpoint dir, if any; return its path."""
        latest = tf.train.latest_checkpoint(self.config.resolved_checkpoint_dir)
        if latest is not None:
            # expect_partial: a checkpoint from a mode without D restores into a Trainer with D.
            self.checkpoint.restore(latest).expect_partial()
        return latest

    def _make_summary_writer(self) -> tf.summary.SummaryWriter:
        if not self.chief:
            return tf.summary.create_noop_writer()
        return tf.summary.create_file_writer(self.config.logdir)

    def _make_restore_function(self) -> Callable:
        """G plus the box projection at kappa = eval_slack, for one image of any size."""
        channels = self.config.channels
        signature = [
            tf.TensorSpec([None, None, None, channels], tf.float32),
            tf.TensorSpec([None], tf.float32),
        ]

        @tf.function(input_signature=signature)
        def restore(decoded: tf.Tensor, tau: tf.Tensor) -> tf.Tensor:
            slack = tf.fill(tf.shape(tau), tf.constant(self.config.eval_slack, tf.float32))
            return tf.cast(self.restoration_model([decoded, tau, slack], training=False), tf.float32)

        return restore

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
            scaled = _scale_loss(self.g_optimizer, averaged["total"])
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
            scaled = _scale_loss(self.d_optimizer, loss)
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
        self._check_finite(values)
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

    def _check_finite(self, values: Mapping[str, float]) -> None:
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if bad:
            step = int(self.step.numpy()) + 1
            described = ", ".join(f"{name}={value}" for name, value in bad.items())
            raise NonFiniteLossError(
                f"non-finite loss at step {step}: {described}. Training stopped; the latest checkpoint "
                f"({self.manager.latest_checkpoint}) predates this step. Check the data for NaN/inf and "
                "lower the learning rate or the loss weights."
            )

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
                self._write_scalars(values, step)
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
        """Checkpoint now (numbered by the step); non-chief workers' copies are deleted again."""
        path = self.manager.save(checkpoint_number=self.step)
        if not self.chief:
            shutil.rmtree(self._checkpoint_write_dir, ignore_errors=True)
        return path

    def _write_scalars(self, values: Mapping[str, float], step: int) -> None:
        for name, value in values.items():
            write_scalar(f"loss/{name}", value, step)
        write_scalar("learning_rate", float(self.learning_rate), step)

    # --- validation -----------------------------------------------------------------------------

    def evaluate(
        self, dataset: tf.data.Dataset | None = None, log: bool = False
    ) -> dict[str, dict[str, float]]:
        """PSNR, SSIM and l-inf of decoded and restored images vs the original, per tau.

        The restored image is G's output projected into the box of half-width ``eval_slack * tau``
        around the decoded image. Returns ``{tau label: {metric: value}}``: mean PSNR/SSIM over the
        images, max l-inf (pixel units) over the images, and the gains restored - decoded.
        With ``log``, writes them (and sample images) to TensorBoard and prints one line per tau.
        """
        dataset = self._val_dataset if dataset is None else dataset
        if dataset is None:
            raise ValueError("no validation dataset")
        per_tau: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        samples = []
        for x, y, tau in dataset:
            restored = self._restore_fn(y, tf.reshape(tau, [-1]))
            label = f"tau{round(float(tau[0]) * self.config.pixel_max):g}"
            for name, value in self._image_metrics(x, y, restored).items():
                per_tau[label][name].append(value)
            if len(samples) < self.config.num_sample_images:
                samples.append((label, tf.concat([x, y, restored], axis=2)))
        results = {label: _summarise(metrics) for label, metrics in per_tau.items()}
        if dataset is self._val_dataset:
            self.last_evaluation = (int(self.step.numpy()), results)
        if log and self.chief:
            self._log_evaluation(results, samples)
        return results

    def _image_metrics(self, x: tf.Tensor, y: tf.Tensor, restored: tf.Tensor) -> dict[str, float]:
        metrics = {}
        for name, image in (("decoded", y), ("restored", restored)):
            metrics[f"psnr_{name}"] = float(tf.image.psnr(image, x, max_val=1.0)[0])
            metrics[f"ssim_{name}"] = float(tf.image.ssim(image, x, max_val=1.0)[0])
            metrics[f"linf_{name}"] = float(tf.reduce_max(tf.abs(image - x))) * self.config.pixel_max
        return metrics

    def _log_evaluation(self, results: Mapping[str, Mapping[str, float]], samples: list) -> None:
        step = int(self.step.numpy())
        with self._writer.as_default():
            for label, metrics in results.items():
                for name, value in metrics.items():
                    write_scalar(f"validation/{label}/{name}", value, step)
            for index, (label, strip) in enumerate(samples):
                write_image(f"samples/{index}_{label}_original_decoded_restored", strip, step)
        self._append_validation_log(step, results)
        for label, metrics in sorted(results.items(), key=lambda item: float(item[0][3:])):
            tqdm.write(
                f"step {step} validation {label}: PSNR {metrics['psnr_decoded']:.2f} -> "
                f"{metrics['psnr_restored']:.2f} dB (gain {metrics['psnr_gain']:+.3f} dB), "
                f"SSIM {metrics['ssim_decoded']:.4f} -> {metrics['ssim_restored']:.4f}, "
                f"l-inf {metrics['linf_decoded']:.0f} -> {metrics['linf_restored']:.1f}"
            )


    def _append_validation_log(self, step: int, results: Mapping[str, Mapping[str, float]]) -> None:
        """One CSV row per tau: the run's durable log of steps, wall time and validation gain."""
        path = Path(self.config.logdir) / VALIDATION_LOG
        path.parent.mkdir(parents=True, exist_ok=True)
        names = sorted({name for metrics in results.values() for name in metrics})
        new_file = not path.is_file()
        with path.open("a", encoding="utf-8") as log_file:
            if new_file:
                log_file.write(",".join(["step", "epoch", "wall_time", "tau", *names]) + "\n")
            epoch = step / self.steps_per_epoch
            for label, metrics in sorted(results.items(), key=lambda item: float(item[0][3:])):
                values = [f"{metrics.get(name, math.nan):.6g}" for name in names]
                fields = [str(step), f"{epoch:.3f}", f"{time.time():.1f}", label[3:], *values]
                log_file.write(",".join(fields))
                log_file.write("\n")


VALIDATION_LOG = "validation_log.csv"


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


def _set_batch_norm_momentum(model: keras.Model | None, momentum: float | None) -> None:
    """Override the moving-statistics momentum of the model's BatchNormalization layers.

    The builders take no momentum argument; the layers read ``momentum`` when they are called, so
    setting it before the first (traced) call is enough.
    """
    if model is None or momentum is None:
        return
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)


def _scale_loss(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
    """Multiply by the dynamic loss scale under mixed precision; ``apply_gradients`` unscales."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss


def _summarise(metrics: Mapping[str, list[float]]) -> dict[str, float]:
    summary = {
        name: (max(values) if name.startswith("linf") else float(np.mean(values)))
        for name, values in metrics.items()
    }
    summary["psnr_gain"] = summary["psnr_restored"] - summary["psnr_decoded"]
    summary["ssim_gain"] = summary["ssim_restored"] - summary["ssim_decoded"]
    summary["linf_gain"] = summary["linf_decoded"] - summary["linf_restored"]
    return summary


# --- export -------------------------------------------------------------------------------------


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


# --- the whole run, as train.py drives it -------------------------------------------------------


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
        where = f"resuming from {trainer.restored_from}" if trainer.restored_from else "starting from scratch"
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
    return trainer, results
