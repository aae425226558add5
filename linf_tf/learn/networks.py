"""G, D and their optimizers for one training run, built the way a custom distributed loop needs them:
inside the strategy scope, under the run's precision policy, optimizers built before the first step."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from tqdm.auto import tqdm

from linf_tf.learn.config import PRECISION_POLICIES, TrainConfig, cpu_has_native_bf16
from linf_tf.learn.models import build_discriminator, build_from_spec, build_inference_model


@dataclass
class Networks:
    """What a Trainer trains; ``discriminator`` and ``d_optimizer`` are None in modes without D."""

    generator: keras.Model
    discriminator: keras.Model | None
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer | None
    restoration_model: keras.Model  # G plus the (weightless) box projection; G's weights are shared


def build_networks(config: TrainConfig, strategy: tf.distribute.Strategy) -> Networks:
    """Models and optimizers inside the strategy scope, so their variables are mirrored."""
    previous_policy = keras.mixed_precision.dtype_policy()
    policy = PRECISION_POLICIES[config.mixed_precision]
    emulated = cpu_has_native_bf16() is False and not tf.config.list_physical_devices("GPU")
    if policy == "mixed_bfloat16" and emulated:
        tqdm.write(
            "warning: --mixed_precision=bfloat16 on a CPU without AVX512-BF16/AMX: TensorFlow emulates "
            "bfloat16 here and steps run several times slower than float32; use --mixed_precision=none"
        )
    if policy is not None:
        # Layers read the global policy when they are created; it is set back right after so
        # that building a Trainer does not change the dtype of models built later elsewhere.
        keras.mixed_precision.set_global_policy(policy)
    try:
        with strategy.scope():
            generator = build_from_spec(config.generator_spec)
            discriminator = (
                build_discriminator(
                    config.channels,
                    base_filters=config.disc_base_filters,
                    dense_units=config.disc_dense_units,
                    filter_multipliers=config.disc_filter_multipliers,
                )
                if config.has_discriminator
                else None
            )
            for model in (generator, discriminator):
                set_batch_norm_momentum(model, config.batch_norm_momentum)
            return Networks(
                generator=generator,
                discriminator=discriminator,
                g_optimizer=make_optimizer(config, generator),
                d_optimizer=None if discriminator is None else make_optimizer(config, discriminator),
                restoration_model=build_inference_model(generator, max_value=1.0),
            )
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def make_optimizer(config: TrainConfig, model: keras.Model) -> keras.optimizers.Optimizer:
    """Adam (beta1 from the config), wrapped for loss scaling under mixed precision, and *built*.

    Created inside the strategy scope and built on the model's variables before the first
    step: creating Adam's slot variables lazily inside the first distributed step fails in a
    custom loop under a tf.distribute strategy (keras-team/keras#23085). Building first also
    lets a resumed checkpoint load the slots directly instead of deferring them.
    """
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.adam_beta1)
    if config.mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def set_batch_norm_momentum(model: keras.Model | None, momentum: float | None) -> None:
    """Override the moving-statistics momentum of the model's BatchNormalization layers.

    The builders take no momentum argument; the layers read ``momentum`` when they are called, so
    setting it before the first (traced) call is enough.
    """
    if model is None or momentum is None:
        return
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)


def scale_loss(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
    """Multiply by the dynamic loss scale under mixed precision; ``apply_gradients`` unscales."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer.scale_loss(loss)
    return loss
