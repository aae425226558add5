"""linf-tf: near-lossless (L-infinity bounded) image compression with an L-infinity-constrained CNN."""

__version__ = "0.1.0"
