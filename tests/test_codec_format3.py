"""Format 3 of the codec: signed samples, stripes coded on threads, exact stream size."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import skimage.data

from linf_tf import codec
from linf_tf.codec import CodecError


def max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def smooth_noisy(shape: tuple[int, ...], bits: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    field = (np.sin(x / 9.0) * np.cos(y / 7.0) * 0.45 + 0.5) * ((1 << bits) - 1)
    if len(shape) == 3:
        field = np.stack([field * (0.6 + 0.2 * c) for c in range(shape[2])], -1)
    noisy = field + rng.normal(0, (1 << bits) / 200, field.shape)
    return np.clip(np.round(noisy), 0, (1 << bits) - 1).astype(np.uint8 if bits <= 8 else np.uint16)


# ------------------------------------------------------------------ signed samples


@pytest.mark.parametrize(("bits", "tau"), [(12, 0), (12, 3), (16, 0), (16, 20), (9, 1)])
def test_int16_round_trip_is_signed_and_within_tau(bits: int, tau: int) -> None:
    unsigned = smooth_noisy((40, 33), bits).astype(np.int32)
    image = (unsigned - (1 << (bits - 1))).astype(np.int16)
    stream = codec.encode(image, tau, bit_depth=bits)
    stream_info = codec.info(stream)
    assert stream_info.is_signed and stream_info.format_version == 3 and stream_info.dtype == np.int16
    decoded = codec.decode(stream)
    assert decoded.dtype == np.int16 and decoded.shape == image.shape
    assert max_error(decoded, image) <= tau
    if tau == 0:
        np.testing.assert_array_equal(decoded, image)
    # Signed data is coded as the data shifted by 2**(bits-1): the same payload.
    shifted = codec.encode((unsigned).astype(np.uint16), tau, bit_depth=bits)
    assert stream[36:] == shifted[36:] and stream[7] == 1 and shifted[7] == 0


def test_int8_and_small_depth_int16_round_trip_as_int8() -> None:
    image = (smooth_noisy((20, 21, 3), 6).astype(np.int16) - 32).astype(np.int8)
    decoded = codec.decode(codec.encode(image, 1, bit_depth=6))
    assert decoded.dtype == np.int8 and max_error(decoded, image) <= 1
    wide = image.astype(np.int16)
    stream = codec.encode(wide, 1, bit_depth=6)
    assert codec.decode(stream).dtype == np.int8  # 1-byte samples at depths <= 8
    np.testing.assert_array_equal(codec.decode(stream), decoded)


def test_signed_range_is_validated() -> None:
    image = np.array([[0, -2048, 2047]], np.int16)
    codec.encode(image, 0, bit_depth=12)
    for bad in (2048, -2049):
        with pytest.raises(ValueError, match="signed bit_depth 12"):
            codec.encode(np.array([[0, bad]], np.int16), 0, bit_depth=12)
    with pytest.raises(ValueError, match="bit_depth must be 1 to 8"):
        codec.encode(np.zeros((2, 2), np.int8), 0, bit_depth=9)


def test_signed_raw_fallback_decodes_exactly() -> None:
    noise = np.random.default_rng(5).integers(-32768, 32768, (16, 16), dtype=np.int16)
    stream, decoded = codec.encode_with_decoded(noise, 0)
    assert codec.info(stream).coding_mode == "raw" and codec.info(stream).is_signed
    np.testing.assert_array_equal(decoded, noise)
    np.testing.assert_array_equal(codec.decode(stream), noise)


def test_cli_hook_sees_native_signed_storage() -> None:
    from linf_tf.cli.compress import codec_stores_signed

    assert codec_stores_signed()


# ------------------------------------------------------------------ stripes and threads


@pytest.mark.parametrize("stripe_height", [1, 7, 16, 63])
def test_striped_stream_bytes_do_not_depend_on_threads(stripe_height: int) -> None:
    image = smooth_noisy((64, 50, 3), 12)
    reference, reference_decoded = codec.encode_with_decoded(
        image, 2, bit_depth=12, stripe_height=stripe_height, threads=1
    )
    stream_info = codec.info(reference)
    assert stream_info.stripe_count == -(-64 // stripe_height) and stream_info.striped
    assert stream_info.stripe_height == stripe_height
    for threads in (2, 3, 8):
        stream, decoded = codec.encode_with_decoded(image, 2, bit_depth=12, stripe_height=stripe_height,
                                                    threads=threads)
        assert stream == reference
        np.testing.assert_array_equal(decoded, reference_decoded)
        np.testing.assert_array_equal(codec.decode(reference, threads=threads), reference_decoded)
    assert max_error(reference_decoded, image) <= 2


def test_stripe_height_at_least_the_height_is_one_stripe() -> None:
    image = skimage.data.camera()[:40, :60]
    plain = codec.encode(image, 1, stripe_height=0)
    assert codec.encode(image, 1, stripe_height=40) == plain
    assert codec.encode(image, 1, stripe_height=1000) == plain
    assert codec.info(plain).stripe_count == 1 and codec.info(plain).stripe_height == 40


def test_each_stripe_keeps_the_bound_and_lossless_is_exact() -> None:
    image = skimage.data.astronaut()[:100, :90]
    for tau in (0, 3):
        stream = codec.encode(image, tau, stripe_height=9, threads=2)
        decoded = codec.decode(stream, threads=2)
        for y0 in range(0, 100, 9):
            assert max_error(decoded[y0 : y0 + 9], image[y0 : y0 + 9]) <= tau
        if tau == 0:
            np.testing.assert_array_equal(decoded, image)


def _stripe_offsets(stream: bytes) -> list[tuple[int, int]]:
    count = struct.unpack_from("<I", stream, 40)[0]
    at = 36 + 8 + 16 * count
    spans = []
    for i in range(count):
        size = struct.unpack_from("<Q", stream, 44 + 16 * i)[0]
        spans.append((at, size))
        at += size
    assert at == len(stream)
    return spans


@pytest.mark.parametrize("threads", [1, 3])
def test_corrupt_stripe_error_names_the_stripe(threads: int) -> None:
    image = skimage.data.camera()[:80, :64]
    stream = codec.encode(image, 1, stripe_height=16)
    spans = _stripe_offsets(stream)
    for k, (at, size) in enumerate(spans):
        damaged = bytearray(stream)
        damaged[at + size // 2] ^= 0x40
        if k + 1 < len(spans):
            damaged[spans[-1][0]] ^= 1  # a later stripe too: the lowest bad one is named
        with pytest.raises(CodecError, match=f"^stripe {k}: .*checksum") as excinfo:
            codec.decode(bytes(damaged), threads=threads)
        assert excinfo.value.stripe == k and excinfo.value.code == 5


def test_damaged_stripe_table_is_a_header_error() -> None:
    stream = bytearray(codec.encode(skimage.data.camera()[:40, :40], 0, stripe_height=10))
    stream[44 + 16 + 3] ^= 1
    with pytest.raises(CodecError, match="header") as excinfo:
        codec.decode(bytes(stream))
    assert excinfo.value.stripe is None


def test_default_stripes_and_threads_depend_on_the_image_only() -> None:
    assert codec.default_stripe_height(1024, 1024) == 0  # below PARALLEL_MIN_PIXELS
    assert codec.default_threads(1) == 1
    assert 1 <= codec.default_threads(4) <= 4
    assert codec.default_stripe_height(2048, 2048) == 1024  # an even count: two equal stripes
    assert codec.default_stripe_height(2048, 2048, 3) == 1024  # per pixel: colour stripes cost more
    assert codec.default_stripe_height(4096, 4096) == 1024  # 16.8 MP: four stripes
    big = np.zeros((1500, 1500), np.uint8)
    big[::7] = 200
    stream = codec.encode(big, 0)
    assert codec.info(stream).striped
    assert codec.encode(big, 0, threads=1) == stream == codec.encode(big, 0, threads=2)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_int(bad: object) -> None:
    image = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="threads"):
        codec.encode(image, 0, threads=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threads"):
        codec.decode(codec.encode(image, 0), threads=bad)  # type: ignore[arg-type]


def test_stripe_height_must_be_a_non_negative_int() -> None:
    with pytest.raises(ValueError, match="stripe_height"):
        codec.encode(np.zeros((8, 8), np.uint8), 0, stripe_height=-1)


# ------------------------------------------------------------------ exact size


@pytest.mark.parametrize("stripe_height", [0, 5])
def test_trailing_bytes_and_truncation_are_errors(stripe_height: int) -> None:
    stream = codec.encode(skimage.data.camera()[:30, :30], 1, stripe_height=stripe_height)
    for extra in (b"\0", b"LINF", bytes(100)):
        with pytest.raises(CodecError, match="after its end") as excinfo:
            codec.decode(stream + extra)
        assert excinfo.value.code == 8
        with pytest.raises(CodecError, match="after its end"):
            codec.info(stream + extra)
    for cut in (1, 2, len(stream) - 37):
        with pytest.raises(CodecError, match="truncated") as excinfo:
            codec.decode(stream[:-cut])
        assert excinfo.value.code == 1
    # The header alone can still be read on request.
    assert codec.info(stream[:-1], exact=False).width == 30


def test_concatenated_streams_are_refused() -> None:
    one = codec.encode(np.zeros((4, 4), np.uint8), 0)
    with pytest.raises(CodecError, match="after its end"):
        codec.decode(one + one)


def test_format2_with_flags_is_refused() -> None:
    head = bytearray(codec.encode(np.zeros((4, 4), np.uint8), 0))
    head[4], head[7] = 2, 1
    head[32:36] = struct.pack("<I", zlib.crc32(bytes(head[:32])))
    with pytest.raises(CodecError, match="header"):
        codec.decode(bytes(head))
