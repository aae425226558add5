"""Shapes, identity at initialisation, tau conditioning, box projection and mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from linf_tf.learn.models import build_arcnn, build_discriminator, build_generator, build_inference_model
from linf_tf.learn.models.common import BoxProjection, project_to_box

TINY_GENERATOR = {"filters": 8, "num_res_units": 2}
TINY_DISCRIMINATOR = {"base_filters": 4, "dense_units": 16}
TINY_ARCNN = {"filters": (8, 4, 4)}
SIZES = [(32, 32), (48, 40)]


def _decoded(batch: int, height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (batch, height, width, channels)).astype(np.float32)


def _taus(batch: int) -> np.ndarray:
    return np.linspace(2, 14, batch, dtype=np.float32) / 255.0


def _perturb_output_layer(model: keras.Model, layer_name: str = "correction") -> None:
    """Give the zero-initialised output conv random weights, so the network is no longer the identity."""
    layer = model.get_layer(layer_name)
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32) for w in layer.get_weights()])


def _expected_generator_params(channels: int, filters: int, num_res_units: int, conditioned: bool) -> int:
    """Weights of G counted by hand: convs followed by BN have no bias; BN holds 4 vectors."""
    head = 9 * (channels + int(conditioned)) * filters + filters
    conv_bn = 9 * filters * filters + 4 * filters
    correction = 9 * filters * channels + channels
    return head + (2 * num_res_units + 1) * conv_bn + correction


@pytest.fixture
def mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("height,width", SIZES)
def test_generator_output_shape(channels, height, width):
    model = build_generator(channels, **TINY_GENERATOR)
    decoded = _decoded(2, height, width, channels)
    for tau in (_taus(2), _taus(2)[:, None]):
        restored = model([decoded, tau])
        assert restored.shape == decoded.shape and restored.dtype == "float32"


@pytest.mark.parametrize("tau_conditioning", [True, False])
def test_generator_is_identity_at_initialisation(tau_conditioning):
    model = build_generator(3, tau_conditioning=tau_conditioning, **TINY_GENERATOR)
    decoded = _decoded(2, 32, 32, 3)
    restored = model({"decoded": decoded, "tau": _taus(2)}, training=True)
    np.testing.assert_array_equal(restored, decoded)
    _perturb_output_layer(model)
    assert not np.array_equal(model([decoded, _taus(2)]), decoded)


def test_tau_conditioning_adds_one_input_channel():
    with_tau = build_generator(3, tau_conditioning=True, **TINY_GENERATOR)
    without_tau = build_generator(3, tau_conditioning=False, **TINY_GENERATOR)
    assert with_tau.get_layer("head_conv").kernel.shape == (3, 3, 4, 8)
    assert without_tau.get_layer("head_conv").kernel.shape == (3, 3, 3, 8)


@pytest.mark.parametrize("tau_conditioning", [True, False])
def test_output_depends_on_tau_only_when_conditioned(tau_conditioning):
    model = build_generator(1, tau_conditioning=tau_conditioning, **TINY_GENERATOR)
    _perturb_output_layer(model)
    decoded = _decoded(2, 32, 32, 1)
    low, high = model([decoded, np.full(2, 0.01, np.float32)]), model([decoded, np.full(2, 0.05, np.float32)])
    assert np.array_equal(low, high) != tau_conditioning


def test_generator_parameter_counts(capsys):
    counts = {}
    configs = [("default", {}, 1, True), ("default", {}, 3, False)]
    configs += [("tiny", TINY_GENERATOR, channels, cond) for channels in (1, 3) for cond in (True, False)]
    for label, kwargs, channels, tau_conditioning in configs:
        model = build_generator(channels, tau_conditioning=tau_conditioning, **kwargs)
        filters, units = kwargs.get("filters", 64), kwargs.get("num_res_units", 16)
        expected = _expected_generator_params(channels, filters, units, tau_conditioning)
        assert model.count_params() == expected
        counts[f"G {label} C={channels} tau_conditioning={tau_conditioning}"] = expected
    counts["D default C=3"] = build_discriminator(3).count_params()
    counts["D tiny C=3"] = build_discriminator(3, **TINY_DISCRIMINATOR).count_params()
    counts["ARCNN default C=3"] = build_arcnn(3).count_params()
    with capsys.disabled():
        print("\nparameter counts:", counts)
    # ARCNN C=3 by hand: 9*9*3*64+64 + 7*7*64*32+32 + 16*32+16 + 5*5*16*3+3.
    assert counts["ARCNN default C=3"] == 15616 + 100384 + 528 + 1203


@pytest.mark.parametrize("channels", [1, 3])
def test_discriminator_gives_one_logit_per_example(channels):
    model = build_discriminator(channels, **TINY_DISCRIMINATOR)
    for height, width in SIZES + [(64, 64)]:
        logits = model(_decoded(3, height, width, channels))
        assert logits.shape == (3, 1) and np.all(np.isfinite(logits))


def test_discriminator_has_six_strided_units_and_residual_unit():
    model = build_discriminator(1, **TINY_DISCRIMINATOR)
    strided = [layer for layer in model.layers if getattr(layer, "strides", (1, 1)) == (2, 2)]
    assert [layer.filters for layer in strided] == [4, 4, 8, 8, 16, 16]
    assert model.get_layer("res_add") is not None


@pytest.mark.parametrize("activation", ["relu", "prelu"])
@pytest.mark.parametrize("channels", [1, 3])
def test_arcnn_shapes_and_identity(channels, activation):
    model = build_arcnn(channels, activation=activation, **TINY_ARCNN)
    for height, width in SIZES:
        decoded = _decoded(2, height, width, channels)
        np.testing.assert_array_equal(model([decoded, _taus(2)]), decoded)
    kernel_sizes = [model.get_layer(f"conv{i}").kernel.shape[0] for i in range(3)]
    assert kernel_sizes + [model.get_layer("correction").kernel.shape[0]] == [9, 7, 1, 5]


def test_arcnn_without_global_residual_predicts_image_directly():
    model = build_arcnn(3, global_residual=False, **TINY_ARCNN)
    decoded = _decoded(2, 48, 40, 3)
    restored = model([decoded, _taus(2)])
    assert restored.shape == decoded.shape and not np.array_equal(restored, decoded)


@pytest.mark.parametrize("seed", range(5))
def test_projection_property(seed):
    rng = np.random.default_rng(seed)
    shape = (4, 16, 12, 3)
    decoded = rng.uniform(0, 1, shape).astype(np.float32)
    restored = (decoded + rng.normal(0, 0.1, shape)).astype(np.float32)
    tau = rng.uniform(0, 0.1, 4).astype(np.float32)
    slack = np.array([0.0, 0.3, 0.7, 1.0], np.float32)
    projected = np.asarray(project_to_box(restored, decoded, tau, slack))
    half_width = (slack * tau)[:, None, None, None]
    lower, upper = np.maximum(decoded - half_width, 0), np.minimum(decoded + half_width, 1)
    assert np.all(projected >= lower) and np.all(projected <= upper)
    inside = (restored >= lower) & (restored <= upper)
    assert 0 < inside.mean() < 1  # both cases occur
    np.testing.assert_array_equal(projected[inside], restored[inside])
    np.testing.assert_array_equal(projected[0], decoded[0])  # kappa = 0 returns y


def test_projection_never_increases_error_beyond_bound():
    rng = np.random.default_rng(7)
    original = rng.uniform(0, 1, (3, 16, 16, 1)).astype(np.float32)
    tau = np.float32(0.04)
    decoded = np.clip(original + rng.uniform(-tau, tau, original.shape), 0, 1).astype(np.float32)
    restored = (decoded + rng.normal(0, 0.2, original.shape)).astype(np.float32)
    for kappa in (0.0, 0.5, 1.0):
        projected = np.asarray(project_to_box(restored, decoded, tau, np.float32(kappa)))
        assert np.abs(projected - original).max() <= (1 + kappa) * tau + 1e-6
    # kappa = 1: the box contains x, so no pixel moves away from x.
    assert np.all(np.abs(projected - original) <= np.abs(restored - original))


# Keras' own save path calls np.array(variable); numpy 2 warns that tf's __array__ lacks ``copy``.
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")
def test_inference_model_projects_generator_output(tmp_path):
    generator = build_generator(1, **TINY_GENERATOR)
    _perturb_output_layer(generator)
    model = build_inference_model(generator)
    decoded, tau, slack = _decoded(3, 48, 40, 1), _taus(3), np.array([0.0, 0.5, 1.0], np.float32)
    raw = np.asarray(generator([decoded, tau]))
    projected = np.asarray(model([decoded, tau, slack]))
    np.testing.assert_array_equal(projected, np.asarray(project_to_box(raw, decoded, tau, slack)))
    assert not np.array_equal(projected, raw)  # the projection really acted
    np.testing.assert_array_equal(projected[0], decoded[0])
    # Saving and reloading keeps the custom layers and the result.
    model.save(tmp_path / "projected.keras")
    reloaded = keras.models.load_model(tmp_path / "projected.keras")
    assert isinstance(reloaded.get_layer("box_projection"), BoxProjection)
    np.testing.assert_array_equal(reloaded([decoded, tau, slack]), projected)


def test_mixed_precision_outputs_float32(mixed_precision):
    decoded = _decoded(2, 32, 32, 3)
    generator = build_generator(3, **TINY_GENERATOR)
    assert generator.get_layer("head_conv").compute_dtype == "float16"
    restored = generator([decoded, _taus(2)])
    assert restored.dtype == "float32"
    np.testing.assert_array_equal(restored, decoded)  # identity survives float16 features
    projected = build_inference_model(generator)([decoded, _taus(2), np.ones(2, np.float32)])
    assert projected.dtype == "float32"
    assert build_discriminator(3, **TINY_DISCRIMINATOR)(decoded).dtype == "float32"
    for global_residual in (True, False):
        arcnn = build_arcnn(3, global_residual=global_residual, **TINY_ARCNN)
        assert arcnn([decoded, _taus(2)]).dtype == "float32"
