"""LiteRT (``ai-edge-litert``) inference: the runtime's default engine, no TensorFlow needed.

The exporter's TFLite files have one signature, ``restore``, with inputs ``decoded`` (float32
[1, H, W, C] in [0, 1]; H and W dynamic), ``tau`` (float32 [1], tau / max_value) and ``slack``
(float32 [1], kappa) and one output ``restored`` (float32 [1, H, W, C] in [0, 1], projected into
the box y ± kappa*tau). The graph clamps its inputs (decoded to [0, 1], tau >= 0, slack to [0, 1])
with builtin ops, so a direct caller cannot leave the bound; :func:`run_tflite` still rejects such
values with a clear error. Older files without a signature are read by input name / order.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from linf_tf.quiet import silenced_stderr
from linf_tf.runtime.box import max_value_for

SIGNATURE_KEY = "restore"
INPUT_NAMES = ("decoded", "tau", "slack")
OUTPUT_KEY = "restored"


def default_threads() -> int:
    """LiteRT runs on one thread unless told otherwise: use every core."""
    return os.cpu_count() or 1


def make_interpreter(
    model_path: str | Path | None = None,
    *,
    model_content: bytes | None = None,
    num_threads: int | None = None,
):  # -> ai_edge_litert.interpreter.Interpreter (not imported at module level)
    """The one place a LiteRT interpreter is created: every core by default."""
    from ai_edge_litert.interpreter import Interpreter

    if (model_path is None) == (model_content is None):
        raise ValueError("pass exactly one of model_path and model_content")
    threads = num_threads or default_threads()
    if model_content is not None:
        return Interpreter(model_content=model_content, num_threads=threads)
    return Interpreter(model_path=str(model_path), num_threads=threads)


def allocate(interpreter) -> None:
    """``allocate_tensors`` without LiteRT's "Created TensorFlow Lite XNNPACK delegate" line."""
    with silenced_stderr():
        interpreter.allocate_tensors()


def identify_inputs(inputs: list[dict]) -> tuple[dict, dict, dict]:
    """(image, tau, slack) input details: by name when the names say so, else image = the rank-4
    input and tau, slack the others in order (the exporter's argument order)."""
    by_name = {key: next((d for d in inputs if key in d["name"].lower()), None) for key in ("tau", "slack")}
    image = next((d for d in inputs if len(d["shape"]) == 4), None)
    others = [d for d in inputs if d is not image]
    if image is None or len(others) != 2:
        raise ValueError(f"expected a 4-D image input plus tau and slack, got {[d['name'] for d in inputs]}")
    tau = by_name["tau"] or others[0]
    slack = by_name["slack"] or others[1]
    return image, tau, slack


def _scalar_tensor(detail: dict, value: float) -> np.ndarray:
    shape = [int(s) for s in detail["shape"]]  # [] for a 0-d input
    return np.full(shape, value, dtype=detail["dtype"])


class TFLiteSession:
    """One interpreter and its input/output tensors; re-allocates only when the input shape changes."""

    def __init__(self, path: str | Path | None = None, *, model_content: bytes | None = None,
                 num_threads: int | None = None) -> None:
        self.interpreter = make_interpreter(path, model_content=model_content, num_threads=num_threads)
        self.image, self.tau, self.slack = identify_inputs(self.interpreter.get_input_details())
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.channels = int(self.image["shape_signature"][-1])
        self._allocated_shape: tuple[int, ...] | None = None

    def run(self, decoded: np.ndarray, tau: float, slack: float) -> np.ndarray:
        """``decoded`` float32 [1, H, W, C] in [0, 1]; tau and slack as the model takes them."""
        shape = tuple(decoded.shape)
        interpreter = self.interpreter
        if shape != self._allocated_shape:  # reallocating is slow: only when the tile size changes
            interpreter.resize_tensor_input(self.image["index"], list(shape))
            allocate(interpreter)
            self._allocated_shape = shape
        interpreter.set_tensor(self.image["index"], np.ascontiguousarray(decoded, np.float32))
        interpreter.set_tensor(self.tau["index"], _scalar_tensor(self.tau, tau))
        interpreter.set_tensor(self.slack["index"], _scalar_tensor(self.slack, slack))
        interpreter.invoke()
        return interpreter.get_tensor(self.output_index)


class TFLiteRestorer:
    """A restorer (see :class:`linf_tf.runtime.tiling.Restorer`) over an exported ``.tflite`` file.

    ``receptive_radius`` cannot be read from the flatbuffer; the model registry passes the value
    recorded at export (None: unknown, the tiler then uses its default overlap).

    By default it keeps one single-threaded interpreter per core and the tiler runs that many
    windows at once (``parallel_windows``): XNNPACK's own threads split each convolution and scaled
    1.4x on 2 cores, whole windows in parallel 1.7x (BUILD_NOTES, "Light runtime"). Interpreters
    are created on first use. ``num_threads`` instead gives one interpreter with that many threads.
    """

    def __init__(self, path: str | Path, receptive_radius: int | None = None,
                 num_threads: int | None = None, workers: int | None = None) -> None:
        self.path = Path(path)
        if num_threads is not None:
            self.parallel_windows, self._threads = 1, num_threads
        else:
            self.parallel_windows, self._threads = max(1, workers or default_threads()), 1
        self._idle: queue.SimpleQueue[TFLiteSession] = queue.SimpleQueue()
        self._created = 0
        self._lock = threading.Lock()
        first = self._new_session()  # fails here, not on the first image, for a bad file
        self._idle.put(first)
        self.channels = first.channels
        self.receptive_radius = receptive_radius

    def _new_session(self) -> TFLiteSession:
        self._created += 1
        return TFLiteSession(self.path, num_threads=self._threads)

    def _take_session(self) -> TFLiteSession:
        """An idle interpreter, or a new one while fewer than ``parallel_windows`` exist."""
        with self._lock:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                if self._created < self.parallel_windows:
                    return self._new_session()
        return self._idle.get()

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        scale = float(max_value_for(bit_depth))
        session = self._take_session()
        try:
            # An integer tau input is in pixel units; a float one is scaled like the image.
            tau_value = tau if np.issubdtype(session.tau["dtype"], np.integer) else tau / scale
            planes = decoded[:, :, None] if decoded.ndim == 2 else decoded  # HxW gray, as KerasRestorer takes
            restored = session.run((planes.astype(np.float32) / scale)[None], tau_value, slack)
        finally:
            self._idle.put(session)
        restored = restored[0].astype(np.float64) * scale
        return restored[:, :, 0] if decoded.ndim == 2 else restored


def run_tflite(
    model_path: str | Path, decoded: np.ndarray, tau: float, slack: float, *, num_threads: int | None = None
) -> np.ndarray:
    """Restore one image with a TFLite model: ``decoded`` float32 in [0, 1], H x W x C or 1 x H x W x C;
    ``tau`` scaled like the image (tau / max_value); ``slack`` kappa in [0, 1]. Returns the same shape."""
    if not tau >= 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    if not 0 <= slack <= 1:
        raise ValueError(f"slack (kappa) must be in [0, 1], got {slack}")
    decoded = np.asarray(decoded, np.float32)
    batched = decoded if decoded.ndim == 4 else decoded[None]
    if batched.ndim != 4 or batched.shape[0] != 1:
        raise ValueError(f"decoded must be H x W x C or 1 x H x W x C, got shape {decoded.shape}")
    session = TFLiteSession(model_path, num_threads=num_threads)
    if batched.shape[-1] != session.channels:
        raise ValueError(f"model takes {session.channels}-channel images, got {batched.shape[-1]} channels")
    return session.run(batched, tau, slack).reshape(decoded.shape)
