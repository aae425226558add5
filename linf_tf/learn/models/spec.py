"""One way to describe and rebuild a restoration network: a JSON-able spec (``generator.json``).

The trainer writes the spec beside the weights, and export, evaluation and the Keras runtime
rebuild the network from it, so a new architecture option is added in exactly one place.
Keys: ``model`` (``linf_cnn`` or ``arcnn``), ``channels``, ``architecture`` (``full`` or
``unshuffle``; absent = ``full``, which is what every spec written before it means),
``filters``, ``num_res_units``, ``unshuffle_factor``, ``tau_conditioning``, ``arcnn_filters``.
Other keys (taus, pixel_max, eval_slack, mode) describe the training and are ignored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from linf_tf.learn.models.arcnn import build_arcnn
from linf_tf.learn.models.generator import ARCHITECTURES, build_generator, build_unshuffle_generator


def build_from_spec(spec: Mapping[str, Any]) -> keras.Model:
    """A freshly initialised network (under the current Keras dtype policy) from its spec."""
    if "channels" not in spec:
        raise ValueError(f"the generator spec must give 'channels', got keys {sorted(spec)}")
    channels = int(spec["channels"])
    tau_conditioning = bool(spec.get("tau_conditioning", True))
    if spec.get("model") == "arcnn":
        return build_arcnn(
            channels,
            filters=tuple(spec.get("arcnn_filters", (64, 32, 16))),
            tau_conditioning=bool(spec.get("tau_conditioning", False)),
        )
    architecture = spec.get("architecture", "full")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    sizes = {
        "filters": int(spec.get("filters", 64)),
        "num_res_units": int(spec.get("num_res_units", 16)),
        "tau_conditioning": tau_conditioning,
    }
    if architecture == "unshuffle":
        return build_unshuffle_generator(channels, factor=int(spec.get("unshuffle_factor", 2)), **sizes)
    return build_generator(channels, **sizes)
