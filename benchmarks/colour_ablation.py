"""Bits per sample of one or more builds of the codec extension on the RGB eval sets: the dev
measurement behind BUILD_NOTES.md "Colour modelling (issue 17)".

    python benchmarks/colour_ablation.py BUILD.so [BUILD.so ...] [--taus 0,2] [--bsd-step 4]
                                         [--data ../shared/data/eval]

Each BUILD.so is a ``_linfcodec`` extension (e.g. a copy of ``linf_tf/_linfcodec*.so`` built from
some commit or with some -D flag), loaded under its own path, so builds can be compared in one
run. For each set (set14, bsd100, mcmaster) and tau it prints the mean bits per sample over the
RGB images (whole stream, header included; gray images such as set14's bridge are skipped), one
stripe, one thread. ``--bsd-step 4`` uses every 4th bsd100 image (the dev subset); 1 all of them.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from linf_tf.imageio import read_image  # noqa: E402

SETS = ("set14", "bsd100", "mcmaster")


def load_build(path: str):
    spec = importlib.util.spec_from_file_location("_linfcodec", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rgb_images(folder: Path, step: int) -> list[np.ndarray]:
    images = []
    for path in sorted(p for p in folder.iterdir() if p.is_file())[::step]:
        pixels = np.ascontiguousarray(read_image(path).pixels)
        if pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8:
            images.append(pixels)
    return images


def bits_per_sample(build, image: np.ndarray, tau: int) -> float:
    height, width, channels = image.shape
    stream = build.encode(image, width, height, channels, 8, tau, 0, 0, 1)
    return 8.0 * len(stream) / image.size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("builds", nargs="+")
    parser.add_argument("--taus", default="0,2")
    parser.add_argument("--bsd-step", type=int, default=4)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/eval"))
    args = parser.parse_args()
    taus = [int(t) for t in args.taus.split(",")]
    images = {name: rgb_images(args.data / name, args.bsd_step if name == "bsd100" else 1) for name in SETS}
    for path in args.builds:
        build = load_build(path)
        cells = []
        for name in SETS:
            for tau in taus:
                mean = np.mean([bits_per_sample(build, image, tau) for image in images[name]])
                cells.append(f"{name}:t{tau}={mean:.4f}")
        print(path, " ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
