"""Encoder-verified restoration: a guaranteed tight bound with most of the network's gain (format 5).

A decoder cannot know where its network is wrong, so a plain restored stream must use one small
box everywhere. The encoder knows the original: it runs the very same restoration (the exact
integer network of :mod:`linf_tf.runtime.intnet`), and for every block picks the "level" that lowers
the block's squared error most *while keeping every sample of the block within the bound*
``tau + floor(slack * tau)``. A level (q, w) moves a sample by ``clip(round(q * d / 4), -w, w)``,
d being the network's correction: q/4 scales it (a network trained for MSE moves too little in
some blocks and too much in others), w is the box half-width. The level map travels in the stream,
coded losslessly; the decoder reruns the network, applies the map, and so meets the bound exactly.

Stream layout (little-endian): a 26-byte fixed part ::

     0 magic "LINF"   4 version 5 (u8)   5 level count n (u8; 0 = the default set)
     6 block size (u16)   8 slack in thousandths (u16)   10 model id (8 bytes)
    18 CRC-32 of the restored samples (u32)   22 level-map bytes (u32)

then, when n > 0, the n levels (q as u8 in quarters, w as u16 in samples; the first is (0, 0), the
plain output), a CRC-32 of the header bytes before it *and* of the level map that follows it, the
level map (one symbol per block, context-coded by the C core's ``linf_encode_levelmap``), and the
plain stream of the image itself, to the end of the data (it must be exactly one stream). The
default level set (n = 0) is :func:`slack_levels` of the plain stream's tau and the slack; the
bound is ``tau + floor(slack * tau)``; the model id is the first 8 bytes of the integer model's
content hash. A stream with the default levels spends 30 bytes on its header.

The CRC of the restored samples is the determinism check: a decoder whose restoration differs from
the encoder's in a single sample refuses (:class:`~linf_tf.codec.CodecError`) instead of handing out
samples whose bound nobody verified. ``restore=False`` gives the plain codec output (bound tau).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import numpy as np

from linf_tf import codec
from linf_tf.codec import CodecError
from linf_tf.runtime.intnet import BACKENDS, IntNet, IntNetError
from linf_tf.runtime.registry import WEIGHTS_DIR

FORMAT_VERSION = 5
MAGIC = b"LINF"
INTEGER_MODEL_FILE = "intnet.bin"
DEFAULT_RESTORE_SLACK = 0.25
BLOCK_SIZES = (8, 16, 32)  # what ``block="auto"`` chooses from
DEFAULT_MAX_SIDE_FRACTION = 0.01  # "auto": the level map may add up to 1 % to the plain stream
MAX_LEVELS = 8
MAX_QUARTERS = 16  # a level scales the correction by at most 4
_FIXED = struct.Struct("<4sBBHH8sII")
MODEL_ID_BYTES = 8  # of the model's content hash: identifies one of a handful of models


@dataclass(frozen=True)
class VerifiedHeader:
    """What a format-5 stream says about its restoration."""

    block: int
    slack_thousandths: int
    bound: int
    levels: tuple[tuple[int, int], ...]  # (quarters, half-width) per level
    model_hash: bytes
    restored_crc: int
    map_bytes: int
    plain_bytes: int
    header_bytes: int

    @property
    def slack(self) -> float:
        return self.slack_thousandths / 1000.0

    @property
    def side_bytes(self) -> int:
        """Everything the restoration adds to the plain stream."""
        return self.header_bytes + self.map_bytes


def is_verified_stream(data: bytes | bytearray | memoryview) -> bool:
    return len(data) >= 5 and bytes(data[:4]) == MAGIC and data[4] == FORMAT_VERSION


def slack_levels(tau: int, slack_thousandths: int) -> tuple[tuple[int, int], ...]:
    """The (quarters, half-width) levels offered per block: the plain output; the network in the
    always-safe box floor(slack*tau); half, all and 1.5x of its correction in the box tau; twice it
    in the box 2 tau. BUILD_NOTES "Verified restoration" has what each family of levels bought."""
    safe = slack_thousandths * tau // 1000
    wanted = [(0, 0), (4, safe), (2, tau), (4, tau), (6, tau), (8, 2 * tau)]
    levels = []
    for quarters, width in wanted:
        level = (0, 0) if quarters == 0 or width == 0 else (quarters, width)
        if level not in levels:
            levels.append(level)
    return tuple(levels)


def _moves(correction: np.ndarray, quarters: np.ndarray | int, width: np.ndarray | int) -> np.ndarray:
    """clip(round(q * d / 4), -w, w), rounding half up, in integers."""
    return np.clip((correction.astype(np.int64) * quarters + 2) >> 2, -width, width)


def _per_block(values: np.ndarray, block: int, reduce: str) -> np.ndarray:
    """Max or sum of (H, W, C) values over each block x block x C tile (zero padded)."""
    height, width = values.shape[:2]
    blocks_h, blocks_w = -(-height // block), -(-width // block)
    padded = np.zeros((blocks_h * block, blocks_w * block) + values.shape[2:], values.dtype)
    padded[:height, :width] = values
    tiles = padded.reshape(blocks_h, block, blocks_w, block, -1)
    return tiles.max(axis=(1, 3, 4)) if reduce == "max" else tiles.sum(axis=(1, 3, 4))


def _expand(level_map: np.ndarray, block: int, shape: tuple[int, ...]) -> np.ndarray:
    full = np.repeat(np.repeat(level_map, block, axis=0), block, axis=1)
    return full[: shape[0], : shape[1], None]


def apply_levels(decoded: np.ndarray, correction: np.ndarray, level_map: np.ndarray,
                 levels: tuple[tuple[int, int], ...], block: int, max_value: int) -> np.ndarray:
    """clip(y + move, 0, max), each sample moved by its block's level (integers)."""
    y = decoded.reshape(correction.shape).astype(np.int64)
    table = np.asarray(levels, np.int64)[level_map]
    quarters, width = (_expand(table[..., i], block, y.shape) for i in (0, 1))
    return np.clip(y + _moves(correction, quarters, width), 0, max_value).astype(decoded.dtype).reshape(
        decoded.shape)


def choose_levels(original: np.ndarray, decoded: np.ndarray, correction: np.ndarray, bound: int,
                  levels: tuple[tuple[int, int], ...], block: int, max_value: int,
                  budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per block, the level with the least squared error among those keeping every sample within
    ``bound`` of the original (level 0, the plain output, always does). With ``budget`` (bytes of
    the coded map), the least error whose map fits it, if one does (:func:`_rate_constrained`).
    Returns (map, SSE per block)."""
    table = level_errors(original, decoded, correction, bound, levels, block, max_value)
    level_map = np.argmin(table, axis=0).astype(np.uint8)
    if budget is not None and len(codec.encode_level_map(level_map, len(levels))) > budget:
        level_map = _rate_constrained(table, budget)
    return level_map, np.take_along_axis(table, level_map[None].astype(np.intp), 0)[0]


def level_errors(original: np.ndarray, decoded: np.ndarray, correction: np.ndarray, bound: int,
                 levels: tuple[tuple[int, int], ...], block: int, max_value: int) -> np.ndarray:
    """(levels, blocks_h, blocks_w) squared error of each level per block; inf where it breaks the bound."""
    x = original.reshape(correction.shape).astype(np.int64)
    y = decoded.reshape(correction.shape).astype(np.int64)
    table = []
    for quarters, width in levels:
        error = np.clip(y + _moves(correction, quarters, width), 0, max_value) - x
        worst = _per_block(np.abs(error), block, "max")
        table.append(np.where(worst <= bound, _per_block(error * error, block, "sum"), np.inf))
    return np.stack(table)


def _rate_constrained(table: np.ndarray, budget: int) -> np.ndarray:
    """The map minimising error + lambda * bits with the smallest lambda whose coded map fits.

    A symbol's cost is -log2 of its share of the map (three refits per lambda): a rough stand-in
    for the context coder, but only the *actual* coded size decides whether a map fits. Lambda
    grows by 4x until the map fits, then 12 bisection steps; if no lambda up to 1e15 fits, the map
    of the largest one tried.
    """
    count = table.shape[0]

    def choice(weight: float) -> tuple[np.ndarray, int]:
        level_map = np.argmin(table, axis=0)
        for _ in range(3):
            share = (np.bincount(level_map.ravel(), minlength=count) + 0.5) / (level_map.size + 0.5 * count)
            level_map = np.argmin(table - weight * np.log2(share)[:, None, None], axis=0)
        level_map = level_map.astype(np.uint8)
        return level_map, len(codec.encode_level_map(level_map, count))

    low, high = 0.0, 1.0
    best = choice(high)
    while best[1] > budget and high < 1e15:
        low, high = high, 4 * high
        best = choice(high)
    if best[1] > budget:
        return best[0]
    for _ in range(12):
        middle = (low + high) / 2
        candidate = choice(middle)
        if candidate[1] <= budget:
            high, best = middle, candidate
        else:
            low = middle
    return best[0]


@cache
def shipped_integer_models() -> dict[bytes, Path]:
    """model id (content hash prefix) -> file, for every ``weights/*/intnet.bin`` shipped with the package."""
    found = {}
    for path in sorted(WEIGHTS_DIR.glob(f"*/{INTEGER_MODEL_FILE}")):
        found[IntNet.load(path).content_hash[:MODEL_ID_BYTES]] = path
    return found


def integer_model_for(channels: int, model: str | Path | IntNet | None = None) -> IntNet:
    """The integer model an encoder uses: ``model`` if given, else the shipped one for ``channels``
    (the 1-channel model runs channel by channel on other counts)."""
    if isinstance(model, IntNet):
        return model
    if model is not None:
        return IntNet.load(model)
    nets = [IntNet.load(path) for path in shipped_integer_models().values()]
    for wanted in (channels, 1):
        for net in nets:
            if net.channels == wanted:
                return net
    raise FileNotFoundError(
        f"no shipped integer restoration model ({INTEGER_MODEL_FILE}) for {channels} channel(s)"
    )


def network_correction(
    net: IntNet,
    decoded: np.ndarray,
    tau: int,
    max_value: int,
    threads: int | None = None,
    backend: str = "blas",
) -> np.ndarray:
    """int32 (H, W, C) correction; a 1-channel model runs on each channel of a C-channel image.
    ``threads`` (default: every core) and ``backend`` change the speed only, never a sample."""
    image = decoded[..., None] if decoded.ndim == 2 else decoded
    run = partial(net.correction, tau=tau, max_value=max_value, backend=backend, threads=threads)
    if net.channels == image.shape[2]:
        return run(image)
    if net.channels != 1:
        raise ValueError(f"a {net.channels}-channel model cannot restore {image.shape[2]} channels")
    planes = [run(image[..., c])[..., 0] for c in range(image.shape[2])]
    return np.stack(planes, axis=-1)


def restored_crc(restored: np.ndarray) -> int:
    """CRC-32 of the samples in C order, little-endian whatever the machine."""
    return zlib.crc32(np.ascontiguousarray(restored, restored.dtype.newbyteorder("<")).tobytes())


def encode(
    image: np.ndarray,
    tau: int,
    slack: float = DEFAULT_RESTORE_SLACK,
    *,
    block: int | str = "auto",
    model: str | Path | IntNet | None = None,
    bit_depth: int | None = None,
    threads: int | None = None,
    max_side_fraction: float = DEFAULT_MAX_SIDE_FRACTION,
    fast: bool = False,
) -> bytes:
    """A format-5 stream: the plain stream of ``image`` at ``tau`` plus the verified level map, so
    that :func:`decode` returns samples within ``tau + floor(slack * tau)`` of ``image``.

    ``block``: the level map's block size in pixels (its least-error map), or "auto": for each of
    ``BLOCK_SIZES`` the least-error map whose coding and header add at most ``max_side_fraction``
    of the plain stream (trading error for map bits where needed), then the size with the least
    error (the largest block if none fits, e.g. a tiny image whose header alone is over budget).
    ``fast``: the plain stream as :func:`linf_tf.codec.encode` writes it with ``fast=True``.
    """
    plan = plan_restoration(image, tau, slack, block=block, model=model, bit_depth=bit_depth, threads=threads,
                            max_side_fraction=max_side_fraction, fast=fast)
    return plan.stream


@dataclass(frozen=True)
class RestorationPlan:
    """What the encoder decided (kept for benchmarks: the restored image and the plain stream)."""

    stream: bytes
    plain: bytes
    restored: np.ndarray
    header: VerifiedHeader


def plan_restoration(
    image: np.ndarray,
    tau: int,
    slack: float = DEFAULT_RESTORE_SLACK,
    *,
    block: int | str = "auto",
    model: str | Path | IntNet | None = None,
    bit_depth: int | None = None,
    threads: int | None = None,
    correction: np.ndarray | None = None,
    max_side_fraction: float = DEFAULT_MAX_SIDE_FRACTION,
    levels: Sequence[tuple[int, int]] | None = None,
    fast: bool = False,
) -> RestorationPlan:
    """:func:`encode`, returning the restored samples too (``correction`` may be given precomputed;
    ``levels`` replaces :func:`slack_levels`' set, for experiments: any set decodes)."""
    thousandths = _check_slack(slack)
    if int(tau) < 1:
        raise ValueError("verified restoration needs tau >= 1 (tau 0 is already lossless)")
    if np.asarray(image).dtype.kind != "u":
        raise ValueError(f"verified restoration needs unsigned samples, got {np.asarray(image).dtype}")
    blocks = _check_block(block)
    plain, decoded = codec.encode_with_decoded(image, tau, bit_depth, threads=threads, fast=fast)
    info = codec.info(plain)
    max_value = (1 << info.bit_depth) - 1
    net = integer_model_for(info.channels, model)
    if correction is None:
        correction = network_correction(net, decoded, tau, max_value, threads)
    bound = tau + thousandths * tau // 1000
    default_levels = slack_levels(tau, thousandths)
    levels = default_levels if levels is None else _check_levels(levels, tau)
    stored_levels = () if levels == default_levels else levels  # the default set is implied
    header_bytes = _header_size(len(stored_levels))
    # "auto" holds every block size to the side-information budget, trading error for map bits
    # where the best map would not fit; a block size given explicitly gets its least-error map.
    # (When the header alone is over budget, a tiny image, the fallback keeps its least-error map.)
    budget = int(max_side_fraction * len(plain)) - header_bytes if len(blocks) > 1 else None
    map_budget = budget if budget is not None and budget > 0 else None
    candidates, fitting = [], []
    for size in sorted(blocks, reverse=True):  # largest first: the fallback when none fits the budget
        level_map, sse = choose_levels(image, decoded, correction, bound, levels, size, max_value, map_budget)
        map_stream = codec.encode_level_map(level_map, len(levels))
        candidates.append((float(sse.sum()), size, level_map, map_stream))
        if budget is None or len(map_stream) <= budget:
            fitting.append(candidates[-1])
    _, size, level_map, map_stream = min(fitting, key=lambda c: c[0]) if fitting else candidates[0]
    restored = apply_levels(decoded, correction, level_map, levels, size, max_value)
    header = VerifiedHeader(size, thousandths, bound, levels, net.content_hash[:MODEL_ID_BYTES],
                            restored_crc(restored), len(map_stream), len(plain), header_bytes)
    stream = _write_header(header, stored_levels, map_stream) + plain
    return RestorationPlan(stream, plain, restored, header)


def _check_slack(slack: float) -> int:
    """Slack in whole thousandths, rounded down: the stored bound never exceeds the one asked for."""
    if not 0.0 <= float(slack) <= 1.0:
        raise ValueError(f"restore slack must be between 0 and 1, got {slack}")
    return math.floor(float(slack) * 1000 + 1e-9)


def _check_levels(levels: Sequence[tuple[int, int]], tau: int) -> tuple[tuple[int, int], ...]:
    """The rules a decoder enforces (:func:`_parse`), so that every stream written decodes."""
    chosen = tuple((int(q), int(w)) for q, w in levels)
    valid = (
        1 <= len(chosen) <= MAX_LEVELS
        and chosen[0] == (0, 0)
        and len(set(chosen)) == len(chosen)
        and all(0 <= q <= MAX_QUARTERS and 0 <= w <= 2 * tau for q, w in chosen)
    )
    if not valid:
        raise ValueError(
            f"levels must start with (0, 0), be distinct, at most {MAX_LEVELS}, with 0 <= q <= "
            f"{MAX_QUARTERS} quarters and 0 <= w <= 2 * tau = {2 * tau}; got {levels!r}"
        )
    return chosen


def _check_block(block: int | str) -> tuple[int, ...]:
    if block == "auto":
        return BLOCK_SIZES
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 2 <= block <= 1024:
        raise ValueError(f"block must be 'auto' or a size from 2 to 1024 pixels, got {block!r}")
    return (int(block),)


def _write_header(
    header: VerifiedHeader, stored_levels: tuple[tuple[int, int], ...], map_stream: bytes
) -> bytes:
    """Header + level map (the CRC after the header covers both); ``stored_levels`` is () when the
    levels are the default set."""
    body = _FIXED.pack(MAGIC, FORMAT_VERSION, len(stored_levels), header.block, header.slack_thousandths,
                       header.model_hash, header.restored_crc, header.map_bytes)
    body += b"".join(struct.pack("<BH", *level) for level in stored_levels)
    return body + struct.pack("<I", zlib.crc32(map_stream, zlib.crc32(body))) + map_stream


def _header_size(count: int) -> int:
    return _FIXED.size + 3 * count + 4


def read_header(data: bytes | bytearray | memoryview) -> VerifiedHeader:
    """The restoration header of a format-5 stream; CodecError if it is corrupt or inconsistent
    (the CRC, the levels, the block size, and the plain stream's facts are all checked)."""
    return _parse(bytes(data))[0]


def split(data: bytes | bytearray | memoryview) -> tuple[VerifiedHeader, bytes, bytes]:
    """(header, level-map stream, plain stream), every part checked."""
    header, map_stream, plain, _ = _parse(bytes(data))
    return header, map_stream, plain


def _parse(data: bytes) -> tuple[VerifiedHeader, bytes, bytes, codec.StreamInfo]:
    if not is_verified_stream(data):
        raise CodecError("not a format-5 (encoder-verified restoration) stream", 2)
    if len(data) < _FIXED.size:
        raise CodecError("format-5 stream is truncated (header)", codec.ERR_TRUNCATED)
    _, _, count, block, thousandths, model_id, crc, map_bytes = _FIXED.unpack_from(data)
    header_bytes = _header_size(count)
    if len(data) < header_bytes + map_bytes:
        raise CodecError("format-5 stream is truncated (header or level map)", codec.ERR_TRUNCATED)
    body, map_stream = data[: header_bytes - 4], data[header_bytes : header_bytes + map_bytes]
    if zlib.crc32(map_stream, zlib.crc32(body)) != struct.unpack_from("<I", data, header_bytes - 4)[0]:
        raise CodecError("format-5 restoration header or level map CRC mismatch: the stream is corrupt", 3)
    plain = data[header_bytes + map_bytes :]
    info = codec.info(plain)
    if info.total_bytes != len(plain):
        code = codec.ERR_TRUNCATED if len(plain) < info.total_bytes else codec.ERR_TRAILING_DATA
        raise CodecError(
            f"format-5 plain stream is {len(plain)} bytes, its header says {info.total_bytes}", code
        )
    if count:
        levels = tuple(struct.unpack_from("<BH", data, _FIXED.size + 3 * i) for i in range(count))
    else:
        levels = slack_levels(info.tau, thousandths) if thousandths <= 1000 and info.tau >= 1 else ((0, 0),)
    valid = (len(levels) <= MAX_LEVELS and levels[0] == (0, 0) and len(set(levels)) == len(levels)
             and all(q <= MAX_QUARTERS and w <= 2 * info.tau for q, w in levels)
             and 2 <= block <= 1024 and thousandths <= 1000 and info.tau >= 1
             and not info.is_signed)
    if not valid:
        raise CodecError(
            "format-5 restoration header has invalid levels, block size or slack (or its plain stream "
            "a tau of 0 or signed samples)", 4
        )
    bound = info.tau + thousandths * info.tau // 1000
    header = VerifiedHeader(
        block, thousandths, bound, levels, model_id, crc, map_bytes, len(plain), header_bytes
    )
    return header, map_stream, plain, info


def decode(
    data: bytes | bytearray | memoryview,
    *,
    restore: bool = True,
    models: Iterable[str | Path] = (),
    threads: int | None = None,
    max_samples: int | None = None,
) -> np.ndarray:
    """The restored image (within ``header.bound`` of the original), or with ``restore=False`` the
    plain codec output (within tau). ``models``: integer model files to look in beside the shipped
    ones; ``max_samples`` caps the image size as :func:`linf_tf.codec.decode` does (untrusted input:
    restoration costs ~1 s per 0.26 megapixel on 2 cores). CodecError if the stream is corrupt, the
    model is missing, or the restoration does not reproduce the encoder's samples exactly."""
    header, map_stream, plain = split(data)
    decoded = codec.decode(plain, max_samples, threads=threads)
    if not restore:
        return decoded
    info = codec.info(plain)
    level_map = _level_map(map_stream, header, decoded.shape)
    net = _model_by_hash(header.model_hash, models)
    max_value = (1 << info.bit_depth) - 1
    # The fast path first; on a mismatch the pure-integer backend, which uses no BLAS at all (a
    # faulty BLAS is the one way this machine could compute other integers), then give up.
    for backend in BACKENDS:
        correction = network_correction(net, decoded, info.tau, max_value, threads, backend)
        restored = apply_levels(decoded, correction, level_map, header.levels, header.block, max_value)
        if restored_crc(restored) == header.restored_crc:
            return restored
    raise CodecError(
        "the restoration on this machine differs from the encoder's (restored-sample CRC mismatch); "
        "the bound cannot be guaranteed: decode without restoration (--no-restore) for the plain "
        "output within tau", 5,
    )


def _level_map(map_stream: bytes, header: VerifiedHeader, shape: tuple[int, ...]) -> np.ndarray:
    expected = (-(-shape[0] // header.block), -(-shape[1] // header.block))
    return codec.decode_level_map(map_stream, expected, len(header.levels))


def _model_by_hash(wanted: bytes, extra: Iterable[str | Path]) -> IntNet:
    for path in extra:
        try:
            net = IntNet.load(path)
        except (OSError, IntNetError):
            continue
        if net.content_hash[:MODEL_ID_BYTES] == wanted:
            return net
    path = shipped_integer_models().get(wanted)
    if path is None:
        raise CodecError(
            f"the stream was restored with integer model {wanted.hex()}, which this installation does not "
            "have; install the linf-tf version that wrote it, or decode plain with --no-restore", 6,
        )
    return IntNet.load(path)
