"""Python API of the near-lossless codec: encode, decode and inspect ``.nlc`` streams.

Every decoded sample differs from the original by at most ``tau`` (``tau = 0`` is bit-exact).
The work is done by the pure-C core through the ``linf_tf._linfcodec`` extension, which releases
the GIL, so these functions can be called from many threads at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linf_tf import _linfcodec

MAX_CHANNELS: int = _linfcodec.MAX_CHANNELS
MAX_DIMENSION: int = _linfcodec.MAX_DIMENSION
MAX_SAMPLES: int = _linfcodec.MAX_SAMPLES
FORMAT_VERSION: int = _linfcodec.FORMAT_VERSION


class CodecError(ValueError):
    """A stream that cannot be decoded (truncated, corrupt, unsupported) or bad codec arguments.

    ``code`` is the C core's status code: 1-99 bad data, 100+ caller misuse.
    """

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class StreamInfo:
    """What a stream's header says."""

    width: int
    height: int
    channels: int
    bit_depth: int
    tau: int
    format_version: int
    coding_mode: str  # "predictive" or "raw"
    payload_bytes: int
    header_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the decoded array: (H, W) for one channel, else (H, W, C)."""
        if self.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.channels)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bit_depth <= 8 else np.uint16)

    @property
    def num_samples(self) -> int:
        return self.width * self.height * self.channels

    @property
    def bits_per_sample(self) -> float:
        """Whole stream (header included) in bits per sample."""
        return 8.0 * self.total_bytes / self.num_samples


def _raise_from(exc: _linfcodec.Error) -> None:
    message, code = exc.args
    raise CodecError(message, code) from None


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(
            f"image dtype must be uint8 or uint16, got {image.dtype}; "
            "convert with image.astype(np.uint8) or np.uint16 after checking the value range"
        )
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWxC, got shape {image.shape}")
    if image.ndim == 3 and not 1 <= image.shape[2] <= MAX_CHANNELS:
        raise ValueError(f"image must have 1 to {MAX_CHANNELS} channels, got {image.shape[2]}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _default_bit_depth(image: np.ndarray) -> int:
    return 8 if image.dtype == np.uint8 else 16


def encode(image: np.ndarray, tau: int, bit_depth: int | None = None) -> bytes:
    """Compress ``image`` (HxW or HxWxC, uint8 or uint16) so that every sample is within ``tau``.

    ``bit_depth`` (1-16, default 8 for uint8 and 16 for uint16) is the depth stored in the stream;
    every sample must be below ``2**bit_depth`` and ``tau`` at most ``(2**bit_depth - 1) // 2``.
    """
    stream, _ = _encode(image, tau, bit_depth, want_decoded=False)
    return stream


def encode_with_decoded(
    image: np.ndarray, tau: int, bit_depth: int | None = None
) -> tuple[bytes, np.ndarray]:
    """``encode`` plus the array ``decode`` will return for the stream, at no extra cost: the
    encoder reconstructs every sample anyway (what training pipelines need)."""
    stream, decoded = _encode(image, tau, bit_depth, want_decoded=True)
    assert decoded is not None
    return stream, decoded


def _encode(
    image: np.ndarray, tau: int, bit_depth: int | None, want_decoded: bool
) -> tuple[bytes, np.ndarray | None]:
    image = _check_image(image)
    if bit_depth is None:
        bit_depth = _default_bit_depth(image)
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)):
        raise ValueError(f"bit_depth must be an int from 1 to 16, got {bit_depth!r}")
    max_depth = 8 if image.dtype == np.uint8 else 16
    if not 1 <= bit_depth <= max_depth:
        raise ValueError(f"bit_depth must be 1 to {max_depth} for {image.dtype} input, got {bit_depth}")
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)):
        raise ValueError(f"tau must be a non-negative int, got {tau!r}")
    max_tau = ((1 << int(bit_depth)) - 1) // 2
    if not 0 <= tau <= max_tau:
        raise ValueError(f"tau must be 0 to {max_tau} for bit_depth {bit_depth}, got {tau}")
    peak = int(image.max())
    if peak >= 1 << int(bit_depth):
        raise ValueError(
            f"sample value {peak} does not fit in bit_depth {bit_depth} (max {(1 << int(bit_depth)) - 1}); "
            "pass a larger bit_depth"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    decoded_shape = image.shape[:2] if channels == 1 else image.shape
    decoded = np.empty(decoded_shape, image.dtype) if want_decoded else None
    extra = () if decoded is None else (decoded,)
    try:
        stream = _linfcodec.encode(
            image, image.shape[1], image.shape[0], channels, int(bit_depth), int(tau), *extra
        )
    except _linfcodec.Error as exc:
        _raise_from(exc)
    return stream, decoded


def info(data: bytes | bytearray | memoryview) -> StreamInfo:
    """Parse and validate the header of a stream (the payload is not checked)."""
    try:
        fields = _linfcodec.read_header(data)
    except _linfcodec.Error as exc:
        _raise_from(exc)
    width, height, channels, bit_depth, tau, version, mode, payload, header = fields
    return StreamInfo(
        width=width,
        height=height,
        channels=channels,
        bit_depth=bit_depth,
        tau=tau,
        format_version=version,
        coding_mode="raw" if mode == 1 else "predictive",
        payload_bytes=payload,
        header_bytes=header,
    )


def decode(data: bytes | bytearray | memoryview, max_samples: int | None = None) -> np.ndarray:
    """Decode a stream to an array of shape ``info(data).shape`` and dtype uint8/uint16.

    ``max_samples`` caps width*height*channels (default ``MAX_SAMPLES``) so that untrusted input
    cannot make the decoder allocate unbounded memory.
    """
    stream = info(data)
    limit = MAX_SAMPLES if max_samples is None else int(max_samples)
    if stream.num_samples > limit:
        raise CodecError(
            f"image of {stream.num_samples} samples exceeds max_samples={limit}", 7
        )
    out = np.empty(stream.shape, dtype=stream.dtype)
    try:
        _linfcodec.decode(data, out, limit)
    except _linfcodec.Error as exc:
        _raise_from(exc)
    return out
