"""linf-tf: near-lossless (L-infinity bounded) image compression with an L-infinity-constrained CNN.

Layers (each importable alone; a lower one never imports a higher one):

* codec       ``codec``, ``imageio`` (+ ``image_formats``, ``image_samples``), ``sidecar``, ``cli``,
              ``progress``, ``pixels``, ``quiet``: numpy + the C extension
* runtime     ``linf_tf.runtime``: restoration through LiteRT (TensorFlow only for Keras/SavedModel)
* learn       ``linf_tf.learn``: data, models, losses, trainer, model I/O, export (TensorFlow)
* evaluation  ``linf_tf.evaluation``: reference codecs, tables, plots (may import all of the above)
"""

from linf_tf.quiet import quiet_native_logs as _quiet_native_logs

_quiet_native_logs()  # before anything can import TensorFlow

__version__ = "0.1.0"
