"""The inference layer: load a restoration model, tile, project into the integer box, verify the bound.

LiteRT (``ai-edge-litert``) runs the shipped models by default, with no TensorFlow; Keras and
SavedModel loaders (:mod:`linf_tf.runtime.tf_loaders`) are imported only when such a model is asked
for. This package imports nothing from :mod:`linf_tf.learn` or :mod:`linf_tf.evaluation` at import
time (``tests/test_layers.py`` checks it).
"""

from linf_tf.runtime.box import (
    DEFAULT_SLACK,
    check_slack,
    guaranteed_bound,
    max_value_for,
    to_integer_box,
    verify_box,
)
from linf_tf.runtime.registry import (
    DEFAULT_MODEL,
    WEIGHTS_DIR,
    load_restorer,
    pick_shipped_model,
    shipped_models,
)
from linf_tf.runtime.restorer import NetworkRestorer
from linf_tf.runtime.tiling import DEFAULT_TILE, Restorer, restore_tiled

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_SLACK", "DEFAULT_TILE", "WEIGHTS_DIR", "NetworkRestorer", "Restorer",
    "check_slack", "guaranteed_bound", "load_restorer", "max_value_for", "pick_shipped_model",
    "restore_tiled", "shipped_models", "to_integer_box", "verify_box",
]
