"""A shipped (or given) restoration model on the trainer's validation crops, through today's codec.

The trainer validates on the central ``--crop``² window of each ``--val_data`` image
(`learn.data.center_crop`), so this prints numbers comparable with a training log's
``validation tauN`` lines, for a model the run did not train: e.g. the shipped RGB model on
format-4 streams against a run retrained on them.

    .venv/bin/python benchmarks/val_crops_gain.py --model default --slack 0.5 \\
        '../shared/data/train/wikipedia/0[1-4]0.png'
"""

from __future__ import annotations

import argparse
import glob

import numpy as np

from linf_tf import codec
from linf_tf.imageio import read_image
from linf_tf.pixels import psnr
from linf_tf.runtime.restorer import NetworkRestorer


def central_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return np.ascontiguousarray(pixels[top : top + size, left : left + size])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pattern", help="glob of the validation images (quote it)")
    parser.add_argument("--model", default="default", help="'default', a .tflite file or a model folder")
    parser.add_argument("--taus", default="6,8,10,12,14", help="comma-separated taus")
    parser.add_argument("--slack", type=float, default=0.5, help="kappa (default 0.5)")
    parser.add_argument("--crop", type=int, default=256, help="central crop side (default 256)")
    args = parser.parse_args(argv)
    crops = [central_crop(read_image(path).pixels, args.crop) for path in sorted(glob.glob(args.pattern))]
    if not crops:
        parser.error(f"no images match {args.pattern}")
    network = NetworkRestorer(args.model)
    for tau in (int(t) for t in args.taus.split(",")):
        decoded = [codec.decode(codec.encode(x, tau)) for x in crops]
        before = np.mean([psnr(x, y, 255) for x, y in zip(crops, decoded, strict=True)])
        after = np.mean([psnr(x, network.restore(y, tau, args.slack, 8), 255)
                         for x, y in zip(crops, decoded, strict=True)])
        print(f"tau{tau}: PSNR {before:.2f} -> {after:.2f} dB (gain {after - before:+.3f} dB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
