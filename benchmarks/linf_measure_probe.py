"""How was the paper's l-inf column measured? The same restorations under several l-inf measures.

The paper's Tables 1-4 give its l-inf-CNN a mean l-inf of ~1.2 tau (Set14: 7.37 / 12.13 / 16.32 at
tau = 6 / 10 / 14) and its MSE baseline ~1.8-1.9 tau, just under 2 tau. Our networks, measured as
the worst pixel per image, reach ~2 tau at the paper's box (kappa = 1) whatever the loss. This probe
restores each image of the sets (gray protocol: BT.601 luma, as the paper's CALIC) with one or more
models and slacks, and reports, per set, tau and slack, the mean over images of:

* ``image max``: max |x_hat - x| over the whole image (what this project calls l-inf);
* ``patch64 max``: the mean over 64x64 blocks of each block's max (an evaluation on the training
  patch size), and ``patch32 max`` likewise;
* ``p99.9``: the 99.9th percentile of |x_hat - x|;
plus PSNR, for the codec output and each restoration. Writes ``out/linf_measure_probe/results.{csv,json}``.

``--planes`` is for high-bit-depth data (microscopy, DICOM): every channel / slice plane is its own
gray image (at most ``--max-planes`` per file; signed data offset to unsigned) and each tau is scaled by
2**(bit_depth - 8), so tau = 6 means 6/255 of the range at every bit depth, as the network sees it:

    .venv/bin/python benchmarks/linf_measure_probe.py ../shared/data/highbit/neubias \
        ../shared/data/highbit/imagecompression_info_16bit --planes --taus 2,6,10 --slacks 0.5

    .venv/bin/python benchmarks/linf_measure_probe.py ../shared/data/eval/set14 \\
        --models gray_v2=default --taus 6,10,14 --slacks 1,0.25
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from linf_tf import codec
from linf_tf.evaluation.evaluate import list_images, parse_model_specs, read_test_image
from linf_tf.evaluation.metrics import patch_linf_errors
from linf_tf.evaluation.paper_tables import PAPER_LINF, PAPER_METHODS, PAPER_PSNR
from linf_tf.imageio import read_image
from linf_tf.pixels import max_value_for, psnr
from linf_tf.runtime.restorer import NetworkRestorer


def measures(original: np.ndarray, restored: np.ndarray, max_value: int) -> dict[str, float]:
    error = np.abs(restored.astype(np.float64) - original.astype(np.float64))
    return {
        "psnr": psnr(original, restored, max_value),
        "image_max": float(error.max()),
        "patch64_max": float(patch_linf_errors(original, restored, 64).mean()),
        "patch32_max": float(patch_linf_errors(original, restored, 32).mean()),
        "p99_9": float(np.percentile(error, 99.9)),
    }


def gray_images(path: Path, planes: bool, max_planes: int) -> list[tuple[np.ndarray, int]]:
    """(HxW pixels, bit depth) to code: the luma of the image, or with ``planes`` its first planes."""
    if not planes:
        data = read_test_image(path, gray=True)
        return [(data.pixels, data.bit_depth)]
    data = read_image(path, allow_signed=True)  # signed CT: offset to unsigned, as the CLI codes it
    pixels = data.pixels[..., None] if data.pixels.ndim == 2 else data.pixels
    count = min(max_planes, pixels.shape[-1])
    return [(np.ascontiguousarray(pixels[..., c]), data.bit_depth) for c in range(count)]


def probe(folders: list[Path], models: dict[str, str], taus: list[int], slacks: list[float],
          limit: int | None, planes: bool = False, max_planes: int = 2) -> list[dict]:
    restorers = {name: NetworkRestorer(path) for name, path in models.items()}
    rows = []
    for folder in folders:
        sums: dict[tuple, list[dict]] = defaultdict(list)
        for path in list_images(folder, limit):
            for pixels, bit_depth in gray_images(path, planes, max_planes):
                max_value = max_value_for(bit_depth)
                scale = 2 ** (bit_depth - 8) if planes else 1
                for tau in taus:
                    _, decoded = codec.encode_with_decoded(pixels, tau * scale, bit_depth)
                    sums[("codec", tau, 0.0)].append(measures(pixels, decoded, max_value))
                    for name, restorer in restorers.items():
                        for slack in slacks:
                            restored = restorer.restore(decoded, tau * scale, slack, bit_depth)
                            sums[(name, tau, slack)].append(measures(pixels, restored, max_value))
        order = sorted(sums.items(), key=lambda item: (item[0][1], item[0][0], -item[0][2]))
        for (method, tau, slack), values in order:
            row = {"set": folder.name, "method": method, "tau": tau, "slack": slack, "images": len(values)}
            row.update({key: float(np.mean([v[key] for v in values])) for key in values[0]})
            rows.append(row)
    return rows


def paper_cell(set_name: str, tau: int) -> str:
    """The paper's PSNR / l-inf of its l-inf-CNN and its MSE baseline, where it reports the set."""
    if tau not in PAPER_PSNR.get(set_name, {}):
        return ""
    cells = []
    for method in ("ℓ∞-CNN", "MSE"):
        column = PAPER_METHODS.index(method)
        psnr_value, linf_value = PAPER_PSNR[set_name][tau][column], PAPER_LINF[set_name][tau][column]
        cells.append(f"{method} {psnr_value:.2f} / {linf_value:.2f}")
    return "; ".join(cells)


def print_table(rows: list[dict]) -> None:
    print("| set | tau | method | slack | PSNR | image max | patch64 max | patch32 max | p99.9 "
          "| paper PSNR / l-inf |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        paper = paper_cell(r["set"], r["tau"]) if r["method"] == "codec" else ""
        print(f"| {r['set']} | {r['tau']} | {r['method']} | {r['slack']:g} | {r['psnr']:.2f} | "
              f"{r['image_max']:.2f} | {r['patch64_max']:.2f} | {r['patch32_max']:.2f} | {r['p99_9']:.2f} | "
              f"{paper} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", type=Path, nargs="+", metavar="DIR", help="evaluation image folders")
    parser.add_argument("--models", default="gray_v2=default",
                        help="NAME=PATH[,NAME=PATH...] restoration models (default: the shipped gray model)")
    parser.add_argument("--taus", default="6,10,14", help="comma-separated taus (default 6,10,14)")
    parser.add_argument("--slacks", default="1,0.5,0.25", help="comma-separated kappas (default 1,0.5,0.25)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="first N images of each folder")
    parser.add_argument("--planes", action="store_true",
                        help="high-bit data: each plane a gray image, tau scaled by 2**(bit_depth-8)")
    parser.add_argument("--max-planes", type=int, default=2, metavar="N",
                        help="planes per file with --planes (default 2)")
    parser.add_argument("--output", type=Path, default=Path("out/linf_measure_probe"))
    args = parser.parse_args(argv)
    rows = probe(args.folders, parse_model_specs(args.models), [int(t) for t in args.taus.split(",")],
                 [float(k) for k in args.slacks.split(",")], args.limit, args.planes, args.max_planes)
    print_table(rows)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.output / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
