"""Tiny randomised generators and crops shared by the runtime and evaluation tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skimage import data

TINY = {"filters": 4, "num_res_units": 1, "tau_conditioning": True}
TINY_RADIUS = 5  # head conv 1 + residual unit 2 + body conv 1 + output conv 1


def tiny_generator(channels: int, seed: int = 0):
    """A small generator with random weights: a fresh one is the identity (zero output conv), which
    would make tiling and bound tests pass trivially."""
    from linf_tf.learn.models import build_generator

    model = build_generator(channels, **TINY)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if "moving_variance" in variable.path:
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.3, shape)
        variable.assign(value.astype(np.float32))
    return model


def rgb_crop() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[30:94, 150:230])  # 64 x 80 x 3, face and hair


def gray_crop() -> np.ndarray:
    return np.ascontiguousarray(data.camera()[60:124, 200:272])  # 64 x 72, the photographer


def save_tiny_keras(model, directory: Path, name: str = "tiny") -> Path:
    weights = directory / f"{name}.weights.h5"
    model.save_weights(weights)
    spec = {"model": "linf_cnn", "channels": int(model.inputs[0].shape[-1]), **TINY}
    (directory / f"{name}.json").write_text(json.dumps(spec))
    return weights
