"""Inference speed of the l-inf CNN generator on CPU: Keras vs SavedModel vs the four TFLite variants.

One generator (built, or loaded with --weights/--config) is exported to a temporary directory as a
SavedModel and as every requested TFLite variant (``linf_tf.learn.serving`` / ``tflite``), then each
format restores real decoded images of each size and its throughput is measured in megapixels per
second:

    keras         the projected inference model (``build_inference_model``) called through a
                  ``tf.function`` on a float32 [0, 1] image (output copied back to NumPy);
    savedmodel    the SavedModel's ``serving_default`` signature (uint8 in, uint8 out: includes the
                  in-graph checks, scaling, rounding and integer-box clipping that TF Serving runs);
    float32 ...   each TFLite variant through the ai-edge-litert interpreter (set_tensor + invoke +
                  get_tensor; the input is resized to the image with ``resize_tensor_input``).

Timing: every case first runs once ("first call": Keras tracing, SavedModel's first call, TFLite's
first invoke with XNNPACK weight packing), reported separately, like the one-off set-up
("setup_s": SavedModel loading, TFLite interpreter creation + resize + allocate_tensors). Then up to
--repeats steady-state calls; the table gives the best (the shared machine is noisy), and the
median. cpu_s is this process's CPU seconds in the best repeat and cpu_s_per_mp the same per megapixel:
other jobs on a shared machine stretch wall time (cpu_s close to best_s on 2 threads means only one
core was free) but hardly this process's CPU time, so cpu_s_per_mp compares formats more robustly.
--budget caps the steady-state seconds of one case: repeats stop early when the next one would
exceed it (at least one always runs), so a 2048 x 2048 case may report fewer repeats than asked.

Reference measured in the same run: every row's ratio to Keras on the same size, plus a NumPy float32
matmul GFLOP/s probe at the start and at the end of the run and the 1-minute load average per case
(compare runs only through these).

Large images: for sizes above --tile, a whole-image pass may not fit in memory or may run slower
(cache misses). With --tiled auto (default) a variant is also measured through
``evaluate_lib.restore_tiled`` (tile --tile, overlap = receptive radius of the network) when its
whole-image pass failed or cost more than --tile-trigger times the CPU seconds per pixel it cost at
the smallest size (CPU time, not wall time: on a shared machine other jobs stretch wall time but not
this process's CPU time, while cache and memory stalls do count); the "mode" and "note" columns record
which and why. --tiled always / never force it.

Input: ``skimage.data.astronaut`` (grey for --channels 1) resized to SIZE x SIZE, encoded and decoded
by the near-lossless codec at tau = 6 (slack kappa = 1).

Model: by default the planned shipped CPU model (configs/cpu_small.flags: 32 filters, 6 residual
units, tau conditioning). Its weights are untrained (random), which does not change the speed; the
zero-initialised output conv ("correction") gets small random weights so that the output differs
from the input and "diff lvl" (max |difference| in grey levels vs Keras whole-image on the same
image; SavedModel's uint8 output is rounded, so 0.5) checks each export.
full_int8 is calibrated on only --calibration-patches patches per skimage image and tau (default
2: 40 patches of 64 x 64) to keep the export short; this affects accuracy, not speed.

    python benchmarks/inference_bench.py --quick
    python benchmarks/inference_bench.py
    python benchmarks/inference_bench.py --weights G.weights.h5 --config G.json --sizes 1024

Prints a table and writes inference_bench.csv / inference_bench.json to --output.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

ALL_VARIANTS = ("keras", "savedmodel", "float32", "float16", "dynamic_int8", "full_int8")
TFLITE_VARIANTS = ("float32", "float16", "dynamic_int8", "full_int8")
TAU = 6
SLACK = 1.0
SOURCE_IMAGE = "astronaut"
QUICK_SIZES = (256,)
QUICK_TILE = 128


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    model = parser.add_argument_group("model (default: a freshly built, untrained generator)")
    model.add_argument("--weights", type=Path, help="trained generator .weights.h5 (needs --config)")
    model.add_argument("--config", type=Path, help="JSON of build_generator arguments beside --weights")
    model.add_argument("--filters", type=int, default=32, help="feature maps of a built model (default 32)")
    model.add_argument("--res_units", type=int, default=6, help="residual units of a built model (default 6)")
    model.add_argument(
        "--no-tau-conditioning",
        dest="tau_conditioning",
        action="store_false",
        help="build the model without the tau plane input (default: with it, as shipped)",
    )
    parser.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="image channels (default 3, or the model's)",
    )
    parser.add_argument(
        "--sizes",
        default=None,
        help="comma-separated square image sizes in pixels (default 512,2048; --quick: 256)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(ALL_VARIANTS),
        help=f"comma-separated formats to time, from {','.join(ALL_VARIANTS)} (default: all)",
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="steady-state calls per case, best reported (default 3)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="max steady-state seconds per case; stops repeating early (0 = no cap; default 60)",
    )
    parser.add_argument(
        "--tiled",
        choices=("auto", "always", "never"),
        default=None,
        help="also time restore_tiled: auto = when a whole-image pass fails or is slow (default auto; "
        "--quick: always)",
    )
    parser.add_argument("--tile", type=int, default=None, help="tile size for restore_tiled (default 256)")
    parser.add_argument(
        "--tile-trigger",
        type=float,
        default=1.33,
        help="auto tiling when whole-image CPU s/pixel exceeds this times the smallest size's (default 1.33)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="TF intra-op threads and TFLite interpreter threads (default: all CPUs)",
    )
    parser.add_argument(
        "--calibration-patches",
        type=int,
        default=2,
        help="full_int8 calibration patches per skimage image and tau (default 2)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: sizes 256, repeats 1, tiled always")
    parser.add_argument("--output", type=Path, default=Path("out/inference_bench"), help="result directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the untrained weights")
    args = parser.parse_args(argv)
    if (args.weights is None) != (args.config is None):
        parser.error("--weights and --config go together")
    args.sizes = sorted({int(s) for s in (args.sizes or ("256" if args.quick else "512,2048")).split(",")})
    if min(args.sizes) < 8:
        parser.error("sizes must be >= 8 pixels")
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown or not args.variants:
        parser.error(f"unknown variants {unknown}; choose from {','.join(ALL_VARIANTS)}")
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.tiled = args.tiled or ("always" if args.quick else "auto")
    args.tile = args.tile or (QUICK_TILE if args.quick else 256)
    if args.repeats < 1 or args.tile < 8 or args.threads < 1:
        parser.error("need --repeats >= 1, --tile >= 8 and --threads >= 1")
    return args


# --- set-up -------------------------------------------------------------------------------------


def configure_threads(threads: int) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))


def make_generator(args: argparse.Namespace) -> tuple[Any, str]:
    import keras

    from linf_tf.learn import model_io
    from linf_tf.learn.models import build_generator

    if args.weights is not None:
        generator = model_io.load_generator(args.weights, args.config)
        return generator, f"loaded {args.weights}"
    keras.utils.set_random_seed(args.seed)
    generator = build_generator(
        args.channels or 3,
        filters=args.filters,
        num_res_units=args.res_units,
        tau_conditioning=args.tau_conditioning,
    )
    # Untrained: the output conv starts at zero (G = identity). Small random weights make the output
    # differ from y, so the cross-format diff checks something; speed does not depend on the values.
    correction = generator.get_layer("correction")
    rng = np.random.default_rng(args.seed)
    correction.kernel.assign(rng.normal(0.0, 1e-3, correction.kernel.shape).astype(np.float32))
    return generator, (
        f"built untrained: filters={args.filters} res_units={args.res_units} "
        f"tau_conditioning={args.tau_conditioning}"
    )


def directory_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def export_all(generator: Any, args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, Any]]:
    """Write every requested format under ``workdir``: {variant: {"path", "size_bytes", "export_s"}}."""
    from tqdm import tqdm

    from linf_tf.learn import calibration, serving, tflite

    exports: dict[str, dict[str, Any]] = {}
    patches = None
    for variant in tqdm(args.variants, desc="export", unit="model"):
        start = time.perf_counter()
        if variant == "keras":
            path = workdir / "generator.weights.h5"
            generator.save_weights(str(path))
            size = path.stat().st_size
        elif variant == "savedmodel":
            module = serving.make_serving_module(generator, channels=args.channels)
            path = serving.export_saved_model(module, workdir, "linf", 1)
            size = directory_size(path)
        else:
            if variant == "full_int8" and patches is None:
                patches = calibration.calibration_patches(
                    args.channels, patches_per_image=args.calibration_patches
                )
            path = tflite.export_tflite(
                generator,
                workdir / f"linf_{variant}.tflite",
                variant=variant,
                channels=args.channels,
                representative_patches=patches if variant == "full_int8" else None,
            )
            size = path.stat().st_size
        exports[variant] = {"path": path, "size_bytes": size, "export_s": time.perf_counter() - start}
    return exports


def test_image(size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(original, decoded) uint8 size x size x channels: the skimage image resized, codec at TAU."""
    from skimage.transform import resize

    from linf_tf import codec
    from linf_tf.learn.calibration import sample_image

    source = sample_image(SOURCE_IMAGE, channels)
    resized = resize(source, (size, size, channels), order=3, preserve_range=True, anti_aliasing=True)
    original = np.ascontiguousarray(np.clip(np.rint(resized), 0, 255).astype(np.uint8))
    _, decoded = codec.encode_with_decoded(original if channels > 1 else original[..., 0], TAU)
    return original, decoded.reshape(original.shape)


def matmul_gflops(n: int = 1024, seconds: float = 1.0) -> float:
    """Best NumPy float32 n x n matmul GFLOP/s over ~``seconds``: a machine-load reference."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# --- runners ------------------------------------------------------------------------------------


class Runner:
    """A format set up for one image (construction = set-up); a call restores it -> float [0, 1]."""

    def __call__(self) -> np.ndarray:
        raise NotImplementedError


class KerasRunner(Runner):
    def __init__(self, inference_model: Any, decoded: np.ndarray) -> None:
        import tensorflow as tf

        self._function = tf.function(lambda x, t, s: inference_model([x, t, s], training=False))
        self._inputs = (
            tf.constant(decoded[None].astype(np.float32) / 255.0),
            tf.constant([[TAU / 255.0]], tf.float32),
            tf.constant([[SLACK]], tf.float32),
        )

    def __call__(self) -> np.ndarray:
        return self._function(*self._inputs).numpy()[0]


class SavedModelRunner(Runner):
    def __init__(self, loaded: Any, decoded: np.ndarray) -> None:
        import tensorflow as tf

        self._signature = loaded.signatures["serving_default"]
        self._inputs = {
            "image": tf.constant(decoded[None]),
            "tau": tf.constant([TAU], tf.int32),
            "slack": tf.constant([SLACK], tf.float32),
        }

    def __call__(self) -> np.ndarray:
        return self._signature(**self._inputs)["restored"].numpy()[0].astype(np.float32) / 255.0


class TFLiteRunner(Runner):
    """The runtime's LiteRT session (``linf_tf.runtime.litert``), allocated for this image once."""

    def __init__(self, path: Path, decoded: np.ndarray, threads: int) -> None:
        from linf_tf.runtime.litert import TFLiteSession

        self._session = TFLiteSession(path, num_threads=threads)
        self._image = decoded[None].astype(np.float32) / 255.0
        self._session.run(self._image, TAU / 255.0, SLACK)  # allocates (XNNPACK set-up) once

    def __call__(self) -> np.ndarray:
        return self._session.run(self._image, TAU / 255.0, SLACK)[0]


class TiledRunner(Runner):
    """``evaluate_lib.restore_tiled`` with the format's Restorer (uint8 in, float pixels out)."""

    def __init__(self, restorer: Any, decoded: np.ndarray, tile: int, overlap: int) -> None:
        self._restorer, self._decoded, self._tile, self._overlap = restorer, decoded, tile, overlap

    def __call__(self) -> np.ndarray:
        from linf_tf.evaluation.evaluate import restore_tiled

        restored = restore_tiled(
            self._restorer, self._decoded, TAU, SLACK, tile=self._tile, overlap=self._overlap, bit_depth=8
        )
        return (restored / 255.0).astype(np.float32)


def tiled_restorer(variant: str, exports: dict[str, dict[str, Any]], inference_model: Any) -> Any:
    from linf_tf.evaluation import evaluate as evaluate_lib

    if variant == "keras":
        return evaluate_lib.KerasRestorer(inference_model)
    if variant == "savedmodel":
        return evaluate_lib.SavedModelRestorer(exports[variant]["path"])
    return evaluate_lib.TFLiteRestorer(exports[variant]["path"])  # every core


# --- timing -------------------------------------------------------------------------------------


def time_case(make: Callable[[], Runner], repeats: int, budget: float) -> tuple[dict[str, Any], np.ndarray]:
    """Set up, first call, then up to ``repeats`` steady-state calls within ``budget`` seconds."""
    start = time.perf_counter()
    runner = make()
    setup = time.perf_counter() - start
    start = time.perf_counter()
    output = runner()
    first = time.perf_counter() - start
    timings: list[tuple[float, float]] = []
    spent = 0.0
    for _ in range(repeats):
        if timings and budget > 0 and spent + timings[-1][0] > budget:
            break
        start, cpu_start = time.perf_counter(), time.process_time()
        output = runner()
        elapsed = time.perf_counter() - start
        timings.append((elapsed, time.process_time() - cpu_start))
        spent += elapsed
    best, best_cpu = min(timings)
    return {
        "setup_s": setup,
        "first_s": first,
        "best_s": best,
        "median_s": statistics.median(t for t, _ in timings),
        "cpu_s": best_cpu,
        "repeats": len(timings),
    }, output


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import tensorflow as tf
    from tqdm import tqdm

    from linf_tf.evaluation.evaluate import receptive_radius
    from linf_tf.learn.models import build_inference_model

    configure_threads(args.threads)
    generator, model_note = make_generator(args)
    model_channels = int(generator.inputs[0].shape[-1])
    if args.channels is not None and args.channels != model_channels:
        raise SystemExit(f"--channels {args.channels} but the model takes {model_channels}-channel images")
    args.channels = model_channels
    inference_model = build_inference_model(generator)
    overlap = receptive_radius(generator) or 16
    reference_start = matmul_gflops()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="inference_bench_") as tmp:
        exports = export_all(generator, args, Path(tmp))
        loaded = None
        if "savedmodel" in exports:
            start = time.perf_counter()
            loaded = tf.saved_model.load(str(exports["savedmodel"]["path"]))
            exports["savedmodel"]["load_s"] = time.perf_counter() - start
        cases = [(size, variant) for size in args.sizes for variant in args.variants]
        progress = tqdm(total=len(cases), desc="cases", unit="case")
        smallest_cost: dict[str, float] = {}  # CPU seconds per pixel at the smallest size
        for size in args.sizes:
            _, decoded = test_image(size, args.channels)
            reference_output: np.ndarray | None = None
            for variant in args.variants:
                progress.set_postfix_str(f"{variant} {size}x{size}")

                def make(variant: str = variant, decoded: np.ndarray = decoded) -> Runner:
                    if variant == "keras":
                        return KerasRunner(inference_model, decoded)
                    if variant == "savedmodel":
                        return SavedModelRunner(loaded, decoded)
                    return TFLiteRunner(exports[variant]["path"], decoded, args.threads)

                base = {"variant": variant, "size": size, "size_bytes": exports[variant]["size_bytes"]}
                row, whole_output, failure = dict(base, mode="whole", note=""), None, None
                try:
                    timing, whole_output = time_case(make, args.repeats, args.budget)
                    row.update(timing)
                except (tf.errors.ResourceExhaustedError, MemoryError, RuntimeError, ValueError) as exc:
                    failure = error_text(exc)
                    row.update(note=f"failed: {failure}")
                if variant == "savedmodel":
                    row["setup_s"] = exports["savedmodel"]["load_s"]  # loaded once, before the cases
                row["load_avg_1min"] = os.getloadavg()[0]
                row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                if whole_output is not None:
                    if variant == "keras":
                        reference_output = whole_output
                    row["max_diff_levels"] = max_diff(whole_output, reference_output)
                rows.append(row)

                reason, verdict = tiling_reason(args, row, size, smallest_cost.get(variant), failure)
                row["note"] = row["note"] or verdict
                if "cpu_s" in row and variant not in smallest_cost:
                    smallest_cost[variant] = row["cpu_s"] / (size * size)
                if reason:
                    tiled = dict(base, mode=f"tiled {args.tile}+{overlap}", note=reason)
                    restorer = tiled_restorer(variant, exports, inference_model)
                    try:
                        timing, tiled_output = time_case(
                            lambda r=restorer, d=decoded: TiledRunner(r, d, args.tile, overlap),
                            args.repeats,
                            args.budget,
                        )
                        tiled.update(timing)
                        tiled["max_diff_levels"] = max_diff(tiled_output, reference_output)
                        if whole_output is not None:
                            tiled["note"] += f"; vs whole {max_diff(tiled_output, whole_output):.3g} levels"
                    except (tf.errors.ResourceExhaustedError, MemoryError, RuntimeError, ValueError) as exc:
                        tiled["note"] += f"; failed: {error_text(exc)}"
                    tiled["load_avg_1min"] = os.getloadavg()[0]
                    tiled["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    rows.append(tiled)
                progress.update()
        progress.close()
    reference_end = matmul_gflops()
    add_rates(rows)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
        },
        "settings": {
            "model": model_note,
            "parameters": int(generator.count_params()),
            "channels": args.channels,
            "tau": TAU,
            "slack": SLACK,
            "image": f"skimage.data.{SOURCE_IMAGE} resized, codec at tau={TAU}",
            "threads": args.threads,
            "repeats": args.repeats,
            "budget_s": args.budget,
            "tiled": args.tiled,
            "tile": args.tile,
            "overlap": overlap,
            "calibration_patches_per_image_and_tau": args.calibration_patches,
            "export_s": {name: round(info["export_s"], 2) for name, info in exports.items()},
        },
        "reference": {"matmul_gflops_start": reference_start, "matmul_gflops_end": reference_end},
        "rows": rows,
    }


def max_diff(output: np.ndarray, reference: np.ndarray | None) -> float | None:
    if reference is None:
        return None
    return float(np.max(np.abs(output.astype(np.float64) - reference.astype(np.float64))) * 255.0)


def tiling_reason(
    args: argparse.Namespace, row: dict[str, Any], size: int, smallest_cost: float | None, failure: str | None
) -> tuple[str, str]:
    """(why this case is also timed through restore_tiled, "" = it is not; the auto decision's
    note for the whole-image row, "" when none was taken)."""
    if args.tiled == "never" or (size <= args.tile and args.tiled != "always"):
        return "", ""
    if args.tiled == "always":
        return "--tiled always", ""
    if failure:
        return "whole-image pass failed", ""
    if smallest_cost and "cpu_s" in row:
        slowdown = row["cpu_s"] / (size * size) / smallest_cost
        verdict = f"{slowdown:.2f}x the CPU s/pixel of the smallest size"
        if slowdown > args.tile_trigger:
            return f"whole-image {verdict}", f"slow: {verdict}, tiled below"
        return "", f"fits, {verdict}: not tiled"
    return "", ""


def add_rates(rows: list[dict[str, Any]]) -> None:
    keras_best = {
        row["size"]: row["best_s"] for row in rows if row["variant"] == "keras" and row["mode"] == "whole"
    }
    for row in rows:
        if "best_s" not in row:
            continue
        megapixels = row["size"] ** 2 / 1e6
        row["mp_per_s"] = megapixels / row["best_s"]
        row["cpu_s_per_mp"] = row["cpu_s"] / megapixels
        keras = keras_best.get(row["size"])
        row["vs_keras"] = keras / row["best_s"] if keras else None


# --- output -------------------------------------------------------------------------------------

COLUMNS = (
    ("variant", "variant", "{}"),
    ("size", "size", "{}"),
    ("mode", "mode", "{}"),
    ("setup_s", "setup s", "{:.2f}"),
    ("first_s", "first s", "{:.2f}"),
    ("best_s", "best s", "{:.3f}"),
    ("median_s", "median s", "{:.3f}"),
    ("repeats", "n", "{}"),
    ("mp_per_s", "MP/s", "{:.3f}"),
    ("vs_keras", "x keras", "{:.2f}"),
    ("cpu_s", "cpu s", "{:.2f}"),
    ("cpu_s_per_mp", "cpu s/MP", "{:.2f}"),
    ("size_bytes", "file bytes", "{:,}"),
    ("max_diff_levels", "diff lvl", "{:.3g}"),
    ("load_avg_1min", "load", "{:.2f}"),
    ("note", "note", "{}"),
)


def format_table(rows: list[dict[str, Any]]) -> str:
    def cell(row: dict[str, Any], key: str, fmt: str) -> str:
        value = row.get(key)
        return "-" if value is None or value == "" else fmt.format(value)

    table = [[title for _, title, _ in COLUMNS]]
    table += [[cell(row, key, fmt) for key, _, fmt in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table)
    return "\n".join(lines)


def write_results(result: dict[str, Any], output: Path) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = output / "inference_bench.json", output / "inference_bench.csv"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    keys = [key for key, _, _ in COLUMNS] + ["peak_rss_mb"]
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result["rows"])
    return json_path, csv_path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run(args)
    settings, reference = result["settings"], result["reference"]
    print(
        f"\nmodel: {settings['model']} ({settings['parameters']:,} parameters), "
        f"{settings['channels']} channels; input {settings['image']}; threads {settings['threads']}; "
        f"best of <= {settings['repeats']} "
        f"(budget {settings['budget_s']:g} s/case)"
    )
    print(
        f"reference: numpy matmul {reference['matmul_gflops_start']:.1f} GFLOP/s at start, "
        f"{reference['matmul_gflops_end']:.1f} at end; cpus {result['machine']['cpus']}"
    )
    print(format_table(result["rows"]))
    json_path, csv_path = write_results(result, args.output)
    print(f"wrote {csv_path} and {json_path}")


if __name__ == "__main__":
    main()
