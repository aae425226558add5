"""The learning layer (needs the ``[train]`` extra: TensorFlow, Keras): the tf.data pipeline
(``data``), the networks (``models``), ``losses``, the GAN ``trainer`` with its ``validation`` and
``summaries``, ``model_io`` (the one way to save and rebuild a generator) and the deployment
``export`` (SavedModel for TF Serving, TFLite for LiteRT)."""

from linf_tf.quiet import import_tensorflow as _import_tensorflow

_import_tensorflow()  # every learn module imports TensorFlow: do it once, quietly, first
