"""The ``linf`` command through ``main([...])``: single files, folders, and error handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import data as skdata

from linf_tf import codec
from linf_tf.cli import main
from linf_tf.imageio import read_image, write_image


def _max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.max(np.abs(a.astype(np.int32) - b.astype(np.int32))))


@pytest.fixture
def camera_png(tmp_path: Path) -> Path:
    path = tmp_path / "camera.png"
    write_image(path, skdata.camera())
    return path


def _assert_cli_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2
    assert "linf: error:" in stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr


@pytest.mark.parametrize("tau", [0, 3])
def test_compress_decompress_info(
    tmp_path: Path, camera_png: Path, capsys: pytest.CaptureFixture, tau: int
) -> None:
    stream_path, decoded_path = tmp_path / "camera.nlc", tmp_path / "decoded.png"

    assert main(["compress", str(camera_png), "-t", str(tau), "-o", str(stream_path)]) == 0
    header = codec.info(stream_path.read_bytes())
    printed = capsys.readouterr().out
    assert f"guaranteed max error: {tau}" in printed
    assert "(512, 512)" in printed
    assert "262,144 bytes" in printed  # 512 * 512 uint8 samples
    assert f"{header.total_bytes:,} bytes" in printed
    assert f"{header.bits_per_sample:.4f}" in printed
    assert f"{262144 / header.total_bytes:.3f}:1" in printed

    assert main(["decompress", str(stream_path), "-o", str(decoded_path)]) == 0
    assert f"guaranteed max error: {tau}" in capsys.readouterr().out
    decoded = read_image(decoded_path).pixels
    assert decoded.shape == (512, 512)
    assert _max_error(decoded, skdata.camera()) <= tau
    if tau == 0:
        np.testing.assert_array_equal(decoded, skdata.camera())

    assert main(["info", str(stream_path)]) == 0
    info_text = capsys.readouterr().out
    assert "width:" in info_text and "512" in info_text
    assert f"tau (max error): {tau}" in info_text
    assert "bit depth:       8" in info_text


def test_rgb_16bit_to_tiff_within_tau(tmp_path: Path) -> None:
    original = skdata.astronaut().astype(np.uint16) * 64 + 17
    source, stream, decoded = tmp_path / "astro16.tif", tmp_path / "a.nlc", tmp_path / "a.tif"
    write_image(source, original)
    assert main(["compress", str(source), "-t", "5", "-o", str(stream)]) == 0
    assert main(["decompress", str(stream), "-o", str(decoded)]) == 0
    result = read_image(decoded).pixels
    assert result.shape == original.shape and result.dtype == np.uint16
    assert _max_error(result, original) <= 5


def test_bit_depth_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "twelve.png"
    write_image(source, (skdata.camera().astype(np.uint16) * 16))  # 12-bit data in a 16-bit PNG
    stream = tmp_path / "twelve.nlc"
    assert main(["compress", str(source), "-t", "2", "-o", str(stream), "--bit-depth", "12"]) == 0
    assert codec.info(stream.read_bytes()).bit_depth == 12
    capsys.readouterr()
    code = main(["compress", str(source), "-t", "2", "-o", str(tmp_path / "x.nlc"), "--bit-depth", "10"])
    _assert_cli_error(code, capsys.readouterr().err, "bit_depth 10")


def test_output_folder_receives_default_name(tmp_path: Path, camera_png: Path) -> None:
    folder = tmp_path / "streams"
    folder.mkdir()
    assert main(["compress", str(camera_png), "-t", "1", "-o", str(folder)]) == 0
    assert (folder / "camera.nlc").is_file()


def test_existing_output_needs_force(tmp_path: Path, camera_png: Path, capsys: pytest.CaptureFixture) -> None:
    stream = tmp_path / "camera.nlc"
    stream.write_bytes(b"keep me")
    code = main(["compress", str(camera_png), "-t", "1", "-o", str(stream)])
    _assert_cli_error(code, capsys.readouterr().err, "--force")
    assert stream.read_bytes() == b"keep me"
    assert main(["compress", str(camera_png), "-t", "1", "-o", str(stream), "--force"]) == 0
    assert codec.info(stream.read_bytes()).tau == 1


def test_signed_offset_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    signed = (skdata.camera().astype(np.int16) - 128) * 8
    source = tmp_path / "signed.tif"
    tifffile.imwrite(source, signed)
    stream, decoded = tmp_path / "s.nlc", tmp_path / "s.tif"
    _assert_cli_error(main(["compress", str(source), "-t", "2", "-o", str(stream)]),
                      capsys.readouterr().err, "negative")
    assert main(["compress", str(source), "-t", "2", "-o", str(stream), "--signed-offset"]) == 0
    assert "+32768" in capsys.readouterr().out
    assert main(["decompress", str(stream), "-o", str(decoded)]) == 0
    restored = read_image(decoded).pixels.astype(np.int32) - 32768
    assert _max_error(restored, signed) <= 2


def test_batch_compress_and_decompress(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    images = {
        "camera.png": skdata.camera(),
        "coffee.png": skdata.coffee(),
        "pair.tif": np.dstack([skdata.camera(), skdata.camera()[::-1]]).astype(np.uint16),  # 2 channels
    }
    inputs, streams, outputs = tmp_path / "in", tmp_path / "streams", tmp_path / "out"
    inputs.mkdir()
    for name, pixels in images.items():
        write_image(inputs / name, pixels)
    (inputs / "README.txt").write_text("not an image, skipped")

    assert main(["compress", str(inputs), "-t", "4", "-o", str(streams)]) == 0
    summary = capsys.readouterr().out
    assert "compressed 3 file(s), 0 failed" in summary
    assert "mean bits per sample" in summary
    assert sorted(path.name for path in streams.iterdir()) == ["camera.nlc", "coffee.nlc", "pair.nlc"]
    total_stream_bytes = sum(path.stat().st_size for path in streams.iterdir())
    assert f"streams {total_stream_bytes:,} bytes" in summary

    assert main(["decompress", str(streams), "-o", str(outputs)]) == 0
    assert "decompressed 3 file(s), 0 failed" in capsys.readouterr().out
    # PNG cannot hold 2 channels: batch mode falls back to TIFF for that file.
    assert sorted(path.name for path in outputs.iterdir()) == ["camera.png", "coffee.png", "pair.tif"]
    for name, original in images.items():
        decoded = read_image(outputs / Path(name).with_suffix(".tif" if name == "pair.tif" else ".png").name)
        assert decoded.pixels.shape == original.shape
        assert _max_error(decoded.pixels, original) <= 4


def test_batch_reports_bad_files_and_continues(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(inputs / "good.png", skdata.camera()[:64, :64])
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code = main(["compress", str(inputs), "-t", "1", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    _assert_cli_error(code, captured.err, "broken.png")
    assert "compressed 1 file(s), 1 failed" in captured.out
    assert (tmp_path / "out" / "good.nlc").is_file()


def test_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "absent.png"
    code = main(["compress", str(missing), "-t", "1", "-o", str(tmp_path / "x.nlc")])
    _assert_cli_error(code, capsys.readouterr().err, "absent.png")
    code = main(["info", str(tmp_path / "absent.nlc")])
    _assert_cli_error(code, capsys.readouterr().err, "absent.nlc")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: b"XXXX" + data[4:], "not a linf stream"),
        (lambda data: data[:-10] + bytes(b ^ 0xFF for b in data[-10:]), "checksum"),
    ],
    ids=["truncated", "bad-magic", "flipped-payload"],
)
def test_corrupt_stream(
    tmp_path: Path, camera_png: Path, capsys: pytest.CaptureFixture, damage, message: str
) -> None:
    stream = tmp_path / "camera.nlc"
    assert main(["compress", str(camera_png), "-t", "2", "-o", str(stream)]) == 0
    stream.write_bytes(damage(stream.read_bytes()))
    capsys.readouterr()
    code = main(["decompress", str(stream), "-o", str(tmp_path / "out.png")])
    _assert_cli_error(code, capsys.readouterr().err, message)
    assert not (tmp_path / "out.png").exists()


BAD_TAUS = [("-1", "non-negative"), ("two", "non-negative"), ("128", "tau must be 0 to 127")]


@pytest.mark.parametrize(("tau", "fragment"), BAD_TAUS)
def test_bad_tau(
    camera_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture, tau: str, fragment: str
) -> None:
    code = main(["compress", str(camera_png), "-t", tau, "-o", str(tmp_path / "x.nlc")])
    _assert_cli_error(code, capsys.readouterr().err, fragment)
    assert not (tmp_path / "x.nlc").exists()


def test_unsupported_formats(tmp_path: Path, camera_png: Path, capsys: pytest.CaptureFixture) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    _assert_cli_error(main(["compress", str(notes), "-t", "1", "-o", str(tmp_path / "n.nlc")]),
                      capsys.readouterr().err, "unsupported image format")
    stream = tmp_path / "c.nlc"
    assert main(["compress", str(camera_png), "-t", "1", "-o", str(stream)]) == 0
    _assert_cli_error(main(["decompress", str(stream), "-o", str(tmp_path / "c.jpg")]),
                      capsys.readouterr().err, "c.jpg")


def test_usage_and_help_exit_codes(capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 2
    assert "linf: error:" in capsys.readouterr().err
    assert main(["compress", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "--tau" in help_text and "--bit-depth" in help_text
