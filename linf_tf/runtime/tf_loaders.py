"""Restorers that need TensorFlow: a Keras generator (``.weights.h5`` + ``.json``) and the exporter's
SavedModel. Imported only when such a model is asked for, so the runtime's default path (LiteRT)
never loads TensorFlow; they need the ``[train]`` extra installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from linf_tf.quiet import import_tensorflow
from linf_tf.runtime.box import max_value_for, project_to_float_box


class KerasRestorer:
    """A Keras model with inputs ``[decoded in [0, 1], tau / max_value]`` (the generator or ARCNN), or
    the projected inference model that also takes ``slack``.

    ``max_value`` is the pixel value mapped to 1.0; None (default) uses each image's own peak
    ``2**bit_depth - 1``, the scaling the trainer uses.
    """

    def __init__(self, model: Any, max_value: float | None = None) -> None:
        self.model = model
        self.max_value = max_value
        self.channels = int(model.inputs[0].shape[-1])
        self.receptive_radius = receptive_radius(model)
        self._takes_slack = len(model.inputs) == 3

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        import keras  # lazy: keeps TF out of baseline-only runs

        scale = float(self.max_value or max_value_for(bit_depth))
        planes = decoded[:, :, None] if decoded.ndim == 2 else decoded  # HxW gray: one channel
        y = (planes.astype(np.float32) / scale)[None]
        tau_in = np.array([[tau / scale]], np.float32)
        slack_in = np.array([[slack]], np.float32)
        inputs = [y, tau_in, slack_in] if self._takes_slack else [y, tau_in]
        restored = keras.ops.convert_to_numpy(self.model(inputs, training=False))
        # Project here too: a bare generator is unclipped, and re-projecting a projected output is a no-op.
        projected = project_to_float_box(restored, y, np.float32(slack) * tau_in[0, 0], np.float32(1.0))
        projected = projected[0].astype(np.float64) * scale
        return projected[:, :, 0] if decoded.ndim == 2 else projected


class SavedModelRestorer:
    """The exporter's SavedModel: ``serving_default(image uint8/uint16 [N,H,W,C], tau int32 [N],
    slack float32 [N]) -> {"restored": [N,H,W,C]}``, with ``restored`` in the image's pixel units
    (integer or float) and already projected by the model."""

    def __init__(self, path: str | Path) -> None:
        tf = import_tensorflow()  # lazy: TF takes seconds to import
        self._tf = tf
        self._loaded = tf.saved_model.load(str(path))  # keep a reference: the signature needs it alive
        self._signature = self._loaded.signatures["serving_default"]
        image_spec = self._signature.structured_input_signature[1]["image"]
        self.channels = int(image_spec.shape[-1])
        self._image_dtype = image_spec.dtype.as_numpy_dtype
        self.receptive_radius = None  # the graph's layers are not introspectable

    def restore(self, decoded: np.ndarray, tau: int, slack: float, bit_depth: int) -> np.ndarray:
        if bit_depth > 8 * np.dtype(self._image_dtype).itemsize:
            raise ValueError(
                f"this SavedModel takes {np.dtype(self._image_dtype).name}; image is {bit_depth}-bit"
            )
        tf = self._tf
        outputs = self._signature(
            image=tf.constant(decoded[None].astype(self._image_dtype)),
            tau=tf.constant([tau], tf.int32),
            slack=tf.constant([slack], tf.float32),
        )
        return np.asarray(outputs["restored"][0], np.float64)


def load_keras_restorer(weights: Path) -> KerasRestorer:
    """Rebuild the network from the JSON beside its weights (:mod:`linf_tf.learn.model_io`)."""
    from linf_tf.learn.model_io import load_generator  # lazy: imports TF
    from linf_tf.runtime.registry import weights_config_path

    config = weights_config_path(weights)
    if not config.is_file():
        raise FileNotFoundError(f"{weights} needs its architecture config {config}")
    return KerasRestorer(load_generator(weights, config))


def receptive_radius(model: Any) -> int | None:
    """Pixels of context a functional Keras model sees on each side of an output pixel.

    The longest path through the graph, summing ``dilation * (kernel // 2)`` over stride-1
    convolutions (nested models recurse); layers that do not mix pixels add 0. None when a layer
    changes resolution (strides, pooling, upsampling): tiles would then not line up exactly.
    """
    memo: dict[int, int | None] = {}

    def tensor_radius(tensor: Any) -> int | None:
        key = id(tensor)
        if key not in memo:
            operation, node_index, _ = tensor._keras_history
            node = operation._inbound_nodes[node_index]
            inputs = node.arguments.keras_tensors
            radii = [tensor_radius(t) for t in inputs]
            local = _layer_radius(operation)
            if local is None or any(r is None for r in radii):
                memo[key] = None
            else:
                memo[key] = local + max(radii, default=0)
        return memo[key]

    radii = [tensor_radius(t) for t in model.outputs]
    return None if any(r is None for r in radii) else max(radii)


def _layer_radius(layer: Any) -> int | None:
    if hasattr(layer, "outputs") and hasattr(layer, "layers"):  # a nested functional model
        return receptive_radius(layer)
    strides = getattr(layer, "strides", None)
    if strides is not None and any(s != 1 for s in np.ravel(strides)):
        return None
    if hasattr(layer, "pool_size") or hasattr(layer, "size"):  # pooling / upsampling
        return None
    kernel = getattr(layer, "kernel_size", None)
    if kernel is None:
        return 0
    dilation = np.ravel(getattr(layer, "dilation_rate", 1))
    return int(max(np.ravel(kernel) // 2 * dilation))
