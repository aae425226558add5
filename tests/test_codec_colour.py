"""Multichannel coding (issue 17): format-3 colour streams still decode exactly, round trips of
1..N channels within tau, corrupt streams are still refused."""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from linf_tf import codec


def max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max())


def _hashed(shape: tuple[int, ...], bits: int, salt: int) -> np.ndarray:
    index = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape)
    mixed = (index + np.uint64(salt)) * np.uint64(0x9E3779B97F4A7C15)
    return (mixed >> np.uint64(40)) & np.uint64((1 << bits) - 1)


def format3_colour_cases() -> list[tuple[np.ndarray, int, int, int]]:
    """(image, tau, bit depth, stripe height) of the format-3 multichannel fixtures: deterministic
    inputs (real crops, a smooth field plus hashed noise), no RNG."""
    astronaut = skimage.data.astronaut()[60:108, 150:214]
    coffee = skimage.data.coffee()[100:150, 200:260]
    y, x = np.mgrid[0:40, 0:56]
    smooth = np.sin(x / 7.0) * np.cos(y / 5.0) * 0.45 + 0.5
    cases = [(astronaut, tau, 8, 0) for tau in (0, 1, 2, 4, 8)]
    cases.append((coffee, 0, 8, 16))
    cases.append((coffee, 3, 8, 16))
    for depth, channels, taus in ((16, 4, (0, 3)), (12, 2, (0, 5)), (10, 7, (0, 1))):
        peak = (1 << depth) - 1
        planes = []
        for c in range(channels):
            noise = _hashed(smooth.shape, depth - 4, depth + c).astype(np.int64)
            field = np.round(smooth * peak * (0.5 + 0.07 * c)).astype(np.int64)
            planes.append(np.clip(field + noise, 0, peak))
        image = np.ascontiguousarray(np.stack(planes, -1).astype(np.uint16))
        cases += [(image, tau, depth, 0) for tau in taus]
    return cases


def format4_colour_cases() -> list[tuple[np.ndarray, int, int, int]]:
    """The format-3 cases plus a palette image (tau = 0, few colours) and a weakly correlated RGB
    crop at several tau: between them every format-4 unit mode (mixed, moved-only, interband-3,
    palette) occurs."""
    colours = np.array([[200, 30, 40], [20, 180, 60], [250, 250, 250], [10, 10, 90]], np.uint8)
    palette = colours[(_hashed((33, 45), 2, 11)).astype(np.int64)]
    flowers = skimage.data.immunohistochemistry()[200:248, 300:364]
    cases = format3_colour_cases()
    cases += [(np.ascontiguousarray(palette), 0, 8, 0), (np.ascontiguousarray(palette), 0, 8, 12)]
    cases += [(np.ascontiguousarray(flowers), tau, 8, 0) for tau in (0, 2, 6)]
    return cases


FIXTURE_CASES = {3: format3_colour_cases, 4: format4_colour_cases}


def write_fixtures(version: int) -> None:
    """Writes tests/data/format<version> with the current encoder (run once, by the encoder that
    writes that format: python tests/test_codec_colour.py --write-fixtures VERSION)."""
    folder = Path(__file__).parent / "data" / f"format{version}"
    folder.mkdir(parents=True, exist_ok=True)
    streams = []
    for i, (image, tau, depth, stripe_height) in enumerate(FIXTURE_CASES[version]()):
        data = codec.encode(image, tau, bit_depth=depth, stripe_height=stripe_height)
        assert codec.info(data).format_version == version
        name = f"colour{i:02d}.nlc"
        (folder / name).write_bytes(data)
        decoded = codec.decode(data)
        streams.append({"file": name, "case": i, "tau": tau, "bit_depth": depth,
                        "stripe_height": stripe_height, "shape": list(image.shape), "dtype": str(image.dtype),
                        "decoded_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(),
                        "stream_sha256": hashlib.sha256(data).hexdigest()})
    note = (f"Format-{version} multichannel streams written by the format-{version} encoder from "
            f"tests/test_codec_colour.py::{FIXTURE_CASES[version].__name__} "
            f"(python tests/test_codec_colour.py --write-fixtures {version}); "
            "decoders must keep decoding them to exactly these arrays.")
    manifest = json.dumps({"note": note, "streams": streams}, indent=1)
    (folder / "manifest.json").write_text(manifest + "\n")


@pytest.mark.parametrize("version", [3, 4])
def test_older_colour_golden_streams_decode_exactly_as_before(version: int) -> None:
    folder = Path(__file__).parent / "data" / f"format{version}"
    manifest = json.loads((folder / "manifest.json").read_text())
    cases = FIXTURE_CASES[version]()
    assert len(manifest["streams"]) == len(cases)
    for entry in manifest["streams"]:
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
        assert codec.info(data).format_version == version
        image, tau, _, _ = cases[entry["case"]]
        for threads in (1, 2):
            decoded = codec.decode(data, threads=threads)
            assert hashlib.sha256(decoded.tobytes()).hexdigest() == entry["decoded_sha256"]
        assert max_error(decoded.reshape(image.shape), image) <= tau


def test_fast_writes_the_format_4_streams_byte_for_byte() -> None:
    """encode(fast=True) is the format-4 encoder: it reproduces every format-4 fixture exactly (gray
    images are format 3 either way), and decodes within tau."""
    folder = Path(__file__).parent / "data" / "format4"
    manifest = json.loads((folder / "manifest.json").read_text())
    cases = FIXTURE_CASES[4]()
    for entry in manifest["streams"]:
        image, tau, depth, stripe_height = cases[entry["case"]]
        stream, decoded = codec.encode_with_decoded(image, tau, bit_depth=depth, stripe_height=stripe_height,
                                                    fast=True)
        assert stream == (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(decoded.tobytes()).hexdigest() == entry["decoded_sha256"]
    gray = skimage.data.camera()[:40, :50]
    assert codec.encode(gray, 2, fast=True) == codec.encode(gray, 2)
    with pytest.raises(ValueError, match="fast"):
        codec.encode(gray, 2, fast="yes")


def _stack(height: int, width: int, channels: int, bits: int, seed: int) -> np.ndarray:
    """Correlated channels (a shared smooth field, per-channel gain, offset and noise), some
    anti-correlated, so that both the reference and the raw candidates matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    peak = (1 << bits) - 1
    field = np.sin(x / 6.0 + y / 11.0) * np.cos(y / 5.0) * 0.4 + 0.5
    planes = []
    for c in range(channels):
        gain = (0.4 + 0.5 * rng.random()) * (-1 if c % 3 == 2 else 1)
        plane = 0.5 + gain * (field - 0.5) + rng.normal(0, 0.02 + 0.02 * c, field.shape)
        planes.append(np.clip(np.round(plane * peak), 0, peak))
    return np.ascontiguousarray(np.stack(planes, -1).astype(np.uint8 if bits <= 8 else np.uint16))


@pytest.mark.parametrize("channels", [2, 3, 4, 7])
@pytest.mark.parametrize("bits", [8, 16])
def test_multichannel_round_trip_within_tau(channels: int, bits: int) -> None:
    image = _stack(37, 29, channels, bits, seed=channels + bits)
    for tau in (0, 1, 2, 4, 8):
        for stripe_height, threads in ((0, 1), (8, 1), (8, 3)):
            stream, decoded = codec.encode_with_decoded(
                image, tau, stripe_height=stripe_height, threads=threads
            )
            assert codec.info(stream).format_version == 6
            out = codec.decode(stream, threads=threads)
            np.testing.assert_array_equal(out, decoded)
            assert max_error(out, image) <= tau
            if tau == 0:
                np.testing.assert_array_equal(out, image)


def test_many_channels_and_small_depths_round_trip() -> None:
    image = _stack(9, 11, 256, 8, seed=5)
    for tau in (0, 3):
        decoded = codec.decode(codec.encode(image, tau))
        assert max_error(decoded, image) <= tau
    low = (_stack(20, 23, 3, 8, seed=6) >> 3).astype(np.uint8)  # 5-bit samples
    for tau in (0, 1, 8):
        assert max_error(codec.decode(codec.encode(low, tau, bit_depth=5)), low) <= tau
    signed = (_stack(20, 23, 4, 12, seed=7).astype(np.int32) - 2048).astype(np.int16)
    for tau in (0, 2):
        decoded = codec.decode(codec.encode(signed, tau, bit_depth=12))
        assert decoded.dtype == np.int16 and max_error(decoded, signed) <= tau


def test_gray_streams_stay_format_3() -> None:
    stream = codec.encode(skimage.data.camera()[:40, :50], 2)
    assert codec.info(stream).format_version == 3


@pytest.mark.parametrize("version", [3, 4])
def test_colour_model_beats_older_formats_on_photos(version: int) -> None:
    """The format-6 colour model must not lose against the older formats' streams of the photo
    fixtures, and beat them in sum: the astronaut crop at tau 0, 1, 2, 4, 8 (and, format 4, the
    weakly correlated IHC crop at 0, 2, 6)."""
    folder = Path(__file__).parent / "data" / f"format{version}"
    manifest = json.loads((folder / "manifest.json").read_text())
    cases = FIXTURE_CASES[version]()
    photos = list(range(5)) + ([15, 16, 17] if version == 4 else [])
    old_total = new_total = 0
    for entry in (manifest["streams"][i] for i in photos):
        image, tau, depth, stripe_height = cases[entry["case"]]
        old = (folder / entry["file"]).stat().st_size
        new = len(codec.encode(image, tau, bit_depth=depth, stripe_height=stripe_height))
        assert new <= old
        old_total, new_total = old_total + old, new_total + new
    assert new_total < 0.99 * old_total


@pytest.mark.parametrize("stripe_height", [0, 9])
def test_corrupt_format4_payload_is_an_error(stripe_height: int) -> None:
    image = _stack(40, 33, 3, 8, seed=9)
    stream = bytearray(codec.encode(image, 1, stripe_height=stripe_height))
    info = codec.info(bytes(stream))
    stream[info.header_bytes + info.payload_bytes // 2] ^= 0x10
    with pytest.raises(codec.CodecError) as excinfo:
        codec.decode(bytes(stream))
    assert excinfo.value.code in (5, 6)  # CRC mismatch (or corrupt payload)
    with pytest.raises(codec.CodecError):
        codec.decode(bytes(stream[:-3]))


def _header_mode(stream: bytes) -> int:
    return stream[5]


def _resign(stream: bytearray) -> bytes:
    """Fixes the payload and header CRCs of an unstriped stream after an edit of its payload."""
    payload = bytes(stream[36:])
    stream[28:32] = struct.pack("<I", zlib.crc32(payload))
    stream[32:36] = struct.pack("<I", zlib.crc32(bytes(stream[:32])))
    return bytes(stream)


@pytest.mark.parametrize(("channels", "bits", "signed"), [(3, 8, False), (2, 12, False), (4, 16, False),
                                                          (3, 10, True)])
def test_few_colours_use_the_palette_and_round_trip(channels: int, bits: int, signed: bool) -> None:
    rng = np.random.default_rng(channels * bits)
    colours = rng.integers(0, 1 << bits, (40, channels))
    labels = (np.add.outer(np.arange(48) // 6, np.arange(52) // 7) + rng.integers(0, 2, (48, 52))) % 40
    image = colours[labels]
    if signed:
        image = (image - (1 << (bits - 1))).astype(np.int16)
    else:
        image = image.astype(np.uint8 if bits <= 8 else np.uint16)
    for stripe_height, threads in ((0, 1), (10, 2)):
        stream, decoded = codec.encode_with_decoded(image, 0, bit_depth=bits, stripe_height=stripe_height,
                                                    threads=threads)
        if stripe_height == 0:
            assert codec.info(stream).coding_mode == "palette"
        np.testing.assert_array_equal(decoded, image)
        np.testing.assert_array_equal(codec.decode(stream, threads=threads), image)
    # At tau > 0 the palette is not used (its bound would not be per channel).
    assert codec.info(codec.encode(image, 1, bit_depth=bits, stripe_height=0)).coding_mode != "palette"


def test_forged_palette_payloads_are_corrupt() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4, (30, 30, 3)).astype(np.uint8) * 5  # 64 colours, all below 2**5
    stream = codec.encode(image, 0, bit_depth=5)
    assert _header_mode(stream) == 2
    count = stream[36] + 1
    bad_sample = bytearray(stream)
    bad_sample[36 + 2] = 31 + 1  # a palette sample above the bit depth
    with pytest.raises(codec.CodecError) as excinfo:
        codec.decode(_resign(bad_sample))
    assert excinfo.value.code == 6
    bad_count = bytearray(stream)
    bad_count[36:38] = struct.pack("<H", 300)  # more colours than a palette holds
    with pytest.raises(codec.CodecError) as excinfo:
        codec.decode(_resign(bad_count))
    assert excinfo.value.code == 6
    shrunk = bytearray(stream)
    shrunk[36:38] = struct.pack("<H", count - 2)  # indices of the last colour now out of range
    with pytest.raises(codec.CodecError) as excinfo:
        codec.decode(_resign(shrunk))
    assert excinfo.value.code == 6
    for mode in (2, 3, 4):  # palette, moved-only and interband-3: formats 4 and 6, multichannel only
        gray = bytearray(codec.encode(image[..., 0], 0, bit_depth=5))
        gray[5] = mode
        gray[32:36] = struct.pack("<I", zlib.crc32(bytes(gray[:32])))
        with pytest.raises(codec.CodecError) as excinfo:
            codec.decode(bytes(gray))
        assert excinfo.value.code == 4


def test_all_predictive_colour_modes_occur_and_round_trip() -> None:
    """Channels that move together get moved-only candidates (mode 3), unrelated ones formats 2-3's
    interband model (mode 4), others the mixed set (mode 0)."""
    together = _stack(40, 44, 3, 8, seed=11)
    together = np.clip(together[..., :1].astype(np.int32) + np.array([0, 3, -4]), 0, 255).astype(np.uint8)
    together[..., 2] = np.clip(together[..., 2].astype(np.int32) + np.arange(44) % 3, 0, 255)
    apart = np.ascontiguousarray(skimage.data.astronaut()[100:160, 100:170])
    apart[..., 2] = apart[::-1, ::-1, 2]
    natural = np.ascontiguousarray(skimage.data.astronaut()[100:150, 100:160])
    modes = set()
    for image in (together, apart, natural):
        for tau in (0, 2):
            for stripe_height in (0, 16):
                stream = codec.encode(image, tau, stripe_height=stripe_height)
                if stripe_height == 0:
                    modes.add(_header_mode(stream))
                decoded = codec.decode(stream, threads=2)
                assert max_error(decoded, image) <= tau
    assert {0, 3, 4} <= modes


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write-fixtures":
        write_fixtures(int(sys.argv[2]))
