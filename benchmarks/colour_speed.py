"""Single-thread encode/decode speed of one codec build relative to another on RGB images, the
speed check of issue 17:

    python benchmarks/colour_speed.py BASE.so NEW.so [--data ../shared/data/eval] [--rounds 3]
                                      [--new-format 4]

Both builds are ``_linfcodec`` extensions loaded from their paths. On the same RGB images
(every 10th of bsd100, the first 6 of them, and the first 3 of mcmaster: 9 images, 4.3 M samples)
it times encode and decode (process CPU time, one stripe, one thread) in interleaved rounds, keeps
each build's fastest round and prints speed ratios NEW / BASE (above 1: NEW is faster) at tau 0
and 2. Interleaving and CPU time keep the ratio fair on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colour_ablation import load_build, rgb_images  # noqa: E402


def timed(build, images, tau: int, extra: tuple = ()) -> tuple[float, float]:
    encode = decode = 0.0
    for image in images:
        height, width, channels = image.shape
        start = time.process_time()
        stream = build.encode(image, width, height, channels, 8, tau, 0, 0, 1, *extra)
        encode += time.process_time() - start
        out = bytearray(image.size)
        start = time.process_time()
        build.decode(stream, out, 0, 1)
        decode += time.process_time() - start
    return encode, decode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base")
    parser.add_argument("new")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/eval"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--new-format", type=int, default=0,
                        help="format version NEW writes (encode's format_version: 4 = fast=True; 0 = newest)")
    args = parser.parse_args()
    new_extra = (None, args.new_format) if args.new_format else ()
    base, new = load_build(args.base), load_build(args.new)
    images = rgb_images(args.data / "bsd100", 10)[:6] + rgb_images(args.data / "mcmaster", 1)[:3]
    for tau in (0, 2):
        runs = {"base": [], "new": []}
        for _ in range(args.rounds):
            runs["base"].append(timed(base, images, tau))
            runs["new"].append(timed(new, images, tau, new_extra))
        best = {name: (min(r[0] for r in rs), min(r[1] for r in rs)) for name, rs in runs.items()}
        print(f"tau={tau}: encode speed new/base {best['base'][0] / best['new'][0]:.3f}, "
              f"decode {best['base'][1] / best['new'][1]:.3f} "
              f"(base encode {best['base'][0]:.2f} s, decode {best['base'][1]:.2f} s CPU)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
