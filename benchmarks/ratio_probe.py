"""Prepare the inputs of ``ratio_probe.c``: raw images plus their JPEG-LS stream sizes.

    python benchmarks/ratio_probe.py OUT_DIR DIR...

For every image of the folders (read as ``codec_bench.py`` reads them), writes ``OUT_DIR/raw/*.bin``
(a 20-byte header ``width height channels bit_depth bytes_per_sample``, little-endian u32, then the
samples) and one line per image to ``OUT_DIR/{luma,gray,rgb,high}.list``: the file, then the
CharLS stream size at tau = 0..14 (-1 where tau exceeds the depth). Classes as in codec_bench:
``luma`` is the BT.601 luma of each 8-bit colour image. ``ratio_probe.c`` then codes the images
with the C core alone and prints mean bits per sample and the ratio to JPEG-LS (the same numbers
codec_bench reports), in seconds instead of the bench's timed runs.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import imagecodecs
import numpy as np
from codec_bench import find_images, image_class, luma

from linf_tf.imageio import read_image

TAUS = range(15)


def jpegls_sizes(pixels: np.ndarray, depth: int) -> list[int]:
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    sizes = []
    for tau in TAUS:
        if tau > ((1 << depth) - 1) // 2:
            sizes.append(-1)
        elif channels in (1, 3, 4):
            sizes.append(len(imagecodecs.jpegls_encode(pixels, level=tau)))
        else:
            planes = (np.ascontiguousarray(pixels[:, :, c]) for c in range(channels))
            sizes.append(sum(len(imagecodecs.jpegls_encode(p, level=tau)) for p in planes))
    return sizes


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    (out / "raw").mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"luma": [], "gray": [], "rgb": [], "high": []}

    def save(kind: str, pixels: np.ndarray, depth: int) -> None:
        name = out / "raw" / f"{kind}_{len(lists[kind]):03d}.bin"
        height, width = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else pixels.shape[2]
        header = struct.pack("<5I", width, height, channels, depth, pixels.dtype.itemsize)
        name.write_bytes(header + np.ascontiguousarray(pixels).tobytes())
        lists[kind].append(" ".join([str(name), *map(str, jpegls_sizes(pixels, depth))]))

    for path in find_images([Path(a) for a in argv[1:]], None):
        image = read_image(path, allow_signed=True)
        klass = image_class(image)
        pixels = image.pixels if image.channels > 1 else image.pixels.reshape(image.pixels.shape[:2])
        if klass == "colour 8-bit":
            save("luma", luma(image.pixels), 8)
            save("rgb", image.pixels, 8)
        elif klass == "gray 8-bit":
            save("gray", pixels, 8)
        elif klass == "high-bit":
            save("high", pixels, image.bit_depth)
    for kind, lines in lists.items():
        (out / f"{kind}.list").write_text("".join(line + "\n" for line in lines))
        print(f"{kind}: {len(lines)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
