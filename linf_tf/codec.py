"""Python API of the near-lossless codec: encode, decode and inspect ``.nlc`` streams.

Every decoded sample differs from the original by at most ``tau`` (``tau = 0`` is bit-exact).
The work is done by the pure-C core through the ``linf_tf._linfcodec`` extension, which releases
the GIL, so these functions can be called from many threads at once.

Format 3 (written since codec 3.0; format 2 streams still decode):

* **signed samples**: int8/int16 arrays are stored natively (a header flag; the core codes
  ``v + 2**(bit_depth - 1)``) and decode back to int8 (``bit_depth <= 8``) or int16;
* **stripes**: ``stripe_height`` rows per independently coded stripe, each with its own size and
  CRC-32 in a table after the header, coded on ``threads`` threads (the C core's POSIX threads,
  GIL released). The stream's bytes depend on the stripe height, never on the thread count. By
  default images of at least ``PARALLEL_MIN_PIXELS`` pixels are striped (``default_stripe_height``)
  and striped streams are coded on ``os.cpu_count()`` threads; smaller images are one stripe on
  one thread;
* **exact size**: a stream with bytes after its end, or cut short, is a ``CodecError``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from linf_tf import _linfcodec

MAX_CHANNELS: int = _linfcodec.MAX_CHANNELS
MAX_DIMENSION: int = _linfcodec.MAX_DIMENSION
MAX_SAMPLES: int = _linfcodec.MAX_SAMPLES
FORMAT_VERSION: int = _linfcodec.FORMAT_VERSION
OLDEST_FORMAT_VERSION: int = _linfcodec.OLDEST_FORMAT_VERSION
FAST_FORMAT_VERSION: int = 4  # encode(fast=True): multichannel images without format 6's mixing
MAX_THREADS: int = _linfcodec.MAX_THREADS

# Images with at least this many pixels are striped by default (and coded on every core).
PARALLEL_MIN_PIXELS: int = 1 << 21
# Default stripe count: an even number (so two threads get equal shares), two per started
# STRIPE_PAIR_PIXELS pixels. Each stripe relearns its context model (about 0.6-0.7 KB of extra
# stream per stripe and channel on the test images), so stripes are kept few and large, counted
# per pixel, not per sample (a colour stripe relearns three models): BUILD_NOTES, "Format 3:
# stripes and threads", has the measured bits-per-sample overhead.
STRIPE_PAIR_PIXELS: int = 1 << 23

ERR_TRUNCATED = 1
ERR_TRAILING_DATA = 8


class CodecError(ValueError):
    """A stream that cannot be decoded (truncated, corrupt, unsupported) or bad codec arguments.

    ``code`` is the C core's status code: 1-99 bad data, 100+ caller misuse.
    """

    def __init__(self, message: str, code: int = 0, stripe: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.stripe = stripe  # index of the stripe whose data is bad, when the error is a stripe's


@dataclass(frozen=True)
class StreamInfo:
    """What a stream's header says."""

    width: int
    height: int
    channels: int
    bit_depth: int
    tau: int
    format_version: int
    coding_mode: str  # "predictive", "raw" or "palette" (format 4)
    payload_bytes: int
    header_bytes: int  # the fixed header plus, when striped, the stripe table
    is_signed: bool = False  # samples are signed (decode returns int8/int16)
    stripe_height: int = 0  # rows per stripe (== height when not striped)
    stripe_count: int = 1

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
        if self.is_signed:
            return np.dtype(np.int8 if self.bit_depth <= 8 else np.int16)
        return np.dtype(np.uint8 if self.bit_depth <= 8 else np.uint16)

    @property
    def striped(self) -> bool:
        return self.stripe_count > 1

    @property
    def num_samples(self) -> int:
        return self.width * self.height * self.channels

    @property
    def bits_per_sample(self) -> float:
        """Whole stream (header included) in bits per sample."""
        return 8.0 * self.total_bytes / self.num_samples


def _raise_from(exc: _linfcodec.Error) -> None:
    message, code, stripe = exc.args
    raise CodecError(message, code, None if stripe < 0 else stripe) from None


ACCEPTED_DTYPES = (np.uint8, np.uint16, np.int8, np.int16)


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy.ndarray, got {type(image).__name__}")
    if image.dtype not in ACCEPTED_DTYPES:
        raise ValueError(
            f"image dtype must be uint8 or uint16 (int8 or int16 for signed samples), got {image.dtype}; "
            "convert with image.astype(np.uint16) or np.int16 after checking the value range"
        )
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be HxW or HxWxC, got shape {image.shape}")
    if image.ndim == 3 and not 1 <= image.shape[2] <= MAX_CHANNELS:
        raise ValueError(f"image must have 1 to {MAX_CHANNELS} channels, got {image.shape[2]}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    return np.ascontiguousarray(image)


def _default_bit_depth(image: np.ndarray) -> int:
    return 8 * image.dtype.itemsize


def default_threads(stripe_count: int) -> int:
    """Threads used when ``threads`` is not given: every core (at most one per stripe) for a
    striped image, else 1."""
    if stripe_count <= 1:
        return 1
    return max(1, min(os.cpu_count() or 1, stripe_count, MAX_THREADS))


def default_stripe_height(height: int, width: int, channels: int = 1) -> int:
    """Rows per stripe used when ``stripe_height`` is not given (0 = one stripe): depends on the
    image's shape only, so a stream's bytes never depend on the machine or the thread count."""
    if height * width < PARALLEL_MIN_PIXELS:
        return 0
    count = 2 * -(-(height * width) // STRIPE_PAIR_PIXELS)
    rows = -(-height // count)
    return 0 if rows >= height else rows


def _stripe_count(height: int, stripe_height: int) -> int:
    return 1 if stripe_height == 0 or stripe_height >= height else -(-height // stripe_height)


def _check_threads(threads: int | None, stripe_count: int) -> int:
    if threads is None:
        return default_threads(stripe_count)
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    return min(int(threads), MAX_THREADS)


def encode(
    image: np.ndarray,
    tau: int,
    bit_depth: int | None = None,
    *,
    stripe_height: int | None = None,
    threads: int | None = None,
    fast: bool = False,
) -> bytes:
    """Compress ``image`` (HxW or HxWxC) so that every sample is within ``tau``.

    ``image`` is uint8/uint16, or int8/int16 for signed samples (stored as such; ``decode`` gives
    int8/int16 back). ``bit_depth`` (1-16, default 8 for 1-byte and 16 for 2-byte items) is the
    depth stored in the stream: unsigned samples must be below ``2**bit_depth``, signed ones within
    ``-2**(bit_depth-1) .. 2**(bit_depth-1) - 1``, and ``tau`` at most ``(2**bit_depth - 1) // 2``.
    int16 input with ``bit_depth <= 8`` is stored as int8 (and decodes as int8).

    ``stripe_height``: rows per independently coded stripe (0 = one stripe; default
    ``default_stripe_height``). ``threads``: how many threads code the stripes (default
    ``default_threads``: every core when striped). The returned bytes depend on
    ``stripe_height``, never on ``threads``.

    ``fast``: multichannel images in format 4, the colour model without format 6's context mixing
    and error regression: about 1.6-1.8x faster single-thread coding for more bits (on RGB photo
    sets 1.3-1.5 % at tau = 0, 3-4 % at tau = 2, 5-7 % at tau = 8). Gray images are format 3
    either way.
    """
    stream, _ = _encode(image, tau, bit_depth, stripe_height, threads, fast, want_decoded=False)
    return stream


def encode_with_decoded(
    image: np.ndarray,
    tau: int,
    bit_depth: int | None = None,
    *,
    stripe_height: int | None = None,
    threads: int | None = None,
    fast: bool = False,
) -> tuple[bytes, np.ndarray]:
    """``encode`` plus the array ``decode`` will return for the stream, at no extra cost: the
    encoder reconstructs every sample anyway (what training pipelines need)."""
    stream, decoded = _encode(image, tau, bit_depth, stripe_height, threads, fast, want_decoded=True)
    assert decoded is not None
    return stream, decoded


def _check_range(image: np.ndarray, bit_depth: int) -> None:
    signed = image.dtype.kind == "i"
    low, high = (-(1 << (bit_depth - 1)), (1 << (bit_depth - 1)) - 1) if signed else (0, (1 << bit_depth) - 1)
    peak, floor = int(image.max()), int(image.min())
    if peak > high or floor < low:
        bad = peak if peak > high else floor
        kind = "signed " if signed else ""
        raise ValueError(
            f"sample value {bad} does not fit in {kind}bit_depth {bit_depth} ({low} to {high}); "
            "pass a larger bit_depth"
        )


def _encode(
    image: np.ndarray,
    tau: int,
    bit_depth: int | None,
    stripe_height: int | None,
    threads: int | None,
    fast: bool,
    want_decoded: bool,
) -> tuple[bytes, np.ndarray | None]:
    image = _check_image(image)
    if not isinstance(fast, (bool, np.bool_)):
        raise ValueError(f"fast must be True or False, got {fast!r}")
    if bit_depth is None:
        bit_depth = _default_bit_depth(image)
    if isinstance(bit_depth, bool) or not isinstance(bit_depth, (int, np.integer)):
        raise ValueError(f"bit_depth must be an int from 1 to 16, got {bit_depth!r}")
    max_depth = _default_bit_depth(image)
    if not 1 <= bit_depth <= max_depth:
        raise ValueError(f"bit_depth must be 1 to {max_depth} for {image.dtype} input, got {bit_depth}")
    if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)):
        raise ValueError(f"tau must be a non-negative int, got {tau!r}")
    max_tau = ((1 << int(bit_depth)) - 1) // 2
    if not 0 <= tau <= max_tau:
        raise ValueError(f"tau must be 0 to {max_tau} for bit_depth {bit_depth}, got {tau}")
    _check_range(image, int(bit_depth))
    if image.dtype == np.int16 and bit_depth <= 8:
        image = image.astype(np.int8)  # 1-byte items at depths <= 8 (range checked above)
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if stripe_height is None:
        stripe_height = default_stripe_height(height, width, channels)
    if isinstance(stripe_height, bool) or not isinstance(stripe_height, (int, np.integer)) \
            or stripe_height < 0:
        raise ValueError(f"stripe_height must be a non-negative int (0 = one stripe), got {stripe_height!r}")
    stripe_height = min(int(stripe_height), height)
    threads = _check_threads(threads, _stripe_count(height, stripe_height))
    decoded_shape = image.shape[:2] if channels == 1 else image.shape
    decoded = np.empty(decoded_shape, image.dtype) if want_decoded else None
    try:
        stream = _linfcodec.encode(
            image, width, height, channels, int(bit_depth), int(tau), image.dtype.kind == "i",
            stripe_height, threads, decoded, FAST_FORMAT_VERSION if fast else 0,
        )
    except _linfcodec.Error as exc:
        _raise_from(exc)
    return stream, decoded


def info(data: bytes | bytearray | memoryview, exact: bool = True) -> StreamInfo:
    """Parse and validate the header of a stream (the payload's checksums are not checked).

    ``exact`` (default): ``data`` must be exactly one stream; a shorter one raises ``CodecError``
    (code 1, truncated), a longer one ``CodecError`` (code 8, trailing bytes). ``exact=False``
    reads the header of a stream's first bytes (a striped stream's table included).
    """
    try:
        fields = _linfcodec.read_header(data)
    except _linfcodec.Error as exc:
        if bytes(memoryview(data)[:5]) == b"LINF\x05":
            raise CodecError(
                "this is a format-5 stream (plain stream + encoder-verified restoration): read it with "
                "linf_tf.runtime.verified (info: read_header/split, pixels: decode) or `linf decompress`",
                exc.args[1],
            ) from None
        _raise_from(exc)
    width, height, channels, bit_depth, tau, version, mode, payload, header = fields[:9]
    signed, stripe_h, stripes = fields[9:]
    if exact:
        size, total = memoryview(data).nbytes, header + payload
        if size < total:
            raise CodecError(
                f"the stream is truncated: it has {size} bytes, its header says {total}", ERR_TRUNCATED
            )
        if size > total:
            raise CodecError(
                f"the stream has {size - total} bytes after its end ({size} bytes, its header says {total})",
                ERR_TRAILING_DATA,
            )
    return StreamInfo(
        width=width,
        height=height,
        channels=channels,
        bit_depth=bit_depth,
        tau=tau,
        format_version=version,
        coding_mode={1: "raw", 2: "palette"}.get(mode, "predictive"),
        payload_bytes=payload,
        header_bytes=header,
        is_signed=bool(signed),
        stripe_height=stripe_h,
        stripe_count=stripes,
    )


def decode(
    data: bytes | bytearray | memoryview, max_samples: int | None = None, *, threads: int | None = None
) -> np.ndarray:
    """Decode a stream to an array of shape ``info(data).shape`` and dtype ``info(data).dtype``
    (uint8/uint16, or int8/int16 for signed streams).

    ``data`` must be exactly one stream (trailing bytes and truncation raise ``CodecError``).
    ``max_samples`` caps width*height*channels (default ``MAX_SAMPLES``) so that untrusted input
    cannot make the decoder allocate unbounded memory. ``threads``: threads decoding the stripes of
    a striped stream (default ``default_threads``). A stripe whose data is bad raises a
    ``CodecError`` that names it (message ``"stripe N: ..."``, attribute ``stripe``).
    """
    stream = info(data)
    limit = MAX_SAMPLES if max_samples is None else int(max_samples)
    if stream.num_samples > limit:
        raise CodecError(
            f"image of {stream.num_samples} samples exceeds max_samples={limit}", 7
        )
    threads = _check_threads(threads, stream.stripe_count)
    out = np.empty(stream.shape, dtype=stream.dtype)
    try:
        _linfcodec.decode(data, out, limit, threads)
    except _linfcodec.Error as exc:
        _raise_from(exc)
    return out


LEVELMAP_MAX_LEVELS: int = _linfcodec.LEVELMAP_MAX_LEVELS


def encode_level_map(level_map: np.ndarray, levels: int) -> bytes:
    """Context-code a 2-D uint8 map of symbols below ``levels`` (the level maps of format 5)."""
    level_map = np.ascontiguousarray(level_map, dtype=np.uint8)
    if level_map.ndim != 2 or level_map.size == 0:
        raise ValueError(f"a level map must be a non-empty 2-D array, got shape {level_map.shape}")
    try:
        return _linfcodec.encode_levelmap(level_map, level_map.shape[1], level_map.shape[0], int(levels))
    except _linfcodec.Error as exc:
        _raise_from(exc)


def decode_level_map(data: bytes, shape: tuple[int, int], levels: int) -> np.ndarray:
    """The uint8 map of ``shape`` that :func:`encode_level_map` coded; CodecError if corrupt."""
    out = np.empty(shape, np.uint8)
    try:
        _linfcodec.decode_levelmap(bytes(data), out, shape[1], shape[0], int(levels))
    except _linfcodec.Error as exc:
        _raise_from(exc)
    return out
