"""The learning layer (needs the ``[train]`` extra: TensorFlow, Keras): the tf.data pipeline
(``data``, from ``sources``, cut by ``patches``), the networks (``models``), ``losses``, the GAN
``trainer`` (built by ``networks``, checkpointed by ``checkpoints``) with its ``validation`` and
``summaries``, ``model_io`` (the one way to save and rebuild a generator) and the deployment
``export`` (``serving``: SavedModel for TF Serving, ``tflite``: LiteRT, ``calibration``, ``parity``)."""

from linf_tf.quiet import import_tensorflow as _import_tensorflow

_import_tensorflow()  # every learn module imports TensorFlow: do it once, quietly, first
