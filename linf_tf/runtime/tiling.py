"""Tile-by-tile restoration with enough overlap to equal whole-image inference, and the channel
adaptation between a model's channel count and the image's."""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 16  # used when a model's receptive radius is unknown
MIN_SPLIT_TILE = 128  # tiles are not split below this side for parallelism: overlap would dominate


class Restorer(Protocol):
    """A restoration network behind one interface, whatever its file format.

    ``restore`` takes a decoded tile (HxWxC, integer) and returns the restored tile in pixel units
    (float, HxWxC), already projected into y ± slack*tau. ``channels`` is the channel count the
    network takes; ``receptive_radius`` is how many pixels of context the network sees on each
    side, or None when unknown (then tiling may not reproduce whole-image inference exactly).
    A restorer whose ``restore`` may run on several threads at once says how many with an optional
    ``parallel_windows`` attribute (absent: 1); the tiler then runs that many windows at a time.
    """

    channels: int
    receptive_radius: int | None

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray: ...


def as_hwc(image: np.ndarray) -> np.ndarray:
    """HxW -> HxWx1; HxWxC unchanged."""
    return image[..., None] if image.ndim == 2 else image


def restore_tiled(
    restorer: Restorer,
    decoded: np.ndarray,
    tau: int,
    slack: float,
    tile: int = 256,
    overlap: int = DEFAULT_OVERLAP,
    bit_depth: int | None = None,
) -> np.ndarray:
    """Restore ``decoded`` (HxW or HxWxC) tile by tile so memory stays bounded on large images.

    The image is cut into equal tiles of at most ``tile`` a side (:func:`tile_shape`); each is run
    with at least ``overlap`` extra pixels of context on every side (or up to the image border,
    where whole-image inference sees the same zero padding), and only its centre is kept. With
    ``overlap >= restorer.receptive_radius`` the result equals whole-image inference up to float
    rounding. Every window has the same size, ``min(tile side + 2 * overlap, image side)``: windows
    at the far border are shifted inward (more context, never less) instead of shrinking, so an
    engine with static shapes (LiteRT) allocates its tensors once per image instead of once per
    distinct border size. A restorer with ``parallel_windows`` > 1 gets that many windows at once,
    from a thread pool. Returns float pixel values,
    shape of ``decoded``.
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"need tile >= 1 and overlap >= 0, got tile={tile}, overlap={overlap}")
    bit_depth = bit_depth or 8 * decoded.dtype.itemsize
    radius = restorer.receptive_radius
    if radius is not None and overlap < radius:
        log.warning(
            "overlap %d < receptive radius %d: tile borders will differ from whole-image inference",
            overlap,
            radius,
        )
    image = as_hwc(decoded)
    height, width = image.shape[:2]
    workers = max(1, int(getattr(restorer, "parallel_windows", 1)))
    tile_height, tile_width = tile_shape(height, width, tile, workers)
    placements = []
    for top in range(0, height, tile_height):
        for left in range(0, width, tile_width):
            bottom, right = min(top + tile_height, height), min(left + tile_width, width)
            y0, y1 = _window(top, height, tile_height, overlap)
            x0, x1 = _window(left, width, tile_width, overlap)
            placements.append((top, bottom, left, right, y0, y1, x0, x1))

    def run(placement: tuple[int, ...]) -> np.ndarray:
        top, bottom, left, right, y0, y1, x0, x1 = placement
        block = restore_channels(restorer, image[y0:y1, x0:x1], tau, slack, bit_depth)
        return block[top - y0 : bottom - y0, left - x0 : right - x0]

    restored = np.empty(image.shape, np.float64)
    if workers > 1 and len(placements) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(placements))) as pool:
            blocks = list(pool.map(run, placements))
    else:
        blocks = [run(placement) for placement in placements]
    for (top, bottom, left, right, *_), block in zip(placements, blocks, strict=True):
        restored[top:bottom, left:right] = block
    return restored.reshape(decoded.shape)


def tile_shape(height: int, width: int, tile: int, workers: int = 1) -> tuple[int, int]:
    """(rows, columns) of one tile: at most ``tile`` a side, the image cut into equal parts (so no
    thin remainder tile pays a full window of overlap), and, for parallel restorers, cut further
    along its longer side until there are ``workers`` tiles, as long as tiles stay at least
    ``MIN_SPLIT_TILE`` a side."""
    rows, columns = math.ceil(height / tile), math.ceil(width / tile)
    while rows * columns < workers:
        tile_height, tile_width = math.ceil(height / rows), math.ceil(width / columns)
        if max(tile_height, tile_width) < 2 * MIN_SPLIT_TILE:
            break
        if tile_height >= tile_width:
            rows += 1
        else:
            columns += 1
    return math.ceil(height / rows), math.ceil(width / columns)


def _window(start: int, size: int, tile: int, overlap: int) -> tuple[int, int]:
    """[begin, end) of the input window for the tile starting at ``start`` along an axis of ``size``:
    ``overlap`` before the tile, then a fixed length ``min(tile + 2 * overlap, size)``, shifted back
    inside the image at the far border (which only adds context before the tile)."""
    length = min(tile + 2 * overlap, size)
    begin = max(start - overlap, 0)
    end = begin + length
    if end > size:
        begin, end = size - length, size
    return begin, end


def restore_channels(
    restorer: Restorer, block: np.ndarray, tau: int, slack: float, bit_depth: int
) -> np.ndarray:
    """Run the network on an HxWxC block whatever its channel count.

    * same channel count: one call;
    * a 1-channel network: each channel separately (the codec bounds every channel independently,
      so the guarantee is unchanged);
    * otherwise each channel is fed as a gray C-channel image (the plane repeated) and the
      restored channels are averaged; each lies in the box around y, so their mean does too.
    """
    channels = block.shape[-1]
    if restorer.channels == channels:
        return restorer.restore(block, tau, slack, bit_depth)
    if restorer.channels == 1:
        planes = [restorer.restore(block[..., c : c + 1], tau, slack, bit_depth) for c in range(channels)]
        return np.concatenate(planes, axis=-1)
    planes = []
    for c in range(channels):
        gray = np.repeat(block[..., c : c + 1], restorer.channels, axis=-1)
        planes.append(restorer.restore(gray, tau, slack, bit_depth).mean(axis=-1, keepdims=True))
    return np.concatenate(planes, axis=-1)
