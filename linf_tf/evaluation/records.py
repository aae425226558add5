"""Records of an evaluation: one method on one image at one tau, the outputs behind them, and the
method names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BASELINE_METHODS = ("codec", "jpeg2000", "webp", "jpegls")
# The reference codecs run beside ours; the codec itself always runs (the networks restore its output).
REFERENCE_CODECS = ("jpeg2000", "webp", "jpegls")
RATE_TOLERANCE = 0.02  # rate-matched baselines must land within 2 % of the codec's size
MAX_BISECTION_STEPS = 24
WEBP_METHODS = (4, 6, 5, 3, 2, 1, 0)  # libwebp's default effort first
JPEGLS_MAX_NEAR = 255  # CharLS rejects larger NEAR values


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One method on one image at one tau.

    ``bound`` is the guaranteed l-inf error (tau for the codecs, (1 + kappa) tau for a network, None
    for JPEG 2000 / WebP, which guarantee nothing); ``rate_matched`` says whether a rate-matched
    baseline got within 2 % of the codec's size (None for the other methods).
    """

    set: str
    method: str
    tau: int
    image: str
    psnr: float
    ssim: float
    linf: float
    bpp: float
    bound: float | None = None
    rate_matched: bool | None = None


@dataclass(frozen=True)
class MethodOutput:
    """A method's reconstruction (integer, same shape and dtype as the original) and its cost."""

    image: np.ndarray
    num_bytes: int
    bound: float | None = None
    rate_matched: bool | None = None


@dataclass(frozen=True)
class RateMatch:
    """Result of a rate-matching search: the decoded image, its stream and the setting used."""

    decoded: np.ndarray
    data: bytes
    setting: dict[str, float]  # the encoder settings that produced ``data``
    within_tolerance: bool
