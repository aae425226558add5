"""Restore a decoded image with the l-inf CNN served by TF Serving (REST, or gRPC with --grpc).

    python serving/client.py photo.nlc -o restored.png              # tau from the stream header
    python serving/client.py decoded.png --tau 2 -o restored.png    # an already decoded image
    python serving/client.py photo.nlc -o restored.png --grpc --port 8500

REST needs only the standard library (urllib). The gRPC path imports ``tensorflow-serving-api``
(pin: tensorflow-serving-api==2.21.0) and TensorFlow lazily, only when --grpc is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from linf_tf import codec
from linf_tf.imageio import read_image, write_image
from linf_tf.runtime import DEFAULT_SLACK  # one default for the CLI, the client and the docs

SIGNATURE = "serving_default"
OUTPUT_KEY = "restored"
GRPC_PIN = "tensorflow-serving-api==2.21.0"


def as_batch(image: np.ndarray) -> np.ndarray:
    """H x W (gray), H x W x C or N x H x W x C pixels -> N x H x W x C, the signature's layout.

    Big-endian uint16 (">u2", e.g. from a raw file) is byteswapped to native order first."""
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    if image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be uint8 or uint16 (the serving signature's dtype), got {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"image must be HxW, HxWxC or NxHxWxC, got shape {image.shape}")
    return image


def build_rest_request(image: np.ndarray, tau: int | list[int], slack: float | list[float]) -> dict[str, Any]:
    """The TF Serving REST body (columnar "inputs" format) for the ``serving_default`` signature.

    ``tau`` (integer, pixel units) and ``slack`` (kappa in [0, 1]) are one value per image; a single
    value is repeated over the batch.
    """
    batch = as_batch(image)
    taus = [int(t) for t in np.broadcast_to(np.asarray(tau), (batch.shape[0],))]
    slacks = [float(s) for s in np.broadcast_to(np.asarray(slack, np.float64), (batch.shape[0],))]
    if min(taus) < 0:
        raise ValueError(f"tau must be >= 0, got {taus}")
    if not all(0.0 <= s <= 1.0 for s in slacks):
        raise ValueError(f"slack must be in [0, 1], got {slacks}")
    return {
        "signature_name": SIGNATURE,
        "inputs": {"image": batch.tolist(), "tau": taus, "slack": slacks},
    }


def parse_rest_response(body: dict[str, Any], dtype: np.dtype) -> np.ndarray:
    """The restored batch from a columnar response: ``{"outputs": value}`` (TF Serving drops the
    name when the signature has one output) or ``{"outputs": {"restored": value}}``."""
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {body['error']}")
    outputs = body["outputs"]
    if isinstance(outputs, dict):
        outputs = outputs[OUTPUT_KEY]
    return np.asarray(outputs).astype(dtype)


def predict_rest(
    image: np.ndarray, tau: int, slack: float, *, host: str, port: int, model_name: str, timeout: float
) -> np.ndarray:
    """POST to ``http://host:port/v1/models/<model_name>:predict``; returns N x H x W x C pixels."""
    url = f"http://{host}:{port}/v1/models/{model_name}:predict"
    body = json.dumps(build_rest_request(image, tau, slack)).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read())
    except urllib.error.HTTPError as exc:  # TF Serving puts the reason in a JSON body
        raise RuntimeError(f"{url}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot reach TF Serving at {url}: {exc.reason}") from exc
    return parse_rest_response(reply, image.dtype)


def _grpc_modules() -> tuple[Any, Any, Any, Any]:
    try:
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
    except ImportError as exc:
        raise RuntimeError(
            f"--grpc needs the TF Serving client: pip install {GRPC_PIN} ({exc}); or use REST (no --grpc)"
        ) from exc
    return grpc, tf, predict_pb2, prediction_service_pb2_grpc


def build_grpc_request(image: np.ndarray, tau: int, slack: float, model_name: str) -> Any:
    """A PredictRequest with the same inputs as the REST request (image, tau, slack)."""
    _, tf, predict_pb2, _ = _grpc_modules()
    batch = as_batch(image)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = SIGNATURE
    request.inputs["image"].CopyFrom(tf.make_tensor_proto(batch))
    request.inputs["tau"].CopyFrom(tf.make_tensor_proto(np.full(batch.shape[0], tau, np.int32)))
    request.inputs["slack"].CopyFrom(tf.make_tensor_proto(np.full(batch.shape[0], slack, np.float32)))
    return request


def predict_grpc(
    image: np.ndarray, tau: int, slack: float, *, host: str, port: int, model_name: str, timeout: float
) -> np.ndarray:
    """The same request over gRPC (TF Serving's --port, 8500 by default)."""
    grpc, tf, _, prediction_service_pb2_grpc = _grpc_modules()
    request = build_grpc_request(image, tau, slack, model_name)
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=timeout)
    return tf.make_ndarray(response.outputs[OUTPUT_KEY]).astype(image.dtype)


def load_input(path: Path, tau: int | None) -> tuple[np.ndarray, int]:
    """Decoded pixels and tau: from a ``.nlc`` stream (tau from its header) or an image file (--tau)."""
    if path.suffix.lower() == ".nlc":
        data = path.read_bytes()
        header_tau = codec.info(data).tau
        if tau is not None and tau != header_tau:
            raise ValueError(f"--tau {tau} contradicts the stream header's tau={header_tau}")
        return codec.decode(data), header_tau
    if tau is None:
        raise ValueError("--tau is required for an image file (a .nlc stream carries it in its header)")
    return read_image(path).pixels, tau


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="a .nlc stream, or a decoded image with --tau")
    parser.add_argument("-o", "--output", type=Path, required=True, help="restored image (.png or .tif)")
    parser.add_argument("--tau", type=int, default=None, help="codec error bound, pixel units (images only)")
    parser.add_argument(
        "--slack", type=float, default=DEFAULT_SLACK,
        help=f"kappa in [0, 1]: box half-width kappa*tau (default: {DEFAULT_SLACK}, as `linf`)",
    )
    parser.add_argument("--host", default="localhost", help="TF Serving host")
    parser.add_argument("--port", type=int, default=None, help="REST port (default 8501) or gRPC (8500)")
    parser.add_argument("--model_name", default="linf", help="served model name")
    parser.add_argument("--grpc", action="store_true", help="use gRPC (needs tensorflow-serving-api)")
    parser.add_argument("--timeout", type=float, default=60.0, help="request timeout in seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pixels, tau = load_input(args.input, args.tau)
        predict = predict_grpc if args.grpc else predict_rest
        port = args.port or (8500 if args.grpc else 8501)
        options = {"host": args.host, "port": port, "model_name": args.model_name, "timeout": args.timeout}
        restored = predict(pixels, tau, args.slack, **options)
    except (ValueError, RuntimeError, OSError, codec.CodecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    write_image(args.output, restored[0].reshape(pixels.shape))
    print(f"restored {args.input} (tau={tau}, slack={args.slack}) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
