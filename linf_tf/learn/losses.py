"""Losses of the l-inf CNN (paper §3.3, Eq. 7, 9, 10, 13, 14) plus an optional ground-truth term.

Conventions:
    * Images are (batch, H, W, C) floats with pixel values scaled to [0, 1]; ``tau`` is scaled the
      same way (tau / max_value) and may be a 0-d scalar or per example: (batch,), (batch, 1) or
      (batch, 1, 1, 1). Everything is computed in float32, whatever the input dtype.
    * Each ``*_per_example`` function returns shape (batch,): the mean over pixels and channels of
      one example. The plain functions return the mean of that over the batch (a scalar). Under
      ``tf.distribute`` use the per-example form with
      ``tf.nn.compute_average_loss(per_example, global_batch_size=...)``, because the plain mean
      divides by the per-replica batch, not the global one.
"""

from __future__ import annotations

import tensorflow as tf

TensorLike = tf.types.experimental.TensorLike
DEFAULT_LOG_EPSILON = 1e-3


def _as_float(value: TensorLike) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(value), tf.float32)


def _per_example(value: TensorLike) -> tf.Tensor:
    """Reshape a per-example scalar to (batch, 1, 1, 1); a 0-d scalar stays 0-d."""
    value = _as_float(value)
    if value.shape.rank == 0:
        return value
    return tf.reshape(value, [-1, 1, 1, 1])


def _mean_over_pixels(values: tf.Tensor) -> tf.Tensor:
    """(batch, H, W, C) → (batch,)."""
    return tf.reduce_mean(values, axis=[1, 2, 3])


def _logits_per_example(logits: TensorLike) -> tf.Tensor:
    """D's (batch, 1) or (batch,) logits → (batch,)."""
    return tf.reshape(_as_float(logits), [-1])


def _barrier(violation: tf.Tensor, epsilon: float) -> tf.Tensor:
    """-log(1 - v) for v < 1 - epsilon, continued by its tangent line at v = 1 - epsilon.

    Beyond the knee the loss grows linearly with slope 1/epsilon, so it stays finite, monotone and
    C1 with a finite non-zero gradient for any violation (the raw formula is inf at v = 1 and NaN
    beyond). The log only ever sees min(v, knee), so even its discarded branch has no NaN gradient.
    """
    knee = 1.0 - epsilon
    return -tf.math.log1p(-tf.minimum(violation, knee)) + tf.nn.relu(violation - knee) / epsilon


def mse_loss_per_example(restored: TensorLike, original: TensorLike) -> tf.Tensor:
    """Eq. 7: mean squared error of each example, shape (batch,)."""
    return _mean_over_pixels(tf.square(_as_float(restored) - _as_float(original)))


def mse_loss(restored: TensorLike, original: TensorLike) -> tf.Tensor:
    """Eq. 7, averaged over the batch (scalar)."""
    return tf.reduce_mean(mse_loss_per_example(restored, original))


def linf_box_loss_per_example(
    restored: TensorLike, decoded: TensorLike, tau: TensorLike, *, epsilon: float = DEFAULT_LOG_EPSILON
) -> tf.Tensor:
    """Eq. 13: mean of -log(1 - max(|x_hat - y| - tau, 0)) per example, shape (batch,).

    Zero inside the box [y - tau, y + tau]. For violations v >= 1 - ``epsilon`` the log is replaced
    by its tangent line at 1 - ``epsilon`` (see :func:`_barrier`): value -log(epsilon) at the knee,
    then slope 1/epsilon. Inputs on the [0, 1] scale with tau >= 0 give v <= 1 - tau, so the knee is
    reached only by outputs far outside the valid pixel range (e.g. early in training).
    """
    excess = tf.abs(_as_float(restored) - _as_float(decoded)) - _per_example(tau)
    return _mean_over_pixels(_barrier(tf.nn.relu(excess), epsilon))


def linf_box_loss(
    restored: TensorLike, decoded: TensorLike, tau: TensorLike, *, epsilon: float = DEFAULT_LOG_EPSILON
) -> tf.Tensor:
    """Eq. 13, averaged over the batch (scalar)."""
    return tf.reduce_mean(linf_box_loss_per_example(restored, decoded, tau, epsilon=epsilon))


def ground_truth_linf_loss_per_example(
    restored: TensorLike, original: TensorLike, tau: TensorLike, margin: float
) -> tf.Tensor:
    """mean(max(|x_hat - x| - margin*tau, 0)^2) per example, shape (batch,).

    Not in the paper: Eq. 13 only sees the box around y, so a pixel may drift up to 2*tau from the
    original x without penalty. This term penalises the few pixels pushed more than ``margin*tau``
    from x (margin 1 = no worse than the codec's own bound). Quadratic, so it is smooth at the edge.
    """
    excess = tf.abs(_as_float(restored) - _as_float(original)) - margin * _per_example(tau)
    return _mean_over_pixels(tf.square(tf.nn.relu(excess)))


def ground_truth_linf_loss(
    restored: TensorLike, original: TensorLike, tau: TensorLike, margin: float
) -> tf.Tensor:
    """:func:`ground_truth_linf_loss_per_example`, averaged over the batch (scalar)."""
    return tf.reduce_mean(ground_truth_linf_loss_per_example(restored, original, tau, margin))


def adversarial_loss_per_example(fake_logits: TensorLike) -> tf.Tensor:
    """Eq. 9: -log D(G(y)) = softplus(-logit), computed stably from D's logits; shape (batch,)."""
    logits = _logits_per_example(fake_logits)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(logits), logits=logits)


def adversarial_loss(fake_logits: TensorLike) -> tf.Tensor:
    """Eq. 9, averaged over the batch (scalar)."""
    return tf.reduce_mean(adversarial_loss_per_example(fake_logits))


def discriminator_loss_per_example(
    real_logits: TensorLike, fake_logits: TensorLike, real_label: float = 0.9
) -> tf.Tensor:
    """Eq. 10 with one-sided label smoothing [25]: BCE(real_label, D(x)) + BCE(0, D(G(y))).

    ``real_label`` 0.9 (paper §4.2) keeps D from growing over-confident on real images; fakes keep
    target 0 (smoothing them would reward D for mistakes). ``real_label=1`` gives Eq. 10 exactly.
    Both logit tensors hold one logit per example; returns shape (batch,).
    """
    real = _logits_per_example(real_logits)
    fake = _logits_per_example(fake_logits)
    real_term = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(real), real_label), logits=real
    )
    fake_term = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(fake), logits=fake)
    return real_term + fake_term


def discriminator_loss(
    real_logits: TensorLike, fake_logits: TensorLike, real_label: float = 0.9
) -> tf.Tensor:
    """Eq. 10 with label smoothing, averaged over the batch (scalar)."""
    return tf.reduce_mean(discriminator_loss_per_example(real_logits, fake_logits, real_label))


def generator_loss_per_example(
    restored: TensorLike,
    original: TensorLike,
    decoded: TensorLike,
    tau: TensorLike,
    fake_logits: TensorLike | None = None,
    *,
    adv_weight: float,
    linf_weight: float,
    gt_weight: float = 0.0,
    gt_margin: float = 1.0,
    epsilon: float = DEFAULT_LOG_EPSILON,
) -> dict[str, tf.Tensor]:
    """Eq. 14 plus the optional ground-truth term, per example.

    total = L_mse + adv_weight*L_adv + linf_weight*L_inf + gt_weight*L_gt. The paper gives no values
    for lambda1, lambda2, so ``adv_weight`` and ``linf_weight`` have no default. ``gt_weight=0``
    (default) is the paper's loss. ``fake_logits=None`` means no adversarial term (the paper's
    first 50 epochs, §4.2): it is reported as zeros.

    Returns:
        dict with keys ``mse``, ``adversarial``, ``linf``, ``ground_truth``, ``total``, each (batch,).
    """
    parts = {
        "mse": mse_loss_per_example(restored, original),
        "linf": linf_box_loss_per_example(restored, decoded, tau, epsilon=epsilon),
        "ground_truth": ground_truth_linf_loss_per_example(restored, original, tau, gt_margin),
    }
    if fake_logits is None:
        parts["adversarial"] = tf.zeros_like(parts["mse"])
    else:
        parts["adversarial"] = adversarial_loss_per_example(fake_logits)
    parts["total"] = (
        parts["mse"]
        + adv_weight * parts["adversarial"]
        + linf_weight * parts["linf"]
        + gt_weight * parts["ground_truth"]
    )
    return parts


def generator_loss(
    restored: TensorLike,
    original: TensorLike,
    decoded: TensorLike,
    tau: TensorLike,
    fake_logits: TensorLike | None = None,
    *,
    adv_weight: float,
    linf_weight: float,
    gt_weight: float = 0.0,
    gt_margin: float = 1.0,
    epsilon: float = DEFAULT_LOG_EPSILON,
) -> dict[str, tf.Tensor]:
    """:func:`generator_loss_per_example` with every part averaged over the batch (scalars)."""
    parts = generator_loss_per_example(
        restored,
        original,
        decoded,
        tau,
        fake_logits,
        adv_weight=adv_weight,
        linf_weight=linf_weight,
        gt_weight=gt_weight,
        gt_margin=gt_margin,
        epsilon=epsilon,
    )
    return {key: tf.reduce_mean(value) for key, value in parts.items()}
