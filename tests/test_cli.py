"""The ``linf`` command through ``main([...])``: single files, folders, and error handling."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _dicom import write_dicom
from skimage import data as skdata

from linf_tf import codec
from linf_tf.cli import build_parser, main
from linf_tf.imageio import read_image, write_image
from linf_tf.runtime import DEFAULT_SLACK


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


def test_compress_fast_writes_format_4_for_colour(tmp_path: Path) -> None:
    source = tmp_path / "astro.png"
    write_image(source, skdata.astronaut()[:96, :128])
    for flags, version in (([], codec.FORMAT_VERSION), (["--fast"], codec.FAST_FORMAT_VERSION)):
        target = tmp_path / f"astro{len(flags)}.nlc"
        assert main(["compress", str(source), "-t", "2", "-o", str(target), *flags]) == 0
        assert codec.info(target.read_bytes()).format_version == version
        decoded = tmp_path / f"astro{len(flags)}.png"
        assert main(["decompress", str(target), "-o", str(decoded)]) == 0
        assert _max_error(read_image(decoded).pixels, skdata.astronaut()[:96, :128]) <= 2
    assert version == 4 and codec.FORMAT_VERSION == 6


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


def test_signed_tiff_is_stored_signed_in_the_stream(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Format 3 stores signed samples natively: no flag, no sidecar, int16 back from decompress."""
    signed = (skdata.camera().astype(np.int16) - 128) * 8
    source = tmp_path / "signed.tif"
    tifffile.imwrite(source, signed)
    stream, decoded = tmp_path / "s.nlc", tmp_path / "s.tif"
    assert main(["compress", str(source), "-t", "2", "-o", str(stream)]) == 0
    assert "signed samples stored natively" in capsys.readouterr().out
    assert not (tmp_path / "s.nlc.json").exists()
    header = codec.info(stream.read_bytes())
    assert header.is_signed and header.bit_depth == 16
    # --signed-offset is kept for old scripts and changes nothing.
    again = tmp_path / "again.nlc"
    assert main(["compress", str(source), "-t", "2", "-o", str(again), "--signed-offset"]) == 0
    assert again.read_bytes() == stream.read_bytes()
    assert main(["decompress", str(stream), "-o", str(decoded)]) == 0
    restored = read_image(decoded, keep_signed=True).pixels
    assert restored.dtype == np.int16
    assert _max_error(restored, signed) <= 2
    assert main(["info", str(stream)]) == 0
    assert "signed" in capsys.readouterr().out


def test_format2_stream_with_signed_offset_sidecar_still_decompresses(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Streams written before format 3 kept the signed offset in a sidecar: it is still honoured."""
    import struct
    import zlib

    from linf_tf.sidecar import Sidecar, write_sidecar

    values = (skdata.camera()[:40, :50].astype(np.int16) * 8) - 1024  # signed 12-bit
    shifted = (values.astype(np.int32) + 2048).astype(np.uint16)
    head = bytearray(codec.encode(shifted, 0, bit_depth=12))
    head[4] = 2  # relabel as format 2: the payload is the same
    head[32:36] = struct.pack("<I", zlib.crc32(bytes(head[:32])))
    stream = tmp_path / "old.nlc"
    stream.write_bytes(bytes(head))
    write_sidecar(stream, Sidecar(signed=True, offset=2048, signed_bits=12), tmp_path / "old.dcm")
    assert main(["decompress", str(stream), "-o", str(tmp_path / "old.tif")]) == 0
    back = read_image(tmp_path / "old.tif", keep_signed=True).pixels
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back, values)


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


# --- hardening (issue 15) ------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
SHARED_DICOM = REPO.parent / "shared" / "data" / "highbit" / "dicom"


def _run_linf(*arguments: str) -> subprocess.CompletedProcess:
    """The installed entry point's behaviour as a user's shell sees it (exit status, streams)."""
    return subprocess.run(
        [sys.executable, "-m", "linf_tf.cli", *arguments], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _mixed_folder(folder: Path) -> dict[str, np.ndarray]:
    """Two good images around an empty and a corrupt one (the bad ones sort in between)."""
    folder.mkdir()
    good = {"a_good.png": skdata.camera()[:48, :48], "d_good.png": skdata.coffee()[:40, :56]}
    for name, pixels in good.items():
        write_image(folder / name, pixels)
    (folder / "b_empty.png").write_bytes(b"")
    (folder / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    return good


def test_empty_png_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    result = _run_linf("compress", str(empty), "-t", "1", "-o", str(tmp_path / "e.nlc"))
    _assert_cli_error(result.returncode, result.stderr, "empty.png", "empty (0 bytes)")
    assert not (tmp_path / "e.nlc").exists()


def test_batch_processes_every_file_and_names_each_failure(tmp_path: Path) -> None:
    good = _mixed_folder(tmp_path / "in")
    result = _run_linf("compress", str(tmp_path / "in"), "-t", "2", "-o", str(tmp_path / "streams"))
    _assert_cli_error(result.returncode, result.stderr, "b_empty.png", "c_corrupt.png")
    assert "compressed 2 file(s), 2 failed" in result.stdout
    assert sorted(p.name for p in (tmp_path / "streams").iterdir()) == ["a_good.nlc", "d_good.nlc"]

    (tmp_path / "streams" / "e_broken.nlc").write_bytes(b"LINF but not really")
    result = _run_linf("decompress", str(tmp_path / "streams"), "-o", str(tmp_path / "out"))
    _assert_cli_error(result.returncode, result.stderr, "e_broken.nlc")
    assert "decompressed 2 file(s), 1 failed" in result.stdout
    for name, original in good.items():
        assert _max_error(read_image(tmp_path / "out" / name).pixels, original) <= 2

    result = _run_linf("info", str(tmp_path / "streams"))
    _assert_cli_error(result.returncode, result.stderr, "e_broken.nlc")
    assert "info: 2 file(s) read, 1 failed" in result.stdout

    result = _run_linf("restore", str(tmp_path / "in"), "-t", "2", "--slack", "0", "-o", str(tmp_path / "r"))
    _assert_cli_error(result.returncode, result.stderr, "b_empty.png", "c_corrupt.png")
    assert "restored 2 file(s), 2 failed" in result.stdout


def test_progress_bars_stay_out_of_redirected_logs(tmp_path: Path) -> None:
    _mixed_folder(tmp_path / "in")
    result = _run_linf("compress", str(tmp_path / "in"), "-t", "2", "-o", str(tmp_path / "streams"))
    assert "\r" not in result.stderr and "\r" not in result.stdout
    assert "it/s" not in result.stderr and "file/s" not in result.stderr


def test_restore_checks_tau_and_bit_depth_against_the_data(
    tmp_path: Path, camera_png: Path, capsys: pytest.CaptureFixture
) -> None:
    base = ["restore", str(camera_png), "-o", str(tmp_path / "r.png"), "--slack", "0"]
    cases = [
        (["-t", "1000"], "tau must be 0 to 127 for bit depth 8, got 1000"),
        (["-t", "3", "--bit-depth", "4"], "smaller than the data"),
        (["-t", "3", "--bit-depth", "12"], "its samples are 8-bit"),
        (["-t", "3", "--bit-depth", "16"], "use at most 8"),
    ]
    for extra, fragment in cases:
        _assert_cli_error(main([*base, *extra]), capsys.readouterr().err, fragment)
        assert not (tmp_path / "r.png").exists()
    assert main([*base, "-t", "3", "--bit-depth", "8"]) == 0


def test_restore_infers_12_bits_from_a_decoded_png_or_tiff(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mr = (skdata.camera()[:64, :64].astype(np.uint16) * 16 + 3)  # 12-bit samples, like an MR slice
    source = tmp_path / "mr.dcm"
    write_dicom(source, mr, bits_stored=12)
    stream = tmp_path / "mr.nlc"
    assert main(["compress", str(source), "-t", "3", "-o", str(stream)]) == 0
    for suffix, origin in ((".png", "PNG sBIT"), (".tif", "TIFF")):
        decoded = tmp_path / f"mr{suffix}"
        assert main(["decompress", str(stream), "-o", str(decoded)]) == 0
        assert read_image(decoded).bit_depth == 12
        capsys.readouterr()
        restored = tmp_path / f"restored{suffix}"
        assert main(["restore", str(decoded), "-t", "3", "--slack", "0", "-o", str(restored)]) == 0
        captured = capsys.readouterr()
        assert "12-bit" in captured.out and origin in captured.out
        assert "warning" not in captured.err
        assert read_image(restored).bit_depth == 12  # the restored file records it too
    # A 16-bit PNG that does not say its depth: restored as 16-bit, with a loud warning.
    plain = tmp_path / "plain.png"
    write_image(plain, mr)
    assert main(["restore", str(plain), "-t", "3", "--slack", "0", "-o", str(tmp_path / "p.png")]) == 0
    assert "linf: warning:" in capsys.readouterr().err


def test_restore_folder_mode_mirrors_the_tree_with_the_network(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    inputs = tmp_path / "decoded"
    (inputs / "sub").mkdir(parents=True)
    originals = {"one.png": skdata.camera()[100:148, 100:148], "sub/two.png": skdata.camera()[200:232, 50:98]}
    for name, pixels in originals.items():
        write_image(inputs / name, codec.decode(codec.encode(pixels, 4)))
    (inputs / "sub" / "bad.png").write_bytes(b"")
    code = main(["restore", str(inputs), "-r", "-t", "4", "-o", str(tmp_path / "restored")])
    captured = capsys.readouterr()
    _assert_cli_error(code, captured.err, "bad.png")
    assert "restored 2 file(s), 1 failed" in captured.out
    for name, original in originals.items():
        restored = read_image(tmp_path / "restored" / name).pixels
        assert restored.shape == original.shape
        assert _max_error(restored, original) <= 4 + 2  # tau + floor(0.5 * tau)
    assert main(["restore", "--help"]) == 0
    help_text = capsys.readouterr().out
    assert "folder" in help_text and "--recursive" in help_text


def test_info_on_folders_and_bad_files(
    tmp_path: Path, camera_png: Path, capsys: pytest.CaptureFixture
) -> None:
    streams = tmp_path / "streams"
    assert main(["compress", str(camera_png), "-t", "1", "-o", f"{streams}/"]) == 0
    assert main(["compress", str(camera_png), "-t", "2", "-o", str(streams / "c.nlc")]) == 0
    capsys.readouterr()
    assert main(["info", str(streams)]) == 0
    printed = capsys.readouterr().out
    assert "tau (max error): 1" in printed and "tau (max error): 2" in printed
    (tmp_path / "bad.nlc").write_bytes(b"garbage")
    code = main(["info", str(streams / "camera.nlc"), str(tmp_path / "bad.nlc"), str(streams / "c.nlc")])
    captured = capsys.readouterr()
    _assert_cli_error(code, captured.err, "bad.nlc")
    assert captured.out.count("format version:") == 2  # the file after the bad one is reported too
    assert "info: 2 file(s) read, 1 failed" in captured.out
    (tmp_path / "nothing").mkdir()
    _assert_cli_error(main(["info", str(tmp_path / "nothing")]), capsys.readouterr().err, "no .nlc files")


def test_output_folder_is_created_for_a_trailing_slash_or_several_inputs(
    tmp_path: Path, camera_png: Path
) -> None:
    assert main(["compress", str(camera_png), "-t", "1", "-o", str(tmp_path / "newdir") + "/"]) == 0
    assert (tmp_path / "newdir").is_dir() and (tmp_path / "newdir" / "camera.nlc").is_file()
    second = tmp_path / "second.png"
    write_image(second, skdata.camera()[:32, :32])
    assert main(["compress", str(camera_png), str(second), "-t", "1", "-o", str(tmp_path / "many")]) == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["camera.nlc", "second.nlc"]
    stream = str(tmp_path / "newdir" / "camera.nlc")
    assert main(["decompress", stream, "-o", str(tmp_path / "png") + "/"]) == 0
    assert (tmp_path / "png" / "camera.png").is_file()


def test_gray_alpha_png_keeps_two_channels(tmp_path: Path) -> None:
    gray_alpha = np.dstack([skdata.camera()[:40, :40], skdata.camera()[40:80, :40]])
    source, stream, decoded = tmp_path / "la.png", tmp_path / "la.nlc", tmp_path / "back.png"
    write_image(source, gray_alpha)
    assert main(["compress", str(source), "-t", "0", "-o", str(stream)]) == 0
    header = codec.info(stream.read_bytes())
    assert (header.channels, header.num_samples) == (2, 40 * 40 * 2)
    assert main(["decompress", str(stream), "-o", str(decoded)]) == 0
    np.testing.assert_array_equal(read_image(decoded).pixels, gray_alpha)


def test_z_stack_axis_order_is_given_back(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stack = (np.random.default_rng(3).integers(0, 4096, (17, 88, 89))).astype(np.uint16)
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack, metadata={"axes": "ZYX"})
    stream = tmp_path / "stack.nlc"
    assert main(["compress", str(source), "-t", "3", "-o", str(stream)]) == 0
    assert codec.info(stream.read_bytes()).shape == (88, 89, 17)  # folded: planes become channels
    assert (tmp_path / "stack.nlc.json").is_file()
    assert main(["info", str(stream)]) == 0
    assert "ZYX stack of shape (17, 88, 89)" in capsys.readouterr().out
    assert main(["decompress", str(stream), "-o", str(tmp_path / "back.tif")]) == 0
    with tifffile.TiffFile(tmp_path / "back.tif") as tif:
        assert (tif.series[0].axes, tif.series[0].shape) == ("ZYX", (17, 88, 89))
        assert _max_error(tif.asarray(), stack) <= 3
    capsys.readouterr()
    code = main(["decompress", str(stream), "-o", str(tmp_path / "back.png")])
    _assert_cli_error(code, capsys.readouterr().err, "ZYX stack", ".tif")
    # --force over it with a plain image drops the stale sidecar
    plain = tmp_path / "plain.tif"
    write_image(plain, stack[0])
    assert main(["compress", str(plain), "-t", "3", "-o", str(stream), "--force"]) == 0
    assert not (tmp_path / "stack.nlc.json").exists()


def test_export_and_evaluate_flags_fail_before_any_work(tmp_path: Path) -> None:
    def run_script(script: str, *flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / script), *flags], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})

    out = tmp_path / "export"
    (out / "serving" / "linf" / "1").mkdir(parents=True)
    for flags, fragment in ((["--version=0"], "--version must be a positive integer"),
                            (["--version=1"], "pass --overwrite")):
        result = run_script("export.py", f"--output_dir={out}", "--allow_untrained", *flags)
        assert result.returncode != 0 and fragment in result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["serving"]  # nothing was written
    evaluation = f"--output_dir={tmp_path / 'e'}"
    result = run_script("evaluate.py", "--taus=-1", f"--data_dir={tmp_path}", evaluation)
    assert result.returncode != 0 and "--taus must be integers" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "e").exists()


def test_serving_client_uses_the_cli_default_slack() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("linf_serving_client", REPO / "serving" / "client.py")
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)
    assert client.parse_args(["x.nlc", "-o", "y.png"]).slack == DEFAULT_SLACK
    assert build_parser().parse_args(["restore", "x.png", "-t", "2", "-o", "y.png"]).slack == DEFAULT_SLACK
    big_endian = np.arange(12, dtype=">u2").reshape(3, 4)
    batch = client.as_batch(big_endian)
    assert batch.dtype == np.uint16 and batch.dtype.isnative and batch[0, 2, 3, 0] == 11


def test_big_endian_tiff_compresses(tmp_path: Path) -> None:
    original = (skdata.camera()[:64, :64].astype(np.uint16) * 200)
    source = tmp_path / "be.tif"
    tifffile.imwrite(source, original, byteorder=">")
    assert main(["compress", str(source), "-t", "0", "-o", str(tmp_path / "be.nlc")]) == 0
    np.testing.assert_array_equal(codec.decode((tmp_path / "be.nlc").read_bytes()), original)


def test_every_declared_signed_file_is_stored_signed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The CT_small.dcm case: a signed file whose samples are all >= 0 is stored signed like the
    others (by declaration, not by value), without --signed-offset and without a sidecar."""
    folder = tmp_path / "dicom"
    folder.mkdir()
    positive = (skdata.camera()[:32, :32].astype(np.int16) * 4)  # signed type, every sample >= 0
    negative = positive - 1024
    unsigned = positive.astype(np.uint16)
    write_dicom(folder / "ct_positive.dcm", positive, bits_stored=12)
    write_dicom(folder / "ct_negative.dcm", negative, bits_stored=12)
    write_dicom(folder / "mr_unsigned.dcm", unsigned, bits_stored=12)
    streams = tmp_path / "streams"
    assert main(["compress", str(folder), "-t", "0", "-o", str(streams)]) == 0
    summary = capsys.readouterr().out
    for name in ("ct_positive.dcm", "ct_negative.dcm"):
        assert f"{name}: signed samples stored natively" in summary
    assert "mr_unsigned.dcm:" not in summary
    assert not list(streams.glob("*.json"))
    for name, values in (("ct_positive", positive), ("ct_negative", negative)):
        header = codec.info((streams / f"{name}.nlc").read_bytes())
        assert header.is_signed and header.bit_depth == 12
        np.testing.assert_array_equal(codec.decode((streams / f"{name}.nlc").read_bytes()), values)
    assert not codec.info((streams / "mr_unsigned.nlc").read_bytes()).is_signed

    assert main(["decompress", str(streams), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ct_negative.tif", "ct_positive.tif", "mr_unsigned.png"]
    for name, values in (("ct_positive.tif", positive), ("ct_negative.tif", negative),
                         ("mr_unsigned.png", unsigned)):
        back = read_image(tmp_path / "out" / name, keep_signed=True).pixels
        assert back.dtype == values.dtype
        np.testing.assert_array_equal(back, values)


def test_read_for_codec_passes_int16_when_the_codec_takes_it(tmp_path: Path, monkeypatch) -> None:
    from linf_tf.cli import compress

    source = tmp_path / "ct.dcm"
    write_dicom(source, np.array([[0, 5], [7, 2047]], np.int16), bits_stored=12)
    assert isinstance(compress.codec_stores_signed(), bool)
    monkeypatch.setattr(compress, "codec_stores_signed", lambda: True)
    native = compress.read_for_codec(source, signed_offset=False)
    assert (native.pixels.dtype, native.offset) == (np.int16, 0)
    monkeypatch.setattr(compress, "codec_stores_signed", lambda: False)
    shifted = compress.read_for_codec(source, signed_offset=True)
    assert (shifted.pixels.dtype, shifted.offset) == (np.uint16, 2048)


@pytest.mark.skipif(not SHARED_DICOM.is_dir(), reason="../shared/data/highbit/dicom is not present")
def test_shared_dicom_signed_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The issue's repro on the real files: every signed file (CT_small.dcm included) comes back exact."""
    import pydicom

    folder = tmp_path / "dfolder"
    folder.mkdir()
    signed = [path for path in sorted(SHARED_DICOM.glob("*.dcm"))
              if int(pydicom.dcmread(path, stop_before_pixels=True).get("PixelRepresentation", 0)) == 1]
    assert any(path.name == "CT_small.dcm" for path in signed)
    for path in signed:
        shutil.copy(path, folder / path.name)
    streams = str(tmp_path / "dstreams")
    assert main(["compress", str(folder), "-t", "0", "-o", streams]) == 0
    summary = capsys.readouterr().out
    assert summary.count("signed samples stored natively") == len(signed)
    assert not list((tmp_path / "dstreams").glob("*.json"))
    assert main(["decompress", str(tmp_path / "dstreams"), "-o", str(tmp_path / "out")]) == 0
    for path in signed:
        original = read_image(path, keep_signed=True).pixels
        back = read_image(tmp_path / "out" / f"{path.stem}.tif", keep_signed=True).pixels
        np.testing.assert_array_equal(back, original)


def test_a_sidecar_that_does_not_fit_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stack = np.random.default_rng(4).integers(0, 255, (3, 16, 20)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "s.tif", stack, metadata={"axes": "ZYX"}, photometric="minisblack")
    stream, sidecar = tmp_path / "s.nlc", tmp_path / "s.nlc.json"
    assert main(["compress", str(tmp_path / "s.tif"), "-t", "0", "-o", str(stream)]) == 0
    capsys.readouterr()
    sidecar.write_text(sidecar.read_text().replace("16", "17"))
    code = main(["decompress", str(stream), "-o", str(tmp_path / "back.tif")])
    _assert_cli_error(code, capsys.readouterr().err, "s.nlc.json", "belongs to another stream")
    sidecar.write_text("{not json")
    code = main(["decompress", str(stream), "-o", str(tmp_path / "back.tif")])
    _assert_cli_error(code, capsys.readouterr().err, "invalid sidecar")
    assert not (tmp_path / "back.tif").exists()


def test_info_shows_signedness_and_stripes_and_refuses_cut_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    stream = tmp_path / "s.nlc"
    stream.write_bytes(codec.encode(skdata.camera()[:64, :40].astype(np.int16) - 100, 1, stripe_height=16))
    assert main(["info", str(stream)]) == 0
    out = capsys.readouterr().out
    assert "signed (int16" in out and "4 of 16 rows" in out
    cut = tmp_path / "cut.nlc"
    cut.write_bytes(stream.read_bytes()[:-5])
    code = main(["info", str(cut)])
    _assert_cli_error(code, capsys.readouterr().err, "cut.nlc", "truncated")
    longer = tmp_path / "long.nlc"
    longer.write_bytes(stream.read_bytes() + b"junk")
    code = main(["info", str(longer)])
    _assert_cli_error(code, capsys.readouterr().err, "long.nlc", "after its end")


def test_threads_give_byte_identical_outputs_and_the_same_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """-j N: files in parallel (and a large image's stripes), the same bytes and the same report as -j 1."""
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    big = np.tile(skdata.camera(), (3, 6))[:1500, :1500]  # 2.25 MP: striped by default
    write_image(inputs / "big.png", big)
    write_image(inputs / "camera.png", skdata.camera())
    write_image(inputs / "sub" / "coffee.png", skdata.coffee())
    tifffile.imwrite(inputs / "sub" / "ct.tif", (skdata.camera()[:64, :64].astype(np.int16) - 128))
    (inputs / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    reports = {}
    for threads in ("1", "3"):
        streams, outputs = tmp_path / f"s{threads}", tmp_path / f"o{threads}"
        code = main(["compress", str(inputs), "-r", "-t", "2", "-j", threads, "-o", str(streams)])
        captured = capsys.readouterr()
        assert code == 2 and "broken.png" in captured.err
        compress_report = captured.out.replace(str(streams), "STREAMS")
        assert main(["decompress", str(streams), "-r", "-j", threads, "-o", str(outputs)]) == 0
        decompress_report = capsys.readouterr().out.replace(str(outputs), "OUT")
        decompress_report = decompress_report.replace(str(streams), "STREAMS")
        files = {path.relative_to(tmp_path / f"s{threads}"): path.read_bytes()
                 for path in sorted(streams.rglob("*")) if path.is_file()}
        files.update({Path("out") / path.relative_to(outputs): path.read_bytes()
                      for path in sorted(outputs.rglob("*")) if path.is_file()})
        reports[threads] = (compress_report, decompress_report, files)
    assert reports["1"][0] == reports["3"][0] and "compressed 4 file(s), 1 failed" in reports["1"][0]
    assert reports["1"][1] == reports["3"][1]
    assert reports["1"][2].keys() == reports["3"][2].keys()
    for name, content in reports["1"][2].items():
        assert reports["3"][2][name] == content, name
    assert codec.info(reports["1"][2][Path("big.nlc")]).striped
    back = read_image(tmp_path / "o3" / "big.png").pixels
    assert _max_error(back, big) <= 2


def test_threads_option_is_validated(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compress", "x.png", "-t", "1", "-o", "y.nlc", "-j", "0"])
    assert "at least 1" in capsys.readouterr().err
