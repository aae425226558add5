"""Does test-time self-ensembling help the l-inf CNN? Compares plain inference with the x8 geometric
ensemble (4 rotations x 2 flips, outputs mapped back and averaged) at one slack, on colour images.

Averaging outputs that each lie in the box keeps the average in the box, so the guarantee is unchanged;
the question is whether ~8x the inference cost buys PSNR. Prints a table and writes JSON.

    .venv/bin/python benchmarks/self_ensemble_probe.py "../shared/data/eval/set14/*.png" --taus 6,14
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

from linf_tf import codec, imageio
from linf_tf.evaluation.evaluate import load_restorer, restore_tiled, to_integer_box
from linf_tf.evaluation.metrics import psnr
from linf_tf.learn.patches import dihedral_transform


def inverse_symmetry(index: int) -> int:
    """The index of ``patches.dihedral_transform`` that undoes ``index``: rotations invert to the
    opposite rotation, and the four reflections are their own inverses."""
    return (4 - index) % 4 if index < 4 else index


def gains(restorer, original: np.ndarray, tau: int, slack: float) -> tuple[float, float, float]:
    """PSNR of the decoded image, and the gain of plain and of x8-ensembled restoration over it."""
    _, decoded = codec.encode_with_decoded(original, tau)
    outputs = []
    for k in range(8):
        turned = np.ascontiguousarray(dihedral_transform(decoded, k))
        restored = restore_tiled(restorer, turned, tau, slack, 512, 16, 8)
        outputs.append(dihedral_transform(restored, inverse_symmetry(k)))
    base = psnr(original, decoded, 255)
    plain = psnr(original, to_integer_box(outputs[0], decoded, tau, slack, 255), 255)
    ensemble = psnr(original, to_integer_box(np.mean(outputs, axis=0), decoded, tau, slack, 255), 255)
    return base, plain - base, ensemble - base


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pattern", help="glob of 8-bit colour images (gray ones are skipped)")
    parser.add_argument("--taus", default="6,14", help="comma-separated tau values")
    parser.add_argument("--slack", type=float, default=0.5)
    parser.add_argument("--model", default="default")
    parser.add_argument("--output", type=Path, default=Path("out/self_ensemble.json"))
    args = parser.parse_args()

    restorer = load_restorer(args.model)
    images = [imageio.read_image(path).pixels for path in sorted(glob.glob(args.pattern))]
    images = [image for image in images if image.ndim == 3 and image.dtype == np.uint8]
    if not images:
        raise SystemExit(f"no 8-bit colour images match {args.pattern}")
    rows = []
    print(f"{len(images)} images, slack {args.slack}")
    print("| τ | decoded PSNR | plain gain | x8 gain | x8 − plain |")
    print("|---:|---:|---:|---:|---:|")
    for tau in (int(t) for t in args.taus.split(",")):
        base, plain, ensemble = np.mean([gains(restorer, image, tau, args.slack) for image in images], axis=0)
        rows.append({"tau": tau, "decoded_psnr": base, "plain_gain": plain, "x8_gain": ensemble})
        row = f"| {tau} | {base:.2f} | {plain:+.3f} | {ensemble:+.3f} | {ensemble - plain:+.3f} |"
        print(row, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"images": len(images), "slack": args.slack, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
