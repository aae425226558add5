"""Deployment export: SavedModel signatures, TFLite variants, the REST client and export.py.

The generator is tiny (8 filters, one residual unit) with random conv weights, so that it is not the
identity (as a fresh G is) and its raw output leaves the error box: the projection has work to do.
Test images are real codec output (skimage images through linf_tf.codec), 32-48 pixels a side.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from linf_tf import codec
from linf_tf.learn import calibration, model_io, parity, serving, tflite
from linf_tf.learn import export as export_lib
from linf_tf.learn.models import build_generator, build_inference_model
from linf_tf.runtime.litert import run_tflite

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHANNELS = 3
TINY = {"filters": 8, "num_res_units": 1}
# (input dtype, max_value, factor mapping 8-bit test pixels to that range)
# Full-range uint16 differs from the 12-bit case only in max_value; one uint16 export keeps the file fast.
DTYPES = {"uint8": ("uint8", 255, 1), "uint12": ("uint16", 4095, 16)}
ERRORS = (TypeError, ValueError, tf.errors.InvalidArgumentError)


def _perturbed_generator(seed: int = 0) -> object:
    model = build_generator(CHANNELS, **TINY)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.name.endswith("conv") or layer.name == "correction":  # BN statistics stay valid
            layer.set_weights([rng.normal(0, 0.08, w.shape).astype(np.float32) for w in layer.get_weights()])
    return model


def _decoded(name: str, tau: int, height: int = 40, width: int = 48, top: int = 100) -> np.ndarray:
    """A real decoded crop: uint8 H x W x 3 codec output at ``tau``."""
    crop = calibration.sample_image(name, CHANNELS)[top : top + height, 100 : 100 + width].copy()
    return calibration.codec_round_trip(crop, tau)


def _keras(generator, decoded01: np.ndarray, tau01: np.ndarray, slack: np.ndarray) -> np.ndarray:
    """The Keras inference model (G + BoxProjection) on a float batch."""
    model = build_inference_model(generator)
    return keras.ops.convert_to_numpy(model([decoded01, tau01[:, None], slack[:, None]], training=False))


def _call(signature, image, tau, slack) -> np.ndarray:
    spec = signature.structured_input_signature[1]
    inputs = {"image": image, "tau": tau, "slack": slack}
    tensors = {name: tf.constant(np.asarray(value), dtype=spec[name].dtype) for name, value in inputs.items()}
    return signature(**tensors)[export_lib.OUTPUT_KEY].numpy()


@pytest.fixture(scope="module")
def generator():
    return _perturbed_generator()


@pytest.fixture(scope="module")
def saved_models(generator, tmp_path_factory):
    """name -> loaded SavedModel, for uint8, uint16 and 12-bit-in-uint16 modules."""
    out = tmp_path_factory.mktemp("export")
    loaded = {}
    for version, (name, (dtype, max_value, _)) in enumerate(DTYPES.items(), start=1):
        module = serving.make_serving_module(
            generator, channels=CHANNELS, input_dtype=dtype, max_value=max_value
        )
        path = serving.export_saved_model(module, out, "linf", version)
        assert path == out / "serving" / "linf" / str(version) and (path / "saved_model.pb").is_file()
        loaded[name] = tf.saved_model.load(str(path))
        loaded[f"{name}_path"] = path
    return loaded


@pytest.fixture(scope="module")
def tflite_models(generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite")
    patches = calibration.calibration_patches(
        CHANNELS, patch_size=32, patches_per_image=2, taus=(2, 6), names=("astronaut", "coffee")
    )
    return {
        variant: tflite.export_tflite(
            generator, out / f"{variant}.tflite", variant=variant, channels=CHANNELS,
            representative_patches=patches,
        )  # fmt: skip
        for variant in tflite.TFLITE_VARIANTS
    }


# --- generator loading ---------------------------------------------------------------------------


def test_load_generator_round_trip(generator, tmp_path):
    weights, config = tmp_path / "g.weights.h5", tmp_path / "g.json"
    generator.save_weights(str(weights))
    # The trainer's JSON carries extra keys (taus, pixel_max, ...): they must be ignored.
    config.write_text(json.dumps({"channels": CHANNELS, **TINY, "tau_conditioning": True, "taus": [2, 4]}))
    loaded = model_io.load_generator(weights, config)
    batch = _decoded("chelsea", 4)[None].astype(np.float32) / 255
    tau = np.array([[4 / 255]], np.float32)
    np.testing.assert_array_equal(loaded([batch, tau]), generator([batch, tau]))
    config.write_text(json.dumps(TINY))
    with pytest.raises(ValueError, match="channels"):
        model_io.load_generator(weights, config)


# --- SavedModel ----------------------------------------------------------------------------------


def test_saved_model_float_signature_matches_keras(generator, saved_models):
    decoded = np.stack([_decoded("chelsea", 4), _decoded("coffee", 2)]).astype(np.float32) / 255
    tau, slack = np.array([4, 2], np.float32) / 255, np.array([1.0, 0.5], np.float32)
    expected = _keras(generator, decoded, tau, slack)
    restored = _call(saved_models["uint8"].signatures[serving.FLOAT_SIGNATURE], decoded, tau, slack)
    assert restored.dtype == np.float32
    np.testing.assert_allclose(restored, expected, rtol=0, atol=2e-6)
    assert np.abs(restored - decoded).max() > 1 / 255  # G really changed the image


@pytest.mark.parametrize("name", list(DTYPES))
def test_serving_default_integer_signatures(generator, saved_models, name):
    dtype, max_value, factor = DTYPES[name]
    decoded8 = np.stack([_decoded("chelsea", 4), _decoded("astronaut", 6)])
    image = decoded8.astype(dtype) * factor
    tau = np.array([4, 6]) * factor
    slack = np.array([1.0, 0.6], np.float32)
    restored = _call(saved_models[name].signatures["serving_default"], image, tau, slack)
    assert restored.dtype == np.dtype(dtype) and restored.shape == image.shape
    reference = _keras(generator, image / np.float32(max_value), (tau / max_value).astype(np.float32), slack)
    # Documented semantics: round, then clip into the integer box y ± floor(kappa*tau).
    half_width = np.floor(slack * tau)[:, None, None, None]
    expected = np.clip(np.rint(reference * max_value), image - half_width, image + half_width)
    level_diff = np.abs(restored.astype(np.int64) - expected.astype(np.int64))
    assert level_diff.max() <= 1 and np.mean(level_diff == 0) > 0.99
    _assert_integer_box(restored, image, tau, slack, max_value)


def _assert_integer_box(restored, image, tau, slack, max_value) -> None:
    half_width = np.floor(slack * tau)[:, None, None, None]
    error = np.abs(restored.astype(np.int64) - image.astype(np.int64))
    assert np.all(error <= half_width) and restored.max() <= max_value


@pytest.mark.parametrize("seed", range(3))
def test_output_within_box_for_random_kappa(generator, saved_models, seed):
    rng = np.random.default_rng(seed)
    names = ["chelsea", "coffee", "astronaut", "rocket"]
    taus = rng.integers(1, 11, len(names))
    image = np.stack([_decoded(name, int(tau)) for name, tau in zip(names, taus, strict=True)])
    slack = rng.uniform(0, 1, len(names)).astype(np.float32)
    restored = _call(saved_models["uint8"].signatures["serving_default"], image, taus, slack)
    _assert_integer_box(restored, image, taus, slack, 255)
    # The bound is the projection's doing: the raw network leaves the box.
    tau01 = (taus / 255).astype(np.float32)[:, None]
    raw = keras.ops.convert_to_numpy(generator([image / np.float32(255), tau01]))
    assert np.any(np.abs(raw * 255 - image) > (slack * taus)[:, None, None, None] + 1)


@pytest.mark.parametrize("name", list(DTYPES))
def test_kappa_zero_returns_input_exactly(saved_models, name):
    dtype, max_value, factor = DTYPES[name]
    image = np.stack([_decoded("chelsea", 5), _decoded("coffee", 3)]).astype(dtype) * factor
    zero = np.zeros(2, np.float32)
    restored = _call(saved_models[name].signatures["serving_default"], image, np.array([5, 3]) * factor, zero)
    np.testing.assert_array_equal(restored, image)
    scaled = image.astype(np.float32) / np.float32(max_value)
    float_out = _call(saved_models[name].signatures[serving.FLOAT_SIGNATURE], scaled, [0.02, 0.01], zero)
    np.testing.assert_array_equal(float_out, scaled)


SHAPE_ERROR = r"not compatible with expected shape \[\?,\?,\?,3\]"
DTYPE_ERROR = "expected to be a uint8 tensor but is a uint16"
SLACK_ERROR = r"slack \(kappa\) must be in \[0, 1\]"
BAD_INPUTS = {
    "negative tau": ({"tau": [-1]}, "tau must be >= 0"),
    "slack above 1": ({"slack": [1.5]}, SLACK_ERROR),
    "negative slack": ({"slack": [-0.1]}, SLACK_ERROR),
    "batch mismatch": ({"tau": [2, 2]}, "one value per image"),
    "wrong channels": ({"image": np.zeros((1, 8, 8, 2), np.uint8)}, SHAPE_ERROR),
    "wrong rank": ({"image": np.zeros((8, 8, 3), np.uint8)}, SHAPE_ERROR),
    "wrong dtype": ({"image": np.zeros((1, 8, 8, 3), np.uint16)}, DTYPE_ERROR),
    # issue 15 item 6: each of these gave a wrong result or an internal error before
    "tau above the pixel range": ({"tau": [1000]}, "tau must be <= 127, the codec limit for max_value 255"),
    "scalar tau": ({"tau": 3}, "tau must be a vector with one value per image"),
    "scalar slack": ({"slack": 0.5}, "slack must be a vector with one value per image"),
    "empty image": ({"image": np.zeros((1, 0, 0, 3), np.uint8)}, "image must have at least one pixel"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_give_clear_errors_in_saved_model(saved_models, case):
    override, message = BAD_INPUTS[case]
    inputs = {"image": np.zeros((1, 8, 8, 3), np.uint8), "tau": [2], "slack": [0.5], **override}
    tensors = {name: tf.constant(np.asarray(value)) for name, value in inputs.items()}
    tensors["tau"] = tf.cast(tensors["tau"], tf.int32)
    tensors["slack"] = tf.cast(tensors["slack"], tf.float32)
    with pytest.raises(ERRORS, match=message):
        saved_models["uint8"].signatures["serving_default"](**tensors)


def test_bad_inputs_rejected_by_module_signature_and_range_checks(generator, saved_models):
    module = serving.make_serving_module(generator, channels=CHANNELS)
    good = {"tau": tf.constant([2]), "slack": tf.constant([0.5])}
    with pytest.raises(TypeError, match="Can not cast TensorSpec.*uint16.*uint8"):
        module.serving_default(image=tf.zeros((1, 8, 8, 3), tf.uint16), **good)
    with pytest.raises(TypeError, match=r"Can not cast TensorSpec\(shape=\(1, 8, 8, 2\)"):
        module.serving_default(image=tf.zeros((1, 8, 8, 2), tf.uint8), **good)
    twelve_bit = saved_models["uint12"].signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="image values must be <= max_value=4095"):
        _call(twelve_bit, np.full((1, 8, 8, 3), 5000, np.uint16), [16], [1.0])
    float_sig = saved_models["uint8"].signatures[serving.FLOAT_SIGNATURE]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"image must be scaled to \[0, 1\]"):
        _call(float_sig, np.full((1, 8, 8, 3), 2.0, np.float32), [0.01], [1.0])
    with pytest.raises(ValueError, match="channels=1 but the generator takes 3"):
        serving.make_serving_module(generator, channels=1)
    with pytest.raises(ValueError, match="input_dtype"):
        serving.make_serving_module(generator, channels=CHANNELS, input_dtype="float32")


def test_export_refuses_to_overwrite_a_version(generator, saved_models):
    path = saved_models["uint8_path"]
    module = serving.make_serving_module(generator, channels=CHANNELS)
    with pytest.raises(FileExistsError, match="new --version"):
        serving.export_saved_model(module, path.parents[2], "linf", int(path.name))


def test_saved_model_cli_runs_the_signature(saved_models, tmp_path):
    image = _decoded("chelsea", 3, height=8, width=8)[None]
    command = [
        str(BIN / "saved_model_cli"), "run", "--dir", str(saved_models["uint8_path"]),
        "--tag_set", "serve", "--signature_def", "serving_default",
        "--input_exprs", f"image={image.tolist()};tau=[3];slack=[0.5]",
        "--outdir", str(tmp_path), "--overwrite",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    from_cli = np.load(tmp_path / "restored.npy")
    expected = _call(saved_models["uint8"].signatures["serving_default"], image, [3], [0.5])
    assert from_cli.dtype == np.uint8 and not np.array_equal(expected, image)  # G's weights were loaded
    np.testing.assert_array_equal(from_cli, expected)


# --- REST client ---------------------------------------------------------------------------------


def _client():
    spec = importlib.util.spec_from_file_location("linf_serving_client", REPO / "serving" / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rest_request_matches_exported_signature(saved_models):
    client = _client()
    image = np.stack([_decoded("chelsea", 2), _decoded("coffee", 2)])
    body = json.loads(json.dumps(client.build_rest_request(image, 2, 0.75)))  # JSON-serialisable
    assert body["signature_name"] == "serving_default"
    signature = saved_models["uint8"].signatures[body["signature_name"]]
    specs = signature.structured_input_signature[1]
    assert set(body["inputs"]) == set(specs) == {"image", "tau", "slack"}
    arrays = {}
    for name, spec in specs.items():
        value = np.asarray(body["inputs"][name])
        assert spec.shape.is_compatible_with(value.shape), (name, spec.shape, value.shape)
        if spec.dtype.is_integer:  # what TF Serving does with JSON numbers: exact integers in range
            assert value.dtype.kind == "i" and value.min() >= spec.dtype.min and value.max() <= spec.dtype.max
        arrays[name] = value
    assert arrays["tau"].tolist() == [2, 2] and arrays["slack"].tolist() == [0.75, 0.75]
    from_json = _call(signature, arrays["image"], arrays["tau"], arrays["slack"])
    np.testing.assert_array_equal(from_json, _call(signature, image, [2, 2], [0.75] * 2))
    gray = client.build_rest_request(image[0, ..., 0], 1, 0.0)["inputs"]["image"]
    assert np.asarray(gray).shape == (1, 40, 48, 1)
    with pytest.raises(ValueError, match="slack"):
        client.build_rest_request(image, 2, 1.5)


class _FakeServing(BaseHTTPRequestHandler):
    """Answers /v1/models/linf:predict like TF Serving, by running the real exported signature."""

    loaded = None

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/models/linf:predict"
        signature = self.loaded.signatures[body["signature_name"]]
        inputs = body["inputs"]
        restored = _call(signature, inputs["image"], inputs["tau"], inputs["slack"])
        reply = json.dumps({"outputs": restored.tolist()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_client_restores_nlc_stream_over_rest(saved_models, tmp_path):
    client = _client()
    original = calibration.sample_image("chelsea", CHANNELS)[100:140, 100:148].copy()
    stream = tmp_path / "x.nlc"
    stream.write_bytes(codec.encode(original, 3))
    _FakeServing.loaded = saved_models["uint8"]
    server = HTTPServer(("127.0.0.1", 0), _FakeServing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = str(server.server_address[1])
        arguments = [str(stream), "-o", str(tmp_path / "r.png"), "--port", port, "--slack", "0.5"]
        assert client.main(arguments) == 0
    finally:
        server.shutdown()
    from linf_tf.imageio import read_image

    restored = read_image(tmp_path / "r.png").pixels
    decoded = codec.decode(stream.read_bytes())
    expected = _call(saved_models["uint8"].signatures["serving_default"], decoded[None], [3], [0.5])[0]
    np.testing.assert_array_equal(restored, expected)
    assert np.abs(restored.astype(int) - original).max() <= 3 + 1  # (1 + kappa) * tau, floor(kappa*tau) = 1
    assert client.main([str(stream), "-o", str(tmp_path / "r.png"), "--port", "9", "--timeout", "2"]) == 1


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_serving") is not None, reason="API installed")
def test_grpc_path_explains_missing_dependency():
    client = _client()
    options = {"host": "localhost", "port": 1, "model_name": "linf", "timeout": 1}
    with pytest.raises(RuntimeError, match=r"tensorflow-serving-api==2\.21\.0"):
        client.predict_grpc(np.zeros((4, 4, 3), np.uint8), 1, 1.0, **options)


# --- TFLite --------------------------------------------------------------------------------------


def _tflite_vs_keras(generator, model_path, decoded, tau, slack):
    scaled = decoded.astype(np.float32) / 255
    restored = run_tflite(model_path, scaled, tau / 255, slack)
    tau01, slack01 = np.array([tau / 255], np.float32), np.array([slack], np.float32)
    reference = _keras(generator, scaled[None], tau01, slack01)[0]
    return scaled, restored, reference


@pytest.mark.parametrize("variant", ["float32", "float16"])
def test_tflite_float_parity(generator, tflite_models, variant):
    within, total = 0, 0
    for name, tau in (("chelsea", 4), ("coffee", 2), ("astronaut", 8)):
        decoded = _decoded(name, tau)
        _, restored, reference = _tflite_vs_keras(generator, tflite_models[variant], decoded, tau, 1.0)
        level_diff = np.abs(np.rint(restored * 255) - np.rint(reference * 255))
        within, total = within + np.count_nonzero(level_diff <= 1), total + level_diff.size
    assert within / total >= 0.999
    if variant == "float32":
        np.testing.assert_allclose(restored, reference, atol=1e-5)


@pytest.mark.parametrize("variant", tflite.TFLITE_VARIANTS)
def test_tflite_keeps_the_bound(generator, tflite_models, variant):
    for tau, slack in ((4, 1.0), (6, 0.3), (2, 0.0)):
        decoded = _decoded("rocket", tau)
        scaled, restored, _ = _tflite_vs_keras(generator, tflite_models[variant], decoded, tau, slack)
        assert np.abs(restored - scaled).max() <= slack * tau / 255 + export_lib.BOUND_TOLERANCE
        assert restored.min() >= 0 and restored.max() <= 1
        if slack == 0:
            np.testing.assert_array_equal(restored, scaled)


def test_tflite_dynamic_input_sizes(generator, tflite_models):
    batched = run_tflite(tflite_models["float32"], np.zeros((1, 32, 48, 3)), 0.01, 1.0)
    assert batched.shape == (1, 32, 48, 3)
    for height, width in ((32, 48), (40, 40)):
        decoded = _decoded("coffee", 3, height, width)
        _, restored, reference = _tflite_vs_keras(generator, tflite_models["float32"], decoded, 3, 1.0)
        assert restored.shape == (height, width, 3)
        np.testing.assert_allclose(restored, reference, atol=1e-5)


def _tensor_types(model: bytes) -> dict[str, str]:
    return dict(re.findall(r"T#\d+\((.*?)\) shape.*?type:(\w+)", tflite.analyze_tflite(model)))


@pytest.mark.parametrize("variant", tflite.TFLITE_VARIANTS)
def test_tflite_uses_builtin_ops_only(tflite_models, variant):
    from ai_edge_litert.interpreter import Interpreter

    model = tflite_models[variant].read_bytes()
    ops = tflite.tflite_ops(model)
    assert "CONV_2D" in ops and tflite.flex_ops(model) == []
    assert all(op.isupper() for op in ops), ops  # custom ops would appear under their own names
    Interpreter(model_content=model).allocate_tensors()  # the plain builtin interpreter loads it
    interpreter = Interpreter(model_content=model)
    signature = interpreter.get_signature_list()[tflite.TFLITE_SIGNATURE]
    assert sorted(signature["inputs"]) == sorted(tflite.TFLITE_INPUTS)
    assert signature["outputs"] == [export_lib.OUTPUT_KEY]
    inputs = interpreter.get_signature_runner().get_input_details()
    assert inputs["decoded"]["shape_signature"].tolist() == [1, -1, -1, CHANNELS]
    assert all(d["dtype"] == np.float32 for d in inputs.values())


@pytest.mark.parametrize("variant", tflite.TFLITE_VARIANTS)
def test_tflite_clamps_out_of_contract_inputs_in_the_graph(tflite_models, variant):
    """Issue 15 item 5: a caller of the .tflite file gets the guards too (builtin MINIMUM/MAXIMUM).

    slack 5 used to allow 5 * tau, tau < 0 was accepted and 0-255 input silently clipped inside G.
    """
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(tflite_models[variant])).get_signature_runner()
    decoded = _decoded("rocket", 6).astype(np.float32)[None]

    def restore(image, tau, slack):
        out = runner(decoded=image, tau=np.array([tau], np.float32), slack=np.array([slack], np.float32))
        return out[export_lib.OUTPUT_KEY]

    scaled = decoded / 255
    tolerance = export_lib.BOUND_TOLERANCE + (1 / 255 if variant == "full_int8" else 0)
    assert np.abs(restore(scaled, 6 / 255, 5.0) - scaled).max() <= 6 / 255 + tolerance  # slack -> 1
    np.testing.assert_allclose(restore(scaled, -0.1, 1.0), scaled, atol=1e-6)  # tau -> 0: the input
    raw = restore(decoded, 6 / 255, 1.0)  # 0-255 instead of [0, 1]: clamped, output stays in [0, 1]
    assert raw.min() >= 0 and raw.max() <= 1
    assert np.abs(raw - np.clip(decoded, 0, 1)).max() <= 6 / 255 + tolerance


def test_full_int8_is_quantised_but_projection_stays_float(tflite_models):
    types = _tensor_types(tflite_models["full_int8"].read_bytes())
    projection = {name: kind for name, kind in types.items() if "box_projection" in name}
    assert projection and set(projection.values()) == {"FLOAT32"}, projection
    conv_outputs = [kind for name, kind in types.items() if "conv" in name and "convolution" in name]
    assert "INT8" in conv_outputs
    assert tflite_models["full_int8"].stat().st_size < tflite_models["float32"].stat().st_size


def test_run_tflite_validates_inputs(tflite_models):
    image = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(ValueError, match="tau must be >= 0"):
        run_tflite(tflite_models["float32"], image, -0.1, 1.0)
    with pytest.raises(ValueError, match=r"slack \(kappa\) must be in \[0, 1\]"):
        run_tflite(tflite_models["float32"], image, 0.1, 2.0)
    with pytest.raises(ValueError, match="3-channel"):
        run_tflite(tflite_models["float32"], np.zeros((16, 16, 1), np.float32), 0.1, 1.0)


def test_full_int8_needs_patches_and_known_variant(generator):
    with pytest.raises(ValueError, match="variant must be one of"):
        tflite.convert_tflite(generator, variant="int4", channels=CHANNELS)
    with pytest.raises(ValueError, match="representative patches"):
        tflite.convert_tflite(
            generator, variant="full_int8", channels=CHANNELS, representative_patches=[]
        )


# --- parity report and export.py -----------------------------------------------------------------


def test_parity_report(generator, saved_models, tflite_models, tmp_path):
    crops = [calibration.sample_image(name, CHANNELS)[100:140, 100:148] for name in ("chelsea", "moon")]
    images = [crop.copy() for crop in crops]
    report = parity.parity_report(
        generator, saved_models["uint8_path"], tflite_models, images, taus=(3,), output_dir=tmp_path
    )
    assert report["saved_model"]["restore_float_max_abs_diff"] < 2e-6
    assert report["saved_model"]["serving_default_max_level_diff"] <= 1
    for variant in ("float32", "float16"):
        assert report["tflite"][variant]["fraction_within_1_level"] >= 0.999
        assert report["tflite"][variant]["meets_parity_target"]
    for variant in tflite.TFLITE_VARIANTS:
        assert report["tflite"][variant]["bound_holds"]
    for variant in ("dynamic_int8", "full_int8"):
        assert np.isfinite(report["tflite"][variant]["psnr_loss_vs_float32_db"])
    assert report["parameters"] == generator.count_params()
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(report))
    assert "| full_int8 |" in (tmp_path / "report.md").read_text()


def test_export_cli_end_to_end(tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable, str(REPO / "export.py"), "--allow_untrained", f"--output_dir={out}",
        "--model_name=linf", "--version=3", "--report_crop=40", "--calibration_patches_per_image=1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "serving" / "linf" / "3" / "saved_model.pb").is_file()
    for variant in tflite.TFLITE_VARIANTS:
        assert (out / "tflite" / f"linf_{variant}.tflite").stat().st_size > 1000
    report = json.loads((out / "report.json").read_text())
    assert set(report["tflite"]) == set(tflite.TFLITE_VARIANTS)
    assert (out / "report.md").is_file()


def test_export_cli_requires_weights_or_allow_untrained(tmp_path):
    command = [sys.executable, str(REPO / "export.py"), f"--output_dir={tmp_path}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "no --weights given" in result.stderr and "--allow_untrained" in result.stderr
    help_text = subprocess.run(
        [sys.executable, str(REPO / "export.py"), "--helpfull"], capture_output=True, text=True, timeout=120
    ).stdout
    flags = ("weights", "config", "output_dir", "model_name", "version", "input_dtype", "tflite_variants")
    for flag in flags:
        assert f"--{flag}" in help_text


def test_export_cli_checkpoint_takes_a_training_run(tmp_path):
    run = tmp_path / "run"
    output = tmp_path / "o"
    command = [sys.executable, str(REPO / "export.py"), f"--checkpoint={run}", f"--output_dir={output}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "no generator.weights.h5 + generator.json" in result.stderr
    (run / "export").mkdir(parents=True)
    build_generator(CHANNELS, **TINY).save_weights(run / "export" / "generator.weights.h5")
    config = {"channels": CHANNELS, "tau_conditioning": True, **TINY}
    (run / "export" / "generator.json").write_text(json.dumps(config))
    result = subprocess.run(
        [*command, "--tflite_variants=float32", "--noreport"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "o" / "serving" / "linf" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "o" / "tflite" / "linf_float32.tflite").is_file()


def test_export_cli_exports_the_shipped_default_model(tmp_path):
    command = [sys.executable, str(REPO / "export.py"), "--checkpoint=default", f"--output_dir={tmp_path}",
               "--tflite_variants=float16", "--noreport"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "serving" / "linf" / "1" / "saved_model.pb").is_file()
    assert (tmp_path / "tflite" / "linf_float16.tflite").stat().st_size > 10_000


def test_gray_generator_exports(tmp_path):
    gray = build_generator(1, **TINY)
    module = serving.make_serving_module(gray, channels=1)
    image = calibration.codec_round_trip(calibration.sample_image("camera", 1)[:32, :40].copy(), 3)[None]
    restored = module.serving_default(tf.constant(image), tf.constant([3]), tf.constant([1.0]))
    np.testing.assert_array_equal(restored[export_lib.OUTPUT_KEY], image)  # a fresh G is the identity
    path = tflite.export_tflite(gray, tmp_path / "gray.tflite", variant="float32", channels=1)
    scaled = image[0].astype(np.float32) / 255
    np.testing.assert_allclose(run_tflite(path, scaled, 3 / 255, 1.0), scaled, atol=1e-6)


@pytest.mark.slow
def test_paper_size_generator_parity(tmp_path):
    """64 filters, 16 residual units (as trained): every variant exports, keeps the bound, floats match."""
    model = build_generator(CHANNELS)
    layer = model.get_layer("correction")  # small random correction: a few grey levels, like a trained G
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(0, 1.5e-4, w.shape).astype(np.float32) for w in layer.get_weights()])
    module = serving.make_serving_module(model, channels=CHANNELS)
    saved = serving.export_saved_model(module, tmp_path, "linf", 1)
    paths = {
        name: tflite.export_tflite(model, tmp_path / f"{name}.tflite", variant=name, channels=CHANNELS)
        for name in tflite.TFLITE_VARIANTS
    }
    crops = [calibration.sample_image(name, CHANNELS)[150:214, 150:214] for name in calibration.PARITY_IMAGES]
    images = [crop.copy() for crop in crops]
    report = parity.parity_report(model, saved, paths, images, taus=(2, 6), output_dir=tmp_path)
    assert report["saved_model"]["restore_float_max_abs_diff"] < 1e-5
    for variant, entry in report["tflite"].items():
        assert entry["bound_holds"], variant
        if variant in tflite.FLOAT_VARIANTS:
            assert entry["fraction_within_1_level"] >= 0.999, variant
    sizes = {variant: entry["size_bytes"] for variant, entry in report["tflite"].items()}
    assert sizes["full_int8"] < sizes["float16"] < sizes["float32"]
    assert sizes["dynamic_int8"] < sizes["float16"]


def test_export_cli_loads_trained_weights(generator, tmp_path):
    weights, config = tmp_path / "generator.weights.h5", tmp_path / "generator.json"
    generator.save_weights(str(weights))
    config.write_text(json.dumps({"model": "linf_cnn", "channels": CHANNELS, **TINY, "pixel_max": 255}))
    command = [
        sys.executable, str(REPO / "export.py"), f"--weights={weights}", f"--config={config}",
        f"--output_dir={tmp_path / 'out'}", "--tflite_variants=", "--noreport",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = tf.saved_model.load(str(tmp_path / "out" / "serving" / "linf" / "1"))
    image = _decoded("coffee", 4)[None]
    restored = _call(loaded.signatures["serving_default"], image, [4], [1.0])
    module = serving.make_serving_module(generator, channels=CHANNELS)
    expected = module.serving_default(tf.constant(image), tf.constant([4]), tf.constant([1.0]))
    expected = expected[export_lib.OUTPUT_KEY].numpy()
    np.testing.assert_array_equal(restored, expected)
    assert not np.array_equal(restored, image)
    assert not (tmp_path / "out" / "tflite").exists() and not (tmp_path / "out" / "report.json").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorflow_serving") is None, reason="needs serving API")
def test_grpc_request_matches_the_signature(saved_models):
    import tensorflow as tf

    client = _client()
    image = np.zeros((6, 5, 3), np.uint8)
    request = client.build_grpc_request(image, 4, 0.5, "linf")
    assert request.model_spec.signature_name == "serving_default"
    _, expected = saved_models["uint8"].signatures["serving_default"].structured_input_signature
    assert set(request.inputs) == set(expected)
    for name, spec in expected.items():
        value = tf.make_ndarray(request.inputs[name])
        assert value.dtype == spec.dtype.as_numpy_dtype, name
        assert len(value.shape) == len(spec.shape), name
    assert tf.make_ndarray(request.inputs["tau"]).tolist() == [4]
