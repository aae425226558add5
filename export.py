"""Export a trained l-inf CNN for deployment: a TF Serving SavedModel, TFLite models and a parity report.

    python export.py --checkpoint=runs/quickstart --output_dir=out/export --model_name=linf --version=1

or, naming the files the trainer exported:

    python export.py --weights=run/export/generator.weights.h5 --config=run/export/generator.json \\
        --output_dir=out/export --model_name=linf --version=1 --input_dtype=uint8 --channels=3 \\
        --tflite_variants=float32,float16,dynamic_int8,full_int8

Writes ``OUT/serving/<model_name>/<version>/`` (serve it with the commands in serving/README.md),
``OUT/tflite/<model_name>_<variant>.tflite`` and ``OUT/report.json`` + ``OUT/report.md``.
Flags only; the work is done by ``linf_tf.learn.serving``, ``linf_tf.learn.tflite`` and
``linf_tf.learn.parity``.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags

from linf_tf.quiet import quiet_script_logs

FLAGS = flags.FLAGS
# = linf_tf.learn.tflite.TFLITE_VARIANTS, repeated so that flag errors need no TensorFlow import.
VARIANTS = ("float32", "float16", "dynamic_int8", "full_int8")

flags.DEFINE_string(
    "checkpoint", None,
    "A training run directory (train.py --logdir) or its export/ directory: uses the generator.weights.h5 "
    "and generator.json the trainer wrote there (instead of --weights/--config). 'default' = the model "
    "shipped in the package (linf_tf/weights/).",
)
flags.DEFINE_string("weights", None, "Generator weights (.weights.h5) written by the trainer.")
flags.DEFINE_string(
    "config", None, "JSON with the generator's builder arguments (channels, filters, num_res_units, ...)."
)
flags.DEFINE_string("output_dir", None, "Directory for serving/, tflite/ and the report.")
flags.DEFINE_string("model_name", "linf", "Model name: the TF Serving URL /v1/models/<name> and file prefix.")
flags.DEFINE_integer("version", 1, "TF Serving version directory (a positive integer, never reused).")
flags.DEFINE_enum("input_dtype", "uint8", ["uint8", "uint16"], "Pixel dtype of serving_default.")
flags.DEFINE_integer("channels", 3, "Image channels C; must match the generator (1 gray, 3 RGB).")
flags.DEFINE_float(
    "max_value", 0.0, "Maximum pixel value used to scale images and tau (0 = the dtype's maximum, 255/65535)."
)
flags.DEFINE_list(
    "tflite_variants",
    list(VARIANTS),
    "TFLite models to write (empty = none): float32, float16, dynamic_int8, full_int8.",
)
flags.DEFINE_bool(
    "allow_untrained",
    False,
    "Without --weights, export a freshly initialised model (tiny unless --config); demos/tests only.",
)
flags.DEFINE_string(
    "ship_dir", None,
    "Also write the shipped-model LiteRT files (linf_float32/16.tflite with the 'restore' signature) and "
    "manifest.json into this folder, e.g. linf_tf/weights/rgb.",
)
flags.DEFINE_string(
    "integer_dir", None,
    "Also write the exact integer network (intnet.bin, what `linf compress --restore-slack` and format-5 "
    "streams run) into this folder, e.g. linf_tf/weights/gray. Needs --config (the generator's JSON).",
)
flags.DEFINE_bool("overwrite", False, "Replace an existing serving/<model_name>/<version> directory.")
flags.DEFINE_bool("report", True, "Compare every export with the Keras model and write report.json/.md.")
flags.DEFINE_integer("report_crop", 128, "Side of the central crops of the held-out report images.")
flags.DEFINE_list("report_taus", ["2", "4"], "Codec taus (pixel units) for the report's test images.")
flags.DEFINE_float("report_slack", 1.0, "Slack kappa in [0, 1] used by the report.")
flags.DEFINE_integer(
    "calibration_patches_per_image", 8, "full_int8: decoded 64x64 patches per calibration image and tau."
)

TINY_UNTRAINED = {"filters": 8, "num_res_units": 1}

# Checked by absl while parsing, before any work (and before TensorFlow is imported).
flags.register_validator(
    "version", lambda version: version >= 1,
    "--version must be a positive integer: TF Serving loads numbered version directories 1, 2, ...",
)
flags.register_validator(
    "model_name", lambda name: bool(name) and Path(name).name == name and name not in (".", ".."),
    "--model_name must be a plain name (it becomes a directory and the URL /v1/models/<name>)",
)
flags.register_validator("channels", lambda channels: channels >= 1, "--channels must be at least 1")
flags.register_validator(
    "max_value", lambda value: value >= 0, "--max_value must be >= 0 (0 = the dtype's maximum)"
)
flags.register_validator("report_crop", lambda crop: crop >= 16, "--report_crop must be at least 16 pixels")
flags.register_validator(
    "report_taus", lambda taus: all(tau.strip().isdigit() for tau in taus),
    "--report_taus must be non-negative integers (pixel units), e.g. 2,4",
)
flags.register_validator(
    "report_slack", lambda slack: 0.0 <= slack <= 1.0, "--report_slack must lie in [0, 1]"
)
flags.register_validator(
    "calibration_patches_per_image", lambda count: count >= 1, "--calibration_patches_per_image must be >= 1"
)


def _generator():
    """Load the trained generator, or build an untrained one when that is explicitly allowed."""
    from linf_tf.learn.model_io import build_from_config, load_generator
    from linf_tf.learn.models import build_generator

    if FLAGS.weights:
        return load_generator(FLAGS.weights, FLAGS.config)
    if FLAGS.config:
        return build_from_config(json.loads(Path(FLAGS.config).read_text()))
    return build_generator(FLAGS.channels, **TINY_UNTRAINED)


def _report_images(channels: int) -> list:
    from linf_tf.learn.calibration import PARITY_IMAGES, sample_image

    crop = FLAGS.report_crop
    images = []
    for name in PARITY_IMAGES:
        image = sample_image(name, channels)
        top, left = max(0, (image.shape[0] - crop) // 2), max(0, (image.shape[1] - crop) // 2)
        images.append(image[top : top + crop, left : left + crop].copy())
    return images


def _resolve_checkpoint() -> None:
    """--checkpoint=DIR sets --weights/--config from the trainer's export in DIR or DIR/export."""
    if not FLAGS.checkpoint:
        return
    if FLAGS.weights or FLAGS.config:
        raise app.UsageError("give either --checkpoint or --weights/--config, not both")
    if FLAGS.checkpoint == "default":
        from linf_tf.runtime.registry import pick_shipped_model  # no TensorFlow import

        FLAGS.checkpoint = str(pick_shipped_model(FLAGS.channels).folder)
    for folder in (Path(FLAGS.checkpoint), Path(FLAGS.checkpoint) / "export"):
        weights, config = folder / "generator.weights.h5", folder / "generator.json"
        if weights.is_file() and config.is_file():
            FLAGS.weights, FLAGS.config = str(weights), str(config)
            return
    raise app.UsageError(
        f"--checkpoint={FLAGS.checkpoint}: no generator.weights.h5 + generator.json there or in its "
        "export/ folder (train.py writes them at the end of training)"
    )


def _check_flags(argv: list[str]) -> None:
    """Fail on bad flags before TensorFlow is imported (which takes seconds)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.output_dir:
        raise app.UsageError("--output_dir is required")
    _resolve_checkpoint()
    if FLAGS.integer_dir and not FLAGS.config:
        raise app.UsageError("--integer_dir needs the generator's JSON (--config or --checkpoint)")
    if FLAGS.weights and not FLAGS.config:
        raise app.UsageError("--weights needs --config (the JSON with the generator's builder arguments)")
    if not FLAGS.weights and not FLAGS.allow_untrained:
        raise app.UsageError(
            "no --weights given: pass the trained generator's --weights and --config, "
            "or --allow_untrained to export a freshly initialised model (demos and tests only)"
        )
    unknown = sorted(set(FLAGS.tflite_variants) - set(VARIANTS))
    if unknown:
        raise app.UsageError(f"unknown --tflite_variants {unknown}; choose from {', '.join(VARIANTS)}")
    version_dir = Path(FLAGS.output_dir) / "serving" / FLAGS.model_name / str(FLAGS.version)
    if version_dir.exists() and not FLAGS.overwrite:
        raise app.UsageError(
            f"{version_dir} exists and TF Serving treats a version as immutable: pick a new --version "
            "or pass --overwrite to replace it"
        )


def main(argv: list[str]) -> int:
    _check_flags(argv)
    quiet_script_logs()
    Path(FLAGS.output_dir).mkdir(parents=True, exist_ok=True)

    # TensorFlow loads only after the flags are valid.
    from linf_tf.learn import calibration, parity, serving, tflite

    generator = _generator()
    channels = generator.inputs[0].shape[-1]
    if channels != FLAGS.channels:
        raise app.UsageError(f"--channels={FLAGS.channels} but the generator takes {channels} channels")
    if FLAGS.integer_dir:
        from linf_tf.learn.integer_export import write_integer_model

        spec = json.loads(Path(FLAGS.config).read_text())
        print(f"integer model: {write_integer_model(generator, spec, FLAGS.integer_dir)}")
    module = serving.make_serving_module(
        generator, channels=channels, input_dtype=FLAGS.input_dtype, max_value=FLAGS.max_value or None
    )
    saved = serving.export_saved_model(
        module, FLAGS.output_dir, FLAGS.model_name, FLAGS.version, overwrite=FLAGS.overwrite
    )
    print(f"SavedModel: {saved}")
    patches = None
    if "full_int8" in FLAGS.tflite_variants:
        patches = calibration.calibration_patches(
            channels, patches_per_image=FLAGS.calibration_patches_per_image
        )
    tflite_paths = {}
    for variant in FLAGS.tflite_variants:
        path = Path(FLAGS.output_dir) / "tflite" / f"{FLAGS.model_name}_{variant}.tflite"
        tflite_paths[variant] = tflite.export_tflite(
            generator, path, variant=variant, channels=channels, representative_patches=patches
        )
        print(f"TFLite {variant}: {path} ({path.stat().st_size:,} bytes)")
    if FLAGS.ship_dir:
        print(f"shipped model: {tflite.write_shipped_model(generator, FLAGS.ship_dir)}")
    if FLAGS.report:
        parity.parity_report(
            generator,
            saved,
            tflite_paths,
            _report_images(channels),
            taus=[int(tau) for tau in FLAGS.report_taus],
            slack=FLAGS.report_slack,
            output_dir=FLAGS.output_dir,
        )
        print((Path(FLAGS.output_dir) / "report.md").read_text())
    return 0


if __name__ == "__main__":
    app.run(main)
