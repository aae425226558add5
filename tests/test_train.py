"""The training system: modes, warm-up, overfitting, resume, NaN guard, strategies, precision, CLI.

Models are tiny (4-8 filters, one residual unit, 32-pixel patches) so each check takes seconds.
Training data is synthetic unless the test is about the real pipeline: smooth images x quantised
the way a near-lossless codec does (bins of width 2*tau + 1 around their centres), so |x - y| <= tau
and the staircase artifacts are learnable.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from linf_tf.learn import distribute, model_io, run
from linf_tf.learn.config import MODES, NonFiniteLossError, TrainConfig
from linf_tf.learn.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
TAU = 8
TINY = {
    "filters": 8,
    "num_res_units": 1,
    "disc_base_filters": 4,
    "disc_dense_units": 8,
    "disc_filter_multipliers": (1, 2),
    "arcnn_filters": (8, 4, 4),
    "taus": (6, 10),
    "patch_size": 32,
    "stride": 32,
    "batch_size": 4,
    "show_progress": False,
}
GAN_MODES = ("linf", "single_rate", "mse_gan")


def synthetic_batch(batch: int = 4, size: int = 32, channels: int = 3, tau: int = TAU, seed: int = 0):
    """(x, y, tau) float32: smooth random sinusoids, quantised with step 2*tau + 1 (pixel units)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    images = []
    for _ in range(batch * channels):
        fy, fx, phase = rng.uniform(0.02, 0.15, 2).tolist() + [rng.uniform(0, 6.3)]
        images.append(127.5 + 100 * np.sin(2 * np.pi * (fy * rows + fx * cols) + phase))
    x = np.rint(np.stack(images).reshape(batch, channels, size, size).transpose(0, 2, 3, 1))
    step = 2 * tau + 1
    y = np.clip(np.rint(x / step) * step, 0, 255)
    assert np.abs(x - y).max() <= tau
    taus = np.full((batch,), tau / 255.0, np.float32)
    return (x / 255.0).astype(np.float32), (y / 255.0).astype(np.float32), taus


def fixed_batch_dataset_fn(batch):
    """Dataset fn yielding the same global batch forever, split evenly between replicas."""

    def dataset_fn(context):
        per_replica = len(batch[0]) if context is None else context.get_per_replica_batch_size(len(batch[0]))
        return tf.data.Dataset.from_tensor_slices(batch).batch(per_replica, drop_remainder=True)

    return dataset_fn


def make_trainer(tmp_path, mode="mse", batch=None, val=False, **overrides) -> Trainer:
    options = {**TINY, "mode": mode, "epochs": 3, "steps_per_epoch": 1, "logdir": str(tmp_path / "run")}
    if mode == "single_rate":
        options["taus"] = (TAU,)
    options.update(overrides)
    batch = synthetic_batch(options["batch_size"]) if batch is None else batch
    val_dataset = tf.data.Dataset.from_tensor_slices(batch).batch(1) if val else None
    return Trainer(TrainConfig(**options), fixed_batch_dataset_fn(batch), val_dataset)


def weights_of(model: keras.Model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def weights_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def run_python(script: str, *args: str, timeout: float = 240, env: dict | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"subprocess timed out:\n{output[-4000:]}")
    assert process.returncode == 0, output[-4000:]
    return output


def last_json_line(output: str) -> dict:
    return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


# --- configuration --------------------------------------------------------------------------------


def test_schedule_follows_the_paper_by_default():
    config = TrainConfig()
    assert (config.epochs, config.warmup_epochs, config.decay_start_epoch) == (150, 50, 100)
    assert config.learning_rate_for(99) == 1e-4 and config.learning_rate_for(100) == 1e-5
    assert not config.is_adversarial(49) and config.is_adversarial(50)
    assert not TrainConfig(mode="mse").is_adversarial(149)


def test_mode_loss_weights():
    weights = {
        mode: TrainConfig(mode=mode, taus=(TAU,), gt_weight=0.5).loss_weights for mode in MODES
    }
    assert (
        weights["linf"]
        == weights["single_rate"]
        == {"adv_weight": 1e-3, "linf_weight": 0.01, "gt_weight": 0.5}
    )
    assert weights["mse_gan"]["linf_weight"] == 0.0 and weights["mse_gan"]["adv_weight"] > 0
    assert weights["mse"]["adv_weight"] == weights["mse"]["linf_weight"] == 0.0
    assert weights["arcnn"] == weights["mse"]


def test_invalid_configs_are_rejected():
    with pytest.raises(ValueError, match="single_rate"):
        TrainConfig(mode="single_rate", taus=(6, 8))
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="gan")
    with pytest.raises(ValueError, match="strategy"):
        distribute.make_strategy("tpu")


# --- steps ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [mode for mode in MODES if mode != "linf"])  # linf: next test
def test_one_step_of_each_mode_gives_finite_losses(tmp_path, mode):
    trainer = make_trainer(tmp_path, mode, warmup_fraction=0.0)
    values = trainer.train(until_step=1)
    assert int(trainer.step.numpy()) == 1
    expected = {"g_mse", "g_adversarial", "g_linf", "g_ground_truth", "g_total"}
    if mode in GAN_MODES:
        expected.add("d_loss")
    assert set(values) == expected
    assert all(np.isfinite(value) for value in values.values())
    assert (trainer.discriminator is not None) == (mode in GAN_MODES)
    if mode == "arcnn":
        assert trainer.generator.name == "arcnn"


def test_warmup_leaves_discriminator_unchanged_then_trains_it(tmp_path):
    trainer = make_trainer(tmp_path, "linf", epochs=3, steps_per_epoch=1)  # warm-up = epoch 0
    initial = weights_of(trainer.discriminator)
    values = trainer.train(until_step=1)
    assert "d_loss" not in values and values["g_adversarial"] == 0.0
    assert weights_equal(weights_of(trainer.discriminator), initial)
    assert int(trainer.d_optimizer.iterations.numpy()) == 0
    values = trainer.train(until_step=2)
    assert "d_loss" in values and values["g_adversarial"] > 0.0
    assert all(np.isfinite(value) for value in values.values())
    assert not weights_equal(weights_of(trainer.discriminator), initial)
    assert float(trainer.g_optimizer.learning_rate) == pytest.approx(1e-4)
    trainer.train()  # epoch 2 = the last third: the final learning rate
    assert float(trainer.g_optimizer.learning_rate) == pytest.approx(1e-5)
    assert float(trainer.d_optimizer.learning_rate) == pytest.approx(1e-5)


def test_overfitting_one_batch_beats_the_decoded_input(tmp_path):
    batch = synthetic_batch(4)
    trainer = make_trainer(
        tmp_path,
        "mse",
        batch,
        val=True,
        epochs=1,
        steps_per_epoch=150,
        learning_rate=2e-3,
        batch_norm_momentum=0.5,
        checkpoint_every_steps=0,
    )
    trainer.train()
    results = trainer.evaluate()
    gain = results[f"tau{TAU}"]["psnr_gain"]
    assert gain > 0.5, results
    # The box projection at kappa = eval_slack bounds the restored error: (1 + kappa) * tau.
    assert results[f"tau{TAU}"]["linf_restored"] <= (1 + trainer.config.eval_slack) * TAU + 1e-3


# --- checkpoints ----------------------------------------------------------------------------------


def test_resume_loads_step_and_reaches_the_target_exactly(tmp_path):
    options = {"epochs": 2, "steps_per_epoch": 3, "checkpoint_every_steps": 2}
    first = make_trainer(tmp_path, "mse", **options)
    first.train(until_step=4)
    weights = weights_of(first.generator)
    assert first.checkpoints.latest.endswith("ckpt-4")

    second = make_trainer(tmp_path, "mse", **options)
    assert second.resumed_from is not None
    assert int(second.step.numpy()) == 4 and int(second.epoch.numpy()) == 1
    assert int(second.g_optimizer.iterations.numpy()) == 4
    assert weights_equal(weights_of(second.generator), weights)
    second.train()
    assert int(second.step.numpy()) == second.total_steps == 6
    assert int(second.g_optimizer.iterations.numpy()) == 6
    assert second.checkpoints.latest.endswith("ckpt-6")
    assert len(second.checkpoints.manager.checkpoints) <= 3


def test_time_budget_checkpoints_and_stops_then_a_rerun_resumes(tmp_path):
    options = {"epochs": 2, "steps_per_epoch": 3, "checkpoint_every_steps": 0, "max_train_minutes": 1e-9}
    first = make_trainer(tmp_path, "mse", **options)
    first.train()
    assert int(first.step.numpy()) == 1  # the budget is spent after the first step
    assert first.checkpoints.latest.endswith("ckpt-1")
    second = make_trainer(tmp_path, "mse", **{**options, "max_train_minutes": 0.0})
    assert int(second.step.numpy()) == 1
    second.train()
    assert int(second.step.numpy()) == second.total_steps == 6


def test_validation_is_logged_to_csv_with_step_and_wall_time(tmp_path):
    trainer = make_trainer(tmp_path, "mse", val=True, epochs=1, steps_per_epoch=2)
    trainer.train()
    rows = (tmp_path / "run" / "validation_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:4] == ["step", "epoch", "wall_time", "tau"] and "psnr_gain" in header
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert last["step"] == "2" and last["tau"] == str(TAU)
    assert float(last["wall_time"]) > 1.7e9
    assert abs(float(last["psnr_gain"]) - (float(last["psnr_restored"]) - float(last["psnr_decoded"]))) < 1e-3


def test_nan_loss_stops_before_the_poisoned_state_is_saved(tmp_path):
    good = synthetic_batch(4)
    poisoned = (good[0].copy(), good[1], good[2])
    poisoned[0][0, 0, 0, 0] = np.nan
    batches = [good, good, poisoned]

    def dataset_fn(context):
        stacked = tuple(np.stack([b[i] for b in batches]) for i in range(3))
        return tf.data.Dataset.from_tensor_slices(stacked)

    config = TrainConfig(
        **{
            **TINY,
            "mode": "mse",
            "epochs": 1,
            "steps_per_epoch": 5,
            "checkpoint_every_steps": 1,
            "logdir": str(tmp_path / "run"),
        }
    )
    trainer = Trainer(config, dataset_fn)
    with pytest.raises(NonFiniteLossError, match=r"step 3: .*g_mse=nan"):
        trainer.train()
    assert int(trainer.step.numpy()) == 2
    assert trainer.checkpoints.latest.endswith("ckpt-2")
    resumed = Trainer(config, dataset_fn)
    assert int(resumed.step.numpy()) == 2
    assert all(np.isfinite(w).all() for w in weights_of(resumed.generator))


def test_export_round_trip(tmp_path):
    trainer = make_trainer(tmp_path, "mse")
    trainer.train(until_step=1)
    directory = run.export_generator_weights(trainer.generator, trainer.config, tmp_path / "export")
    spec = json.loads((directory / model_io.EXPORT_CONFIG_NAME).read_text())
    assert spec["filters"] == 8 and spec["model"] == "linf_cnn" and spec["taus"] == [6, 10]
    model, _ = model_io.load_saved_generator(directory)
    x, y, tau = synthetic_batch(2)
    np.testing.assert_allclose(model([y, tau]), trainer.generator([y, tau]), rtol=0, atol=1e-6)


# --- precision and compilation --------------------------------------------------------------------


def test_mixed_precision_runs_one_step_on_cpu(tmp_path):
    # float16 kernels are slow on CPU: the smallest batch that still exercises G, D and both scalers.
    batch = synthetic_batch(2, size=16)
    trainer = make_trainer(tmp_path, "linf", batch, warmup_fraction=0.0, mixed_precision=True, batch_size=2)
    assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.generator.get_layer("head_conv").compute_dtype == "float16"
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is set back
    values = trainer.train(until_step=1)
    assert "d_loss" in values and all(np.isfinite(v) for v in values.values())


def test_jit_compile_runs_one_step_on_cpu(tmp_path):
    trainer = make_trainer(tmp_path, "mse", jit_compile=True)
    values = trainer.train(until_step=1)
    assert all(np.isfinite(v) for v in values.values())


# --- strategies (subprocesses: logical devices and TF_CONFIG must be set before TF starts) -----------

COMMON = """
import json, sys
import numpy as np
import tensorflow as tf
sys.path.insert(0, "tests")
"""

MIRRORED_SCRIPT = (
    COMMON
    + """
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from linf_tf.learn import distribute
from linf_tf.learn.config import TrainConfig
from linf_tf.learn.trainer import Trainer
from test_train import TINY, fixed_batch_dataset_fn, synthetic_batch

logdir = sys.argv[1]
batch = synthetic_batch(8)
results = {}
for name in ("default", "mirrored"):
    strategy = distribute.make_strategy(name)
    # ARCNN has no BatchNormalization: per-replica batch statistics would make the two runs differ.
    config = TrainConfig(**{**TINY, "mode": "arcnn", "batch_size": 8, "epochs": 1,
                                      "steps_per_epoch": 3, "learning_rate": 1e-3,
                                      "logdir": f"{logdir}/{name}"})
    trainer = Trainer(config, fixed_batch_dataset_fn(batch), strategy=strategy)
    if name == "default":
        initial = trainer.generator.get_weights()
    else:
        trainer.generator.set_weights(initial)
    losses = [trainer.train(until_step=step)["g_mse"] for step in (1, 2, 3)]
    results[name] = {"replicas": strategy.num_replicas_in_sync, "losses": losses,
                     "weights": [w.tolist() for w in trainer.generator.get_weights()]}
print(json.dumps(results))
"""
)

MIRRORED_GAN_SCRIPT = (
    COMMON
    + """
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from linf_tf.learn import distribute
from linf_tf.learn.config import TrainConfig
from linf_tf.learn.trainer import Trainer
from test_train import TINY, fixed_batch_dataset_fn, synthetic_batch

strategy = distribute.make_strategy("mirrored")
config = TrainConfig(**{**TINY, "mode": "linf", "batch_size": 8, "epochs": 1, "steps_per_epoch": 2,
                                  "warmup_fraction": 0.0, "logdir": sys.argv[1]})
values = Trainer(config, fixed_batch_dataset_fn(synthetic_batch(8)), strategy=strategy).train()
print(json.dumps({"replicas": strategy.num_replicas_in_sync, **values}))
"""
)


def test_mirrored_strategy_matches_single_device(tmp_path):
    """Two logical CPUs, 4 examples each, vs one device with all 8: same losses after each step.

    Compared: the MSE loss at steps 1-3 (steps 2 and 3 see weights after one and two updates)
    and the final weights, on ARCNN (no BatchNormalization) from identical initial weights.
    """
    output = finish(run_python(MIRRORED_SCRIPT, str(tmp_path)))
    results = last_json_line(output)
    single, mirrored = results["default"], results["mirrored"]
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    assert single["losses"][0] != single["losses"][2]  # training moved the loss
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4)
    for got, want in zip(mirrored["weights"], single["weights"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_mirrored_strategy_runs_gan_steps(tmp_path):
    results = last_json_line(finish(run_python(MIRRORED_GAN_SCRIPT, str(tmp_path))))
    assert results.pop("replicas") == 2
    assert "d_loss" in results and all(np.isfinite(v) for v in results.values())


MULTI_WORKER_SCRIPT = (
    COMMON
    + """
from linf_tf.learn import distribute
from linf_tf.learn.config import TrainConfig
from linf_tf.learn.trainer import Trainer
strategy = distribute.make_strategy("multi_worker")
from test_train import TINY, fixed_batch_dataset_fn, synthetic_batch

config = TrainConfig(**{**TINY, "mode": "mse", "batch_size": 8, "epochs": 1, "steps_per_epoch": 3,
                                  "checkpoint_every_steps": 2, "logdir": sys.argv[1]})
trainer = Trainer(config, fixed_batch_dataset_fn(synthetic_batch(8)), strategy=strategy)
values = trainer.train()
print(json.dumps({"chief": trainer.chief, "replicas": strategy.num_replicas_in_sync,
                  "step": int(trainer.step.numpy()), "g_mse": values["g_mse"]}))
"""
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_mirrored_strategy_with_two_local_workers(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {"TF_CONFIG": json.dumps(tf_config)}
        processes.append(run_python(MULTI_WORKER_SCRIPT, str(tmp_path / "run"), env=env))
    results = [last_json_line(finish(process, timeout=240)) for process in processes]
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 and r["step"] == 3 for r in results)
    assert results[0]["g_mse"] == pytest.approx(results[1]["g_mse"])  # the same global loss
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-3")


# --- the command line -----------------------------------------------------------------------------


FLAGFILES_SCRIPT = """
import json, sys
import train  # defines its flags on absl's global FLAGS, in this process only

configs = {}
for path in sys.argv[1:]:
    train.FLAGS(["train.py", f"--flagfile={path}"])
    config = train.config_from_flags()
    configs[path] = {"mode": config.mode, "taus": list(config.taus), "epochs": config.epochs,
                     "filters": config.filters, "num_res_units": config.num_res_units}
    train.FLAGS.unparse_flags()
print(json.dumps(configs))
"""


def test_every_flagfile_builds_a_valid_config():
    """Parsed in a subprocess: other entry points (evaluate.py, export.py) define flags of the same
    names on absl's global FLAGS, so importing train.py here could clash with them."""
    flagfiles = sorted(str(path) for path in (REPO / "configs").glob("*.flags"))
    assert len(flagfiles) >= 7
    configs = last_json_line(finish(run_python(FLAGFILES_SCRIPT, *flagfiles)))
    for path, config in configs.items():
        stem = Path(path).stem.removeprefix("cpu_small_")  # cpu_small_mse.flags: the mse baseline
        linf_configs = {
            "linf_multirate", "quickstart", "cpu_small", "long", "long_t1", "cpu_medium",
            "cpu_v2_rgb", "cpu_v2_gray", "paper_gpu",
        }
        assert config["mode"] == ("linf" if stem in linf_configs else stem)
        assert config["epochs"] > 0 and config["taus"]
    assert configs[str(REPO / "configs" / "single_rate.flags")]["taus"] == [10]
    assert configs[str(REPO / "configs" / "linf_multirate.flags")]["taus"] == [6, 8, 10, 12, 14]
    # The continuations resume the shipped run (24 epochs) and differ only in the small taus.
    long_run = configs[str(REPO / "configs" / "cpu_small_long.flags")]
    long_t1 = configs[str(REPO / "configs" / "cpu_small_long_t1.flags")]
    assert long_run["epochs"] == long_t1["epochs"] == 32
    assert long_t1["taus"] == [1, 2, 3, 4, 5] + long_run["taus"]
    # The size comparison: the shipped recipe with a 32 x 6 generator and tau = 1..14 from the start.
    medium = configs[str(REPO / "configs" / "cpu_medium.flags")]
    assert (medium["filters"], medium["num_res_units"]) == (32, 6)
    assert medium["taus"] == long_t1["taus"]


def event_tags(logdir: Path) -> set[str]:
    tags = set()
    for path in logdir.glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_train_py_quickstart_writes_checkpoint_events_and_export(tmp_path):
    logdir = tmp_path / "quick"
    command = [
        sys.executable,
        "train.py",
        "--flagfile=configs/quickstart.flags",
        "--epochs=1",
        "--steps_per_epoch=3",
        f"--logdir={logdir}",
        "--noprogress",
    ]
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "validation tau10" in result.stdout
    assert tf.train.latest_checkpoint(str(logdir / "checkpoints")).endswith("ckpt-3")
    tags = event_tags(logdir)
    assert {
        "loss/g_mse",
        "learning_rate",
        "validation/tau10/psnr_gain",
        "validation/tau6/ssim_restored",
    } <= tags
    assert any(tag.startswith("samples/") for tag in tags)
    assert (logdir / "export" / model_io.EXPORT_WEIGHTS_NAME).is_file()
    # A 3-step run says it is a smoke test (issue 15 item 10), a long one does not.
    assert "is a smoke test of the training pipeline" in result.stdout
    assert run.short_run_note(3) and run.short_run_note(run.SHORT_RUN_STEPS) is None


@pytest.mark.slow
def test_train_py_resumes_after_sigkill(tmp_path):
    logdir = tmp_path / "killed"
    command = [
        sys.executable,
        "train.py",
        "--flagfile=configs/quickstart.flags",
        "--epochs=1",
        "--steps_per_epoch=60",
        "--checkpoint_every_steps=5",
        "--val_data=",
        f"--logdir={logdir}",
        "--noprogress",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    checkpoints = logdir / "checkpoints"
    deadline = time.monotonic() + 240
    while tf.train.latest_checkpoint(str(checkpoints)) is None:
        assert process.poll() is None and time.monotonic() < deadline, "no checkpoint before the deadline"
        time.sleep(0.2)
    time.sleep(1.0)  # let it train a little past the checkpoint, then kill it mid-training
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    killed_at = int(tf.train.latest_checkpoint(str(checkpoints)).rsplit("-", 1)[1])
    assert 0 < killed_at < 60

    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"at step {killed_at}" in result.stdout
    assert tf.train.latest_checkpoint(str(checkpoints)).endswith("ckpt-60")


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    from linf_tf.learn.config import cpu_has_native_bf16

    assert cpu_has_native_bf16("processor: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n") is True
    assert cpu_has_native_bf16("processor: 0\nflags\t\t: fpu sse2 avx2\n") is False
    assert cpu_has_native_bf16("Processor: ARMv8\nFeatures: fp asimd\n") is None
