"""Run the l-inf CNN on decoded images: the path of ``linf decompress --restore`` and ``linf restore``.

The network's output is rounded and projected into the integer box [y - floor(kappa*tau),
y + floor(kappa*tau)] around the codec's output y, so every restored sample is *guaranteed* within
tau + floor(kappa*tau) <= (1 + kappa) * tau of the original, whatever the network does. Large images
are restored tile by tile with enough overlap to equal whole-image inference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from linf_tf.runtime.box import check_slack, check_tau, max_value_for, to_integer_box, verify_box
from linf_tf.runtime.registry import DEFAULT_MODEL, load_restorer
from linf_tf.runtime.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, Restorer, as_hwc, restore_tiled


class NetworkRestorer:
    """Loads a model once (``default`` = the shipped model matching the image's channel count, a
    ``.tflite`` file, a SavedModel directory, a ``.weights.h5`` with its ``.json``, or a trainer export
    directory) and restores decoded images with it. Models load lazily, on the first image."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, tile: int = DEFAULT_TILE,
                 overlap: int | None = None) -> None:
        if tile < 16:
            raise ValueError(f"tile must be at least 16 pixels, got {tile}")
        if overlap is not None and overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.model = model
        self.tile = tile
        self.overlap = overlap
        self._restorers: dict[int, Restorer] = {}

    def restorer_for(self, channels: int) -> Restorer:
        """The loaded network for C-channel images (one per channel count for ``default``)."""
        key = channels if str(self.model) == DEFAULT_MODEL else 0
        if key not in self._restorers:
            self._restorers[key] = load_restorer(self.model, channels=channels)
        return self._restorers[key]

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        """Restore ``decoded`` (HxW or HxWxC, uint8/uint16) that the codec produced at ``tau``."""
        slack = check_slack(slack)
        tau = check_tau(tau)
        if tau == 0 or slack * tau < 1:  # the integer box has no room: the codec output is final
            return decoded.copy()
        restorer = self.restorer_for(as_hwc(decoded).shape[-1])
        overlap = self.overlap if self.overlap is not None else (restorer.receptive_radius or DEFAULT_OVERLAP)
        restored = restore_tiled(restorer, decoded, tau, slack, self.tile, overlap, bit_depth)
        result = to_integer_box(restored, decoded, tau, slack, max_value_for(bit_depth))
        verify_box(result, decoded, tau, slack)
        return result
