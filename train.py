"""Train the l-inf CNN (or a baseline): ``python train.py --flagfile=configs/linf_multirate.flags``.

Flags only: everything else lives in ``linf_tf.learn.trainer``. Re-running the same command resumes
from the latest checkpoint in ``--checkpoint_dir`` (default ``<logdir>/checkpoints``). Flags given
after ``--flagfile`` override the file, e.g. ``--flagfile=configs/quickstart.flags --epochs=1``.
"""

from __future__ import annotations

from absl import app, flags

from linf_tf import progress
from linf_tf.learn import config as learn_config
from linf_tf.learn import distribute, run
from linf_tf.quiet import quiet_script_logs

FLAGS = flags.FLAGS
DEFAULTS = learn_config.TrainConfig()

# --- data ---
flags.DEFINE_string(
    "data",
    "skimage",
    "Training images: 'skimage' (bundled samples), a directory or glob of PNG/TIFF/BMP "
    "files (several, comma-separated, are joined), or 'div2k:MANUAL_DIR' (DIV2K zips placed by "
    "hand, see linf_tf.learn.sources.div2k_source).",
)
flags.DEFINE_string(
    "val_data",
    "skimage",
    "Validation images, same syntax as --data ('skimage' = the held-out samples "
    "chelsea and camera; 'div2k:...' = the DIV2K validation split); empty = no validation.",
)
flags.DEFINE_integer("val_crop_size", 256, "Validate on the central crop of this size (0 = whole images).")
flags.DEFINE_list("taus", [str(tau) for tau in DEFAULTS.taus], "Codec error bounds tau in pixel units.")
flags.DEFINE_integer("channels", DEFAULTS.channels, "Image channels: 1 (gray) or 3 (RGB).")
flags.DEFINE_integer("patch_size", DEFAULTS.patch_size, "Training patch size (paper: 64).")
flags.DEFINE_integer("stride", DEFAULTS.stride, "Stride between training patches (paper: 32).")
flags.DEFINE_integer("batch_size", DEFAULTS.batch_size, "Global batch size (split between replicas).")
flags.DEFINE_string("cache", "", "tf.data cache of decoded images: '' in memory, a file path, 'none' = off.")
flags.DEFINE_float("pixel_max", DEFAULTS.pixel_max, "Max pixel value, to label taus and report l-inf.")
# --- schedule ---
flags.DEFINE_integer("epochs", DEFAULTS.epochs, "Training epochs (paper: 150).")
flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch; 0 = one pass over the training patches.")
flags.DEFINE_float("learning_rate", DEFAULTS.learning_rate, "Adam learning rate (paper: 1e-4).")
flags.DEFINE_float("final_learning_rate", DEFAULTS.final_learning_rate, "Rate for the last epochs (1e-5).")
flags.DEFINE_float("decay_fraction", DEFAULTS.decay_fraction, "Fraction of epochs at the final rate.")
flags.DEFINE_float(
    "warmup_fraction", DEFAULTS.warmup_fraction, "Fraction of epochs without adversarial loss."
)
flags.DEFINE_float("adam_beta1", DEFAULTS.adam_beta1, "Adam beta1 (paper: 0.9).")
# --- loss ---
flags.DEFINE_enum("mode", DEFAULTS.mode, list(learn_config.MODES), "What to train (see TrainConfig.mode).")
flags.DEFINE_float("adv_weight", DEFAULTS.adv_weight, "lambda1: adversarial loss weight.")
flags.DEFINE_float("linf_weight", DEFAULTS.linf_weight, "lambda2: L-inf box loss (Eq. 13) weight.")
flags.DEFINE_float("gt_weight", DEFAULTS.gt_weight, "lambda3: ground-truth l-inf term weight (0 = paper).")
flags.DEFINE_float("gt_margin", DEFAULTS.gt_margin, "Ground-truth term penalises |x_hat - x| > margin*tau.")
flags.DEFINE_float("real_label", DEFAULTS.real_label, "D's target for real images (label smoothing).")
# --- model ---
flags.DEFINE_enum(
    "architecture", DEFAULTS.architecture, ["full", "unshuffle"],
    "G's layout: 'full' = the paper's (every conv at full resolution); 'unshuffle' = the body at "
    "1/--unshuffle_factor of the resolution (pixel-unshuffle), ~4x cheaper per step for 2.",
)
flags.DEFINE_integer("unshuffle_factor", DEFAULTS.unshuffle_factor, "Space-to-depth factor (2 or 4).")
flags.DEFINE_integer("filters", DEFAULTS.filters, "G's feature maps (paper: 64).")
flags.DEFINE_integer("num_res_units", DEFAULTS.num_res_units, "G's residual units (paper: 16).")
flags.DEFINE_bool("tau_conditioning", DEFAULTS.tau_conditioning, "Give G a plane of the normalised tau.")
flags.DEFINE_list("arcnn_filters", [str(f) for f in DEFAULTS.arcnn_filters], "ARCNN hidden widths.")
flags.DEFINE_integer("disc_base_filters", DEFAULTS.disc_base_filters, "D's first-unit width (paper: 64).")
flags.DEFINE_integer("disc_dense_units", DEFAULTS.disc_dense_units, "D's hidden dense width (1024).")
flags.DEFINE_list(
    "disc_filter_multipliers",
    [str(m) for m in DEFAULTS.disc_filter_multipliers],
    "Width of each of D's strided units relative to --disc_base_filters (paper: 1,1,2,2,4,4).",
)
flags.DEFINE_float(
    "batch_norm_momentum",
    0.0,
    "BatchNormalization momentum of G and D; 0 = Keras default 0.99 "
    "(short runs need ~0.9 so that inference-mode BN catches up, see TrainConfig).",
)
# --- hardware ---
flags.DEFINE_enum("strategy", "default", list(learn_config.STRATEGIES), "tf.distribute strategy.")
flags.DEFINE_enum(
    "mixed_precision", DEFAULTS.mixed_precision, ["none", "float16", "bfloat16"],
    "Compute dtype of the network bodies: 'float16' = mixed_float16 + loss scaling (GPUs), "
    "'bfloat16' = mixed_bfloat16 (CPUs with AMX/AVX512-BF16: ~3x faster here; TPUs). The input, "
    "first/last convs and the residual add stay float32.",
)
flags.DEFINE_bool("jit_compile", DEFAULTS.jit_compile, "XLA-compile the forward/backward passes.")
# --- output ---
flags.DEFINE_string("logdir", DEFAULTS.logdir, "TensorBoard event files (and default checkpoint dir).")
flags.DEFINE_string("checkpoint_dir", "", "Checkpoints; empty = <logdir>/checkpoints.")
flags.DEFINE_integer(
    "checkpoint_every_steps", DEFAULTS.checkpoint_every_steps, "Also checkpoint every N steps."
)
flags.DEFINE_integer("eval_every_steps", DEFAULTS.eval_every_steps, "Validate every N steps; 0 = each epoch.")
flags.DEFINE_float("eval_slack", DEFAULTS.eval_slack, "Box projection slack kappa at evaluation.")
flags.DEFINE_integer(
    "num_sample_images", DEFAULTS.num_sample_images, "Validation images sent to TensorBoard."
)
flags.DEFINE_string(
    "export_dir", "", "Write the final generator weights + JSON here; empty = <logdir>/export."
)
flags.DEFINE_integer("seed", DEFAULTS.seed, "Seed of the initial weights and the data order.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_float(
    "max_train_minutes", 0.0,
    "Wall-clock budget of this invocation in minutes (0 = none): when spent, checkpoint, export the "
    "generator so far and stop; rerun the same command to resume.",
)
flags.register_validator(
    "max_train_minutes", lambda minutes: minutes >= 0, "--max_train_minutes must be >= 0"
)


def config_from_flags() -> learn_config.TrainConfig:
    return learn_config.TrainConfig(
        mode=FLAGS.mode,
        channels=FLAGS.channels,
        architecture=FLAGS.architecture,
        filters=FLAGS.filters,
        num_res_units=FLAGS.num_res_units,
        unshuffle_factor=FLAGS.unshuffle_factor,
        tau_conditioning=FLAGS.tau_conditioning,
        arcnn_filters=tuple(int(f) for f in FLAGS.arcnn_filters),
        disc_base_filters=FLAGS.disc_base_filters,
        disc_dense_units=FLAGS.disc_dense_units,
        disc_filter_multipliers=tuple(int(m) for m in FLAGS.disc_filter_multipliers),
        batch_norm_momentum=FLAGS.batch_norm_momentum or None,
        taus=tuple(int(tau) for tau in FLAGS.taus),
        patch_size=FLAGS.patch_size,
        stride=FLAGS.stride,
        batch_size=FLAGS.batch_size,
        pixel_max=FLAGS.pixel_max,
        epochs=FLAGS.epochs,
        steps_per_epoch=FLAGS.steps_per_epoch or None,
        learning_rate=FLAGS.learning_rate,
        final_learning_rate=FLAGS.final_learning_rate,
        decay_fraction=FLAGS.decay_fraction,
        warmup_fraction=FLAGS.warmup_fraction,
        adam_beta1=FLAGS.adam_beta1,
        adv_weight=FLAGS.adv_weight,
        linf_weight=FLAGS.linf_weight,
        gt_weight=FLAGS.gt_weight,
        gt_margin=FLAGS.gt_margin,
        real_label=FLAGS.real_label,
        eval_slack=FLAGS.eval_slack,
        eval_every_steps=FLAGS.eval_every_steps,
        num_sample_images=FLAGS.num_sample_images,
        logdir=FLAGS.logdir,
        checkpoint_dir=FLAGS.checkpoint_dir or None,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        seed=FLAGS.seed,
        show_progress=FLAGS.progress and progress.stderr_is_terminal(),  # no \r junk in logs
        max_train_minutes=FLAGS.max_train_minutes,
    )


def main(argv: list[str]) -> None:
    del argv  # everything comes from flags
    quiet_script_logs()
    strategy = distribute.make_strategy(FLAGS.strategy)  # first: multi_worker must precede other TF ops
    config = config_from_flags()
    run.run_training(
        config,
        strategy=strategy,
        data=FLAGS.data,
        val_data=FLAGS.val_data or None,
        val_crop_size=FLAGS.val_crop_size or None,
        cache=None if FLAGS.cache == "none" else FLAGS.cache,
        export_dir=FLAGS.export_dir or None,
    )


if __name__ == "__main__":
    app.run(main)
