"""Reproduce the paper's Tables 1-4 (§5): the codec, rate-matched JPEG 2000 and WebP, JPEG-LS and
restoration networks on image sets, at several error bounds tau.

Example:
    python evaluate.py --data_dir=data/LIVE1 --data_dir=data/Set14 --models=linf=default \\
        --output_dir=out/eval

Writes results.json, results.csv (one row per image, method and tau), summary.csv, results.md
(a table per set laid out like the paper's Table 2) and PNG plots under plots/.
"""

from __future__ import annotations

import logging
from pathlib import Path

from absl import app, flags

from linf_tf.evaluation import evaluate as evaluate_lib
from linf_tf.progress import stderr_is_terminal
from linf_tf.quiet import quiet_script_logs

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "data_dir",
    [],
    "Directory of test images (PNG/TIFF/BMP/PGM/DICOM), one image set; repeat the "
    "flag for several sets. The set is named after the directory.",
)
flags.DEFINE_list("taus", ["6", "8", "10", "12", "14"], "Error bounds tau, in pixel units (paper: 6-14).")
flags.DEFINE_list(
    "models",
    [],
    "Restoration networks as NAME=PATH: PATH is a SavedModel directory, a .tflite file, a "
    ".weights.h5 file with its .json config beside it, a trainer export directory, or 'default' "
    "(the model shipped in linf_tf/weights/). Empty: baselines only.",
)
flags.DEFINE_list(
    "slacks",
    ["0.25", "0.5", "1"],
    "Extra slacks kappa in [0, 1] evaluated as NAME@kappa: outputs are "
    "kept within (1 + kappa) tau of the original.",
)
flags.DEFINE_float("default_slack", 0.5, "Slack kappa of the plain NAME column (paper-style results).")
flags.DEFINE_string("output_dir", "out/evaluation", "Where results, tables and plots are written.")
flags.DEFINE_integer("limit", None, "Use at most this many images per set (sorted by name); default all.")
flags.DEFINE_integer("tile", 256, "Tile size of network inference: bounds memory on large images.")
flags.DEFINE_integer(
    "overlap",
    None,
    "Context pixels around each tile. Default: each Keras model's receptive-field "
    "radius (tiles then equal whole-image inference exactly), or 16 when it cannot be computed "
    "(SavedModel, TFLite).",
)
flags.DEFINE_list(
    "references",
    list(evaluate_lib.REFERENCE_CODECS),
    "Reference codecs to run beside ours (rate-matched JPEG 2000 and WebP, JPEG-LS at NEAR = tau); "
    "empty to skip them, e.g. when adding a model to an earlier run with --merge.",
)
flags.DEFINE_multi_string(
    "merge",
    [],
    "results.json of an earlier run to merge into this report: its per-image records are kept "
    "unless this run redoes them (same set, method, tau, image). Repeatable.",
)
flags.DEFINE_boolean(
    "gray",
    False,
    "The paper's protocol: code and restore the BT.601 luma of every image (one channel), so the "
    "tables compare gray with gray; without it, colour images are coded as RGB (the product's view).",
)
flags.DEFINE_boolean("progress", True, "Show a progress bar (only ever on a terminal).")

MAX_TAU = 32767  # (2**16 - 1) // 2: the codec's limit at 16 bits; each image's own limit is checked too


def _all_taus_valid(taus: list[str]) -> bool:
    return bool(taus) and all(tau.strip().isdigit() and int(tau) <= MAX_TAU for tau in taus)


def _all_slacks_valid(slacks: list[str]) -> bool:
    try:
        return all(0.0 <= float(slack) <= 1.0 for slack in slacks)
    except ValueError:
        return False


# Checked by absl while parsing, before any image is read or model loaded.
flags.register_validator(
    "taus", _all_taus_valid, f"--taus must be integers from 0 to {MAX_TAU} (pixel units), e.g. 6,8,10"
)
flags.register_validator("slacks", _all_slacks_valid, "--slacks must be numbers in [0, 1], e.g. 0.25,0.5,1")
flags.register_validator(
    "default_slack", lambda slack: 0.0 <= slack <= 1.0, "--default_slack must lie in [0, 1]"
)
flags.register_validator("tile", lambda tile: tile >= 1, "--tile must be at least 1")
flags.register_validator("overlap", lambda overlap: overlap is None or overlap >= 0, "--overlap must be >= 0")
flags.register_validator("limit", lambda limit: limit is None or limit >= 1, "--limit must be at least 1")

FALLBACK_OVERLAP = 16


def _overlap(models: dict[str, evaluate_lib.Restorer]) -> int:
    if FLAGS.overlap is not None:
        return FLAGS.overlap
    radii = [m.receptive_radius for m in models.values()]
    if any(r is None for r in radii) or not radii:
        return FALLBACK_OVERLAP
    return max(radii)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_script_logs()
    if not FLAGS.data_dir:
        raise app.UsageError("give at least one --data_dir")
    try:
        taus = [int(t) for t in FLAGS.taus]
        slacks = [float(k) for k in FLAGS.slacks]
        evaluate_lib.check_slacks([*slacks, FLAGS.default_slack])
        datasets = {Path(d).name: evaluate_lib.list_images(d, FLAGS.limit) for d in FLAGS.data_dir}
        specs = evaluate_lib.parse_model_specs(",".join(FLAGS.models))
        channels = 1 if FLAGS.gray else 3  # what `default` means: the shipped model for those images
        models = {name: evaluate_lib.load_model(path, channels) for name, path in specs.items()}
        evaluate_lib.check_references(FLAGS.references)
        earlier = [r for path in FLAGS.merge for r in evaluate_lib.read_records(path)]
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(str(error)) from error
    if len(datasets) != len(FLAGS.data_dir):
        raise app.UsageError("two --data_dir share a directory name; set names must be unique")
    overlap = _overlap(models)
    settings = dict(
        default_slack=FLAGS.default_slack, tile=FLAGS.tile, overlap=overlap, references=FLAGS.references,
        gray=FLAGS.gray,
    )
    # No bars in a redirected log: tqdm's \r redraws would fill it with half-lines.
    show_progress = FLAGS.progress and stderr_is_terminal()
    records = evaluate_lib.evaluate(datasets, taus, models, slacks, progress=show_progress, **settings)
    records = evaluate_lib.merge_records(earlier, records)
    output_dir = Path(FLAGS.output_dir)
    evaluate_lib.write_report(records, datasets, taus, models, slacks, output_dir, **settings)
    print((output_dir / "results.md").read_text())
    logging.info("results written to %s", output_dir)


if __name__ == "__main__":
    app.run(main)
