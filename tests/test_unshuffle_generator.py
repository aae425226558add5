"""The compute-efficient generator family (issue 13): pixel-unshuffle body, bfloat16 bodies with an
exact float32 path for the input and the residual, and the one spec that rebuilds every network."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from linf_tf.learn import model_io, run
from linf_tf.learn.config import TrainConfig
from linf_tf.learn.models import build_from_spec, build_unshuffle_generator
from linf_tf.learn.trainer import Trainer

FLOAT32_PATH = ("pad", "unshuffle", "head_conv", "correction", "shuffle", "crop", "restored")
TINY_UNSHUFFLE = {"channels": 3, "architecture": "unshuffle", "filters": 8, "num_res_units": 1}


@pytest.fixture
def bfloat16_policy():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def tau_input(batch: int, tau: int = 6) -> np.ndarray:
    return np.full((batch, 1), tau / 255.0, np.float32)


def randomise_output_layer(model: keras.Model, seed: int = 0) -> None:
    """The correction conv is zero-initialised (G starts as the identity): give it weights."""
    rng = np.random.default_rng(seed)
    layer = model.get_layer("correction")
    layer.set_weights([rng.normal(0, 0.05, w.shape).astype(np.float32) for w in layer.get_weights()])


def test_bfloat16_body_keeps_the_input_path_and_residual_float32(bfloat16_policy):
    generator = build_unshuffle_generator(3, filters=8, num_res_units=1)
    for name in FLOAT32_PATH:
        assert generator.get_layer(name).compute_dtype == "float32", name
    assert generator.get_layer("res0_a_conv").compute_dtype == "bfloat16"
    assert generator.output.dtype == "float32"


def test_untrained_bfloat16_generator_is_exactly_the_identity_near_white(bfloat16_policy):
    # 254/255 and 255/255 are one bf16 number: a bf16 input or residual add would merge them.
    decoded = np.full((2, 7, 9, 3), 254 / 255, np.float32)
    decoded[:, ::2, ::3] = 1.0
    generator = build_unshuffle_generator(3, filters=8, num_res_units=1)
    restored = np.asarray(generator([decoded, tau_input(2)]))
    assert restored.shape == decoded.shape
    assert np.array_equal(restored, decoded)


@pytest.mark.parametrize(("height", "width", "factor"), [(7, 9, 2), (16, 16, 2), (13, 6, 4), (1, 5, 2)])
def test_any_image_size_keeps_its_shape(height, width, factor):
    generator = build_unshuffle_generator(1, filters=4, num_res_units=1, factor=factor)
    randomise_output_layer(generator)
    decoded = np.random.default_rng(1).uniform(0, 1, (1, height, width, 1)).astype(np.float32)
    restored = np.asarray(generator([decoded, tau_input(1)]))
    assert restored.shape == decoded.shape
    assert not np.array_equal(restored, decoded)  # the correction reaches every output position


def test_output_of_a_pixel_depends_only_on_its_neighbourhood():
    # The unshuffle body must not leak information across the image: a change at one corner must
    # leave the far corner untouched (tiled inference relies on a bounded receptive field).
    generator = build_unshuffle_generator(1, filters=4, num_res_units=1)
    randomise_output_layer(generator)
    decoded = np.random.default_rng(2).uniform(0, 1, (1, 48, 48, 1)).astype(np.float32)
    changed = decoded.copy()
    changed[0, 0, 0, 0] = 1.0 - changed[0, 0, 0, 0]
    before = np.asarray(generator([decoded, tau_input(1)]))
    after = np.asarray(generator([changed, tau_input(1)]))
    assert not np.array_equal(before[0, :4, :4], after[0, :4, :4])
    assert np.array_equal(before[0, 32:, 32:], after[0, 32:, 32:])


def test_spec_rebuilds_the_same_network_from_exported_files(tmp_path):
    config = TrainConfig(
        mode="mse", architecture="unshuffle", filters=8, num_res_units=1, channels=3, show_progress=False
    )
    generator = build_from_spec(config.generator_spec)
    randomise_output_layer(generator)
    run.export_generator_weights(generator, config, tmp_path)
    spec = json.loads((tmp_path / model_io.EXPORT_CONFIG_NAME).read_text())
    assert spec["architecture"] == "unshuffle" and spec["unshuffle_factor"] == 2
    rebuilt, _ = model_io.load_saved_generator(tmp_path)
    decoded = np.random.default_rng(3).uniform(0, 1, (1, 10, 12, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(generator([decoded, tau_input(1)])), np.asarray(rebuilt([decoded, tau_input(1)]))
    )


def test_specs_written_before_the_architecture_key_mean_the_full_generator():
    model = build_from_spec({"channels": 1, "filters": 4, "num_res_units": 1})
    assert "unshuffle" not in [layer.name for layer in model.layers]
    with pytest.raises(ValueError, match="architecture"):
        build_from_spec({"channels": 1, "architecture": "pyramid"})


def test_mixed_precision_option_values():
    assert TrainConfig(mixed_precision=True).mixed_precision == "float16"  # the former bool flag
    assert TrainConfig(mixed_precision=False).mixed_precision == "none"
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="int8")
    with pytest.raises(ValueError, match="unshuffle_factor"):
        TrainConfig(unshuffle_factor=3)


def test_bfloat16_trainer_steps_without_loss_scaling(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    y = np.clip(x + rng.uniform(-6, 6, x.shape) / 255, 0, 1).astype(np.float32)
    batch = (x, y, np.full((2,), 6 / 255, np.float32))
    config = TrainConfig(
        mode="linf", architecture="unshuffle", mixed_precision="bfloat16", filters=8, num_res_units=1,
        disc_base_filters=4, disc_dense_units=8, disc_filter_multipliers=(1, 2), taus=(6,), batch_size=2,
        epochs=1, steps_per_epoch=2, warmup_fraction=0.0, logdir=str(tmp_path / "run"), show_progress=False,
    )
    trainer = Trainer(config, lambda context: tf.data.Dataset.from_tensors(batch))
    before = [np.array(w) for w in trainer.generator.get_weights()]
    trainer.train()
    assert not isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.generator.get_layer("res0_a_conv").compute_dtype == "bfloat16"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is set back
    after = trainer.generator.get_weights()
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))


def test_comma_joined_data_sources_concatenate(tmp_path):
    import cv2

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "img.png"), np.zeros((8, 8), np.uint8))
    files = run.image_source(f"{tmp_path / 'a'},{tmp_path / 'b' / '*.png'}")
    assert [path.parent.name for path in files] == ["a", "b"]
    with pytest.raises(FileNotFoundError):
        run.image_source(f"{tmp_path / 'a'},{tmp_path / 'missing'}")


def test_unshuffle_generator_converts_to_builtin_tflite_and_matches_keras_on_odd_sizes(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    generator = build_unshuffle_generator(3, filters=4, num_res_units=1)
    randomise_output_layer(generator)

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3]), tf.TensorSpec([1, 1])])
    def restore(decoded, tau):
        return generator([decoded, tau])

    # No trackable object: the converter freezes the variables (as export_lib does).
    converter = tf.lite.TFLiteConverter.from_concrete_functions([restore.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no Flex ops allowed
    interpreter = Interpreter(model_content=converter.convert())
    by_rank = sorted(interpreter.get_input_details(), key=lambda detail: len(detail["shape_signature"]))
    tau_in, decoded_input = by_rank
    for height, width in [(7, 9), (10, 5)]:
        decoded = np.random.default_rng(height).uniform(0, 1, (1, height, width, 3)).astype(np.float32)
        interpreter.resize_tensor_input(decoded_input["index"], [1, height, width, 3])
        interpreter.allocate_tensors()
        interpreter.set_tensor(decoded_input["index"], decoded)
        interpreter.set_tensor(tau_in["index"], tau_input(1))
        interpreter.invoke()
        restored = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        expected = np.asarray(generator([decoded, tau_input(1)]))
        np.testing.assert_allclose(restored, expected, atol=1e-5)
