"""The one way to save and rebuild a generator: ``generator.weights.h5`` plus ``generator.json``
(the builder arguments of :func:`linf_tf.learn.models.build_from_spec`, plus training facts such as
the taus). The trainer's export, ``export.py``, the runtime's Keras loader and the benchmarks all go
through here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from linf_tf.learn.models import build_from_spec
from linf_tf.runtime.registry import KERAS_CONFIG, KERAS_WEIGHTS, weights_config_path

EXPORT_WEIGHTS_NAME = KERAS_WEIGHTS
EXPORT_CONFIG_NAME = KERAS_CONFIG


def build_from_config(config: Mapping[str, Any]) -> keras.Model:
    """A freshly initialised generator from its spec (extra keys such as ``taus`` are ignored)."""
    return build_from_spec(config)


def save_generator(generator: keras.Model, spec: Mapping[str, Any], directory: str | Path) -> Path:
    """Write ``generator.weights.h5`` and ``generator.json`` (``spec``) into ``directory``; return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    generator.save_weights(directory / EXPORT_WEIGHTS_NAME)
    (directory / EXPORT_CONFIG_NAME).write_text(json.dumps(dict(spec), indent=2) + "\n")
    return directory


def load_generator(weights_path: str | Path, config_json_path: str | Path | None = None) -> keras.Model:
    """Rebuild G from its JSON (default: ``NAME.json`` beside ``NAME.weights.h5``) and load the weights."""
    weights_path = Path(weights_path)
    config_path = Path(config_json_path) if config_json_path else weights_config_path(weights_path)
    model = build_from_config(json.loads(config_path.read_text()))
    model.load_weights(str(weights_path))
    return model


def load_saved_generator(directory: str | Path) -> tuple[keras.Model, dict[str, Any]]:
    """Rebuild G from :func:`save_generator`'s folder; returns (model, its JSON)."""
    directory = Path(directory)
    spec = json.loads((directory / EXPORT_CONFIG_NAME).read_text())
    return load_generator(directory / EXPORT_WEIGHTS_NAME, directory / EXPORT_CONFIG_NAME), spec
