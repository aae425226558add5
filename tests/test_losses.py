"""Losses against straightforward NumPy references, plus numerical-safety checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from linf_tf.learn import losses

BATCH, HEIGHT, WIDTH, CHANNELS = 4, 8, 6, 3
TAU_VALUES = (0.0, 0.01, 0.05, 0.2)


def _images(seed: int, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(original, decoded, restored) float32 with |decoded - original| small and restored noisy."""
    rng = np.random.default_rng(seed)
    original = rng.uniform(0, 1, (BATCH, HEIGHT, WIDTH, CHANNELS)).astype(np.float32)
    decoded = np.clip(original + rng.uniform(-0.03, 0.03, original.shape), 0, 1).astype(np.float32)
    restored = (decoded + rng.normal(0, noise, original.shape)).astype(np.float32)
    return original, decoded, restored


def _tau_forms(tau: float) -> list:
    """The same tau as a 0-d scalar and per example in the three accepted shapes."""
    per_example = np.full((BATCH,), tau, np.float32)
    return [np.float32(tau), per_example, per_example[:, None], per_example[:, None, None, None]]


def _reference_barrier(violation: np.ndarray, epsilon: float) -> np.ndarray:
    knee = 1.0 - epsilon
    safe = np.minimum(violation, knee)
    return -np.log(1.0 - safe) + np.maximum(violation - knee, 0.0) / epsilon


def _reference_linf(restored, decoded, tau, epsilon=losses.DEFAULT_LOG_EPSILON) -> np.ndarray:
    violation = np.maximum(np.abs(restored.astype(np.float64) - decoded) - tau, 0.0)
    return _reference_barrier(violation, epsilon).mean(axis=(1, 2, 3))


def _reference_log_sigmoid(logits: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -logits.astype(np.float64))


def _value_and_gradient(restored: np.ndarray, loss_fn) -> tuple[np.ndarray, np.ndarray]:
    restored = tf.Variable(restored)
    with tf.GradientTape() as tape:
        loss = loss_fn(restored)
    return loss.numpy(), tape.gradient(loss, restored).numpy()


def test_mse_matches_numpy():
    original, _, restored = _images(0, noise=0.05)
    expected = ((restored.astype(np.float64) - original) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(losses.mse_loss_per_example(restored, original), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.mse_loss(restored, original), expected.mean(), rtol=1e-5)


@pytest.mark.parametrize("tau", TAU_VALUES)
def test_linf_box_loss_matches_eq13(tau):
    _, decoded, restored = _images(1, noise=0.1)
    # The paper's formula, valid because every violation here is far below the knee.
    violation = np.maximum(np.abs(restored.astype(np.float64) - decoded) - tau, 0.0)
    assert violation.max() < 0.9
    expected = -np.log(1.0 - violation).mean(axis=(1, 2, 3))
    for tau_form in _tau_forms(tau):
        np.testing.assert_allclose(
            losses.linf_box_loss_per_example(restored, decoded, tau_form), expected, rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(
            losses.linf_box_loss(restored, decoded, tau_form), expected.mean(), rtol=1e-5
        )


def test_linf_box_loss_per_example_tau_differs_per_example():
    _, decoded, restored = _images(2, noise=0.1)
    tau = np.array([0.0, 0.01, 0.05, 0.2], np.float32)
    expected = _reference_linf(restored, decoded, tau[:, None, None, None])
    np.testing.assert_allclose(losses.linf_box_loss_per_example(restored, decoded, tau), expected, rtol=1e-5)
    assert len(set(np.round(expected, 6))) == BATCH  # each tau really acted on its own example


@pytest.mark.parametrize("tau", TAU_VALUES[1:])
def test_linf_box_loss_is_zero_inside_box(tau):
    _, decoded, _ = _images(3, noise=0.0)
    rng = np.random.default_rng(3)
    restored = (decoded + rng.uniform(-0.99 * tau, 0.99 * tau, decoded.shape)).astype(np.float32)
    value, gradient = _value_and_gradient(restored, lambda r: losses.linf_box_loss(r, decoded, tau))
    assert value == 0.0
    assert not gradient.any()


@pytest.mark.parametrize("distance", [0.5, 0.999, 5.0, 1e6])
def test_linf_box_loss_finite_for_huge_violations(distance):
    decoded = np.full((2, 4, 4, 1), 0.5, np.float32)
    restored = decoded + np.float32(distance)
    value, gradient = _value_and_gradient(restored, lambda r: losses.linf_box_loss(r, decoded, 0.01))
    assert np.isfinite(value) and value > 0
    assert np.all(np.isfinite(gradient)) and np.all(gradient > 0)
    np.testing.assert_allclose(value, _reference_linf(restored, decoded, 0.01).mean(), rtol=1e-5)


def test_linf_box_loss_is_monotone_across_the_knee():
    decoded = np.zeros((1, 1, 1, 1), np.float32)
    distances = np.array([0.0, 0.5, 0.99, 0.9989, 0.999, 0.9991, 1.0, 1.5, 5.0, 1e3, 1e6], np.float32)
    values = [losses.linf_box_loss(decoded + d, decoded, 0.0).numpy() for d in distances]
    assert np.all(np.diff(values) > 0)
    # C1 at the knee: the slope just below and just above is about 1/epsilon.
    _, below = _value_and_gradient(
        decoded + np.float32(0.9989), lambda r: losses.linf_box_loss(r, decoded, 0.0)
    )
    _, above = _value_and_gradient(decoded + np.float32(1.5), lambda r: losses.linf_box_loss(r, decoded, 0.0))
    np.testing.assert_allclose(below, 1 / losses.DEFAULT_LOG_EPSILON, rtol=0.1)
    np.testing.assert_allclose(above, 1 / losses.DEFAULT_LOG_EPSILON, rtol=1e-4)


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_linf_box_loss_at_box_edge(sign):
    _, decoded, _ = _images(4, noise=0.0)
    tau = np.float32(0.05)
    restored = (decoded + sign * tau).astype(np.float32)
    value, gradient = _value_and_gradient(restored, lambda r: losses.linf_box_loss(r, decoded, tau))
    assert np.isfinite(value) and value < 1e-6  # only float rounding of y + tau can cross the edge
    assert np.all(np.isfinite(gradient))


@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("tau", TAU_VALUES)
def test_ground_truth_linf_loss_matches_numpy(tau, margin):
    original, _, restored = _images(5, noise=0.2)
    excess = np.maximum(np.abs(restored.astype(np.float64) - original) - margin * tau, 0.0)
    expected = (excess**2).mean(axis=(1, 2, 3))
    assert expected.max() > 0
    for tau_form in _tau_forms(tau):
        per_example = losses.ground_truth_linf_loss_per_example(restored, original, tau_form, margin)
        np.testing.assert_allclose(per_example, expected, rtol=1e-5, atol=1e-9)
        scalar = losses.ground_truth_linf_loss(restored, original, tau_form, margin)
        np.testing.assert_allclose(scalar, expected.mean(), rtol=1e-5)


def test_adversarial_loss_matches_numpy():
    logits = np.array([[-60.0], [-3.0], [0.0], [2.5], [60.0]], np.float32)
    expected = -_reference_log_sigmoid(logits[:, 0])
    np.testing.assert_allclose(losses.adversarial_loss_per_example(logits), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.adversarial_loss(logits[:, 0]), expected.mean(), rtol=1e-5)


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_discriminator_loss_matches_numpy(real_label):
    rng = np.random.default_rng(6)
    real = rng.normal(0, 4, (8, 1)).astype(np.float32)
    fake = rng.normal(0, 4, (8, 1)).astype(np.float32)
    real[0], fake[0] = 80.0, -80.0  # saturated logits stay finite
    log_d_real = _reference_log_sigmoid(real[:, 0])
    log_one_minus_d_real = _reference_log_sigmoid(-real[:, 0])  # log(1 - sigmoid(l)) = log sigmoid(-l)
    log_one_minus_d_fake = _reference_log_sigmoid(-fake[:, 0])
    expected = -(real_label * log_d_real + (1 - real_label) * log_one_minus_d_real) - log_one_minus_d_fake
    per_example = losses.discriminator_loss_per_example(real, fake, real_label)
    np.testing.assert_allclose(per_example, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses.discriminator_loss(real, fake, real_label), expected.mean(), rtol=1e-5)


def test_discriminator_default_uses_label_smoothing():
    logits = np.full((3, 1), 100.0, np.float32)  # D certain that real images are real
    very_negative = np.full((3, 1), -100.0, np.float32)
    # With target 0.9 a fully confident D still pays 0.1 * 100 per example.
    np.testing.assert_allclose(losses.discriminator_loss(logits, very_negative), 10.0, rtol=1e-5)
    np.testing.assert_allclose(
        losses.discriminator_loss(logits, very_negative, real_label=1.0), 0.0, atol=1e-6
    )


def test_generator_loss_combines_parts():
    original, decoded, restored = _images(7, noise=0.05)
    tau = np.array([0.01, 0.02, 0.03, 0.04], np.float32)
    logits = np.array([[0.3], [-1.0], [2.0], [0.0]], np.float32)
    weights = {"adv_weight": 1e-3, "linf_weight": 0.5, "gt_weight": 2.0, "gt_margin": 1.5}
    parts = losses.generator_loss(restored, original, decoded, tau, logits, **weights)
    np.testing.assert_allclose(parts["mse"], losses.mse_loss(restored, original), rtol=1e-6)
    np.testing.assert_allclose(parts["adversarial"], losses.adversarial_loss(logits), rtol=1e-6)
    np.testing.assert_allclose(parts["linf"], losses.linf_box_loss(restored, decoded, tau), rtol=1e-6)
    gt = losses.ground_truth_linf_loss(restored, original, tau, 1.5)
    np.testing.assert_allclose(parts["ground_truth"], gt, rtol=1e-6)
    expected = parts["mse"] + 1e-3 * parts["adversarial"] + 0.5 * parts["linf"] + 2.0 * parts["ground_truth"]
    np.testing.assert_allclose(parts["total"], expected, rtol=1e-6)
    assert min(float(parts[key]) for key in ("mse", "adversarial", "linf", "ground_truth")) > 0


def test_generator_loss_without_discriminator():
    original, decoded, restored = _images(8, noise=0.05)
    parts = losses.generator_loss(restored, original, decoded, 0.02, adv_weight=1.0, linf_weight=1.0)
    assert float(parts["adversarial"]) == 0.0
    np.testing.assert_allclose(parts["total"], parts["mse"] + parts["linf"], rtol=1e-6)


def test_per_example_variants_average_to_scalars():
    original, decoded, restored = _images(9, noise=0.1)
    tau = np.array([0.0, 0.01, 0.05, 0.2], np.float32)
    real, fake = np.linspace(-2, 2, BATCH, dtype=np.float32), np.linspace(3, -1, BATCH, dtype=np.float32)
    pairs = [
        (losses.mse_loss_per_example, losses.mse_loss, (restored, original)),
        (losses.linf_box_loss_per_example, losses.linf_box_loss, (restored, decoded, tau)),
        (
            losses.ground_truth_linf_loss_per_example,
            losses.ground_truth_linf_loss,
            (restored, original, tau, 1.0),
        ),
        (losses.adversarial_loss_per_example, losses.adversarial_loss, (fake,)),
        (losses.discriminator_loss_per_example, losses.discriminator_loss, (real, fake)),
    ]
    for per_example_fn, scalar_fn, args in pairs:
        per_example = per_example_fn(*args)
        assert per_example.shape == (BATCH,)
        average = tf.nn.compute_average_loss(per_example, global_batch_size=BATCH)
        np.testing.assert_allclose(average, scalar_fn(*args), rtol=1e-6)
    weights = {"adv_weight": 0.1, "linf_weight": 0.2, "gt_weight": 0.3}
    per_example_parts = losses.generator_loss_per_example(restored, original, decoded, tau, fake, **weights)
    scalar_parts = losses.generator_loss(restored, original, decoded, tau, fake, **weights)
    for key, value in per_example_parts.items():
        assert value.shape == (BATCH,)
        np.testing.assert_allclose(tf.reduce_mean(value), scalar_parts[key], rtol=1e-6)


def test_losses_accept_float16_inputs_and_return_float32():
    original, decoded, restored = _images(10, noise=0.05)
    value = losses.linf_box_loss(restored.astype(np.float16), decoded, np.float16(0.01))
    assert value.dtype == tf.float32 and np.isfinite(value.numpy())
    assert losses.mse_loss(restored.astype(np.float16), original).dtype == tf.float32
