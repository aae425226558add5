"""The exact integer network (issue 18): the same correction on every backend, thread count and
slab split; blobs that could overflow or are corrupt are refused; the exporter matches Keras."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from linf_tf.runtime import intnet
from linf_tf.runtime.intnet import ACT_MAX, IntConv, IntNet, IntNetError
from linf_tf.runtime.registry import WEIGHTS_DIR
from linf_tf.runtime.verified import INTEGER_MODEL_FILE

REPO = Path(__file__).resolve().parents[1]


def random_net(channels: int, factor: int, filters: int = 6, seed: int = 0) -> IntNet:
    """head conv + ReLU, one residual unit, final conv: the shipped layout in miniature, with weights
    large enough that requantisation, saturation and the skip add all matter."""
    rng = np.random.default_rng(seed)
    k0 = factor * factor * (channels + 1)

    def conv(source, target, cin, cout, skip=None, relu=False, final=False):
        weights = rng.integers(-3000, 3000, (3, 3, cin, cout)).astype(np.int16)
        bias = rng.integers(-(1 << 24), 1 << 24, cout).astype(np.int64)
        multiplier = rng.integers(1 << 14, 1 << 15, cout).astype(np.int64)
        shift = rng.integers(24 if not final else 30, 30 if not final else 36, cout).astype(np.int64)
        return IntConv(source, target, skip, relu, final, weights, bias, multiplier, shift)

    layers = (
        conv(0, 1, k0, filters, relu=True),
        conv(1, 2, filters, filters, relu=True),
        conv(2, 3, filters, filters, skip=1),
        conv(3, 4, filters, factor * factor * channels, final=True),
    )
    return IntNet(channels, factor, layers)


@pytest.mark.parametrize("channels,factor", [(1, 2), (3, 1), (2, 2)])
@pytest.mark.parametrize("bits", [8, 12])
def test_blas_backend_equals_pure_integer_backend(channels: int, factor: int, bits: int) -> None:
    net = IntNet.from_bytes(random_net(channels, factor).to_bytes())
    rng = np.random.default_rng(bits)
    image = rng.integers(0, 1 << bits, (23, 31, channels)).astype(np.uint16)
    fast = net.correction(image, 5, (1 << bits) - 1, backend="blas")
    exact = net.correction(image, 5, (1 << bits) - 1, backend="int64")
    assert fast.shape == image.shape and fast.dtype == np.int32
    np.testing.assert_array_equal(fast, exact)
    assert np.abs(fast).max() > 0  # the test would be vacuous on an all-zero correction


def test_slabs_equal_the_whole_image(monkeypatch: pytest.MonkeyPatch) -> None:
    net = random_net(1, 2)
    image = np.random.default_rng(1).integers(0, 256, (70, 40, 1)).astype(np.uint8)
    whole = net.correction(image, 3, 255)
    monkeypatch.setattr(intnet, "_SLAB_POSITIONS", 20 * 8)  # 8 body rows per slab
    np.testing.assert_array_equal(net.correction(image, 3, 255), whole)


def reference_correction(net: IntNet, image: np.ndarray, tau: int, max_value: int) -> np.ndarray:
    """The network layer by layer on the whole image, in int64 (no chunks, slabs, threads or BLAS)."""
    tensors = [intnet.input_tensor(net, image, tau, max_value)]
    for layer in net.layers:
        acc = intnet.conv3x3(tensors[layer.source], layer.weights, "int64") + layer.bias
        value = intnet.round_shift(acc * layer.multiplier, layer.shift)
        if layer.final:
            value = np.clip(value, -intnet.FINAL_LIMIT, intnet.FINAL_LIMIT)
            out = intnet.round_shift(value * max_value, np.int64(intnet.FINAL_BITS))
            return intnet.shuffle(out, net.factor)[: image.shape[0], : image.shape[1]]
        if layer.skip is not None:
            value = value + tensors[layer.skip]
        if layer.relu:
            value = np.maximum(value, 0)
        tensors.append(np.clip(value, -ACT_MAX, ACT_MAX))
    raise AssertionError("no final layer")


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("chunk_positions,slab_positions", [(1 << 12, 1 << 17), (1, 1 << 17), (30, 20 * 8)])
def test_chunks_slabs_and_threads_equal_a_plain_reference(
    monkeypatch: pytest.MonkeyPatch, threads: int, chunk_positions: int, slab_positions: int
) -> None:
    """Chunks of one row, odd chunk sizes, slabs and worker counts change nothing, in either backend."""
    net = random_net(2, 2, seed=5)
    image = np.random.default_rng(threads).integers(0, 4096, (37, 45, 2)).astype(np.uint16)
    expected = reference_correction(net, image, 9, 4095)
    monkeypatch.setattr(intnet, "_CHUNK_POSITIONS", chunk_positions)
    monkeypatch.setattr(intnet, "_SLAB_POSITIONS", slab_positions)
    for backend in intnet.BACKENDS:
        result = net.correction(image, 9, 4095, backend=backend, threads=threads)
        np.testing.assert_array_equal(result, expected)
    assert np.abs(expected).max() > 0


def test_activations_saturate_instead_of_growing() -> None:
    net = random_net(1, 1, seed=3)
    source = intnet.input_tensor(net, np.full((9, 9, 1), 255, np.uint8), 14, 255)
    tensors = [source]
    for layer in net.layers[:-1]:
        acc = intnet.conv3x3(tensors[layer.source], layer.weights, "int64") + layer.bias
        value = intnet.round_shift(acc * layer.multiplier, layer.shift)
        tensors.append(np.clip(value, -ACT_MAX, ACT_MAX))
    assert max(int(np.abs(t).max()) for t in tensors[1:]) <= ACT_MAX


def test_round_shift_rounds_half_up_for_negatives_too() -> None:
    values = np.array([-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 5], np.int64)
    np.testing.assert_array_equal(intnet.round_shift(values, np.int64(1)), np.floor(values / 2 + 0.5))


def test_blob_round_trip_and_hash() -> None:
    net = random_net(3, 2)
    blob = net.to_bytes()
    again = IntNet.from_bytes(blob)
    assert again.to_bytes() == blob and again.content_hash == net.content_hash == intnet.model_hash(blob)
    assert random_net(3, 2, seed=1).content_hash != net.content_hash


def test_corrupt_or_dangerous_blobs_are_refused() -> None:
    blob = random_net(1, 2).to_bytes()
    for position in (0, 5, 9, 20, len(blob) // 2, len(blob) - 1):
        damaged = bytearray(blob)
        damaged[position] ^= 0x41
        with pytest.raises(IntNetError):
            IntNet.from_bytes(bytes(damaged))
    for cut in (0, 3, 11, len(blob) - 5):
        with pytest.raises(IntNetError):
            IntNet.from_bytes(blob[:cut])
    # A valid CRC does not make a model safe: a bias that could push a 46-bit accumulator over is
    # refused before use (int16 weights alone cannot: 9 * 1024 * 32767**2 < 2**46).
    net = random_net(1, 2)
    big = net.layers[1]
    layer = IntConv(big.source, big.target, big.skip, big.relu, big.final, big.weights,
                    np.full_like(big.bias, 1 << 46), big.multiplier, big.shift)
    with pytest.raises(IntNetError, match="2\\*\\*46"):
        IntNet.from_bytes(IntNet(1, 2, (net.layers[0], layer, *net.layers[2:])).to_bytes())
    with pytest.raises(IntNetError, match="tensor ids"):
        first = net.layers[0]
        moved = IntConv(2, 1, None, True, False, first.weights, first.bias, first.multiplier, first.shift)
        IntNet.from_bytes(IntNet(1, 2, (moved, *net.layers[1:])).to_bytes())


def _shipped(name: str) -> IntNet:
    return IntNet.load(WEIGHTS_DIR / name / INTEGER_MODEL_FILE)


def _golden_input(name: str) -> tuple[np.ndarray, int]:
    if name == "gray":
        image = skimage.data.camera()[200:264, 200:264]
        tau = 6
    else:
        image = skimage.data.astronaut()[100:164, 180:244]
        tau = 10
    # A near-lossless reconstruction that does not depend on the codec's model (which changes with
    # its format): every sample moved to the nearest multiple of the quantiser step, |error| <= tau.
    step = 2 * tau + 1
    return np.clip(np.round(image / step) * step, 0, 255).astype(np.uint8), tau


# sha256 of the int32 little-endian correction of the shipped integer models on fixed inputs. They
# change only when a shipped model is retrained (then update them with the model, in one commit).
GOLDEN = {
    "gray": "a28e8cf605cdd52376f57135577122c8b229aafa8171a63c5c8eb6096d7bb273",
    "rgb": "54fd8b55f6ce99148bfafb3a70be0783004214154ae98b8e7e9c32540f10aec0",
}


def _correction_digest(name: str) -> str:
    decoded, tau = _golden_input(name)
    correction = _shipped(name).correction(decoded, tau, 255)
    return hashlib.sha256(correction.astype("<i4").tobytes()).hexdigest()


@pytest.mark.parametrize("name", ["gray", "rgb"])
def test_shipped_integer_models_match_their_golden_output(name: str) -> None:
    assert _correction_digest(name) == GOLDEN[name]


def test_same_output_on_one_blas_thread() -> None:
    code = (
        "from tests.test_intnet import _correction_digest\n"
        "print(_correction_digest('gray'), _correction_digest('rgb'))\n"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [GOLDEN["gray"], GOLDEN["rgb"]]


def test_crafted_layouts_are_refused() -> None:
    """A bias of -2**63 (whose int64 abs is negative), a final layer in the middle, a tensor nobody reads."""
    from dataclasses import replace

    net = random_net(1, 2)
    first, second, third, last = net.layers
    wrapping = replace(first, bias=np.array([-(1 << 63)] + [0] * (first.cout - 1), np.int64))
    early_final = replace(second, final=True, relu=False)
    unread = (first, replace(first, target=2), replace(third, skip=None), last)  # tensor 1 unused
    for layers, message in (
        ((wrapping, second, third, last), "2\\*\\*46"),
        ((first, early_final, third, last), "final|skip"),
        (unread, "read"),
    ):
        with pytest.raises(IntNetError, match=message):
            IntNet.from_bytes(IntNet(1, 2, layers).to_bytes())


def test_the_blas_limit_is_counted_across_concurrent_corrections() -> None:
    """threadpoolctl's limit is process-wide: overlapping calls must not restore it early or leave it at 1."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    original = blas_threads()
    assert original  # NumPy's wheels bundle OpenBLAS: the test must see it
    limit = intnet._OneBlasThread()
    limit.__enter__()  # call 1 starts
    limit.__enter__()  # call 2 starts before call 1 ends
    limit.__exit__(None, None, None)  # call 1 ends
    assert all(n == 1 for n in blas_threads())  # still limited while call 2 runs
    limit.__exit__(None, None, None)  # call 2 ends
    assert blas_threads() == original
