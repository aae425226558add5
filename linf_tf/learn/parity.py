"""The parity report of an export: every exported model against the Keras model on real codec output
(held-out skimage images through the codec), written as ``report.json`` and ``report.md``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from linf_tf.learn.calibration import codec_round_trip
from linf_tf.learn.export import BOUND_TOLERANCE, OUTPUT_KEY
from linf_tf.learn.models.common import project_to_box
from linf_tf.learn.serving import FLOAT_SIGNATURE, SERVING_SIGNATURE
from linf_tf.learn.tflite import FLOAT_VARIANTS, benchmark_tflite
from linf_tf.pixels import psnr
from linf_tf.runtime.litert import run_tflite

# --- parity report ------------------------------------------------------------------------------


def keras_reference(generator: keras.Model, decoded: np.ndarray, tau: float, slack: float) -> np.ndarray:
    """The Keras model plus :func:`project_to_box` on one float image (the parity reference)."""
    batch = decoded[None].astype(np.float32)
    restored = generator([batch, np.array([[tau]], np.float32)], training=False)
    projected = project_to_box(restored, batch, np.array([tau], np.float32), np.array([slack], np.float32))
    return np.asarray(projected)[0]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _directory_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _saved_model_parity(
    generator: keras.Model, saved_model_dir: Path, cases: Sequence[dict[str, Any]], slack: float
) -> dict[str, Any]:
    loaded = tf.saved_model.load(str(saved_model_dir))
    float_fn, pixel_fn = loaded.signatures[FLOAT_SIGNATURE], loaded.signatures[SERVING_SIGNATURE]
    # The pixel-level check feeds the uint8 test images; a uint16 module is checked in float only.
    pixel_dtype = pixel_fn.structured_input_signature[1]["image"].dtype
    max_float_diff, max_level_diff = 0.0, 0 if pixel_dtype == tf.uint8 else None
    for case in cases:
        decoded, tau = case["decoded"], case["tau"]
        scaled = decoded.astype(np.float32) / 255.0
        restored = float_fn(
            image=tf.constant(scaled[None]), tau=tf.constant([tau / 255.0]), slack=tf.constant([slack])
        )[OUTPUT_KEY].numpy()[0]
        max_float_diff = max(max_float_diff, float(np.max(np.abs(restored - case["keras"]))))
        if max_level_diff is None:
            continue
        pixels = pixel_fn(
            image=tf.constant(decoded[None]), tau=tf.constant([tau], tf.int32), slack=tf.constant([slack])
        )[OUTPUT_KEY].numpy()[0]
        level_diff = np.abs(pixels.astype(np.int32) - _to_uint8(case["keras"]).astype(np.int32))
        max_level_diff = max(max_level_diff, int(level_diff.max()))
    return {
        "restore_float_max_abs_diff": max_float_diff,
        "serving_default_max_level_diff": max_level_diff,
        "size_bytes": _directory_size(saved_model_dir),
    }


def _tflite_parity(model_path: Path, cases: Sequence[dict[str, Any]], slack: float) -> dict[str, Any]:
    within, total, max_level, bound_excess = 0, 0, 0, -math.inf
    psnrs = []
    for case in cases:
        scaled = case["decoded"].astype(np.float32) / 255.0
        restored = run_tflite(model_path, scaled, case["tau"] / 255.0, slack)
        level_diff = np.abs(_to_uint8(restored).astype(np.int32) - _to_uint8(case["keras"]).astype(np.int32))
        within += int(np.count_nonzero(level_diff <= 1))
        total += level_diff.size
        max_level = max(max_level, int(level_diff.max()))
        excess = float(np.max(np.abs(restored - scaled))) - slack * case["tau"] / 255.0
        bound_excess = max(bound_excess, excess * 255.0)
        psnrs.append(psnr(case["original"], _to_uint8(restored), 255.0))
    return {
        "fraction_within_1_level": within / total,
        "max_level_diff_vs_keras": max_level,
        "bound_holds": bound_excess <= BOUND_TOLERANCE * 255.0,
        "max_box_excess_levels": bound_excess,
        "mean_psnr_db": float(np.mean(psnrs)),
        "size_bytes": model_path.stat().st_size,
        "latency_ms": benchmark_tflite(model_path, cases[0]["decoded"].shape),
        "latency_shape": list(cases[0]["decoded"].shape),
    }


def parity_report(
    generator: keras.Model,
    saved_model_dir: str | Path,
    tflite_paths: Mapping[str, str | Path],
    test_images: Iterable[np.ndarray],
    *,
    taus: Sequence[int] = (2, 4),
    slack: float = 1.0,
    output_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Compare every exported model with the Keras model on real codec output; write report.json/.md.

    ``test_images`` are uint8 H x W x C originals; each is encoded at every tau of ``taus`` and the
    decoded image restored with ``slack``. Reported: SavedModel vs Keras max abs diff; for each TFLite
    variant the fraction of uint8 pixels within 1 grey level of Keras (target >= 99.9 % for float32
    and float16), whether the box bound held, PSNR, and for int8 variants the PSNR loss vs float32;
    parameter count and file sizes. ``output_dir`` defaults to the first TFLite file's directory (or
    the SavedModel's parent when there is none).
    """
    cases = []
    for original in test_images:
        for tau in taus:
            decoded = codec_round_trip(original, tau)
            keras_out = keras_reference(generator, decoded.astype(np.float32) / 255.0, tau / 255.0, slack)
            cases.append({"original": original, "decoded": decoded, "tau": tau, "keras": keras_out})
    report: dict[str, Any] = {
        "parameters": int(generator.count_params()),
        "test_cases": [{"shape": list(c["original"].shape), "tau": c["tau"]} for c in cases],
        "slack": slack,
        "codec_psnr_db": float(np.mean([psnr(c["original"], c["decoded"], 255.0) for c in cases])),
        "keras_psnr_db": float(np.mean([psnr(c["original"], _to_uint8(c["keras"]), 255.0) for c in cases])),
        "saved_model": _saved_model_parity(generator, Path(saved_model_dir), cases, slack),
        "tflite": {name: _tflite_parity(Path(path), cases, slack) for name, path in tflite_paths.items()},
    }
    _add_verdicts(report)
    if output_dir is None:
        first = next(iter(tflite_paths.values()), None)
        output_dir = Path(first).parent if first is not None else Path(saved_model_dir).parent
    write_report(report, output_dir)
    return report


def _add_verdicts(report: dict[str, Any]) -> None:
    tflite = report["tflite"]
    reference = tflite.get("float32", {}).get("mean_psnr_db", report["keras_psnr_db"])
    for variant, entry in tflite.items():
        if variant in FLOAT_VARIANTS:
            entry["meets_parity_target"] = entry["fraction_within_1_level"] >= 0.999
        else:
            entry["psnr_loss_vs_float32_db"] = reference - entry["mean_psnr_db"]


def write_report(report: Mapping[str, Any], output_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and a human-readable ``report.md`` into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output_dir / "report.json", output_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md_path.write_text(_markdown(report))
    return json_path, md_path


def _levels(value: int | None) -> str:
    return "not checked (uint16 signature, 8-bit test images)" if value is None else f"{value} levels"


def _markdown(report: Mapping[str, Any]) -> str:
    saved = report["saved_model"]
    lines = [
        "# linf export parity report",
        "",
        f"- generator parameters: {report['parameters']:,}",
        f"- test cases: {len(report['test_cases'])} (slack kappa = {report['slack']})",
        f"- PSNR codec output: {report['codec_psnr_db']:.3f} dB; "
        f"Keras + projection: {report['keras_psnr_db']:.3f} dB",
        f"- SavedModel `{FLOAT_SIGNATURE}` vs Keras max abs diff: {saved['restore_float_max_abs_diff']:.3g} "
        f"(scaled [0, 1]); `{SERVING_SIGNATURE}` max diff: "
        f"{_levels(saved['serving_default_max_level_diff'])}; "
        f"size {saved['size_bytes']:,} bytes",
        "",
        "| TFLite variant | size (bytes) | within 1 level of Keras | max diff (levels) | bound holds "
        "| PSNR (dB) | PSNR loss vs fp32 (dB) | invoke (ms) |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for variant, entry in report["tflite"].items():
        loss = entry.get("psnr_loss_vs_float32_db")
        lines.append(
            f"| {variant} | {entry['size_bytes']:,} | {100 * entry['fraction_within_1_level']:.3f} % "
            f"| {entry['max_level_diff_vs_keras']} | {'yes' if entry['bound_holds'] else 'NO'} "
            f"| {entry['mean_psnr_db']:.3f} | {'' if loss is None else f'{loss:.3f}'} "
            f"| {entry['latency_ms']:.1f} |"
        )
    shape = next(iter(report["tflite"].values()), {}).get("latency_shape")
    lines += [
        "",
        "Target: float32/float16 >= 99.9 % of uint8 pixels within 1 grey level of Keras.",
        f"Invoke: median of 3 single-image runs on a {shape} input, default CPU threads, this machine.",
        "",
    ]
    return "\n".join(lines)
