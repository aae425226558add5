"""Stream sizes of two codec builds on multichannel data outside the RGB photo sets: the 16-bit
neubias microscopy stacks (2-90 channels) and the small fixture crops of
``tests/test_codec_colour.py::format4_colour_cases``. The check behind BUILD_NOTES.md "Round 3".

    python benchmarks/colour_builds.py OLD.so NEW.so [--taus 0,2] [--output out/colour_builds.csv]

Both builds are ``_linfcodec`` extensions loaded from their paths (see colour_ablation.py). Every
stream NEW writes is decoded and checked within tau. Prints NEW/OLD - 1 per file and in sum; the
stacks are skipped cleanly when ``../shared/data/highbit/neubias`` is absent.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from colour_ablation import load_build  # noqa: E402
from test_codec_colour import format4_colour_cases  # noqa: E402

from linf_tf.imageio import read_image  # noqa: E402

NEUBIAS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "highbit" / "neubias"


def cases(taus: list[int]) -> list[tuple[str, np.ndarray, int, int, int]]:
    """(name, image, tau, bit depth, stripe height)."""
    found = []
    if NEUBIAS.is_dir():
        for path in sorted(NEUBIAS.glob("xy[cz]*")):
            pixels = np.ascontiguousarray(read_image(path).pixels)
            if pixels.ndim == 3:
                found += [(path.name, pixels, tau, 16, 0) for tau in taus]
    else:
        print(f"{NEUBIAS} is absent: fixture crops only", file=sys.stderr)
    for i, (image, tau, depth, stripe_height) in enumerate(format4_colour_cases()):
        found.append((f"fixture{i:02d}", np.ascontiguousarray(image), tau, depth, stripe_height))
    return found


def size(build, image: np.ndarray, tau: int, depth: int, stripe_height: int, check: bool) -> int:
    height, width, channels = image.shape
    stream = build.encode(image, width, height, channels, depth, tau, 0, stripe_height, 1)
    if check:
        out = np.empty_like(image)
        build.decode(stream, out, 0, 1)
        if np.abs(out.astype(np.int64) - image).max() > tau:
            raise SystemExit(f"bound violated: {image.shape} tau {tau}")
    return len(stream)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--taus", default="0,2", help="taus for the neubias stacks")
    parser.add_argument("--output", type=Path, default=Path("out/colour_builds.csv"))
    args = parser.parse_args()
    old, new = load_build(args.old), load_build(args.new)
    rows = []
    for name, image, tau, depth, stripe_height in cases([int(t) for t in args.taus.split(",")]):
        a = size(old, image, tau, depth, stripe_height, check=False)
        b = size(new, image, tau, depth, stripe_height, check=True)
        rows.append((name, "x".join(map(str, image.shape)), tau, a, b))
        change = 100 * (b / a - 1)
        print(f"{name[:44]:44s} {rows[-1][1]:>12s} tau {tau:3d}: {a:9d} -> {b:9d}  {change:+6.2f} %",
              flush=True)
    stacks = [r for r in rows if not r[0].startswith("fixture")]
    stack_taus = sorted({r[2] for r in stacks})
    groups = [(f"neubias tau {tau}", [r for r in stacks if r[2] == tau]) for tau in stack_taus]
    groups.append(("fixtures (all tau)", [r for r in rows if r[0].startswith("fixture")]))
    for label, chosen in groups:
        a, b = sum(r[3] for r in chosen), sum(r[4] for r in chosen)
        print(f"{label}: {len(chosen)} streams, in sum {100 * (b / a - 1):+.2f} %")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "shape", "tau", "old_bytes", "new_bytes"])
        writer.writerows(rows)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
