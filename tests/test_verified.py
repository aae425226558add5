"""Encoder-verified restoration, format 5 (issue 18): the bound holds on every sample, the decoder
reproduces the encoder bit for bit or refuses, and every damaged stream is a CodecError."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from linf_tf import codec
from linf_tf.codec import CodecError
from linf_tf.runtime import verified
from linf_tf.runtime.intnet import IntNet

REPO = Path(__file__).resolve().parents[1]
GRAY = np.ascontiguousarray(skimage.data.camera()[180:228, 210:250])  # 48 x 40: no block divides it
RGB = np.ascontiguousarray(skimage.data.astronaut()[90:134, 170:206])  # 44 x 36 x 3


def _check_plan(image: np.ndarray, tau: int, slack: float, block) -> verified.RestorationPlan:
    plan = verified.plan_restoration(image, tau, slack, block=block)
    bound = tau + int(slack * 1000) * tau // 1000
    assert plan.header.bound == bound
    error = np.abs(plan.restored.astype(np.int64) - image)
    assert error.max() <= bound  # every sample of every output
    restored = verified.decode(plan.stream)
    np.testing.assert_array_equal(restored, plan.restored)
    assert restored.dtype == image.dtype and restored.shape == image.shape
    return plan


@pytest.mark.parametrize("tau", [1, 2, 3, 4, 6, 8, 10, 12, 14])
@pytest.mark.parametrize("image", [GRAY, RGB], ids=["gray", "rgb"])
def test_bound_holds_on_every_sample_for_every_tau(image: np.ndarray, tau: int) -> None:
    _check_plan(image, tau, 0.25, "auto")


@pytest.mark.parametrize("block", [4, 8, 16, 32, 64])
@pytest.mark.parametrize("slack", [0.0, 0.25, 0.5, 1.0])
def test_bound_holds_for_every_block_size_and_slack(block: int, slack: float) -> None:
    _check_plan(RGB, 6, slack, block)


def test_restoration_gains_over_the_plain_codec() -> None:
    image = np.ascontiguousarray(skimage.data.astronaut()[:128, :128])
    plan = _check_plan(image, 8, 0.25, 8)
    plain = codec.decode(plan.plain)
    mse_plain = np.mean((plain.astype(float) - image) ** 2)
    mse_restored = np.mean((plan.restored.astype(float) - image) ** 2)
    assert mse_restored < 0.8 * mse_plain
    correction = verified.network_correction(verified.integer_model_for(3), plain, 8, 255)
    header = plan.header
    level_map, _ = verified.choose_levels(image, plain, correction, header.bound, header.levels, 8, 255)
    assert len(np.unique(level_map)) > 1  # the encoder really chooses per block


def test_no_restore_gives_the_plain_codec_output() -> None:
    stream = verified.encode(GRAY, 5)
    header, level_map, plain = verified.split(stream)
    np.testing.assert_array_equal(verified.decode(stream, restore=False), codec.decode(plain))
    assert header.side_bytes + header.plain_bytes == len(stream)
    assert np.abs(verified.decode(stream, restore=False).astype(int) - GRAY).max() <= 5


def test_plain_codec_reader_points_to_the_verified_reader() -> None:
    with pytest.raises(CodecError, match="format-5"):
        codec.decode(verified.encode(GRAY, 3))


def test_a_one_sample_disagreement_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = verified.encode(RGB, 6, block=8)
    header, map_stream, _ = verified.split(stream)
    blocks = (-(-RGB.shape[0] // 8), -(-RGB.shape[1] // 8))
    levels = np.asarray(header.levels)[codec.decode_level_map(map_stream, blocks, len(header.levels))]
    moves = (levels[..., 0] > 0) & (levels[..., 1] > 0)  # a correction of 1 moves the sample
    moved = np.repeat(np.repeat(moves, 8, axis=0), 8, axis=1)[: RGB.shape[0], : RGB.shape[1]]
    assert moved.any()
    original = verified.network_correction

    faulty_backends = set()

    def off_by_one(net, decoded, tau, max_value, threads=None, backend="blas"):
        correction = original(net, decoded, tau, max_value, threads, backend).copy()
        if backend not in faulty_backends:
            return correction
        y = decoded.reshape(correction.shape)
        # One sample the decoder would move differently: its block allows a move, the encoder's
        # network did not move it, and +1 stays inside the sample range.
        where = np.argwhere((correction == 0) & (y < max_value) & moved[..., None])
        correction[tuple(where[0])] = 1
        return correction

    expected = verified.decode(stream)
    monkeypatch.setattr(verified, "network_correction", off_by_one)
    # A wrong fast (BLAS) path alone: the decoder recomputes with the pure-integer backend and agrees.
    faulty_backends.add("blas")
    np.testing.assert_array_equal(verified.decode(stream), expected)
    # Both paths one sample off: refused.
    faulty_backends.add("int64")
    with pytest.raises(CodecError, match="differs from the encoder.*--no-restore"):
        verified.decode(stream)


def test_missing_model_names_its_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = verified.encode(GRAY, 4)
    monkeypatch.setattr(verified, "shipped_integer_models", lambda: {})
    with pytest.raises(CodecError, match=verified.read_header(stream).model_hash.hex()):
        verified.decode(stream)
    verified.decode(stream, restore=False)  # plain decoding needs no model


def test_an_extra_model_file_is_found_by_hash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    net = verified.integer_model_for(1)
    path = tmp_path / "mine.bin"
    path.write_bytes(net.to_bytes())
    stream = verified.encode(GRAY, 4, model=path)
    monkeypatch.setattr(verified, "shipped_integer_models", lambda: {})
    np.testing.assert_array_equal(verified.decode(stream, models=[path]), verified.plan_restoration(
        GRAY, 4, model=net).restored)


def test_every_damaged_byte_and_every_cut_is_a_codec_error() -> None:
    stream = verified.encode(np.ascontiguousarray(GRAY[:24, :20]), 6, block=8)
    header = verified.read_header(stream)
    head = header.header_bytes + header.map_bytes + 40
    positions = list(range(head)) + list(range(len(stream) - 40, len(stream)))
    for position in positions:
        damaged = bytearray(stream)
        damaged[position] ^= 0x5A
        with pytest.raises(CodecError):
            verified.decode(bytes(damaged))
    for cut in range(0, len(stream), 7):
        with pytest.raises(CodecError):
            verified.decode(stream[:cut])
    with pytest.raises(CodecError):
        verified.decode(stream + b"\0")


def test_random_garbage_after_the_magic_is_a_codec_error() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        junk = b"LINF\x05" + rng.integers(0, 256, int(rng.integers(0, 120)), dtype=np.uint8).tobytes()
        with pytest.raises(CodecError):
            verified.decode(junk)


def test_other_channel_counts_and_bit_depths() -> None:
    rng = np.random.default_rng(2)
    two = np.stack([GRAY, GRAY[::-1]], axis=-1)
    _check_plan(two, 5, 0.25, 16)  # the 1-channel model on each channel
    deep = (GRAY.astype(np.uint16) * 16 + rng.integers(0, 16, GRAY.shape)).astype(np.uint16)
    plan = verified.plan_restoration(deep, 40, 0.25, bit_depth=12)
    assert np.abs(plan.restored.astype(int) - deep).max() <= 50
    np.testing.assert_array_equal(verified.decode(plan.stream), plan.restored)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="tau >= 1"):
        verified.encode(GRAY, 0)
    with pytest.raises(ValueError, match="slack"):
        verified.encode(GRAY, 3, 1.5)
    with pytest.raises(ValueError, match="unsigned"):
        verified.encode(GRAY.astype(np.int16), 3)
    with pytest.raises(ValueError, match="block"):
        verified.encode(GRAY, 3, block=1)


def test_the_same_restoration_on_one_blas_thread() -> None:
    stream = verified.encode(RGB, 7)
    path = REPO / "out" / "test_verified_stream.nlc"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(stream)
    code = (
        "import hashlib, sys\n"
        "from linf_tf.runtime import verified\n"
        f"print(hashlib.sha256(verified.decode(open({str(path)!r}, 'rb').read()).tobytes()).hexdigest())\n"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    import hashlib

    assert result.stdout.strip() == hashlib.sha256(verified.decode(stream).tobytes()).hexdigest()


def test_level_map_round_trip_and_refusals() -> None:
    level_map = np.random.default_rng(3).integers(0, 5, (13, 17)).astype(np.uint8)
    coded = codec.encode_level_map(level_map, 5)
    np.testing.assert_array_equal(codec.decode_level_map(coded, level_map.shape, 5), level_map)
    with pytest.raises(CodecError):
        codec.encode_level_map(level_map, 4)  # a symbol >= levels
    assert isinstance(verified.integer_model_for(3), IntNet)


def test_any_level_set_decodes_within_the_bound() -> None:
    """An encoder may offer other levels (experiments): the header carries them, the decoder follows."""
    levels = [(0, 0), (4, 1), (3, 4), (4, 4)]
    plan = verified.plan_restoration(GRAY, 4, 0.25, block=8, levels=levels)
    assert plan.header.levels == tuple(levels)
    assert plan.header.header_bytes == 30 + 3 * len(levels)  # a non-default set travels in the header
    default = verified.plan_restoration(GRAY, 4, 0.25, block=8)
    assert default.header.header_bytes == 30 and default.header.levels == verified.slack_levels(4, 250)
    assert verified.read_header(default.stream) == default.header
    restored = verified.decode(plan.stream)
    np.testing.assert_array_equal(restored, plan.restored)
    assert np.abs(restored.astype(int) - GRAY).max() <= 5
    too_wide = [(0, 0), (16, 9)]  # w > 2 tau: a decoder would refuse it, so the encoder does too
    too_many = [(0, 0)] + [(4, w) for w in range(1, 9)]
    for bad in ([(4, 1)], [(0, 0), (0, 0)], [(0, 0), (17, 1)], too_many, too_wide):
        with pytest.raises(ValueError, match="levels"):
            verified.plan_restoration(GRAY, 4, 0.25, levels=bad)


def test_auto_keeps_the_side_information_budget_and_beats_the_best_fitting_plain_choice() -> None:
    """'auto' trades error for map bits (rate-constrained choice) instead of dropping to a bigger block."""
    image = skimage.data.camera()
    _, decoded = codec.encode_with_decoded(image, 6)
    net = verified.integer_model_for(1)
    correction = verified.network_correction(net, decoded.reshape(image.shape), 6, 255)
    auto = verified.plan_restoration(image, 6, 0.25, correction=correction)
    assert auto.header.side_bytes <= 0.01 * len(auto.plain)
    assert np.abs(auto.restored.astype(int) - image).max() <= 7

    def sse(plan: verified.RestorationPlan) -> int:
        return int(((plan.restored.astype(np.int64) - image) ** 2).sum())

    plan = partial(verified.plan_restoration, image, 6, 0.25, correction=correction)
    fixed = {size: plan(block=size) for size in (8, 16, 32)}
    assert fixed[8].header.side_bytes > 0.01 * len(auto.plain)  # the budget binds: the trade-off path runs
    fitting = [sse(plan) for plan in fixed.values() if plan.header.side_bytes <= 0.01 * len(plan.plain)]
    assert sse(auto) <= min(fitting, default=sse(fixed[32]))
    assert sse(auto) < sse(fixed[32])


def test_rate_constrained_choice_fits_its_budget() -> None:
    rng = np.random.default_rng(7)
    table = rng.random((5, 40, 40)) * 100
    table[3, ::2] = np.inf  # a level breaking the bound in some blocks is never chosen there
    free = np.argmin(table, axis=0).astype(np.uint8)
    free_bytes = len(codec.encode_level_map(free, 5))
    for budget in (free_bytes // 2, free_bytes // 5):
        chosen = verified._rate_constrained(table, budget)
        assert len(codec.encode_level_map(chosen, 5)) <= budget
        assert np.isfinite(np.take_along_axis(table, chosen[None].astype(np.intp), 0)).all()
        assert np.take_along_axis(table, chosen[None].astype(np.intp), 0).sum() >= table.min(axis=0).sum()


def test_a_signed_plain_stream_inside_format5_is_refused() -> None:
    """Restoration clips to [0, max]: a container around a signed plain stream is corrupt, not restored."""
    stream = verified.encode(GRAY, 4, block=8)
    header = verified.read_header(stream)
    signed_plain = codec.encode(GRAY.astype(np.int16) - 128, 4)
    head = bytearray(stream[: header.header_bytes + header.map_bytes])
    level_map = bytes(head[header.header_bytes :])
    crc = zlib.crc32(level_map, zlib.crc32(bytes(head[: header.header_bytes - 4])))
    head[header.header_bytes - 4 : header.header_bytes] = struct.pack("<I", crc)
    with pytest.raises(CodecError, match="signed"):
        verified.decode(bytes(head) + signed_plain)


def test_max_samples_caps_what_a_stream_may_decode_to() -> None:
    stream = verified.encode(GRAY, 3, block=8)
    with pytest.raises(CodecError, match="max_samples"):
        verified.decode(stream, max_samples=GRAY.size - 1)
    assert verified.decode(stream, max_samples=GRAY.size).shape == GRAY.shape
