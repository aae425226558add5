"""Cold `linf decompress --restore` through the runtime: LiteRT (the default) vs the Keras path.

Each run is a fresh ``python -m linf_tf.cli`` subprocess (imports, model loading and inference all
counted, as a user sees it), on a 512² RGB image (skimage astronaut) and a 2000×1500 RGB image (the
astronaut resized), both compressed at tau 6. The Keras path is the same command with
``--model linf_tf/weights/rgb/generator.weights.h5``. Parity: share of restored samples within 1
level of the Keras path's, and the largest difference. Also records whether the default path
imported TensorFlow and whether it wrote anything to stderr.

    nice -n 5 .venv/bin/python benchmarks/runtime_bench.py --repeats 3

Writes ``out/runtime_bench/results.csv`` and ``results.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
import skimage.transform

from linf_tf import codec
from linf_tf.imageio import read_image
from linf_tf.runtime import WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
KERAS_MODEL = WEIGHTS_DIR / "rgb" / "generator.weights.h5"
TAU = 6
CHECK_NO_TF = (
    "import sys\n"
    "sys.argv = ['linf'] + sys.argv[1:]\n"
    "from linf_tf.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "sys.stderr.write('TF_IMPORTED\\n' if 'tensorflow' in sys.modules else '')\n"
    "sys.exit(rc)\n"
)


def test_images() -> dict[str, np.ndarray]:
    astronaut = skimage.data.astronaut()
    large = skimage.transform.resize(
        astronaut, (1500, 2000), order=3, anti_aliasing=False, preserve_range=True
    )
    return {"512x512": astronaut, "2000x1500": np.clip(np.rint(large), 0, 255).astype(np.uint8)}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cold_restore(stream: Path, target: Path, model: str | None) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, independent of other jobs' load) of one cold CLI run,
    and its stderr (TF_IMPORTED appended if TF was loaded)."""
    command = [sys.executable, "-c", CHECK_NO_TF, "decompress", str(stream), "--restore"]
    command += ["-o", str(target), "-f"]
    if model:
        command += ["--model", model]
    cpu_before, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return seconds, cpu, result.stderr


def parity(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    diff = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return float(np.mean(diff <= 1)), int(diff.max())


ENGINES = {"litert": None, "keras": str(KERAS_MODEL)}


def run(repeats: int, output_dir: Path, engines: list[str], sizes: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="linf_runtime_bench_") as work:
        work = Path(work)
        for name, image in test_images().items():
            if name not in sizes:
                continue
            stream = work / f"{name}.nlc"
            stream.write_bytes(codec.encode(np.ascontiguousarray(image), TAU))
            restored = {}
            for engine in engines:
                model = ENGINES[engine]
                target = work / f"{name}_{engine}.png"
                timings, cpu_times, stderr = [], [], ""
                for _ in range(repeats):
                    seconds, cpu, stderr = cold_restore(stream, target, model)
                    timings.append(seconds)
                    cpu_times.append(cpu)
                restored[engine] = read_image(target).pixels
                rows.append({
                    "image": name, "engine": engine, "repeats": repeats,
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "median_s": round(statistics.median(timings), 3), "min_s": round(min(timings), 3),
                    "cpu_s": round(statistics.median(cpu_times), 3),
                    "tensorflow_imported": "TF_IMPORTED" in stderr,
                    "stderr_lines": len([line for line in stderr.splitlines() if line != "TF_IMPORTED"]),
                })  # fmt: skip
            within, max_diff = (
                parity(restored["litert"], restored["keras"]) if len(restored) == 2 else (float("nan"), -1)
            )
            decoded = codec.decode(stream.read_bytes())
            first = next(iter(restored.values()))
            bound_ok = int(np.abs(first.astype(int) - decoded.astype(int)).max()) <= TAU // 2
            for row in rows[-len(engines):]:
                row.update(
                    within_1_level_of_keras=round(within, 6), max_diff_levels=max_diff, box_holds=bound_ok
                )
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (output_dir / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| image | engine | cold median (s) | min (s) | CPU (s) | load avg | TF imported | stderr lines "
        "| within 1 level of Keras | max diff |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['image']} | {r['engine']} | {r['median_s']:.2f} | {r['min_s']:.2f} | {r['cpu_s']:.2f} | "
            f"{r['load_average_1min']:.1f} | "
            f"{'yes' if r['tensorflow_imported'] else 'no'} | {r['stderr_lines']} | "
            f"{100 * r['within_1_level_of_keras']:.3f} % | {r['max_diff_levels']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold runs per image and engine (median)")
    parser.add_argument("--output-dir", type=Path, default=REPO / "out" / "runtime_bench")
    parser.add_argument("--engines", default="litert,keras", help="comma-separated: litert, keras")
    parser.add_argument("--sizes", default="512x512,2000x1500", help="comma-separated: 512x512, 2000x1500")
    args = parser.parse_args()
    rows = run(args.repeats, args.output_dir, args.engines.split(","), args.sizes.split(","))
    print(markdown(rows))
    print(f"\nwritten: {args.output_dir / 'results.csv'}, {args.output_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
