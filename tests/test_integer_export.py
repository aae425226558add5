"""Keras generator -> exact integer network: the folded float graph equals Keras, and the integer
network stays within a sample of it (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from linf_tf import codec  # noqa: E402
from linf_tf.learn.integer_export import export_integer_network, float_forward, folded_graph  # noqa: E402
from linf_tf.runtime.intnet import IntNet  # noqa: E402
from tests._tiny_models import TINY, tiny_generator  # noqa: E402


def _unshuffle_generator(channels: int, seed: int = 0):
    from linf_tf.learn.models import build_from_spec

    model = build_from_spec({"channels": channels, "architecture": "unshuffle", "filters": 6,
                             "num_res_units": 2, "unshuffle_factor": 2})
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        variance = "moving_variance" in variable.path
        value = rng.uniform(0.5, 1.5, shape) if variance else rng.normal(0, 0.2, shape)
        variable.assign(value.astype(np.float32))
    return model


def _samples(channels: int) -> list[tuple[np.ndarray, int, int]]:
    rng = np.random.default_rng(5)
    base = np.clip(rng.normal(128, 40, (37, 29, channels)), 0, 255).astype(np.uint8)
    return [(codec.decode(codec.encode(base, tau)).reshape(base.shape), tau, 255) for tau in (2, 6, 12)]


CASES = {
    "full-rgb": (lambda: tiny_generator(3), {"channels": 3, **TINY}),
    "unshuffle-gray": (lambda: _unshuffle_generator(1), {"channels": 1, "architecture": "unshuffle",
                                                          "filters": 6, "num_res_units": 2,
                                                          "unshuffle_factor": 2}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_integer_network_follows_the_keras_generator(case: str) -> None:
    build, spec = CASES[case]
    generator = build()
    samples = _samples(spec["channels"])
    net = IntNet.from_bytes(export_integer_network(generator, spec, samples).to_bytes())
    factor = 2 if spec.get("architecture") == "unshuffle" else 1
    graph = folded_graph(generator, spec)
    for decoded, tau, max_value in samples:
        restored = np.asarray(generator([decoded[None] / 255.0, np.array([[tau / 255.0]])]))[0]
        keras_out = restored * 255 - decoded
        float_out = float_forward(graph, spec["channels"], factor, decoded.astype(float), tau, max_value)[-1]
        np.testing.assert_allclose(float_out, keras_out, atol=1e-3 * max(1.0, np.abs(keras_out).max()))
        integer = net.correction(decoded, tau, max_value)
        assert np.abs(float_out).max() > 1.0  # a real correction, not the identity
        assert np.abs(integer - np.rint(float_out)).max() <= 1


def test_exporter_refuses_a_layout_it_does_not_understand() -> None:
    generator = tiny_generator(1)
    with pytest.raises(ValueError):
        folded_graph(generator, {"channels": 1, **TINY, "model": "arcnn"})
