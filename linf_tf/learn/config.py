"""The options of one training run (:class:`TrainConfig`, frozen, every option documented), the modes
and the types the trainer's pieces share."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from linf_tf.learn import losses
from linf_tf.learn.models import ARCHITECTURES

MODES = ("linf", "single_rate", "mse", "mse_gan", "arcnn")
# Keras dtype policy per --mixed_precision value: float16 needs loss scaling (GPUs with tensor
# cores); bfloat16 has float32's exponent range, needs none, and is what AMX/AVX512-BF16 CPUs run fast.
PRECISION_POLICIES = {"none": None, "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}
# x86 flags of native bfloat16 arithmetic; without them TF emulates bf16 and a step gets ~10x slower
# (measured on an AVX2-only AMD EPYC: a 64 x 6 unshuffle G + D step stalled at ~20 s, BUILD_NOTES).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether this x86 CPU computes bfloat16 natively; None where /proc/cpuinfo cannot tell."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return None
    flag_lines = [line for line in cpuinfo.splitlines() if line.startswith("flags")]
    if not flag_lines:
        return None
    flags = set(flag_lines[0].split(":", 1)[-1].split())
    return any(flag in flags for flag in BF16_CPU_FLAGS)
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
