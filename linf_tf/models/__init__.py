"""Network builders: the l-inf CNN generator, its discriminator and the ARCNN baseline."""

from linf_tf.models.arcnn import build_arcnn
from linf_tf.models.discriminator import build_discriminator
from linf_tf.models.generator import build_generator, build_inference_model

__all__ = ["build_arcnn", "build_discriminator", "build_generator", "build_inference_model"]
