"""``linf`` with encoder-verified restoration (format 5): compress --restore-slack, decompress (restored
by default, --no-restore), info, batch mode, and the errors a user can run into."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage import data as skdata

from linf_tf import codec
from linf_tf.cli import main
from linf_tf.imageio import read_image, write_image
from linf_tf.runtime import verified

CROPS = {
    "camera": lambda: skdata.camera()[100:164, 200:264],
    "astronaut": lambda: skdata.astronaut()[100:164, 200:264],
}


def _max_error(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.max(np.abs(a.astype(np.int32) - b.astype(np.int32))))


def _assert_cli_error(code: int, stderr: str, *fragments: str) -> None:
    assert code == 2
    assert "linf: error:" in stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr


@pytest.fixture
def crops(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "images"
    folder.mkdir()
    paths = {}
    for name, make in CROPS.items():
        paths[name] = folder / f"{name}.png"
        write_image(paths[name], make())
    return paths


@pytest.fixture
def camera_stream(tmp_path: Path, crops: dict[str, Path], capsys: pytest.CaptureFixture) -> Path:
    """The camera crop at tau 4, slack 0.25, 8-pixel blocks (a level map of 8 x 8 symbols)."""
    stream = tmp_path / "camera.nlc"
    command = ["compress", str(crops["camera"]), "-t", "4", "--restore-slack", "0.25", "--slack-block", "8"]
    assert main([*command, "-o", str(stream)]) == 0
    capsys.readouterr()
    return stream


@pytest.mark.parametrize(
    ("name", "tau", "slack", "block"),
    [("camera", 4, "0.25", "auto"), ("astronaut", 6, "0.5", "8"), ("camera", 10, "1", "16")],
)
def test_compress_decompress_info_round_trip(
    tmp_path: Path, crops: dict[str, Path], capsys: pytest.CaptureFixture,
    name: str, tau: int, slack: str, block: str,
) -> None:
    original = CROPS[name]()
    bound = tau + int(np.floor(float(slack) * tau))
    stream_path = tmp_path / f"{name}.nlc"
    command = ["compress", str(crops[name]), "-t", str(tau), "--restore-slack", slack, "-o", str(stream_path)]
    if block != "auto":
        command += ["--slack-block", block]
    assert main(command) == 0
    printed = capsys.readouterr().out
    stream = stream_path.read_bytes()
    assert verified.is_verified_stream(stream)
    header, _, plain = verified.split(stream)
    assert header.bound == bound
    if block != "auto":
        assert header.block == int(block)
    facts = f"guaranteed max error: {bound} (verified restoration, tau {tau}, slack {float(slack):g})"
    assert facts in printed
    assert f"restoration block:    {header.block} x {header.block} pixels" in printed
    share = 100 * header.side_bytes / len(stream)
    assert f"side information:     {header.side_bytes:,} bytes" in printed
    assert f"{share:.2f} % of the stream" in printed
    assert f"compressed size:      {len(stream):,} bytes" in printed

    restored_path = tmp_path / f"{name}_restored.png"
    assert main(["decompress", str(stream_path), "-o", str(restored_path)]) == 0
    assert facts in capsys.readouterr().out
    restored = read_image(restored_path).pixels
    assert restored.shape == original.shape
    assert _max_error(restored, original) <= bound
    np.testing.assert_array_equal(restored, verified.decode(stream))

    plain_path = tmp_path / f"{name}_plain.png"
    assert main(["decompress", str(stream_path), "--no-restore", "-o", str(plain_path)]) == 0
    assert f"guaranteed max error: {tau} (plain output" in capsys.readouterr().out
    np.testing.assert_array_equal(read_image(plain_path).pixels, codec.decode(plain))

    assert main(["info", str(stream_path)]) == 0
    info_text = capsys.readouterr().out
    assert "format version:                         5 (plain stream + encoder-verified" in info_text
    assert f"guaranteed max error after restoration: {bound} (verified restoration" in info_text
    assert f"restore slack:                          {float(slack):g}" in info_text
    assert f"restoration block:                      {header.block} x {header.block} pixels" in info_text
    levels = ", ".join(f"{q / 4:g}d|{w}" for q, w in header.levels)
    assert f"restoration levels:                     {levels}" in info_text
    assert header.model_hash.hex() in info_text
    assert f"side information:                       {header.side_bytes:,} bytes" in info_text
    assert f"total bytes:                            {len(stream):,} (whole file" in info_text
    assert f"tau (max error):                        {tau}" in info_text


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (["-t", "4", "--restore-slack", "1.5"], "between 0 and 1"),
        (["-t", "4", "--restore-slack", "-0.25"], "between 0 and 1"),
        (["-t", "4", "--restore-slack", "0.2505"], "thousandths"),
        (["-t", "0", "--restore-slack", "0.25"], "tau >= 1"),
        (["-t", "4", "--restore-slack", "0.25", "--slack-block", "1"], "--slack-block"),
        (["-t", "4", "--slack-block", "8"], "only applies with --restore-slack"),
    ],
    ids=["K-above-1", "K-negative", "K-too-fine", "tau-0", "block-1", "block-without-slack"],
)
def test_bad_options_are_clear_errors(
    tmp_path: Path, crops: dict[str, Path], capsys: pytest.CaptureFixture, options: list[str], fragment: str
) -> None:
    target = tmp_path / "x.nlc"
    code = main(["compress", str(crops["camera"]), *options, "-o", str(target)])
    _assert_cli_error(code, capsys.readouterr().err, fragment)
    assert not target.exists()


def test_signed_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = tmp_path / "signed.tif"
    tifffile.imwrite(source, (CROPS["camera"]().astype(np.int16) - 128) * 8)
    target = tmp_path / "s.nlc"
    code = main(["compress", str(source), "-t", "2", "--restore-slack", "0.25", "-o", str(target)])
    _assert_cli_error(code, capsys.readouterr().err, "signed", "--restore-slack")
    assert not target.exists()


def _with_header_crc(stream: bytearray, header: verified.VerifiedHeader) -> bytes:
    """Recompute the CRC after the header, which covers the header and the level map."""
    body = bytes(stream[: header.header_bytes - 4])
    level_map = bytes(stream[header.header_bytes : header.header_bytes + header.map_bytes])
    crc = zlib.crc32(level_map, zlib.crc32(body))
    stream[header.header_bytes - 4 : header.header_bytes] = struct.pack("<I", crc)
    return bytes(stream)


def test_corrupt_format5_streams_are_clear_errors(
    tmp_path: Path, camera_stream: Path, capsys: pytest.CaptureFixture
) -> None:
    good = camera_stream.read_bytes()
    header = verified.read_header(good)
    out = tmp_path / "out.png"
    damaged = tmp_path / "damaged.nlc"

    level_map = bytearray(good)
    level_map[header.header_bytes + header.map_bytes // 2] ^= 0x5A
    damaged.write_bytes(bytes(level_map))
    code = main(["decompress", str(damaged), "-o", str(out)])
    _assert_cli_error(code, capsys.readouterr().err, "level map CRC mismatch")
    _assert_cli_error(main(["info", str(damaged)]), capsys.readouterr().err, "level map")

    crc_field = bytearray(good)
    crc_field[18] ^= 0x01  # the restored-sample CRC: the header's own CRC catches it
    damaged.write_bytes(bytes(crc_field))
    code = main(["decompress", str(damaged), "-o", str(out)])
    _assert_cli_error(code, capsys.readouterr().err, "header or level map CRC mismatch")

    # The same change with the header CRC recomputed: the restoration no longer reproduces the CRC.
    damaged.write_bytes(_with_header_crc(crc_field, header))
    code = main(["decompress", str(damaged), "-o", str(out)])
    _assert_cli_error(code, capsys.readouterr().err, "restored-sample CRC mismatch", "--no-restore")
    assert not out.exists()
    assert main(["decompress", str(damaged), "--no-restore", "-o", str(out)]) == 0
    np.testing.assert_array_equal(read_image(out).pixels, codec.decode(verified.split(good)[2]))


def test_missing_model_names_its_hash(
    tmp_path: Path, camera_stream: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verified, "shipped_integer_models", lambda: {})
    wanted = verified.read_header(camera_stream.read_bytes()).model_hash.hex()
    out = tmp_path / "out.png"
    code = main(["decompress", str(camera_stream), "-o", str(out)])
    _assert_cli_error(code, capsys.readouterr().err, wanted, "--no-restore")
    assert not out.exists()
    assert main(["info", str(camera_stream)]) == 0
    assert "not in this installation" in capsys.readouterr().out
    assert main(["decompress", str(camera_stream), "--no-restore", "-o", str(out)]) == 0


def test_restore_option_refuses_format5_and_keeps_working_on_plain_streams(
    tmp_path: Path, crops: dict[str, Path], camera_stream: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.png"
    code = main(["decompress", str(camera_stream), "--restore", "-o", str(out)])
    _assert_cli_error(code, capsys.readouterr().err, "format-5", "drop --restore")
    assert not out.exists()
    code = main(["decompress", str(camera_stream), "--restore", "--no-restore", "-o", str(out)])
    _assert_cli_error(code, capsys.readouterr().err, "not allowed with")

    # A folder with a plain and a format-5 stream: the plain one is restored by the network, the
    # format-5 one is named as a failure.
    streams = tmp_path / "mixed"
    streams.mkdir()
    camera_stream.rename(streams / "verified.nlc")
    assert main(["compress", str(crops["astronaut"]), "-t", "4", "-o", str(streams / "plain.nlc")]) == 0
    capsys.readouterr()
    code = main(["decompress", str(streams), "--restore", "--slack", "0.5", "-o", str(tmp_path / "restored")])
    captured = capsys.readouterr()
    _assert_cli_error(code, captured.err, "verified.nlc", "drop --restore")
    assert "decompressed 1 file(s), 1 failed" in captured.out
    restored = read_image(tmp_path / "restored" / "plain.png").pixels
    assert _max_error(restored, CROPS["astronaut"]()) <= 4 + 2


def test_batch_mode(tmp_path: Path, crops: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    streams, outputs = tmp_path / "streams", tmp_path / "out"
    folder = crops["camera"].parent
    assert main(["compress", str(folder), "-t", "3", "--restore-slack", "0.5", "-o", str(streams)]) == 0
    summary = capsys.readouterr().out
    assert "compressed 2 file(s), 0 failed" in summary
    total = sum(path.stat().st_size for path in streams.iterdir())
    assert f"streams {total:,} bytes" in summary

    assert main(["decompress", str(streams), "-o", str(outputs)]) == 0
    summary = capsys.readouterr().out
    assert "decompressed 2 file(s), 0 failed" in summary and f"streams {total:,} bytes" in summary
    for name, make in CROPS.items():
        stream = (streams / f"{name}.nlc").read_bytes()
        assert verified.read_header(stream).bound == 3 + 1
        restored = read_image(outputs / f"{name}.png").pixels
        assert _max_error(restored, make()) <= 4
        np.testing.assert_array_equal(restored, verified.decode(stream))

    assert main(["decompress", str(streams), "--no-restore", "-o", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    for name in CROPS:
        plain = verified.split((streams / f"{name}.nlc").read_bytes())[2]
        decoded = read_image(tmp_path / "plain" / f"{name}.png").pixels
        np.testing.assert_array_equal(decoded, codec.decode(plain))

    assert main(["info", str(streams)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("guaranteed max error after restoration: 4 (verified restoration, tau 3") == 2
    assert "info: 2 file(s) read, 0 failed" in printed


def test_help_explains_the_feature(capsys: pytest.CaptureFixture) -> None:
    assert main(["compress", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--restore-slack" in text and "--slack-block" in text and "format-5" in text
    assert main(["decompress", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--no-restore" in text and "Format-5" in text
    assert main(["info", "--help"]) == 0
    assert "format-5" in capsys.readouterr().out
