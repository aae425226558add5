"""Multichannel coding (issue 17): format-3 colour streams still decode exactly, round trips of
1..N channels within tau, corrupt streams are still refused."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import skimage.data

from linf_tf import codec

FORMAT3_DIR = Path(__file__).parent / "data" / "format3"


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


def write_format3_fixtures() -> None:
    """Writes tests/data/format3 with the current encoder (run once, by the format-3 encoder)."""
    FORMAT3_DIR.mkdir(parents=True, exist_ok=True)
    streams = []
    for i, (image, tau, depth, stripe_height) in enumerate(format3_colour_cases()):
        data = codec.encode(image, tau, bit_depth=depth, stripe_height=stripe_height)
        assert codec.info(data).format_version == 3
        name = f"colour{i:02d}.nlc"
        (FORMAT3_DIR / name).write_bytes(data)
        decoded = codec.decode(data)
        streams.append({"file": name, "case": i, "tau": tau, "bit_depth": depth,
                        "stripe_height": stripe_height, "shape": list(image.shape), "dtype": str(image.dtype),
                        "decoded_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(),
                        "stream_sha256": hashlib.sha256(data).hexdigest()})
    note = ("Format-3 multichannel streams written by the format-3 encoder from "
            "tests/test_codec_colour.py::format3_colour_cases (python tests/test_codec_colour.py); "
            "decoders must keep decoding them to exactly these arrays.")
    manifest = json.dumps({"note": note, "streams": streams}, indent=1)
    (FORMAT3_DIR / "manifest.json").write_text(manifest + "\n")


def test_format3_colour_golden_streams_decode_exactly_as_before() -> None:
    manifest = json.loads((FORMAT3_DIR / "manifest.json").read_text())
    cases = format3_colour_cases()
    assert len(manifest["streams"]) == len(cases)
    for entry in manifest["streams"]:
        data = (FORMAT3_DIR / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["stream_sha256"]
        assert codec.info(data).format_version == 3
        image, tau, _, _ = cases[entry["case"]]
        for threads in (1, 2):
            decoded = codec.decode(data, threads=threads)
            assert hashlib.sha256(decoded.tobytes()).hexdigest() == entry["decoded_sha256"]
        assert max_error(decoded.reshape(image.shape), image) <= tau


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-fixtures"]:
        write_format3_fixtures()
