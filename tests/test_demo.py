"""The quick-start demo: runs end to end, writes its outputs, and fails loudly on a violated bound."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from linf_tf import demo
from linf_tf.imageio import read_image


def test_demo_on_one_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert demo.main(
        ["--output-dir", str(tmp_path), "--images", "camera", "--taus", "0,3", "--no-restore"]
    ) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("camera ")]
    assert len(rows) == 2
    assert rows[0].split()[6] == "inf"  # lossless PSNR
    assert float(rows[1].split()[6]) > 30.0
    for tau in (0, 3):
        assert (tmp_path / f"camera_tau{tau}.nlc").stat().st_size > 0
        decoded = read_image(tmp_path / f"camera_tau{tau}.png").pixels
        assert demo.max_abs_error(decoded, skdata.camera()) <= tau
    assert "every decoded sample is within tau" in printed


def test_demo_high_bit_sample_uses_12_bits(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    sample = demo.SAMPLES["camera-12bit-synthetic"]()
    assert sample.pixels.dtype == np.uint16 and int(sample.pixels.max()) < 4096
    row = demo.run_one("camera-12bit-synthetic", sample, 5, tmp_path)
    assert row.max_error <= 5 and row.dtype == "uint16/12b"
    assert 0 < row.bits_per_sample < 12


def test_demo_exits_non_zero_on_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture) -> None:
    real_decode = demo.codec.decode

    def off_by_tau_plus_one(data: bytes) -> np.ndarray:
        decoded = real_decode(data).astype(np.int32)
        tau = demo.codec.info(data).tau
        return np.clip(decoded + tau + 1, 0, 255).astype(np.uint8)

    monkeypatch.setattr(demo.codec, "decode", off_by_tau_plus_one)
    assert demo.main(
        ["--output-dir", str(tmp_path), "--images", "camera", "--taus", "2", "--no-restore"]
    ) == 1
    captured = capsys.readouterr()
    assert "VIOLATION" in captured.out
    assert "FAILED" in captured.err


def test_psnr() -> None:
    image = np.full((4, 4), 100, np.uint8)
    assert math.isinf(demo.psnr(image, image, 8))
    shifted = image + 1  # mse 1 -> 20 log10(255)
    assert demo.psnr(image, shifted, 8) == pytest.approx(20 * math.log10(255))


def test_demo_rejects_unknown_image(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        demo.main(["--images", "nonexistent"])
    assert "unknown image" in capsys.readouterr().err


def test_demo_ends_with_the_shipped_network(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The default model improves the decoded image and stays inside its guaranteed bound."""
    argv = ["--output-dir", str(tmp_path), "--images", "camera", "--taus", "6", "--restore-tau", "10"]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    assert "linf decompress" in printed and "restored (l-inf CNN)" in printed
    original = skdata.astronaut()
    decoded = demo.codec.decode((tmp_path / "astronaut_tau10.nlc").read_bytes())
    restored = read_image(tmp_path / "astronaut_tau10_restored.png").pixels
    assert demo.max_abs_error(original, decoded) <= 10
    assert demo.max_abs_error(original, restored) <= 15  # tau + floor(0.5 * tau)
    assert demo.psnr(original, restored, 8) > demo.psnr(original, decoded, 8) + 0.5
    # The gray image goes through the shipped gray model.
    gray = skdata.camera()
    decoded = demo.codec.decode((tmp_path / "camera_tau10.nlc").read_bytes())
    restored = read_image(tmp_path / "camera_tau10_restored.png").pixels
    assert restored.shape == gray.shape and demo.max_abs_error(gray, restored) <= 15
    assert demo.psnr(gray, restored, 8) > demo.psnr(gray, decoded, 8) + 0.5
    # ... and both end with an encoder-verified stream, inside the tighter bound 10 + floor(10 / 4).
    assert printed.count("verified (format 5)") == 2
    for name, original in (("astronaut", skdata.astronaut()), ("camera", gray)):
        stream = (tmp_path / f"{name}_tau10_verified.nlc").read_bytes()
        checked = read_image(tmp_path / f"{name}_tau10_verified.png").pixels
        assert demo.verified.read_header(stream).bound == 12
        assert demo.max_abs_error(original, checked) <= 12
        assert demo.psnr(original, checked, 8) > demo.psnr(original, demo.codec.decode(
            demo.verified.split(stream)[2]), 8) + 0.5


def test_demo_restore_at_tau_0_skips_the_verified_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--output-dir", str(tmp_path), "--images", "camera", "--taus", "0", "--restore-tau", "0",
            "--restore-image", "camera"]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    assert "restored (l-inf CNN)" in printed and "verified (format 5)" not in printed
