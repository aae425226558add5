"""Network builders: the l-inf CNN generators, its discriminator and the ARCNN baseline."""

from linf_tf.learn.models.arcnn import build_arcnn
from linf_tf.learn.models.discriminator import build_discriminator
from linf_tf.learn.models.generator import (
    ARCHITECTURES,
    build_generator,
    build_inference_model,
    build_unshuffle_generator,
)
from linf_tf.learn.models.spec import build_from_spec

__all__ = [
    "ARCHITECTURES",
    "build_arcnn",
    "build_discriminator",
    "build_from_spec",
    "build_generator",
    "build_inference_model",
    "build_unshuffle_generator",
]
