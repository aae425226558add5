"""The shipped models and how a model path is turned into a restorer.

Each shipped model lives in its own folder under ``linf_tf/weights/`` (``rgb/``, ``gray/``, ...) with
the same file names::

    generator.weights.h5, generator.json   Keras weights + builder arguments (training, export)
    linf_float32.tflite, linf_float16.tflite   LiteRT models (signature ``restore``)
    manifest.json                          optional: channels, receptive radius, default file

Nothing but the files is needed: without a manifest the channel count comes from
``generator.json`` or the TFLite input, and the receptive radius falls back to the tiler's default
overlap. ``default`` picks, for an image with C channels, the folder whose model takes C channels;
otherwise the 1-channel model (applied channel by channel); otherwise any shipped model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from linf_tf.runtime.tiling import Restorer

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
KERAS_WEIGHTS_SUFFIX = ".weights.h5"
KERAS_WEIGHTS = "generator" + KERAS_WEIGHTS_SUFFIX
KERAS_CONFIG = "generator.json"
MANIFEST = "manifest.json"
TFLITE_FILES = ("linf_float16.tflite", "linf_float32.tflite")  # preference order for `default`
DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class ShippedModel:
    """One folder of ``linf_tf/weights``."""

    name: str
    folder: Path
    channels: int
    receptive_radius: int | None
    tflite: Path | None  # the LiteRT file `default` uses
    keras_weights: Path | None

    def file(self, name: str) -> Path:
        return self.folder / name


def _channels_of(folder: Path, manifest: dict, tflite: Path | None) -> int | None:
    if "channels" in manifest:
        return int(manifest["channels"])
    config = folder / KERAS_CONFIG
    if config.is_file():
        channels = json.loads(config.read_text()).get("channels")
        if channels is not None:
            return int(channels)
    if tflite is not None:
        from linf_tf.runtime.litert import TFLiteSession

        return TFLiteSession(tflite).channels
    return None


def read_shipped_model(folder: Path) -> ShippedModel | None:
    """The model in ``folder``, or None when the folder holds no model file."""
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    preferred = [manifest["default"]] if "default" in manifest else []
    tflite = next((folder / n for n in (*preferred, *TFLITE_FILES) if (folder / n).is_file()), None)
    keras_weights = folder / KERAS_WEIGHTS if (folder / KERAS_WEIGHTS).is_file() else None
    if tflite is None and keras_weights is None:
        return None
    channels = _channels_of(folder, manifest, tflite)
    if channels is None:
        return None
    radius = manifest.get("receptive_radius")
    radius = None if radius is None else int(radius)
    return ShippedModel(folder.name, folder, channels, radius, tflite, keras_weights)


def shipped_models(weights_dir: Path = WEIGHTS_DIR) -> dict[str, ShippedModel]:
    """Every model folder under ``weights_dir``, by folder name (sorted)."""
    models = {}
    if weights_dir.is_dir():
        for folder in sorted(p for p in weights_dir.iterdir() if p.is_dir() and not p.name.startswith("_")):
            model = read_shipped_model(folder)
            if model is not None:
                models[model.name] = model
    return models


def pick_shipped_model(channels: int, weights_dir: Path = WEIGHTS_DIR) -> ShippedModel:
    """The shipped model for a C-channel image: exact channel match, else the 1-channel one, else any."""
    models = list(shipped_models(weights_dir).values())
    if not models:
        raise FileNotFoundError(
            f"no model is shipped in {weights_dir} (expected folders with {TFLITE_FILES[0]} or "
            f"{KERAS_WEIGHTS} + {KERAS_CONFIG}); pass a model path instead"
        )
    for wanted in (channels, 1):
        match = next((m for m in models if m.channels == wanted), None)
        if match is not None:
            return match
    return models[0]


def weights_config_path(weights: Path) -> Path:
    """``NAME.weights.h5`` -> ``NAME.json``."""
    return weights.with_name(weights.name[: -len(KERAS_WEIGHTS_SUFFIX)] + ".json")


def load_shipped(channels: int, weights_dir: Path = WEIGHTS_DIR, prefer_keras: bool = False) -> Restorer:
    """The restorer of the shipped model for C-channel images: LiteRT unless ``prefer_keras``."""
    model = pick_shipped_model(channels, weights_dir)
    if model.tflite is not None and not (prefer_keras and model.keras_weights is not None):
        from linf_tf.runtime.litert import TFLiteRestorer

        return TFLiteRestorer(model.tflite, receptive_radius=model.receptive_radius)
    return load_restorer(model.keras_weights)


def load_restorer(path: str | Path, channels: int = 3) -> Restorer:
    """Pick the implementation from the path: ``default`` (the shipped model for ``channels``), a
    ``*.tflite`` file (LiteRT), a folder of a shipped-style model, a SavedModel directory,
    ``*.weights.h5`` (with its ``*.json`` config beside it) or a trainer export / run directory.
    The last three need TensorFlow (the ``[train]`` extra)."""
    if str(path) == DEFAULT_MODEL:
        return load_shipped(channels)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model path does not exist: {path}")
    if path.suffix == ".tflite":
        from linf_tf.runtime.litert import TFLiteRestorer

        folder_model = read_shipped_model(path.parent)
        radius = folder_model.receptive_radius if folder_model is not None else None
        return TFLiteRestorer(path, receptive_radius=radius)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        from linf_tf.runtime.tf_loaders import SavedModelRestorer

        return SavedModelRestorer(path)
    if path.is_dir() and any((path / name).is_file() for name in TFLITE_FILES):
        return _load_folder(path)
    for weights in (path / KERAS_WEIGHTS, path / "export" / KERAS_WEIGHTS):  # an export / a training run
        if path.is_dir() and weights.is_file():
            return _load_keras(weights)
    if path.name.endswith(KERAS_WEIGHTS_SUFFIX):
        return _load_keras(path)
    raise ValueError(
        f"cannot tell the model format of {path}: expected a .tflite file, a SavedModel directory "
        f"(saved_model.pb) or a {KERAS_WEIGHTS_SUFFIX} file with its .json config"
    )


def _load_folder(folder: Path) -> Restorer:
    from linf_tf.runtime.litert import TFLiteRestorer

    model = read_shipped_model(folder)
    assert model is not None and model.tflite is not None
    return TFLiteRestorer(model.tflite, receptive_radius=model.receptive_radius)


def _load_keras(weights: Path) -> Restorer:
    from linf_tf.runtime.tf_loaders import load_keras_restorer  # lazy: imports TF

    return load_keras_restorer(weights)
