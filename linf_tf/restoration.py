"""Run the l-inf CNN on decoded images: the runtime path of ``linf decompress --restore`` and
``linf restore``.

The network's output is rounded and projected into the integer box [y - floor(kappa*tau),
y + floor(kappa*tau)] around the codec's output y, so every restored sample is *guaranteed* within
tau + floor(kappa*tau) <= (1 + kappa) * tau of the original, whatever the network does. Large images
are restored tile by tile with enough overlap to equal whole-image inference.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

DEFAULT_SLACK = 0.5
DEFAULT_TILE = 512


def guaranteed_bound(tau: int, slack: float) -> int:
    """Worst-case |restored - original| after restoration at ``slack``: the codec's tau plus the
    integer box half-width the projection allows around the decoded value."""
    return int(tau) + math.floor(slack * tau + 1e-9)


def check_slack(slack: float) -> float:
    if not 0.0 <= float(slack) <= 1.0:
        raise ValueError(f"slack must be between 0 and 1, got {slack}")
    return float(slack)


class NetworkRestorer:
    """Loads a model once (a SavedModel directory, a ``.tflite`` file, a ``.weights.h5`` with its
    ``.json``, a trainer export directory, or ``default`` = the model shipped in the package) and
    restores decoded images with it."""

    def __init__(self, model: str | Path = "default", tile: int = DEFAULT_TILE, overlap: int | None = None):
        if tile < 16:
            raise ValueError(f"tile must be at least 16 pixels, got {tile}")
        if overlap is not None and overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.model = model
        self.tile = tile
        self.overlap = overlap
        self._restorer = None

    def _load(self):  # lazy: importing TensorFlow costs seconds, only pay it when needed
        if self._restorer is None:
            from linf_tf.evaluate_lib import load_restorer

            self._restorer = load_restorer(self.model)
        return self._restorer

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        """Restore ``decoded`` (HxW or HxWxC, uint8/uint16) that the codec produced at ``tau``."""
        from linf_tf.evaluate_lib import max_value_for, restore_tiled, to_integer_box

        slack = check_slack(slack)
        if tau < 0:
            raise ValueError(f"tau must be >= 0, got {tau}")
        if tau == 0 or slack * tau < 1:  # the integer box has no room: the codec output is final
            return decoded.copy()
        restorer = self._load()
        overlap = self.overlap if self.overlap is not None else (restorer.receptive_radius or 16)
        restored = restore_tiled(restorer, decoded, tau, slack, self.tile, overlap, bit_depth)
        result = to_integer_box(restored, decoded, tau, slack, max_value_for(bit_depth))
        _verify_box(result, decoded, tau, slack)
        return result


def _verify_box(result: np.ndarray, decoded: np.ndarray, tau: int, slack: float) -> None:
    # Cheap insurance for the product's promise: never hand out a pixel outside the box.
    moved = int(np.abs(result.astype(np.int64) - decoded.astype(np.int64)).max(initial=0))
    if moved > math.floor(slack * tau + 1e-9):
        raise RuntimeError(f"restoration moved a sample by {moved} > slack*tau; refusing the output")
