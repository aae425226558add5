"""The integer box around the codec's output: the projection that makes the guarantee exact.

Every restored sample is rounded and clipped into [y - floor(kappa*tau), y + floor(kappa*tau)] ∩
[0, max_value] around the decoded value y, so |x_hat - x| <= tau + floor(kappa*tau) whatever the
network did. NumPy only: the codec layer, the runtime and the evaluation share these functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from linf_tf.pixels import max_value_for  # noqa: F401  (re-exported)

DEFAULT_SLACK = 0.5
_EPS = 1e-9


def guaranteed_bound(tau: int, slack: float) -> int:
    """Worst-case |restored - original| after restoration at ``slack``: the codec's tau plus the
    integer box half-width the projection allows around the decoded value."""
    return int(tau) + math.floor(slack * tau + _EPS)


def check_slack(slack: float) -> float:
    """``slack`` (kappa) as a float, or ValueError unless it is in [0, 1]."""
    if not 0.0 <= float(slack) <= 1.0:
        raise ValueError(f"slack must be between 0 and 1, got {slack}")
    return float(slack)


def check_slacks(slacks: Iterable[float]) -> None:
    """ValueError naming every value outside [0, 1] (evaluation grids)."""
    bad = [k for k in slacks if not 0.0 <= k <= 1.0]
    if bad:
        raise ValueError(f"slacks must lie in [0, 1] (the box y ± kappa*tau), got {bad}")


def check_tau(tau: int) -> int:
    if int(tau) < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    return int(tau)


def project_to_float_box(
    restored: np.ndarray, decoded: np.ndarray, half_width: float, max_value: float
) -> np.ndarray:
    """Clip ``restored`` into [y - half_width, y + half_width] ∩ [0, max_value] (floats, any units)."""
    lower = np.maximum(decoded - half_width, 0.0)
    upper = np.minimum(decoded + half_width, max_value)
    return np.minimum(np.maximum(restored, lower), upper)


def to_integer_box(
    restored: np.ndarray, decoded: np.ndarray, tau: int, slack: float, max_value: int
) -> np.ndarray:
    """Round a network output to integers inside [y - slack*tau, y + slack*tau] ∩ [0, max_value].

    Rounding alone could step half a level out of a non-integer box (slack*tau = 1.5); clipping to
    the integer box afterwards keeps |x_hat - x| <= (1 + slack) * tau exactly. Because rounding is
    monotone, projecting a wider-box result here equals projecting the raw output directly.
    """
    half_width = math.floor(slack * tau + _EPS)  # the integer box's half-width
    wide = np.int32 if decoded.dtype.itemsize < 4 else np.int64  # y ± half_width without overflow
    y = decoded.astype(wide)
    # Integer arithmetic: 10x faster than float ceil/floor/clip on a 2000x1500 RGB image. The
    # float clip first keeps the cast defined; NaN casts to some integer, clipped like any other.
    rounded = np.rint(restored)
    np.maximum(rounded, -1.0, out=rounded)  # np.clip is ~8x slower than this pair here
    np.minimum(rounded, max_value + 1.0, out=rounded)
    with np.errstate(invalid="ignore"):
        result = rounded.astype(wide)
    np.minimum(result, np.minimum(y + half_width, max_value), out=result)
    np.maximum(result, np.maximum(y - half_width, 0), out=result)
    return result.astype(decoded.dtype)


def verify_box(result: np.ndarray, decoded: np.ndarray, tau: int, slack: float) -> None:
    """RuntimeError if any sample of ``result`` moved more than floor(slack*tau) from ``decoded``:
    cheap insurance for the product's promise, never hand out a pixel outside the box."""
    wide = np.int32 if decoded.dtype.itemsize < 4 else np.int64
    moved = int(np.abs(result.astype(wide) - decoded.astype(wide)).max(initial=0))
    if moved > math.floor(slack * tau + _EPS):
        raise RuntimeError(f"restoration moved a sample by {moved} > slack*tau; refusing the output")
